# Copyright (c) 2026 cpucompat.cluster contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Before a QEMU or libvirt upgrade: does a group's CPU stay exact and runnable on the new stack? Private.

The new stack is a QEMU and a CPU map probed where they are unpacked, or a canary host already upgraded; its facts
come as hosts of their own, which join the group's stacks but not the group. Per group the report says whether the
pinned contract (or, with none, today's guest CPU) runs on the new stack and can be said exactly on old and new stacks
at once, which domains would get another CPU at their next power cycle if nothing were done, and what to do.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any

from .._errors import CpuCompatError, CpuXmlError
from ..contract._contract import Contract
from ..contract._domain import Domain
from ..cpu._exact import InexactError, guest_view
from ..cpu._guest import GuestCpu
from ..cpu._libvirt_map import MapRegistry
from ..engine._result import Baseline
from ..engine._cluster import BaselineOptions
from ..engine._compare import compare
from ..engine._baseline import compute_baseline
from ..engine._group import GroupFacts, stack_axes
from ..engine._guest import libvirt_stacks, qemu_stacks
from ..engine._hostcpu import HostCpu
from ..render._cpuspec import CpuSpec
from ..render._libvirt import render
from ._schema import REPORT_SCHEMA


def _stacks(level: GuestCpu, hosts: Sequence[HostCpu], registry: MapRegistry, names: list[str]) -> GuestCpu:
    members = [(h, [h.name]) for h in hosts]
    return replace(level, qemu=qemu_stacks(level.arch, members, names),
                   libvirt=libvirt_stacks(members, registry) if level.arch == "x86_64" else ())


def _render(guest: GuestCpu, form: str) -> tuple[str | None, str | None]:
    try:
        return render(guest, form).xml, None
    except (InexactError, CpuCompatError) as exc:
        return None, str(exc)


def _stack_of(guest: GuestCpu, host: str) -> tuple[Any, Any]:
    """The QEMU stack and libvirt map a host's guests run on."""
    qemu = next((q for q in guest.qemu if host in q.hosts), None)
    cpu_map = next((lv.cpu_map for lv in guest.libvirt if host in lv.hosts), None)
    return qemu, cpu_map


def _domain(spec: CpuSpec, now: tuple[Any, Any], new: Sequence[tuple[str, Any, Any]]) -> dict[str, Any]:
    """One domain's CPU today and on each new stack, at its next power cycle if its definition stayed as it is."""
    before, why = guest_view(str(spec.model), spec.features, *now)
    if before is None:
        return {"status": "unknown", "why": why}
    out: dict[str, Any] = {"status": "unchanged", "on": {}}
    for label, qemu, cpu_map in new:
        after, refused = guest_view(str(spec.model), spec.features, qemu, cpu_map)
        if after is None:
            out["on"][label] = {"refused": refused}
            out["status"] = "refused"
        elif after != before:
            out["on"][label] = {"gains": sorted(after - before), "loses": sorted(before - after)}
            out["status"] = "changes" if out["status"] != "refused" else out["status"]
    return out


def _domains(domains: Sequence[Domain], now: GuestCpu, new: GuestCpu, new_hosts: Sequence[str]) -> dict[str, Any]:
    stacks = [(f"{h}", *_stack_of(new, h)) for h in new_hosts]
    out: dict[str, Any] = {}
    for dom in domains:
        if not dom.cpu_xml:
            out[dom.key] = {"status": "follows-host", "why": "no <cpu> element: libvirt's default model, which follows the host"}
            continue
        try:
            spec = dom.cpu
        except CpuXmlError as exc:
            out[dom.key] = {"status": "unknown", "why": str(exc)}
            continue
        if spec is None or spec.follows_host or not spec.model:
            out[dom.key] = {"status": "follows-host", "why": f"mode {spec.mode if spec else None}: the guest gets whatever its "
                            "host offers"}
            continue
        out[dom.key] = _domain(spec, _stack_of(now, dom.host), stacks)
    return out


def _models(domains: Sequence[Domain]) -> set[str]:
    """The models the domains' definitions name (a definition that does not read names none)."""
    return {d.cpus.parsed.model for d in domains if d.cpus.parsed is not None and d.cpus.parsed.model}


def upgrade_group(name: str, group: GroupFacts, new: GroupFacts, contract: Contract | None, opts: BaselineOptions,
                  registry: MapRegistry, domains: Sequence[Domain], form: str = "minimal",
                  stack_file: str | None = None) -> dict[str, Any]:
    """One group against the new stack: its CPU there, its domains there, and what to do."""
    section: dict[str, Any] = {"group": name, "new_stack": sorted([*new.usable, *new.incomplete]), "level": None,
                               "runs": {}, "xml_now": None, "xml_both": None, "exact_on_both": None, "domains": {},
                               "reasons": [], "actions": []}
    lacking = {n: group.why(n) or new.why(n) for n in [*group.incomplete, *new.incomplete]}
    if lacking or not new.usable:
        section["reasons"].append("no usable facts from " + ("; ".join(f"{n} ({w})" for n, w in lacking.items())
                                                             if lacking else "the new stack (probe it first)"))
        return section
    section["stacks"] = {n: stack_axes(f) for n, f in sorted({**group.usable, **new.usable}.items())}
    hosts, new_hosts = group.hosts(), new.hosts()
    today = compute_baseline(hosts, opts, registry)
    level = contract.guest(today.stacks) if contract is not None and today.stacks is not None else today.guest
    if level is None:
        section["reasons"].append(f"group {name} has no guest CPU to judge: {today.guest_error}")
        return section
    section["level"] = {"source": "contract" if contract is not None else "today's baseline (no contract pinned)", **level.level()}
    section["runs"] = _runs(level, new_hosts)
    names = sorted({*level.candidates, *_models(domains)})
    now = _stacks(level, hosts, registry, names)
    runnable_new = frozenset.intersection(*(h.runnable for h in new_hosts))
    both = replace(now, candidates=tuple(n for n in level.candidates if n in runnable_new),
                   qemu=(*now.qemu, *_stacks(level, new_hosts, registry, names).qemu),
                   libvirt=(*now.libvirt, *_stacks(level, new_hosts, registry, names).libvirt))
    section["xml_now"] = _render(now, form)[0]
    section["xml_both"], inexact = _render(both, form)
    section["exact_on_both"] = inexact is None
    section["domains"] = _domains(domains, now, both, [h.name for h in new_hosts])
    section["reasons"], section["actions"] = _advice(name, section, inexact, stack_file or "NEW_STACK_FILE")
    return section


def _runs(level: GuestCpu, new_hosts: Sequence[HostCpu]) -> dict[str, Any]:
    cpu = Baseline(arch=level.arch, vendor=level.vendor, accel=None, model=level.model, features=level.features,
                   maxphysaddr=level.phys_bits)
    out = {}
    for host in new_hosts:
        cmp = compare(cpu, host)
        out[host.name] = {"runnable": cmp.runnable, "missing_features": list(cmp.missing), "model_blocked_by": list(cmp.model_blocked_by)}
    return out


def _advice(name: str, section: Mapping[str, Any], inexact: str | None, stack_file: str) -> tuple[list[str], list[str]]:
    """(why the upgrade would hurt the group, what to do) for one group."""
    reasons, actions = [], []
    for host, verdict in section["runs"].items():
        if not verdict["runnable"]:
            reasons.append(f"the new stack ({host}) cannot run the CPU of group {name}: lacks "
                           + ", ".join(verdict["missing_features"] or [f"its model {section['level']['model']}"]))
    if inexact is not None:
        reasons.append(f"the CPU of group {name} cannot be said exactly on the old and the new stack at once: {inexact}")
    counts: dict[str, int] = {}
    for entry in section["domains"].values():
        counts[entry["status"]] = counts.get(entry["status"], 0) + 1
    changing = counts.get("changes", 0) + counts.get("refused", 0)
    if reasons:
        actions.append("hold the upgrade; lower the contract to a level the new stack runs exactly "
                       f"(ansible-playbook -i INVENTORY cpucompat.cluster.change_contract -e cpucompat_group={name} "
                       "-e cpucompat_contract_action=lower --check), or upgrade to another release")
    elif changing or section["xml_both"] != section["xml_now"]:
        actions.append(f"before the upgrade, deploy the <cpu> that is exact on both stacks ({changing} domain(s) would "
                       "otherwise get another CPU at their next power cycle): ansible-playbook -i INVENTORY "
                       f"cpucompat.cluster.site -e cpucompat_group={name} -e '{{\"cpucompat_extra_stacks\": [\"{stack_file}\"]}}'")
        actions.append("then upgrade, host by host; domains pick the new definition up at their next power cycle only")
    else:
        actions.append("nothing to do first: the deployed <cpu> already means the same set on the new stack; upgrade")
    return reasons, actions


def upgrade_report(sections: Mapping[str, Any], stack_file: str | None) -> dict[str, Any]:
    reasons = [r for s in sections.values() for r in s["reasons"]]  # the canaries' observations among them
    return {"schema": REPORT_SCHEMA, "kind": "upgrade", "groups": dict(sections), "new_stack_file": stack_file,
            "verdict": {"ok": not reasons, "reasons": reasons}}
