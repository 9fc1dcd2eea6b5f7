# Copyright (c) 2026 cpucompat.cluster contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Domains against a group's contract CPU: their compliance, and what a change of the contract does to them. Private.

A domain's ``<cpu>`` is read with the CPU map of its own host's libvirt (:class:`MapRegistry`), never the controller's.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .._errors import CpuCompatError, CpuXmlError
from ..cpu._libvirt_map import CpuMap
from ..render._cpuspec import CpuSpec

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
    """Parsed ``<cpu>`` texts and the features they give under a map, once per distinct text: fleets share a few CPUs."""

    def __init__(self) -> None:
        self._specs: dict[str, CpuSpec] = {}
        self._features: dict[tuple[str, int], frozenset[str] | None] = {}

    def spec(self, text: str, what: str) -> CpuSpec:
        if text not in self._specs:
            self._specs[text] = CpuSpec.parse(text, what)
        return self._specs[text]

    def features(self, text: str, cpu_map: CpuMap | None, what: str) -> frozenset[str] | None:
        """The features a CPU gives a guest (libvirt names) under ``cpu_map``; None without a map (s390x, aarch64)."""
        key = (text, id(cpu_map))
        if key not in self._features:
            spec = self.spec(text, what)
            self._features[key] = spec.guest_features(cpu_map) if cpu_map is not None else None
        return self._features[key]


def _spared(dom: Mapping[str, Any]) -> str | None:
    """Why the deploy never changes this domain, from its listing (domain_cpu_info); None when it may."""
    if dom.get("nova"):
        return "OpenStack Nova manages it: give Nova the contract CPU (nova.conf)"
    if dom.get("opted_out"):
        return "opted out in its metadata (<cpucompat:cpu manage='no'/>)"
    if dom.get("excluded"):
        return "excluded by the domain selection (cpucompat_domains.exclude)"
    return None


def live_differs(target_xml: str, dom: Mapping[str, Any], cpu_map: CpuMap | None, specs: Specs, where: str) -> bool | None:
    """The one restart rule's question: does the running guest's CPU differ from ``target_xml``? The features each gives
    under the host's map where there is one (libvirt rewrites a live <cpu>), else the two elements' meaning. None when
    the guest does not run (or libvirt gives no live <cpu>)."""
    if not dom.get("active") or not dom.get("live_cpu_xml"):
        return None
    want = specs.features(target_xml, cpu_map, "the target <cpu>")
    have = specs.features(dom["live_cpu_xml"], cpu_map, f"{where}: live <cpu>")
    if want is not None and have is not None:
        return have != want
    live, wanted = specs.spec(dom["live_cpu_xml"], f"{where}: live <cpu>"), specs.spec(target_xml, "the target <cpu>")
    return not (live.model == wanted.model and sorted(live.features) == sorted(wanted.features))


def restart_required(target_xml: str, dom: Mapping[str, Any], cpu_map: CpuMap | None, specs: Specs, where: str) -> bool:
    """One restart rule for the contract page and every plan: a running guest must be shut down and started again when
    the CPU it runs is not the target's (only a power cycle applies a definition's <cpu>)."""
    return bool(live_differs(target_xml, dom, cpu_map, specs, where))


def domain_status(contract_xml: str, dom: Mapping[str, Any], cpu_map: CpuMap | None, specs: Specs, where: str) -> dict[str, Any]:
    """One domain against the contract's ``<cpu>``: its persistent definition, its live CPU, and a status (COMPLIANCE)."""
    active = bool(dom.get("active"))
    out: dict[str, Any] = {"active": active, "persistent": False, "live": None}
    spared = _spared(dom)
    if spared:
        return {**out, "status": "left-alone", "why": spared}
    if not dom.get("cpu_xml"):
        return {**out, "status": "no-cpu", "why": "no <cpu> element: libvirt's default model, which follows the host"}
    persistent = specs.spec(dom["cpu_xml"], f"{where}: <cpu>")
    wanted = specs.spec(contract_xml, "the contract's <cpu>")
    if persistent.follows_host and wanted.follows_host and persistent.mode == wanted.mode:
        # aarch64 groups of identical hosts: the contract is host-passthrough over a pinned identity, which admission checks
        return {**out, "persistent": True, "live": True if active and dom.get("live_cpu_xml") else None, "status": "compliant",
                "why": f"mode {persistent.mode}, as the contract of this group of identical hosts"}
    if persistent.follows_host:
        return {**out, "status": "follows-host", "why": f"mode {persistent.mode}: the guest gets whatever its host offers"}
    out["persistent"] = persistent.key() == wanted.key()
    if active and dom.get("live_cpu_xml"):
        live = specs.spec(dom["live_cpu_xml"], f"{where}: live <cpu>")
        want = specs.features(contract_xml, cpu_map, "the contract's <cpu>")
        have = specs.features(dom["live_cpu_xml"], cpu_map, f"{where}: live <cpu>")
        if want is not None and have is not None:
            out["live"] = have == want
            extra = sorted(have - want)
            if extra:
                return {**out, "status": "above-contract", "beyond_contract": extra,
                        "why": "the running guest has features the contract lacks: it cannot migrate to every host"}
        else:
            out["live"] = live.model == wanted.model and sorted(live.features) == sorted(wanted.features)
    if not out["persistent"]:
        return {**out, "status": "not-deployed", "why": "its definition does not carry the contract CPU",
                **_next_power_cycle(contract_xml, dom, cpu_map, specs, where)}
    if active and out["live"] is False:
        return {**out, "status": "restart-required",
                "why": "the definition carries the contract; the guest runs its old CPU until it is shut down and started again",
                **_next_power_cycle(contract_xml, dom, cpu_map, specs, where)}
    return {**out, "status": "compliant"}


def _next_power_cycle(contract_xml: str, dom: Mapping[str, Any], cpu_map: CpuMap | None, specs: Specs,
                      where: str) -> dict[str, Any]:
    """What the guest gains and loses when it next starts on the contract CPU, against the CPU it runs now (its live
    CPU) or, shut off, the one its definition gives it. Empty without a map to read the CPUs with."""
    now = dom.get("live_cpu_xml") if dom.get("active") and dom.get("live_cpu_xml") else dom.get("cpu_xml")
    want = specs.features(contract_xml, cpu_map, "the contract's <cpu>")
    have = specs.features(now, cpu_map, f"{where}: <cpu>") if now else None
    if want is None or have is None:
        return {}
    return {"next_power_cycle": {"gains": sorted(want - have), "loses": sorted(have - want)}}


def compliance(contract_xml: str, domains: Mapping[str, list[Mapping[str, Any]]],
               maps: Mapping[str, CpuMap | None]) -> dict[str, dict[str, Any]]:
    """Every domain of every host of the group, keyed ``host/name``, each read with its host's CPU map (``maps``), with
    what to do about it (``action``)."""
    out: dict[str, dict[str, Any]] = {}
    specs = Specs()
    # Domains share a few CPUs: a status depends on the domain's CPU texts, whether it runs, why it is spared and the
    # map it is read with, never on its name (which only errors name, and errors are not kept).
    seen: dict[tuple[Any, ...], dict[str, Any]] = {}
    for host, entries in sorted(domains.items()):
        cpu_map = maps.get(host)
        for dom in entries:
            get = dom.get
            alike = (get("cpu_xml"), get("live_cpu_xml"), not get("active"), not get("nova"), not get("opted_out"),
                     not get("excluded"), id(cpu_map))
            known = seen.get(alike)
            key = f"{host}/{dom['name']}"
            if known is not None:
                out[key] = known.copy()
                continue
            try:
                status = domain_status(contract_xml, dom, cpu_map, specs, f"domain {key}")
            except CpuCompatError as exc:
                status = {"active": bool(get("active")), "persistent": False, "live": None, "status": "not-deployed",
                          "why": str(exc)}  # names the domain: worked out for each
            else:
                seen[alike] = {**status, "action": ACTIONS[status["status"]]}
            out[key] = {**status, "action": ACTIONS[status["status"]]}
    return out


def status_counts(statuses: Mapping[str, Mapping[str, Any]]) -> dict[str, int]:
    counts: dict[str, int] = dict.fromkeys(COMPLIANCE, 0)
    for entry in statuses.values():
        counts[entry["status"]] += 1
    return counts


def domain_changes(new: CpuSpec, domains: Mapping[str, list[Mapping[str, Any]]],
                   maps: Mapping[str, CpuMap | None] | None = None) -> dict[str, dict[str, Any]]:
    """What moving the group to ``new`` does to each domain: its CPUs now, whether it changes, whether it must be shut
    down and started again (:func:`restart_required`, the contract page's rule, with each host's map in ``maps``)."""
    out: dict[str, dict[str, Any]] = {}
    specs, new_xml = Specs(), new.to_xml()
    for host, entries in sorted(domains.items()):
        for dom in entries:
            key = f"{host}/{dom['name']}"
            cpu_xml = dom.get("cpu_xml")
            spared = _spared(dom)
            if spared:
                out[key] = {"persistent_cpu": cpu_xml, "live_cpu": dom.get("live_cpu_xml"), "active": bool(dom.get("active")),
                            "changes": False, "follows_host": False, "restart_required": False, "left_alone": spared}
                continue
            try:
                current = CpuSpec.parse(cpu_xml, f"domain {key}: <cpu>") if cpu_xml else None
            except CpuXmlError as exc:
                out[key] = {"persistent_cpu": cpu_xml, "live_cpu": dom.get("live_cpu_xml"), "changes": None, "why": str(exc)}
                continue
            changes = current is None or (not current.follows_host and current.key() != new.key())
            follows = bool(current is not None and current.follows_host)
            differs = None if follows else live_differs(new_xml, dom, (maps or {}).get(host), specs, f"domain {key}")
            out[key] = {"persistent_cpu": cpu_xml, "live_cpu": dom.get("live_cpu_xml"), "active": bool(dom.get("active")),
                        "changes": changes, "follows_host": follows,
                        # the one rule; a running guest libvirt gives no live <cpu> of changes with its definition
                        "restart_required": bool(differs) if differs is not None else bool(changes and dom.get("active"))}
    return out
