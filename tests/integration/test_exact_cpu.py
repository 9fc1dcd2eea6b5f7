# Copyright (c) 2026 cpucompat.cluster contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The exact guest CPU, judged by QEMU and libvirt themselves on both stacks at once.

Stacks: this machine's (QEMU 7.2, libvirt 9.0) and the one tools/backports.sh unpacks (QEMU 10.0, libvirt 11.3). A
``<cpu>`` must give exactly the pinned feature set under every QEMU and every libvirt map of its group, since a live
migration hands it to hosts of either. The QEMU judges expand under KVM where /dev/kvm works (no host needs to run the
model for that, and KVM's defaults are what hosts give guests); without KVM those tests skip, the libvirt judges run.
"""

from __future__ import annotations

import json

import pytest

from ansible_collections.cpucompat.cluster.plugins.module_utils.engine._baseline import baseline_of
from ansible_collections.cpucompat.cluster.plugins.module_utils.render._libvirt import render
from conftest import KVM
from utils import exact_groups, judges, stacks
from utils.recordings import facts_of

SYSTEM, BACKPORTS = stacks.by_name("system"), stacks.by_name("backports")
MAPS = (SYSTEM.cpu_map, BACKPORTS.cpu_map)


def _judge(guest, qemu_judges, form: str = "minimal", maps=MAPS) -> tuple[str, list[str]]:
    """The rendered <cpu>, and how QEMU 7.2 and 10.0 and each libvirt map of the group disagree with the guest CPU."""
    cpu = render(guest, form)
    return cpu.xml, judges.verdict(cpu.spec, guest.features, qemu_judges, maps)


# ------------------------------------------------------------------------------------------------ the map, as libvirt reads it
@pytest.mark.parametrize("stack", stacks.NAMES)
def test_our_reading_of_each_map_is_libvirts_own(stack: str) -> None:
    """Every model's definition and removed features, as ``virsh cpu-baseline --features`` of that libvirt expands them."""
    the = stacks.by_name(stack)
    cpu_map = the.cpu_map
    wrong = {}
    for model in sorted(cpu_map.models):
        answer = judges.libvirt_definition(the, model, cpu_map.vendors.get(model))
        if isinstance(answer, str):
            wrong[model] = answer
            continue
        answered, required, disabled = answer
        ours = frozenset(cpu_map.models[model])
        removed = frozenset(cpu_map.removed.get(model, ()))
        if required != ours or (answered == model and disabled != removed):
            wrong[model] = {"libvirt only": sorted((required - ours) | (disabled - removed if answered == model else set())),
                            "ours only": sorted((ours - required) | (removed - disabled if answered == model else set()))}
    assert not wrong, json.dumps(wrong, indent=1)[:3000]
    assert len(cpu_map.models) >= 50


@KVM
def test_libvirt_passes_what_the_judge_says_it_passes(tmp_path) -> None:
    """The judge's ``-cpu`` properties for a <cpu> are those libvirt 9.0 builds (``virsh domxml-to-native``)."""
    gold = facts_of("x86_64-xeon-gold-6130")
    cpu = render(baseline_of({"gold": gold, "epyc": facts_of("x86_64-epyc-7502")}, _neutral()).guest)
    domain = (f"<domain type='kvm'><name>cpucompat-native</name><memory unit='MiB'>64</memory><vcpu>1</vcpu>"
              f"<os><type arch='x86_64' machine='q35'>hvm</type></os>{cpu.xml}"
              "<devices><emulator>/usr/bin/qemu-system-x86_64</emulator></devices></domain>")
    model, *props = judges.domxml_to_native_cpu(domain).split(",")
    built = {p.split("=")[0]: p.split("=")[1] == "on" for p in props if "=" in p}
    assert model == cpu.spec.model
    assert built == judges.libvirt_props(cpu.spec, SYSTEM.cpu_map), (built, cpu.xml)


def _neutral():
    from ansible_collections.cpucompat.cluster.plugins.module_utils.engine._baseline import BaselineOptions  # pylint: disable=import-outside-toplevel
    return BaselineOptions(vendor_neutral=True)


def _version(judge: judges.QemuJudge) -> str:
    """The series (7.2, 10.0) of a judge's QEMU."""
    version = judge.client.greeting["version"]["qemu"]
    return f"{version['major']}.{version['minor']}"


# ------------------------------------------------------------------------------------------------ recorded groups
PAIRS = [
    ("x86_64-xeon-gold-6130", "x86_64-xeon-platinum-9242"),  # Skylake-SP + Cascade Lake, as in the issue
    ("x86_64-cooperlake", "x86_64-xeon-platinum-9242"),
    ("x86_64-xeon-e5-2650-v4", "x86_64-xeon-e5-2609-v3"),
    ("x86_64-core-i7-8700", "x86_64-xeon-e3-1245-v5"),
    ("x86_64-ice-lake-server", "x86_64-xeon-platinum-9242"),
    ("x86_64-epyc-7502", "x86_64-epyc-7601-ibpb"),
    ("x86_64-epyc-9654-qemu-10.0.0", "x86_64-ryzen-9-3900x-qemu-10.0.0"),
    ("x86_64-atom-p5362", "x86_64-xeon-e7540"),
]


@KVM
@pytest.mark.parametrize("pair", PAIRS, ids=lambda p: "+".join(n.removeprefix("x86_64-") for n in p))
@pytest.mark.parametrize("libvirt", [("system", "system"), ("backports", "backports"), ("system", "backports")],
                         ids=["9.0", "11.3", "mixed"])
def test_recorded_groups_are_exact_on_both_stacks(pair, libvirt, qemu_judges) -> None:
    hosts = {name: facts_of(name, lv) for name, lv in zip(pair, libvirt)}
    base = baseline_of(hosts)
    assert base.guest is not None, base.guest_error
    versions = {facts["qemu"]["version"] for facts in hosts.values()}
    own = [j for j in qemu_judges if None in versions or _version(j) in {".".join(v.split(".")[:2]) for v in versions}]
    xml, problems = _judge(base.guest, own, maps=[stacks.by_name(lv).cpu_map for lv in sorted(set(libvirt))])
    assert not problems, f"{xml}\n" + "\n".join(problems)
    for name in pair:  # every member runs it: the model, and every feature the guest gets
        facts = hosts[name]
        assert base.guest.features <= set(facts["features"]), sorted(base.guest.features - set(facts["features"]))


@KVM
def test_skylake_sp_and_cascade_lake_get_what_both_run(qemu_judges) -> None:
    """The issue's pair: QEMU's Skylake-Server-IBRS gives pku and no mpx; the <cpu> says so, whatever libvirt reads it."""
    hosts = {"gold": facts_of("x86_64-xeon-gold-6130", "system"), "platinum": facts_of("x86_64-xeon-platinum-9242", "backports")}
    guest = baseline_of(hosts).guest
    cpu = render(guest)
    assert {"mpx", "pku"} <= set(cpu.spec.policy_names(["require"])), cpu.xml
    assert cpu.spec.model in SYSTEM.cpu_map.models and cpu.spec.model in BACKPORTS.cpu_map.models
    assert not judges.verdict(cpu.spec, guest.features, qemu_judges, MAPS)


# ------------------------------------------------------------------------------------------------ the property test
CHUNKS = 4  # every CHUNKS-th model in one test: pytest-xdist spreads them over the cores; together they are every model


@KVM
@pytest.mark.parametrize("chunk", range(CHUNKS), ids=lambda c: f"models-{c + 1}-of-{CHUNKS}")
def test_every_model_both_vocabularies_know_renders_exactly(qemu_judges, chunk: int) -> None:
    """For every model QEMU 7.2 and 10.0 and libvirt 9.0 and 11.3 all know: a host whose CPU is the union of every
    definition of it, on both stacks at once; and the same with one host lacking each feature the definitions disagree
    on. 100 % of them render, and exactly."""
    old, new = qemu_judges
    models = exact_groups.models_both_know()
    assert len(models) >= 45
    assert sum(1 for _case in exact_groups.cases(old)) >= 100, "groups of all chunks"
    groups, problems = 0, {}
    for model, lacking, host, weaker in exact_groups.cases(old, models[chunk::CHUNKS]):
        group = {"a-7.2": exact_groups.synthetic(model, host, SYSTEM, old), "b-10.0": exact_groups.synthetic(model, weaker, BACKPORTS, new)}
        base = baseline_of(group)
        groups += 1
        key = f"{model} without {lacking}" if lacking else model
        if base.guest is None:
            problems[key] = base.guest_error
            continue
        xml, found = _judge(base.guest, qemu_judges)
        if found:
            problems[key] = found + [xml]
    assert not problems, f"{len(problems)} of {groups} groups are not exact:\n" + json.dumps(problems, indent=1)[:6000]


# ------------------------------------------------------------------------------------------------ the forms
@KVM
def test_the_explicit_form_is_exact_too_and_says_more(qemu_judges) -> None:
    hosts = {n: facts_of(n, lv) for n, lv in zip(PAIRS[0], ("system", "backports"))}
    guest = baseline_of(hosts).guest
    minimal, explicit = render(guest), render(guest, "explicit")
    assert not judges.verdict(explicit.spec, guest.features, qemu_judges, MAPS)
    assert len(explicit.spec.features) > 3 * len(minimal.spec.features)
    from ansible_collections.cpucompat.cluster.plugins.module_utils.cpu import _catalog  # pylint: disable=import-outside-toplevel
    vocab = {f for f in SYSTEM.cpu_map.qemu_vocabulary & BACKPORTS.cpu_map.qemu_vocabulary if f in _catalog.vocabulary("x86_64")}
    assert {SYSTEM.cpu_map.qemu_name(n) for _p, n in explicit.spec.features} >= vocab


def test_a_feature_no_libvirt_can_name_is_left_out_and_said() -> None:
    hosts = {n: facts_of(n) for n in PAIRS[0]}
    guest = baseline_of(hosts).guest
    assert "lmce" in guest.left_out and "lmce" not in guest.features
    assert "no name for it" in guest.left_out["lmce"]
    assert "lmce" in render(guest).xml.split("<!--")[1], "the XML says what every host has and no guest gets"


def test_a_model_libvirt_predates_is_written_by_its_alias() -> None:
    """QEMU's versioned name where every libvirt knows it; its alias while some libvirt predates versioned models."""
    newer = {n: facts_of(n, "backports") for n in PAIRS[0]}
    mixed = {n: facts_of(n, lv) for n, lv in zip(PAIRS[0], ("system", "backports"))}
    assert render(baseline_of(newer).guest).spec.model.endswith("-v2")
    written = render(baseline_of(mixed).guest).spec.model
    assert written == "Skylake-Server-IBRS" and written in SYSTEM.cpu_map.models


def test_no_rendering_at_all_is_refused_naming_host_and_name() -> None:
    """A host whose libvirt knows none of the models every host runs: refused, naming it, never a <cpu> it refuses."""
    gold = facts_of("x86_64-xeon-gold-6130")
    odd = facts_of("x86_64-xeon-gold-6130", "backports")
    doc = json.loads(json.dumps(odd))
    from ansible_collections.cpucompat.cluster.plugins.module_utils.cpu._libvirt_map import CpuMap  # pylint: disable=import-outside-toplevel
    stripped = CpuMap(BACKPORTS.cpu_map.features, {"qemu64": BACKPORTS.cpu_map.models["qemu64"]}, {"qemu64": None},
                      BACKPORTS.cpu_map.qemu_aliases, digest="sha256:" + "0" * 64, version="11.3.0")
    doc["libvirt"]["cpu_map"] = stripped.to_facts()
    doc["runnable_models"] = [m for m in doc["runnable_models"] if m.startswith("Skylake")]
    base = baseline_of({"gold": gold, "odd": doc})
    assert base.guest is None and "odd" in base.guest_error and "does not know the model" in base.guest_error


# ------------------------------------------------------------------------------------------------ live, on this machine
@pytest.fixture(scope="module")
def this_machine() -> dict[str, dict]:
    """This machine probed twice: with the system's QEMU and libvirt map, and with the backports QEMU and map; both on
    q35, whatever machine types the domains defined here use (a group refuses hosts probed on different ones)."""
    from ansible_collections.cpucompat.cluster.plugins.module_utils.probe import _probe  # pylint: disable=import-outside-toplevel
    out = {}
    for stack in (SYSTEM, BACKPORTS):
        out[f"me-{stack.name}"] = _probe.probe(_probe.ProbeRequest(qemu_binary=stack.qemu, accel="kvm", cpu_map=stack.cpu_map_dir,
                                                                   libvirt_version=stack.libvirt_version, machine="q35"))
    return out


def _only(facts: dict, model: str) -> dict:
    """The facts of a host that runs ``model`` and nothing else: the baseline is then that model's."""
    return {**facts, "runnable_models": [model]}


@KVM
@pytest.mark.usefixtures("no_leftover_qemu")
@pytest.mark.xdist_group("libvirt")  # its domains come and go: never beside a test that lists them (tests/conftest.py)
@pytest.mark.parametrize("emulator", stacks.NAMES)
def test_live_every_model_this_machine_runs_starts_saves_and_restores(tmp_path, this_machine, qemu_judges, emulator) -> None:
    """For each model this machine runs under both QEMUs: the <cpu> of the two-stack group is exact by the judges, and
    libvirt starts it with check='full', saves and restores it, with the system's QEMU and with QEMU 10.0 as emulator."""
    from integration.libvirt_helpers import live_cycle  # pylint: disable=import-outside-toplevel
    runs = [set(f["runnable_models"]) for f in this_machine.values()]
    models = sorted(set.intersection(*runs) & set(SYSTEM.cpu_map.models) & set(BACKPORTS.cpu_map.models))
    assert models, "this machine runs some model both QEMUs and both libvirts know"
    done = []
    for model in models:
        guest = baseline_of({name: _only(facts, model) for name, facts in this_machine.items()}).guest
        assert guest is not None, model
        xml, problems = _judge(guest, qemu_judges)
        assert not problems, f"{model}: {xml}" + "\n".join(problems)
        live_cycle(tmp_path, xml, stacks.by_name(emulator).qemu)
        done.append(model)
    assert done == models
