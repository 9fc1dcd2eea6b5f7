# Copyright (c) 2026 cpucompat.cluster contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The observed guest CPU across the two stacks of this machine (QEMU 7.2 + libvirt 9.0, QEMU 10.0 + libvirt 11.3):

1. live migrations of the group's CPU from one QEMU to the other, both ways, under machine types both know, and a save
   on one restored on the other: the destination's vCPU has the source's words (KVM: every model this machine runs;
   TCG: a sample of models, always);
2. under TCG, every model both stacks know: the same rendering observed on both gives the same words, except what the
   accelerator decides (bits one TCG implements and the other filters, and the words listed in TCG_DEPENDENT);
3. a mixed-version group run through the site playbook: pinned with the CPU both hosts observe alike, and a host whose
   QEMU gives other words (a plain-QEMU host on an old machine type) refused, naming the words.
"""

from __future__ import annotations

import json
import sys

import pytest
import yaml

from ansible_collections.cpucompat.cluster.plugins.module_utils.cpu._cpuid import TCG_DEPENDENT, diff_words
from ansible_collections.cpucompat.cluster.plugins.module_utils.engine._baseline import baseline_of
from ansible_collections.cpucompat.cluster.plugins.module_utils.probe import _probe
from ansible_collections.cpucompat.cluster.plugins.module_utils.render._cpuspec import CpuSpec
from ansible_collections.cpucompat.cluster.plugins.module_utils.render._libvirt import render
from conftest import KVM
from integration.helpers import contract_file, run_playbook
from integration.libvirt_helpers import domain_xml
from utils import exact_groups, judges, stacks, vcpu

pytestmark = pytest.mark.usefixtures("no_leftover_qemu")
SYSTEM, BACKPORTS = stacks.by_name("system"), stacks.by_name("backports")
MACHINES = ("pc-i440fx-7.2", "pc-q35-7.2")  # machine types both QEMUs know
TCG_SAMPLE = ("qemu64", "Nehalem", "Westmere", "SandyBridge", "Haswell-noTSX", "EPYC", "Opteron_G3")
LOCAL = {"ansible_connection": "local", "ansible_python_interpreter": sys.executable}


def _args(model: str, props: dict[str, bool]) -> str:
    return model + "".join(f",{f}={'on' if on else 'off'}" for f, on in sorted(props.items()))


def side_args(xml: str, stack: stacks.Stack) -> str:
    """The -cpu each side gets for the group's <cpu>: libvirt 9.0's own conversion (domxml-to-native) on the 7.2 side;
    on the 10.0 side what libvirt 11.3 passes (its map's reading, removed features off)."""
    if stack.name == "system" and vcpu.ACCEL == "kvm":
        return judges.domxml_to_native_cpu(domain_xml("cpucompat-native-observe", xml))
    spec = CpuSpec.parse(xml)
    return _args(str(spec.model), judges.libvirt_props(spec, stack.cpu_map))


def _given(words: dict[str, int], filtered: dict[str, int]) -> dict[str, int]:
    return {k: v & ~filtered.get(k, 0) for k, v in words.items()}


def _move(cpu: dict[str, str], src: stacks.Stack, dst: stacks.Stack, machine: str, accel: str, save: bool) -> list[str]:
    """Start on ``src``, run it a moment, pause it, move it to ``dst`` (live or saved and restored): the differences
    between the destination's words and the source's (a word one QEMU does not present counts as 0)."""
    what = f"{cpu[src.name]} on {machine}: {src.name} -> {dst.name}"
    with vcpu.guest(src.qemu, machine, cpu[src.name], accel=accel) as a, \
            vcpu.guest(dst.qemu, machine, cpu[dst.name], accel=accel, incoming=True) as b:
        a.execute("cont")
        a.execute("stop")
        before, filtered = vcpu.words(a), vcpu.words(a, "filtered-features")
        (vcpu.save_restore if save else vcpu.migrate)(a, b, what)
        after = vcpu.words(b)
        for k, v in vcpu.words(b, "filtered-features").items():
            filtered[k] = filtered.get(k, 0) | v
    ignore = TCG_DEPENDENT if accel == "tcg" else {}
    if accel == "tcg":  # what one TCG implements and the other filters (either side) is the emulator's, not the model's
        before, after = _given(before, filtered), _given(after, filtered)
    return [d.describe(src.name, dst.name) for d in diff_words(before, after, ignore)]


@pytest.fixture(scope="module")
def this_machine() -> dict[str, dict]:
    def probed(s: stacks.Stack) -> dict:
        return _probe.probe(_probe.ProbeRequest(qemu_binary=s.qemu, accel="kvm", machine="q35", cpu_map=s.cpu_map_dir,
                                                libvirt_version=s.libvirt_version))
    return {f"me-{s.name}": probed(s) for s in (SYSTEM, BACKPORTS)}


# ------------------------------------------------------------------------------------------------ 1. migrations
@KVM
def test_live_migrations_between_the_stacks_keep_every_word_under_kvm(this_machine) -> None:
    runs = [set(f["runnable_models"]) for f in this_machine.values()]
    models = sorted(set.intersection(*runs) & set(SYSTEM.cpu_map.models) & set(BACKPORTS.cpu_map.models))
    assert models, "this machine runs some model both QEMUs and both libvirts know"
    problems, moves = {}, 0
    for model in models:
        guest = baseline_of({n: {**f, "runnable_models": [model]} for n, f in this_machine.items()}).guest
        xml = render(guest).xml
        cpu = {s.name: side_args(xml, s) for s in (SYSTEM, BACKPORTS)}
        for machine in MACHINES:
            for src, dst in ((SYSTEM, BACKPORTS), (BACKPORTS, SYSTEM)):
                for save in (False, True):
                    moves += 1
                    found = _move(cpu, src, dst, machine, "kvm", save)
                    if found:
                        problems[f"{model} {machine} {src.name}->{dst.name}{' saved' if save else ''}"] = found
    assert not problems, json.dumps(problems, indent=1)
    assert moves == len(models) * 8


@pytest.mark.parametrize("model", TCG_SAMPLE)
def test_migrations_between_the_stacks_under_tcg(model: str) -> None:
    xml = f"<cpu mode='custom' match='exact'><model fallback='forbid'>{model}</model></cpu>"
    cpu = {s.name: _args(model, judges.libvirt_props(CpuSpec.parse(xml), s.cpu_map)) for s in (SYSTEM, BACKPORTS)}
    for machine in MACHINES:
        for src, dst in ((SYSTEM, BACKPORTS), (BACKPORTS, SYSTEM)):
            assert not _move(cpu, src, dst, machine, "tcg", save=False), (model, machine, src.name)
        assert not _move(cpu, SYSTEM, BACKPORTS, machine, "tcg", save=True), (model, machine, "saved")


# ------------------------------------------------------------------------------------------------ 2. every model, TCG
def test_every_model_both_stacks_know_gives_the_same_words_under_tcg() -> None:
    """The bare model as each libvirt passes it, observed on QEMU 7.2 and 10.0 under pc-q35-7.2 and TCG. Differences
    allowed: bits one side filtered (TCG 10.0 implements x2apic, rdseed, 3dnowprefetch, which 7.2 does not) and the
    words TCG_DEPENDENT lists with their reason; everything else equal. Each allowed word is seen at least once."""
    models = exact_groups.models_both_know()
    assert len(models) >= 45
    problems, seen_dependent = {}, set()
    for model in models:
        xml = f"<cpu mode='custom' match='exact'><model fallback='forbid'>{model}</model></cpu>"
        out = {}
        for stack in (SYSTEM, BACKPORTS):
            with vcpu.guest(stack.qemu, "pc-q35-7.2", _args(model, judges.libvirt_props(CpuSpec.parse(xml), stack.cpu_map)),
                            accel="tcg") as g:
                out[stack.name] = (vcpu.words(g), vcpu.words(g, "filtered-features"))
        (old, old_f), (new, new_f) = out["system"], out["backports"]
        filtered = {k: old_f.get(k, 0) | new_f.get(k, 0) for k in set(old_f) | set(new_f)}
        strict = diff_words(_given(old, filtered), _given(new, filtered))
        seen_dependent |= {d.key for d in strict if d.key in TCG_DEPENDENT}
        rest = [d.describe("7.2", "10.0") for d in strict if d.key not in TCG_DEPENDENT]
        if rest:
            problems[model] = rest
    assert not problems, json.dumps(problems, indent=1)
    assert set(TCG_DEPENDENT) <= seen_dependent, "every listed word is one that really differs"
    assert all(len(why) > 40 for why in TCG_DEPENDENT.values()), "each with its reason"


# ------------------------------------------------------------------------------------------------ 3. a mixed-version group
def _inventory(tmp_path, extra_host: dict | None = None) -> str:
    hosts = {
        "me-7.2": {**LOCAL, "cpucompat_probe_machine": "pc-i440fx-7.2"},
        "me-10.0": {**LOCAL, "cpucompat_probe_machine": "pc-i440fx-7.2", "cpucompat_probe_qemu_binary": BACKPORTS.qemu,
                    "cpucompat_cpu_map": BACKPORTS.cpu_map_dir, "cpucompat_probe_libvirt_version": BACKPORTS.libvirt_version},
    }
    if extra_host:
        hosts.update(extra_host)
    path = tmp_path / "inventory.yml"
    path.write_text(yaml.safe_dump({"hypervisors": {"hosts": hosts, "vars": {"cpucompat_deploy_enabled": False}}}))
    return str(path)


def _site(tmp_path, inv: str, **extra):
    return run_playbook("cpucompat.cluster.site", tmp_path, inventory=inv,
                        extra={"cpucompat_report_dir": str(tmp_path / "reports"), **extra})


@KVM
def test_a_mixed_version_group_pins_what_both_observe_and_refuses_other_words(tmp_path) -> None:
    inv = _inventory(tmp_path)
    proc = _site(tmp_path, inv)
    assert proc.returncode == 0, proc.stdout[-5000:]
    contract = json.loads(contract_file(tmp_path).read_text())
    observed = contract["observed"]
    assert len(observed) == 2, observed  # one record per stack: QEMU 7.2 and QEMU 10.0
    assert {tuple(v["hosts"]) for v in observed.values()} == {("me-7.2",), ("me-10.0",)}
    assert {v["qemu"]["version"].split(".")[0] for v in observed.values()} == {"7", "10"}
    words = [v["cpuid"] for v in observed.values()]
    assert not diff_words(*words), "both stacks observe the same words"
    report = json.loads((tmp_path / "reports" / "contract.json").read_text())
    assert sorted(report["groups"]["hypervisors"]["observation"]["stacks"]) == sorted(observed)

    # Warm: nothing observed again (no QEMU started for it), the contract unchanged.
    proc = _site(tmp_path, inv)
    assert proc.returncode == 0, proc.stdout[-3000:]
    assert "Observe the contract CPU as this host's QEMU gives it to a guest" in proc.stdout
    assert proc.stdout.count("skipping: [me-") >= 2 and json.loads(contract_file(tmp_path).read_text()) == contract

    # A host whose QEMU gives other words: plain QEMU (no libvirt), probed as the others, whose guests run an old
    # machine type of the same family whose compatibility properties turn x2apic off - the group's -cpu is exact by
    # every definition the probes gathered, and not what that QEMU gives.
    old = {"me-old": {**LOCAL, "cpucompat_probe_machine": "pc-i440fx-7.2", "cpucompat_observe_machine": "pc-i440fx-1.7",
                      "cpucompat_observe_via": "qemu"}}
    proc = _site(tmp_path, _inventory(tmp_path, old))
    assert proc.returncode != 0
    report = json.loads((tmp_path / "reports" / "contract.json").read_text())
    section = report["groups"]["hypervisors"]
    refused = {r["host"]: r for r in section["observation"]["refused"]}
    assert set(refused) == {"me-old"}, section["observation"]
    assert any("0x1.0x0.ECX" in d and "x2apic" in d for d in refused["me-old"]["describe"]), refused
    assert refused["me-old"]["differs"]["machine"]["this_host"] == "pc-i440fx-1.7"
    assert "me-old does not give the contract CPU" in " ".join(report["verdict"]["reasons"])
    assert json.loads(contract_file(tmp_path).read_text())["observed"] == observed, "a refusal records nothing"
