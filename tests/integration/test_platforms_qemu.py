# Copyright (c) 2026 cpucompat.cluster contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The renderings QEMU reads directly - plain ``-cpu``, Proxmox's composed ``-cpu``, Incus's ``cpuType()`` - judged by
QEMU 7.2 and 10.0 themselves.

Every string is started under TCG with the guests' machine type (``-S``: the vCPU is created and every property applied
or refused); the same model and properties are expanded under KVM and must equal the pinned set (where /dev/kvm works);
for the models this machine runs, QEMU starts under KVM with ``enforce`` and the live vCPU's features are read back.
"""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest

from ansible_collections.cpucompat.cluster.plugins.module_utils.cpu._exact import InexactError
from ansible_collections.cpucompat.cluster.plugins.module_utils.engine._baseline import baseline_of
from ansible_collections.cpucompat.cluster.plugins.module_utils.render import _incus, _proxmox, _qemu
from ansible_collections.cpucompat.cluster.plugins.module_utils.deploy._proxmox_conf import cpu_model_errors, parse
from conftest import KVM
from utils import judges, platform_judges, stacks
from utils.recordings import facts_of

SYSTEM, BACKPORTS = stacks.by_name("system"), stacks.by_name("backports")

# platform -> the -cpu values QEMU gets from the rendering of a guest CPU
RENDERERS: dict[str, Callable[..., list[str]]] = {
    "qemu": lambda guest: [_qemu.render(guest).args],
    "proxmox": lambda guest: [_proxmox.render(guest).qemu_args],
    "incus": lambda guest: [_incus.render(guest).qemu_args(1), _incus.render(guest).qemu_args(2)],
}


@pytest.fixture(scope="module")
def rendered(qemu_judges) -> dict[str, list[tuple[str, tuple[str, ...], frozenset[str], list[str], str]]]:
    """Per platform: (group, its stacks, the pinned set, the -cpu values, the guests' machine type) of every property
    group; a refusal fails unless it is Proxmox's, of a model it does not offer."""
    out: dict[str, list] = {p: [] for p in RENDERERS}
    unexpected = {}
    for name, names, guest, error, _hosts in platform_judges.property_groups(*qemu_judges):
        assert guest is not None, f"{name}: {error}"
        for platform, render in RENDERERS.items():
            try:
                out[platform].append((name, names, guest.features, render(guest), platform_judges.machine_of(guest.machine)))
            except InexactError as exc:
                if not (platform == "proxmox" and _unlisted(guest) and f"reported-model list has no {guest.model}" in str(exc)):
                    unexpected[f"{platform}: {name}"] = str(exc)
    assert not unexpected, json.dumps(unexpected, indent=1)[:4000]
    return out


def _unlisted(guest) -> bool:
    """None of the names the group's QEMUs define like its models is in Proxmox's list (Denverton, Snowridge, n270,
    Hygon's Dhyana): Proxmox cannot say the CPU, and its renderer says so."""
    names = set(guest.candidates) | {m for q in guest.qemu for m in q.definitions}
    return not any(_proxmox.model_vendor(m) for m in names)


def _own(judges_pair, names) -> list:
    return [j for j in judges_pair if j.stack.name in names]


# ------------------------------------------------------------------------------------------------ the property tests
@pytest.mark.parametrize("platform", RENDERERS)
def test_every_group_starts_on_its_qemus_under_tcg(platform, rendered) -> None:
    """QEMU itself parses and applies every property of every rendering: started with -machine <type>,accel=tcg -S."""
    # Incus's value for a VM with one thread per core is the other's tail: QEMU starts on the longer one.
    jobs = [(stacks.by_name(stack), machine, values[-1]) for _n, names, _f, values, machine in rendered[platform] for stack in names]
    failed = platform_judges.start_errors(jobs)
    assert not failed, "\n".join(f"{s.name}: {v}: {why}" for (s, _m, v), why in list(failed.items())[:10])
    assert len(rendered[platform]) >= 150
    print(f"{platform}: {len(set(jobs))} -cpu values started under TCG, none refused")


@KVM
@pytest.mark.parametrize("platform", RENDERERS)
def test_every_group_is_exact_on_both_qemus(platform, rendered, qemu_judges) -> None:
    """The model and properties of every rendering, expanded under KVM by each QEMU of its group, give the pinned set."""
    problems = []
    for name, names, wanted, values, _machine in rendered[platform]:
        problems += [f"{name}: {p}" for p in platform_judges.expansion_problems(_own(qemu_judges, names), values, [wanted] * len(values))]
    total = len(rendered[platform])
    assert not problems, f"{len(problems)} problems in {total} groups:\n" + "\n".join(problems[:20])
    print(f"{platform}: {total} groups, 100 % exact on QEMU 7.2 and 10.0")


# ------------------------------------------------------------------------------------------------ recorded groups
PAIRS = [("x86_64-xeon-gold-6130", "x86_64-xeon-platinum-9242"), ("x86_64-epyc-7502", "x86_64-epyc-7601-ibpb"),
         ("x86_64-xeon-e5-2650-v4", "x86_64-xeon-e5-2609-v3"), ("x86_64-epyc-9654-qemu-10.0.0", "x86_64-ryzen-9-3900x-qemu-10.0.0")]


@pytest.mark.parametrize("pair", PAIRS, ids=lambda p: "+".join(n.removeprefix("x86_64-") for n in p))
def test_recorded_groups(pair, qemu_judges) -> None:
    guest = baseline_of({n: facts_of(n, lv) for n, lv in zip(pair, stacks.NAMES)}).guest
    values = [v for render in RENDERERS.values() for v in render(guest)]
    failed = platform_judges.start_errors([(s, "q35", v) for s in (SYSTEM, BACKPORTS) for v in values])
    assert not failed, failed
    if judges.ACCEL == "kvm":
        assert not platform_judges.expansion_problems(qemu_judges, values, [guest.features] * len(values))


def test_an_unknown_flag_makes_qemu_refuse() -> None:
    """The judge can fail: QEMU refuses a property it does not know, in either syntax, on both QEMUs."""
    guest = baseline_of({n: facts_of(n) for n in PAIRS[0]}).guest
    for value in (_qemu.render(guest).args + ",cpucompat-bogus=on", _proxmox.render(guest).qemu_args + ",+cpucompat-bogus"):
        for stack in (SYSTEM, BACKPORTS):
            why = platform_judges.start_error(stack, "q35", value)
            assert why and "cpucompat-bogus" in why and "not found" in why, (stack.name, why)


# ------------------------------------------------------------------------------------------------ Proxmox's own rules
@pytest.mark.parametrize("pair", PAIRS, ids=lambda p: "+".join(n.removeprefix("x86_64-") for n in p))
def test_proxmox_section_follows_proxmox_rules(pair) -> None:
    cpu = _proxmox.render(baseline_of({n: facts_of(n) for n in pair}).guest, "cluster_cpu")
    sections = parse(cpu.cpu_models_conf)
    assert len(sections) == 1 and sections[0].type == "cpu-model" and sections[0].id == "cluster_cpu"
    assert not cpu_model_errors(sections[0])
    assert cpu.vm_cpu == "custom-cluster_cpu"
    assert cpu.reported_model in _proxmox.PROXMOX_MODELS, "a name of Proxmox's list: alias names only"
    if pair == PAIRS[0]:
        assert cpu.reported_model == "Skylake-Server-IBRS", "never Skylake-Server-v2"
    model, _props, other = platform_judges.parse_cpu(cpu.qemu_args)
    assert model == cpu.reported_model and other.get("enforce") == "on" and other.get("vendor") in ("GenuineIntel", "AuthenticAMD")


# ------------------------------------------------------------------------------------------------ live, on this machine
@KVM
@pytest.mark.usefixtures("no_leftover_qemu")
def test_live_enforce_every_model_this_machine_runs() -> None:
    """For every model this machine runs under both QEMUs (whatever its vendor): each rendering started under KVM with
    enforce by QEMU 7.2 and 10.0, and the live vCPU has exactly the pinned set."""
    this_machine = platform_judges.this_machine()
    runs = [set(f["runnable_models"]) for f in this_machine.values()]
    models = sorted(set.intersection(*runs) & set(SYSTEM.cpu_map.models) & set(BACKPORTS.cpu_map.models))
    assert models, "this machine runs some model both QEMUs know"
    wrong = {}
    for model in models:
        guest = baseline_of({n: {**f, "runnable_models": [model]} for n, f in this_machine.items()}).guest
        machine = platform_judges.machine_of(guest.machine)
        for platform, render in RENDERERS.items():
            for value in render(guest):
                for stack in (SYSTEM, BACKPORTS):
                    live = platform_judges.live_features(stack, machine, value)
                    if live != guest.features:
                        wrong[f"{platform} {stack.name} {value}"] = {"extra": sorted(live - guest.features),
                                                                     "missing": sorted(guest.features - live)}
    assert not wrong, json.dumps(wrong, indent=1)[:4000]


# ------------------------------------------------------------------------------------------------ tiers
def test_proxmox_gives_each_tier_a_custom_model_that_qemu_takes(qemu_judges) -> None:
    """A base of three recorded hosts and an AVX-512 tier of two: one cpu-models.conf with a section per tier, each by
    Proxmox's rules, each composed -cpu started by QEMU and (under KVM) expanded to exactly its tier's set."""
    from ansible_collections.cpucompat.cluster.plugins.module_utils.cpu._libvirt_map import MapRegistry  # pylint: disable=import-outside-toplevel
    from ansible_collections.cpucompat.cluster.plugins.module_utils.engine._cluster import BaselineOptions  # pylint: disable=import-outside-toplevel
    from ansible_collections.cpucompat.cluster.plugins.module_utils.engine._hostcpu import HostCpu  # pylint: disable=import-outside-toplevel
    from ansible_collections.cpucompat.cluster.plugins.module_utils.engine._level import chosen_baseline, parse_level  # pylint: disable=import-outside-toplevel
    from ansible_collections.cpucompat.cluster.plugins.module_utils.render._platform_tiers import proxmox_tiers  # pylint: disable=import-outside-toplevel

    facts = {n: facts_of(n) for n in ("x86_64-xeon-e5-2650-v4", *PAIRS[0])}
    guests = {"base": baseline_of(facts).guest,
              "avx512": chosen_baseline(parse_level("Skylake-Server"), [HostCpu.from_facts(n, facts[n]) for n in PAIRS[0]],
                                        BaselineOptions(), MapRegistry()).guest}
    out = proxmox_tiers([("base", guests["base"], list(facts)), ("avx512", guests["avx512"], list(PAIRS[0]))], "cluster_cpu")
    sections = parse(out["cpu_models_conf"])
    assert [s.id for s in sections] == ["cluster_cpu", "cluster_cpu_avx512"] and not any(cpu_model_errors(s) for s in sections)
    assert out["tiers"]["avx512"]["vm_cpu"] == "custom-cluster_cpu_avx512" and out["tiers"]["avx512"]["nodes"] == list(PAIRS[0])
    values = [out["tiers"][t]["qemu_args"] for t in ("base", "avx512")]
    assert not platform_judges.start_errors([(SYSTEM, "q35", v) for v in values])
    if judges.ACCEL == "kvm":
        assert not platform_judges.expansion_problems(_own(qemu_judges, ("system",)), values,
                                                      [guests["base"].features, guests["avx512"].features])
