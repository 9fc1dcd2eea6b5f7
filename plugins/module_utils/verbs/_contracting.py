# Copyright (c) 2026 cpucompat.cluster contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The verbs that write the contract store: ``contract`` (pin or admit every group, each tier its own contract, the
domains' compliance), ``plan`` (raise or lower) and ``rebuild`` (from the domains' stamps). Private."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any

from .._errors import InputError
from ..contract import _admission, _change, _contract, _observed, _stamps, _tiers
from ..contract._domain import Domain, domains_of
from ..contract._domains import SETTLED, compliance, status_counts
from ..contract._stored import Stored
from ..cpu._guest import GuestCpu, level_of
from ..cpu._libvirt_map import MapRegistry
from ..engine._group import GroupFacts
from ..engine._hostcpu import HostCpu
from ..render._cpuspec import CpuSpec
from ..render._platform_tiers import TIERED, render_tier_platforms
from ..render._platforms import render_platforms
from ..reports._cluster import cluster_view
from ..reports._schema import REPORT_SCHEMA
from ._common import Common, Outcome, Reader, write_contract


def contract(common: Common, reader: Reader, groups: Mapping[str, list[str]], domains_var: str | None,
             carried: Mapping[str, Any] | None = None, extra: Sequence[HostCpu] = (),
             observations: Mapping[str, Any] | None = None, tiers: Mapping[str, _tiers.Tiers] | None = None,
             tier_observations: Mapping[str, Mapping[str, Any]] | None = None, carried_as_of: int | None = None) -> Outcome:
    """Pin or admit every group, each against its own contract; ``carried``: the result of an earlier contract step of
    this run, whose admission and XML stand (only the domains' compliance is computed again); ``extra``: hosts of
    stacks beyond the groups' (a QEMU or libvirt about to be installed) on which the ``<cpu>`` must be exact too;
    ``observations`` (with ``carried``): host -> its observation of the carried ``<cpu>`` (or why there is none): the
    hosts are admitted by what their QEMU gives the vCPU too, and the contract records the group's observed CPU.
    ``tiers``: group -> its tiers (contract/_tiers): each tier beyond the base is a contract of its own (``group@tier``)
    over the tier's hosts and the domains that chose it; the base keeps the group's other domains. ``tier_observations``
    (with ``observations``): per tier contract, host -> its observation of the tier's ``<cpu>``: the tier's hosts are
    admitted by it too, and the tier's contract records its observed CPU (its first pin deferred like a group's).
    ``observations`` without ``carried``: no host observes in this run; their earlier observations are judged in this
    step. ``carried_as_of``: the carried step's ``facts_as_of`` (a carried step reads facts only where it needs them)."""
    sections: dict[str, Any] = {}
    written: list[str] = []
    contracts: dict[str, Any] = {}
    guests: dict[str, Any] = {}
    side: dict[str, dict[str, Any]] = {}
    listed, levels, misplaced, assigned = _tiered(reader, groups, domains_var, tiers or {})
    described = {t.key: t.describe() for g in groups for t in _tier_list(tiers, g)}
    rendered: dict[str, GuestCpu] = {}
    for name, hosts in ((k, v) for g, members in groups.items()
                        for k, v in [(g, members), *((t.key, list(t.hosts)) for t in _tier_list(tiers, g))]):
        path = common.store.where(name)
        group = _Lazy(reader, hosts)
        domains = listed.get(name) if domains_var else None
        earlier = (carried or {}).get(name)
        # a tier by its hosts' observations of its own <cpu> (none given: not observed)
        seen = observations if _tiers.SEPARATOR not in name else (tier_observations or {}).get(name, {})
        if earlier is not None:
            sections[name] = _compliance_only(earlier, group, domains, common.registry)
            if observations is not None:
                written += _observed_admission(common, name, sections[name], seen or {}, group)
        else:
            run, wrote, guest = _pin_or_admit(common, name, group(), domains, extra, levels.get(name, common.level),
                                              misplaced.get(name, []), bool(misplaced.get(_tiers.base_group(name))))
            if wrote:
                written.append(path)  # in check mode only predicted: the store stays as it is
            if guest is not None:
                guests[name] = guest.to_dict()  # the platforms playbook's roles render it
                rendered[name] = guest
            sections[name] = run.section
            # The baseline report beside the contract, from the same baseline (or naming why there is none).
            stem = "baseline" if len(groups) == 1 and name in groups else os.path.join(name, "baseline")
            side[stem] = _baseline_beside(common, name, group(), run, path)
            if observations is not None:  # observed before this run: judged here, the deferred pin written here
                written += _observed_admission(common, name, sections[name], seen or {}, group)
        if name in described:
            sections[name]["tier"] = described[name]  # the pages name it "Tier t of group g", with its hosts and level
        contracts[name] = _contract_fact(sections[name], guests.get(name), assigned.get(name))
    for tiered, members in groups.items():
        # A carried group (the observation step's call) keeps what the contract step rendered for it.
        if _tier_list(tiers, tiered) and set(common.platforms) & set(TIERED) and (carried or {}).get(tiered) is None:
            _tier_platforms(common, (tiers or {})[tiered], members, sections, contracts, rendered)
    newest = [carried_as_of] if carried is not None else [reader.group(hosts).facts_as_of for hosts in groups.values()]
    return Outcome(_contract_report(common, sections, written, newest), written, {"contracts": contracts}, side,
                   next(iter(groups.values())) if len(groups) == 1 else None)


def _contract_report(common: Common, sections: dict[str, Any], written: list[str], newest: list[int | None]) -> dict[str, Any]:
    reasons = [r for section in sections.values() for r in section["reasons"]]
    return {"schema": REPORT_SCHEMA, "kind": "contract", "facts_as_of": max((n for n in newest if n), default=None),
            "contract_store": common.store.where("GROUP").replace("GROUP", "<group>"), "groups": sections,
            "contract_files_changed": written, "check_mode": common.check_mode,
            "verdict": {"ok": not reasons, "reasons": reasons, **contract_verdict(sections)}}


def _pin_or_admit(common: Common, name: str, group: GroupFacts, domains: Sequence[Domain] | None, extra: Sequence[HostCpu],
                  level: str | None, misplaced: list[str], base_misplaced: bool) -> tuple[_admission.GroupRun, bool, GuestCpu | None]:
    """One group (or tier) pinned or admitted against its stored contract: the run, whether its contract was written
    (predicted in check mode), and its guest CPU when the report shows platforms."""
    path = common.store.where(name)
    stored = common.store.read(name)
    stamps = _stamps.found(name, domains or [])
    held = _stamps.held_elsewhere(name, domains or [], common.adopt)
    run = _admission.group_contract(name, group, stored.contract, path, common.policy, common.registry, domains,
                                    common.allow_partial, common.form, extra,
                                    "; ".join(held) or _stamps.refusal(name, stored, stamps, path, common.pin),
                                    common.on_refusal, level)
    run.section["reasons"] += misplaced
    to_write = _to_write(common, name, run, stored, base_misplaced)
    wrote = to_write is not None and write_contract(common, name, to_write, stored)
    run.section["generation"] = stored.generation + 1 if to_write is not None or run.section.get("pin_deferred") \
        else stamp_generation(run.contract, stored.generation)
    guest = None
    if common.platforms and run.contract is not None and run.baseline is not None and run.baseline.stacks is not None:
        guest = run.contract.guest(run.baseline.stacks)
        run.section["platforms"] = render_platforms(guest, common.platforms, common.form)
    run.section["moved_from"] = stored.moved_from
    run.section["stamps"] = _stamps.summary(stamps)
    return run, wrote, guest


def _tier_platforms(common: Common, found: _tiers.Tiers, members: Sequence[str], sections: dict[str, Any],
                    contracts: dict[str, Any], rendered: Mapping[str, GuestCpu]) -> None:
    """A group with tiers, for Nova, KubeVirt and Proxmox: their rendering of every tier at once (Nova's ordered
    cpu_models and flavor extra specs, a preference and node label per tier, a custom model per tier) in the group's
    section, instead of each tier's own; the platforms playbook's roles take the tiers' guests (``tier_guests``)."""
    keys = [t.key for t in found.tiers]
    missing = [k for k in keys if k not in rendered]
    for key in keys[1:]:
        for platform in TIERED:
            (sections[key].get("platforms") or {}).pop(platform, None)  # said once, with the group's other tiers
    if missing:
        why = f"no contract CPU for {', '.join(_tiers.named(k) for k in missing)}"
        for platform in (p for p in common.platforms if p in TIERED):
            sections[found.group].setdefault("platforms", {})[platform] = {"ok": False, "refused": why, "tiers": found.names}
        return
    listed = [(t.name, rendered[t.key], list(members) if t.name == _tiers.BASE else list(t.hosts)) for t in found.tiers]
    sections[found.group].setdefault("platforms", {}).update(render_tier_platforms(listed, common.platforms, common.form))
    contracts[found.group]["tier_guests"] = [{"name": t.name, "key": t.key, "hosts": hosts, "guest": contracts[t.key].get("guest"),
                                              "cpu": contracts[t.key].get("cpu")} for t, (_n, _g, hosts) in zip(found.tiers, listed)]


def _to_write(common: Common, name: str, run: _admission.GroupRun, stored: Stored, misplaced: bool) -> _contract.Contract | None:
    """The contract a run writes for ``name``, its generation set (None: none); the section says why one is held back."""
    moving = stored.moved_from and not run.section["reasons"]  # a contract from the former folder moves in
    to_write = run.to_write if run.to_write is not None else (run.contract if moving else None)
    if to_write is not None and run.section["pinned_now"] and common.defer_pin:
        run.section["pin_deferred"] = True  # the observation step writes it, once, with what the hosts observe
        return None
    if to_write is not None and misplaced:
        run.section["not_written"] = "a domain of the group cannot get its tier's CPU (the group's reasons say which)"
        return None  # a refused group writes nothing, its tiers neither
    return replace(to_write, level_generation=stored.generation + 1) if to_write is not None else None


def _baseline_beside(common: Common, name: str, group: GroupFacts, run: _admission.GroupRun, path: str) -> dict[str, Any]:
    """The baseline report beside a contract, from the run's baseline, with the contract against it."""
    view = cluster_view(group, common.policy, common.registry, common.allow_partial, run.baseline, common.form)
    view["group"] = name
    if run.contract is not None:
        view["contract"] = _contract.versus(run.contract, run.baseline.guest if run.baseline else None, path)
    return view


def _contract_fact(section: Mapping[str, Any], guest: Any, tiers: Mapping[str, Any] | None) -> dict[str, Any]:
    """One contract in the cluster fact the deploy reads: its CPU, generation and digest, the guest CPU for the
    platforms, and (``tiers``) host -> {domain: the tier's contract key}, the deploy's choice."""
    fact = {"model": section["model"], "xml": section["xml"], "qemu_args": section.get("qemu_args"),
            "pinned_at": section["pinned_at"], "admitted": section["admitted"], "cpu": section.get("cpu"),
            "generation": section.get("generation"),
            "digest": _contract.level_digest(section["cpu"]) if section.get("cpu") else None}
    if guest is not None:
        fact["guest"] = guest
    if tiers is not None:
        fact["tiers"] = tiers
    return fact


def _tier_list(tiers: Mapping[str, _tiers.Tiers] | None, group: str) -> list[_tiers.Tier]:
    found = (tiers or {}).get(group)
    return found.extra if found is not None else []


def _tiered(reader: Reader, groups: Mapping[str, list[str]], domains_var: str | None, tiers: Mapping[str, _tiers.Tiers]
            ) -> tuple[dict[str, Any], dict[str, str | None], dict[str, list[str]], dict[str, dict[str, dict[str, str]]]]:
    """Per contract key (a group, or a tier ``group@tier``): its domains, its level (None: the run's), the domains it must
    name because they cannot get their tier's CPU; per group, host -> {domain: tier key} for its tiered domains."""
    listed: dict[str, Any] = {}
    levels: dict[str, str | None] = {}
    misplaced: dict[str, list[str]] = {}
    assigned: dict[str, dict[str, dict[str, str]]] = {}
    for name, hosts in groups.items():
        domains = domains_of(reader.domains(hosts, domains_var)) if domains_var else []
        found = tiers.get(name)
        if found is None:
            listed[name] = domains
            continue
        placed = found.sort(domains)
        listed.update(placed.listed)
        for tier in found.tiers:
            if tier.level is not None:
                levels[tier.key] = tier.level
        misplaced[name] = placed.misplaced
        assigned[name] = placed.assigned
    return listed, levels, misplaced, assigned


def contract_verdict(sections: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    """The contract verdict's two halves: admission (hosts) and compliance (domains). ``ok`` stays admission's, the
    run's gate; ``compliant`` says whether every domain carries the contract, and ``pending`` which do not."""
    admitted = len({h for g in sections.values() for h in g.get("admitted") or []})  # a host of a tier counts once
    refused = sorted({r["host"] if isinstance(r, Mapping) else str(r) for g in sections.values()
                      for r in (g.get("admission") or {}).get("refused") or []})
    # only the pending domains sorted (a fleet's are mostly settled)
    pending = {f"{k}": status for g in sections.values()
               for k, status in sorted((k, d.get("status")) for k, d in (g.get("domains") or {}).items()
                                       if d.get("status") not in SETTLED)}
    domains = sum(len(g.get("domains") or {}) for g in sections.values())
    return {"admission": {"admitted": admitted, "refused": refused},
            "compliance": {"domains": domains, "settled": domains - len(pending), "pending": pending},
            "compliant": not pending}


class _Lazy:
    """A group's facts, read from the hosts when first asked for (once: the reader keeps what it read)."""

    def __init__(self, reader: Reader, hosts: list[str]) -> None:
        self._reader = reader
        self._hosts = hosts
        self._group: GroupFacts | None = None

    def __call__(self) -> GroupFacts:
        if self._group is None:
            self._group = self._reader.group(self._hosts)
        return self._group


def _compliance_only(earlier: Mapping[str, Any], group: _Lazy, domains: Sequence[Domain] | None,
                     registry: MapRegistry) -> dict[str, Any]:
    section = dict(earlier)
    if domains is not None and section.get("xml"):
        contract = CpuSpec.parse(section["xml"], "the contract's <cpu>")
        section["domains"] = compliance(contract, domains, _admission.host_maps(group(), registry))
        section["status_counts"] = status_counts(section["domains"])
    return section


def stamp_generation(contract: _contract.Contract | None, store_generation: int) -> int:
    """The generation deployed domains are stamped with: the one that set the contract's level."""
    return contract.level_generation if contract is not None and contract.level_generation else store_generation


def _observed_admission(common: Common, name: str, section: dict[str, Any], observations: Mapping[str, Any],
                        group: _Lazy) -> list[str]:
    """Admit the group's admitted hosts by their observation of its ``<cpu>``; record new stacks in the contract."""
    stored = common.store.read(name)
    contract_now = stored.contract
    if contract_now is None and section.get("pin_deferred") and section.get("cpu"):
        # The first pin, deferred by the contract step: written here, once, with the words the hosts observe.
        contract_now = _contract.Contract(name, level_of(section["cpu"], f"the pin of group {name}"), str(section["pinned_at"]),
                                          tuple(section.get("history") or ()), level_generation=stored.generation + 1)
    if not section.get("xml") or section.get("reasons"):
        section["observation"] = {"skipped": "no contract <cpu> admitted in this run"}
        return []
    hosts = list(section.get("admitted") or [])
    judged: dict[str, Any] = {}
    for host in hosts:
        entry = observations.get(host)
        if isinstance(entry, str) or entry is None:
            judged[host] = entry or "not observed in this run"
            continue
        facts = group().usable.get(host) or {}
        found = facts.get("versions")
        versions: Mapping[str, Any] = found if isinstance(found, Mapping) else {}
        judged[host] = _observed.Observation.from_fact(host, entry, versions.get("microcode"))
    pinned = contract_now.observed if contract_now is not None else {}
    digests = {_observed.cpu_digest(c) for c in (section["xml"], section.get("qemu_args")) if c}
    result = _observed.check(pinned, judged, hosts, digests)
    section["observation"] = result.to_dict()
    section["admission"] = section.get("admission") or {"ok": True, "refused": [], "lower_contract": None,
                                                        "on_refusal": common.on_refusal}
    for entry in result.refused:
        section["admission"]["refused"].append({"host": entry["host"], "missing_features": [], "model_blocked_by": [],
                                                "why": _observed.refusal_reason(entry, name), "observed": entry})
        section["admitted"] = [h for h in section["admitted"] if h != entry["host"]]
        if common.on_refusal == "exclude":
            section.setdefault("quarantined", {})[entry["host"]] = section["admission"]["refused"][-1]
        else:
            section["reasons"].append(_observed.refusal_reason(entry, name) + " - deploy the rest with "
                                      "-e cpucompat_contract_on_refusal=exclude; the contract report lists the words")
    section["admission"]["ok"] = not result.refused
    new = {k: {**v, "hosts": sorted(v["hosts"])} for k, v in result.new_stacks(pinned).items() if v["hosts"]}
    section["observation"]["recorded"] = sorted(new)
    pin_now = bool(section.get("pin_deferred")) and stored.contract is None
    if section["reasons"] or (not new and not pin_now) or contract_now is None:
        return []  # nothing to write, or no contract to record the observed stacks in (none stored, none pinned now)
    updated = replace(contract_now, observed={**contract_now.observed, **new},
                      level_generation=contract_now.level_generation or stored.generation)
    if write_contract(common, name, updated, stored):
        # A record of what the hosts observe changes no level: the domains keep the stamp of the generation that set
        # it (level_generation: a new stack observed must not restamp every domain); a deferred first pin is that one.
        section["store_generation"] = stored.generation + 1
        return [common.store.where(name)]
    return []


def plan(common: Common, reader: Reader, group: str, hosts: list[str], request: _change.ChangeRequest,
         domains_var: str | None, tiers: _tiers.Tiers | None = None, tier: str | None = None) -> Outcome:
    """Plan a raise or lower of one group's contract, and write it when it may be applied (not in check mode).
    ``tiers`` (the group's): ``tier`` names the tier whose contract changes (None: the base), over the tier's hosts and
    the domains in it; a change of the base leaves the other tiers' domains out."""
    if tier is not None and tier != _tiers.BASE:
        if tiers is None:
            raise InputError(f"group {group} defines no tiers (cpucompat_tiers): no tier {tier} to change")
        chosen = tiers.tier(tier)
        group, hosts = chosen.key, list(chosen.hosts)
    path, stored = common.store.where(group), common.store.read(group)
    domains = domains_of(reader.domains(hosts, domains_var))
    if tiers is not None:
        domains = tiers.split(domains)[group]
    behind = _stamps.edited(group, stored, _stamps.found(group, domains), path)
    if behind:
        raise _contract.ContractError(behind)
    run = _change.plan_change(group, reader.group(hosts), stored.contract, path, request, common.policy, common.registry,
                              domains, common.form)
    written = []
    if run.to_write is not None and write_contract(common, group, replace(run.to_write, level_generation=stored.generation + 1), stored):
        written.append(path)
    run.section["generation"] = stored.generation + 1 if written else stamp_generation(stored.contract, stored.generation)
    if run.contract is not None:
        run.section["digest"] = run.contract.digest
    if tiers is not None:
        run.section.update(tier=group.split(_tiers.SEPARATOR, 1)[1] if _tiers.SEPARATOR in group else None, tier_hosts=hosts)
    report = {"schema": REPORT_SCHEMA, "kind": "plan", **run.section, "applied": bool(written) and not common.check_mode,
              "check_mode": common.check_mode, "verdict": {"ok": not run.section["reasons"], "reasons": run.section["reasons"]}}
    return Outcome(report, written)


def rebuild(common: Common, reader: Reader, group: str, hosts: list[str], domains_var: str | None) -> Outcome:
    """Rebuild a group's lost contract from the stamps its deployed domains carry; refused when the store has one."""
    where, stored = common.store.where(group), common.store.read(group)
    stamps = _stamps.found(group, domains_of(reader.domains(hosts, domains_var)))
    contract, generation, notes = _stamps.rebuilt(group, stamps, stored, where)
    contract = replace(contract, level_generation=generation)
    written = []
    if not common.check_mode:
        common.store.write(group, contract, stored.generation, generation)
    written.append(where)
    report = {"schema": REPORT_SCHEMA, "kind": "rebuild", "group": group, "contract_file": where, "generation": generation,
              "model": contract.cpu.model, "features": sorted(contract.cpu.features), "cpu": contract.cpu.level(),
              "pinned_at": contract.pinned_at, "history": [dict(h) for h in contract.history], "stamps": _stamps.summary(stamps),
              "notes": notes, "check_mode": common.check_mode, "verdict": {"ok": True, "reasons": []}}
    return Outcome(report, written)
