# Copyright (c) 2026 cpucompat.cluster contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Domains against a group's contract CPU: their compliance, and what a change of the contract does to them. Private.

A domain's ``<cpu>`` is read with the CPU map of its own host's libvirt (:class:`MapRegistry`), never the controller's.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from .._errors import CpuCompatError, CpuXmlError
from ..cpu._libvirt_map import CpuMap
from ..render._cpuspec import CpuSpec
from ._domain import Domain

COMPLIANCE = ("compliant", "restart-required", "above-contract", "follows-host", "no-cpu", "not-deployed", "left-alone")
# Statuses that need nothing done: the contract's CPU, or a CPU the deploy leaves alone by design.
SETTLED = ("compliant", "follows-host", "left-alone", "no-cpu")
# What to do about a domain in each status (None: nothing).
ACTIONS = {
    "compliant": None,
    "restart-required": "shut it down and start it (a reboot inside the guest keeps the old CPU): virsh shutdown, then virsh start",
    "above-contract": "shut it down and start it: until then it runs features the contract lacks and can move only to hosts that have them",
    "follows-host": "nothing if it needs its host's CPU (nested virtualisation); else cpucompat_deploy_convert_host_cpu=true",
    "no-cpu": "run cpucompat.cluster.site: the deploy gives it the contract CPU",
    "not-deployed": "run cpucompat.cluster.site: the deploy gives it the contract CPU",
    "left-alone": "nothing here: another manager owns its CPU (for Nova, set the contract in nova.conf: the cpu_nova filter)",
}


class Specs:
    """The features each ``<cpu>`` gives a guest under a map, once per CPU and map: fleets share a few CPUs (a run's
    domains share one :class:`CpuSpec` per distinct text, :func:`domains_of`)."""

    def __init__(self) -> None:
        self._features: dict[tuple[int, int], tuple[CpuSpec, frozenset[str] | None]] = {}

    def features(self, spec: CpuSpec, cpu_map: CpuMap | None) -> frozenset[str] | None:
        """The features a CPU gives a guest (libvirt names) under ``cpu_map``; None without a map (s390x, aarch64)."""
        key = (id(spec), id(cpu_map))
        found = self._features.get(key)
        if found is None:  # the spec is kept beside its features: its id is not reused while the cache lives
            found = self._features[key] = (spec, spec.guest_features(cpu_map) if cpu_map is not None else None)
        return found[1]


def _same_cpu(one: CpuSpec, other: CpuSpec) -> bool:
    """Two elements' meaning where no map reads them: the same model and features."""
    return one.model == other.model and sorted(one.features) == sorted(other.features)


def live_differs(target: CpuSpec, dom: Domain, cpu_map: CpuMap | None, specs: Specs) -> bool | None:
    """The one restart rule's question: does the running guest's CPU differ from ``target``? The features each gives
    under the host's map where there is one (libvirt rewrites a live <cpu>), else the two elements' meaning. None when
    the guest does not run (or libvirt gives no live <cpu>)."""
    live = dom.live_cpu if dom.active else None
    if live is None:
        return None
    want, have = specs.features(target, cpu_map), specs.features(live, cpu_map)
    if want is not None and have is not None:
        return have != want
    return not _same_cpu(live, target)


def domain_status(contract: CpuSpec, dom: Domain, cpu_map: CpuMap | None, specs: Specs) -> dict[str, Any]:
    """One domain against the contract's ``<cpu>``: its persistent definition, its live CPU, and a status (COMPLIANCE)."""
    active = dom.active
    out: dict[str, Any] = {"active": active, "persistent": False, "live": None}
    if dom.spared:
        return {**out, "status": "left-alone", "why": dom.spared}
    persistent = dom.cpu
    if persistent is None:
        return {**out, "status": "no-cpu", "why": "no <cpu> element: libvirt's default model, which follows the host"}
    if persistent.follows_host and contract.follows_host and persistent.mode == contract.mode:
        # aarch64 groups of identical hosts: the contract is host-passthrough over a pinned identity, which admission checks
        return {**out, "persistent": True, "live": True if dom.runs_live_cpu else None, "status": "compliant",
                "why": f"mode {persistent.mode}, as the contract of this group of identical hosts"}
    if persistent.follows_host:
        return {**out, "status": "follows-host", "why": f"mode {persistent.mode}: the guest gets whatever its host offers"}
    out["persistent"] = persistent.key() == contract.key()
    live = dom.live_cpu if active else None
    if live is not None:
        want, have = specs.features(contract, cpu_map), specs.features(live, cpu_map)
        if want is not None and have is not None:
            out["live"] = have == want
            extra = sorted(have - want)
            if extra:
                return {**out, "status": "above-contract", "beyond_contract": extra,
                        "why": "the running guest has features the contract lacks: it cannot migrate to every host"}
        else:
            out["live"] = _same_cpu(live, contract)
    if not out["persistent"]:
        return {**out, "status": "not-deployed", "why": "its definition does not carry the contract CPU",
                **_next_power_cycle(contract, dom, cpu_map, specs)}
    if active and out["live"] is False:
        return {**out, "status": "restart-required",
                "why": "the definition carries the contract; the guest runs its old CPU until it is shut down and started again",
                **_next_power_cycle(contract, dom, cpu_map, specs)}
    return {**out, "status": "compliant"}


def _next_power_cycle(contract: CpuSpec, dom: Domain, cpu_map: CpuMap | None, specs: Specs) -> dict[str, Any]:
    """What the guest gains and loses when it next starts on the contract CPU, against the CPU it runs now (its live
    CPU) or, shut off, the one its definition gives it. Empty without a map to read the CPUs with."""
    now = dom.live_cpu if dom.runs_live_cpu else dom.cpu
    want = specs.features(contract, cpu_map)
    have = specs.features(now, cpu_map) if now is not None else None
    if want is None or have is None:
        return {}
    return {"next_power_cycle": {"gains": sorted(want - have), "loses": sorted(have - want)}}


def compliance(contract: CpuSpec, domains: Sequence[Domain], maps: Mapping[str, CpuMap | None]) -> dict[str, dict[str, Any]]:
    """Every domain of every host of the group, keyed ``host/name``, each read with its host's CPU map (``maps``), with
    what to do about it (``action``)."""
    out: dict[str, dict[str, Any]] = {}
    specs = Specs()
    # Domains share a few CPUs: a status depends on the domain's CPU texts, whether it runs, why it is spared and the
    # map it is read with, never on its name (which only errors name, and errors are not kept).
    seen: dict[tuple[Any, ...], dict[str, Any]] = {}
    host, cpu_map = None, None
    for dom in domains:
        if dom.host != host:  # a host's domains come together
            host, cpu_map = dom.host, maps.get(dom.host)
        alike = (dom.cpus, dom.active, dom.spared, id(cpu_map))  # domains of one listing share their DomainCpus
        known = seen.get(alike)
        if known is not None:
            out[f"{dom.host}/{dom.name}"] = known.copy()
            continue
        try:
            status = domain_status(contract, dom, cpu_map, specs)
        except CpuCompatError as exc:
            status = {"active": dom.active, "persistent": False, "live": None, "status": "not-deployed",
                      "why": str(exc)}  # names the domain: worked out for each
        else:
            seen[alike] = {**status, "action": ACTIONS[status["status"]]}
        out[dom.key] = {**status, "action": ACTIONS[status["status"]]}
    return out


def status_counts(statuses: Mapping[str, Mapping[str, Any]]) -> dict[str, int]:
    counts: dict[str, int] = dict.fromkeys(COMPLIANCE, 0)
    for entry in statuses.values():
        counts[entry["status"]] += 1
    return counts


def domain_changes(new: CpuSpec, domains: Sequence[Domain],
                   maps: Mapping[str, CpuMap | None] | None = None) -> dict[str, dict[str, Any]]:
    """What moving the group to ``new`` does to each domain: its CPUs now, whether it changes, whether it must be shut
    down and started again (:func:`restart_required`, the contract page's rule, with each host's map in ``maps``)."""
    out: dict[str, dict[str, Any]] = {}
    specs = Specs()
    for dom in domains:
        now = {"persistent_cpu": dom.entry.get("cpu_xml"), "live_cpu": dom.entry.get("live_cpu_xml")}
        if dom.spared:
            out[dom.key] = {**now, "active": dom.active, "changes": False, "follows_host": False, "restart_required": False,
                            "left_alone": dom.spared}
            continue
        try:
            current = dom.cpu
        except CpuXmlError as exc:
            out[dom.key] = {**now, "changes": None, "why": str(exc)}
            continue
        changes = current is None or (not current.follows_host and current.key() != new.key())
        follows = bool(current is not None and current.follows_host)
        differs = None if follows else live_differs(new, dom, (maps or {}).get(dom.host), specs)
        out[dom.key] = {**now, "active": dom.active, "changes": changes, "follows_host": follows,
                        # the one rule; a running guest libvirt gives no live <cpu> of changes with its definition
                        "restart_required": bool(differs) if differs is not None else bool(changes and dom.active)}
    return out
