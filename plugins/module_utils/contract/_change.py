# Copyright (c) 2026 cpucompat.cluster contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Raising or lowering a group's contract: the plan, and the new contract when the plan may be applied. Private."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ..cpu._libvirt_map import MapRegistry
from ..engine._arm_identity import differences
from ..engine._baseline import without
from ..engine._cluster import BaselineOptions
from ..engine._compare import compare
from ..engine._group import GroupFacts
from ..engine._hostcpu import HostCpu
from ..engine._level import LEVEL_ERRORS, chosen_baseline, parse_level
from ..render._libvirt import render
from ._admission import PARTIAL_HINT, GroupRun, LevelChange, host_maps, level_change
from ._contract import Contract, ContractError, changed, now_iso
from ._domain import Domain
from ._domains import domain_changes

__all__ = ["ChangeRequest", "plan_change"]


@dataclass(frozen=True)
class ChangeRequest:
    action: str  # raise | lower
    without: tuple[str, ...] = ()
    allow_lower: bool = False
    allow_security_loss: bool = False
    reason: str = ""
    level: str | None = None  # the level the operator chooses (engine/_level); None: the group's best of today


def plan_change(name: str, group: GroupFacts, contract: Contract | None, path: str, req: ChangeRequest, opts: BaselineOptions,
                registry: MapRegistry, domains: Sequence[Domain], form: str = "minimal") -> GroupRun:
    """The plan of raising or lowering a group's contract; the new contract when the plan may be applied."""
    if req.action not in ("raise", "lower"):
        raise ContractError(f"contract action must be raise or lower, got {req.action!r}")
    if contract is None:
        raise ContractError(f"group {name} has no contract at {path}: run cpucompat.cluster.site first to pin one")
    plan: dict[str, Any] = {"group": name, "action": req.action, "contract_file": path, "without": list(req.without),
                            "what_if": bool(req.without), "hosts_without_facts": {n: group.why(n) for n in group.incomplete},
                            "change": None, "xml": None, "domains": {}, "security": {}, "reasons": [], "applicable": False}
    if group.incomplete:
        plan["reasons"].append("no usable facts from " + "; ".join(f"{n} ({w})" for n, w in plan["hosts_without_facts"].items())
                               + PARTIAL_HINT)
        return GroupRun(plan)
    hosts = group.hosts()
    contract.check_group(name, hosts, f"contract {path}")
    unknown = sorted(set(req.without) - {h.name for h in hosts})
    if unknown:
        raise ContractError(f"cpucompat_contract_without names hosts that are not in group {name}: {', '.join(unknown)}")
    staying = [h for h in hosts if h.name not in req.without]
    try:
        new = chosen_baseline(parse_level(req.level), staying, opts, registry) if req.level else without(hosts, req.without, opts, registry)
    except LEVEL_ERRORS as exc:
        raise ContractError(f"group {name}: {exc}") from None
    plan["level"] = req.level
    if new.guest is None:
        raise ContractError(f"group {name}: no CPU to move the contract to: {new.guest_error}")
    cpu = render(new.guest, form)
    change = level_change(contract, new)
    plan.update(change=change.to_dict(), xml=cpu.xml, domains=domain_changes(cpu.spec, domains, host_maps(group, registry)),
                security={f: _host_notes(hosts, change.lost_because_of.get(f, [])) for f in change.security_lost})
    plan["reasons"] = _refusals(req, change, [h for h in hosts if not compare(new, h).runnable])
    # aarch64: the pinned host identity moves when every host changed alike (a kernel, QEMU or firmware upgrade of the
    # whole group): a raise pins the identity of today, and the plan names the fields that change.
    moved = differences(contract.identity, new.guest.identity) if contract.identity is not None and new.guest.identity is not None else []
    plan["identity_change"] = [d.to_dict() for d in moved]
    applicable = not plan["reasons"] and not req.without and (change.direction != "same" or (bool(moved) and req.action == "raise"))
    plan["applicable"] = applicable
    if not applicable:
        return GroupRun(plan, None, new)
    responsible = sorted({h for hosts_ in change.lost_because_of.values() for h in hosts_}) if change.lost else sorted(new.hosts)
    reason = req.reason or (f"{req.action} to the level {req.level}" if req.level else
                            f"{req.action} to the group's baseline of {now_iso()[:10]}")
    if moved and not req.reason:
        reason += f" (the hosts' identity changed: {', '.join(f'{d.what} {d.pinned} -> {d.host}' for d in moved)})"
    after = changed(contract, req.action, new.guest, reason, responsible)
    plan["cpu"] = after.cpu.level()
    return GroupRun(plan, after, new, after)


def _refusals(req: ChangeRequest, change: LevelChange, cannot_run: list[HostCpu]) -> list[str]:
    reasons = []
    if req.action == "raise" and change.direction in ("lower", "sideways"):
        reasons.append(f"raise would lose {', '.join(change.lost)}: that is a lower (cpucompat_contract_action=lower)")
    if req.action == "lower" and change.direction == "raise":
        reasons.append(f"lower would gain {', '.join(change.gained)} and lose nothing: that is a raise")
    reasons += [f"{h.name} cannot run the new level" for h in cannot_run if h.name not in req.without]
    if change.lost and req.action == "lower" and not req.allow_lower:
        reasons.append(f"lowering loses {', '.join(change.lost)}; set cpucompat_contract_allow_lower=true to allow it")
    if change.security_lost and not req.allow_security_loss:
        by_hosts = [f"{f}: {', '.join(change.lost_because_of[f])}" for f in change.security_lost if change.lost_because_of.get(f)]
        chosen = [f for f in change.security_lost if not change.lost_because_of.get(f)]
        reasons.append(f"security features would be lost: {', '.join(change.security_lost)} ("
                       + "; ".join([*(f"lacking on {t}" for t in by_hosts)]
                                   + ([f"beyond the chosen level: {', '.join(chosen)}"] if chosen else []))
                       + "); set cpucompat_contract_allow_security_loss=true to allow it")
    return reasons


def _host_notes(hosts: Sequence[HostCpu], names: Sequence[str]) -> dict[str, dict[str, Any]]:
    """Per host responsible for a loss: what is known of the software and microcode that decide it."""
    by_name = {h.name: h for h in hosts}
    out = {}
    for name in names:
        facts = by_name[name].facts if name in by_name else {}
        versions = _versions if isinstance(_versions := facts.get("versions"), Mapping) else {}
        out[name] = {"model_id": facts.get("model_id"), "qemu": by_name[name].qemu_version if name in by_name else None,
                     "microcode": versions.get("microcode"), "kernel": versions.get("kernel")}
    return out
