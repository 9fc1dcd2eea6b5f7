# Copyright (c) 2026 cpucompat.cluster contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""What a group's contract decides in a run: pin, admit, quarantine. Private.

Pure functions of a :class:`Contract`, the group's :class:`HostCpu` values and today's baseline, which each run computes
once and hands to every step (pin, "could raise", the lower a refusal would need, the baseline report). Admission asks
two things of every host: does it run the pinned level, and can the pinned level be said exactly on its stack (a QEMU
or libvirt upgrade may make a name ambiguous or unknown); a host that fails either is refused and nothing changes.

Raising and lowering a contract live in ``_change``, its view of the planning checks in ``_planning_checks``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from .._errors import CpuCompatError, CpuMapError, FactsError, InputError, RenderError
from ..cpu._exact import InexactError
from ..cpu._features import SECURITY_FEATURES
from ..cpu._guest import GuestCpu
from ..cpu._libvirt_map import MapRegistry
from ..engine._result import Baseline
from ..engine._cluster import BaselineOptions
from ..engine._compare import compare_each
from ..engine._arm_identity import Difference, differences, identity_of
from ..engine._baseline import compute_baseline
from ..engine._group import GroupFacts
from ..engine._guest import exact, extended
from ..engine._level import LEVEL_ERRORS, chosen_baseline, levels_view, parse_level
from ..engine._hostcpu import HostCpu
from ..render._cpuspec import RenderedCpu
from ..render._libvirt import render
from ..render._qemu import render as render_qemu
from ._contract import Contract, ContractError, Level, pinned, upgraded
from ._domain import Domain
from ._domains import compliance, status_counts
from ._tiers import named


@dataclass(frozen=True)
class Refusal:
    host: str
    missing: tuple[str, ...]
    model_blocked_by: tuple[str, ...]
    why: str | None = None  # a reason beyond features (the contract cannot be said exactly on its stack)
    identity: tuple[Difference, ...] = ()  # aarch64: how the host differs from the pinned identity

    def to_dict(self) -> dict[str, Any]:
        return {"host": self.host, "missing_features": list(self.missing), "model_blocked_by": list(self.model_blocked_by),
                "why": self.why, **({"identity_differs": [d.to_dict() for d in self.identity]} if self.identity else {})}

    def reason(self, contract: Contract) -> str:
        if self.identity:
            return (f"{self.host} is not identical to the hosts of group {contract.group}, whose aarch64 guests get "
                    f"host-passthrough over one pinned identity: " + "; ".join(d.text() for d in self.identity))
        if self.why:
            return f"{self.host} cannot run the contract CPU of {named(contract.group)}: {self.why}"
        return (f"{self.host} cannot run the contract CPU of {named(contract.group)} (lacks "
                f"{', '.join(self.missing) or 'its model ' + str(contract.cpu.model)})")


def admission(contract: Contract, hosts: Sequence[HostCpu]) -> list[Refusal]:
    """The hosts that cannot run the pinned CPU, with what they lack; aarch64: the hosts whose identity is not the pinned
    one, naming each field that differs and what it does to a migrating guest."""
    if contract.identity is not None:
        return identity_refusals(contract.identity, hosts)
    return [Refusal(cmp.host, cmp.missing, cmp.model_blocked_by) for cmp in compare_each(contract.baseline, hosts) if not cmp.runnable]


def identity_refusals(pinned: Mapping[str, Any], hosts: Sequence[HostCpu]) -> list[Refusal]:
    """Admission of aarch64 hosts: a host is admitted when its identity equals the pinned one."""
    out = []
    for host in hosts:
        try:
            found = tuple(differences(pinned, identity_of(host.facts, f"host {host.name}")))
        except FactsError as exc:
            out.append(Refusal(host.name, (), (), str(exc)))
            continue
        if found:
            out.append(Refusal(host.name, (), (), None, found))
    return out


ON_REFUSAL = ("fail", "exclude")
PARTIAL_HINT = (". Probe them again once they answer; or leave them out of this run with --limit, or go on without them "
                "with -e cpucompat_allow_partial=true (they are never admitted)")


def _signature(host: HostCpu) -> tuple[Any, ...] | None:
    f = host.facts
    return None if f.get("family") is None else (host.vendor, f.get("family"), f.get("model"), f.get("stepping"))


def _microcode(host: HostCpu) -> str | None:
    versions = host.facts.get("versions")
    return versions.get("microcode") if isinstance(versions, Mapping) else None


def diagnosis(refusal: Refusal, hosts: Sequence[HostCpu], contract: Contract, lower: LevelChange | None) -> dict[str, Any]:
    """What to check on a refused host, and the commands that resolve it (the variables filled in).

    It compares the host with the group's hosts of the same CPU signature (vendor, family, model, stepping): when they
    have what it lacks, the silicon is the same and microcode or BIOS settings (a disabled TSX, SMT or virtualisation
    extension, an older microcode without a mitigation) are the usual cause."""
    by_name = {h.name: h for h in hosts}
    host = by_name.get(refusal.host)
    group = contract.group
    out: dict[str, Any] = {"signature": None, "peers": {}, "likely": None, "commands": []}
    if refusal.identity:
        out["likely"] = ("not identical to the group's hosts: " + ", ".join(d.what for d in refusal.identity)
                         + " (host-passthrough: only identical hosts keep a migrating guest's CPU)")
        out["commands"].append(f"ansible-playbook -i <inventory> cpucompat.cluster.probe --limit {refusal.host} "
                               "-e cpucompat_probe_force=true   # after making it identical (kernel, firmware, QEMU)")
    elif refusal.why is None and host is not None:
        sig = _signature(host)
        peers = [h for h in hosts if h.name != host.name and sig is not None and _signature(h) == sig]
        having = [h for h in peers if set(refusal.missing) <= h.features]
        if sig is not None:
            out["signature"] = f"{sig[0]} family {sig[1]} model {sig[2]} stepping {sig[3]}"
        out["peers"] = {h.name: {"microcode": _microcode(h), "has_what_it_lacks": h in having} for h in peers}
        if having:
            out["likely"] = (f"microcode or BIOS drift: {len(having)} host(s) of the same CPU signature have "
                             f"{', '.join(refusal.missing) or 'the model'} (microcode "
                             f"{', '.join(sorted({str(_microcode(h)) for h in having}))}; {host.name} runs "
                             f"{_microcode(host) or 'an unknown microcode'}); compare their BIOS settings (TSX, SMT, "
                             "virtualisation extensions) and update its microcode, then probe it again")
            out["commands"].append(f"ansible-playbook -i <inventory> cpucompat.cluster.probe --limit {host.name} "
                                   "-e cpucompat_probe_force=true   # after the microcode or BIOS update")
        else:
            out["likely"] = ("an older or different CPU: no host of the group with the same CPU signature has what it lacks"
                             if peers else "an older or different CPU: no other host of the group has its CPU signature")
    out["commands"].append(f"ansible-playbook -i <inventory> cpucompat.cluster.site -e cpucompat_contract_on_refusal=exclude"
                           f"   # deploy the rest of group {group}; {refusal.host} stays out (group cpu_quarantine)")
    if lower is not None and not refusal.identity:
        flags = " -e cpucompat_contract_allow_lower=true" + (" -e cpucompat_contract_allow_security_loss=true"
                                                             if lower.security_lost else "")
        out["commands"].append(f"ansible-playbook -i <inventory> cpucompat.cluster.change_contract -e cpucompat_group={group} "
                               f"-e cpucompat_contract_action=lower{flags}   # admit it: the group loses "
                               f"{', '.join(lower.lost) or 'nothing'}")
    out["commands"].append(f"remove {refusal.host} from group {group} in the inventory (or put it in a group of its own)")
    return out


def rendered(contract: Contract, stacks: GuestCpu | None, form: str = "minimal") -> tuple[RenderedCpu | None, list[Refusal]]:
    """The contract's ``<cpu>`` for today's stacks, or the hosts on whose stack it cannot be said exactly."""
    if stacks is None:
        return None, []
    try:
        return render(contract.guest(stacks), form), []
    except InexactError as exc:
        return None, [Refusal(h, (), (), f"its stack cannot say the contract CPU exactly: {exc}") for h in exc.hosts or ["(every host)"]]
    except (CpuMapError, InputError, RenderError) as exc:
        return None, [Refusal("(every host)", (), (), str(exc))]


@dataclass(frozen=True)
class LevelChange:
    """How a group's level would move from the contract's to a new guest CPU."""

    old: Level
    new: Level
    gained: tuple[str, ...]
    lost: tuple[str, ...]
    security_lost: tuple[str, ...]
    lost_because_of: Mapping[str, list[str]] = field(default_factory=dict)

    @property
    def direction(self) -> str:
        """raise, lower, same or sideways (features both gained and lost)."""
        if self.lost and self.gained:
            return "sideways"
        if self.lost:
            return "lower"
        if self.gained or self.old.model != self.new.model:
            return "raise"
        return "same"

    def to_dict(self) -> dict[str, Any]:
        return {"from": self.old.to_dict(), "to": self.new.to_dict(), "direction": self.direction,
                "gained": list(self.gained), "lost": list(self.lost), "security_lost": list(self.security_lost),
                "lost_because_of": {k: list(v) for k, v in self.lost_because_of.items()}}


def level_change(contract: Contract, new: Baseline) -> LevelChange:
    """From the contract's level to a baseline's guest CPU (its exact set; without one, its common features)."""
    old = contract.level
    cpu = new.guest
    target = Level(cpu.model if cpu else new.model, cpu.features if cpu else new.features)
    lost = tuple(sorted(old.features - target.features))
    return LevelChange(old, target, tuple(sorted(target.features - old.features)), lost,
                       tuple(f for f in lost if f in SECURITY_FEATURES), {f: list(new.lost.get(f, [])) for f in lost})


def could_raise(contract: Contract, today: Baseline) -> dict[str, Any] | None:
    """What the group would gain by raising the contract to today's guest CPU (None when nothing)."""
    change = level_change(contract, today)
    if change.direction != "raise":
        return None
    return {"model": change.new.model, "features_gained": list(change.gained), "model_changes": change.new.model != contract.cpu.model}


# ------------------------------------------------------------------------------------------------ one group's run
@dataclass
class GroupRun:
    """What one group's contract step found: the report section, the contract to write (None: nothing), the baseline
    of today (computed once, for the baseline report as well)."""

    section: dict[str, Any]
    to_write: Contract | None = None
    baseline: Baseline | None = None
    contract: Contract | None = None  # the group's contract after this step (pinned now, upgraded, or as it was)


def host_maps(group: GroupFacts, registry: MapRegistry) -> dict[str, Any]:
    """Each usable host's libvirt CPU map (domains are read with their own host's map)."""
    return {name: registry.from_facts(name, facts) for name, facts in group.usable.items()}


def group_contract(name: str, group: GroupFacts, contract: Contract | None, path: str, opts: BaselineOptions,
                   registry: MapRegistry, domains: Sequence[Domain] | None,
                   allow_partial: bool = False, form: str = "minimal", extra: Sequence[HostCpu] = (),
                   store_refusal: str | None = None, on_refusal: str = "fail", level: str | None = None) -> GroupRun:
    """Pin a group's first contract, or admit its hosts against the pinned one; then the compliance of its domains.

    Hosts without usable facts are never admitted; unless ``allow_partial``, they stop the group (nothing pinned).
    ``store_refusal``: why the store's contract cannot be trusted (its domains carry the stamps of another one):
    nothing is pinned or admitted, and the reason is the group's. ``on_refusal``: ``fail`` (a host that cannot run the
    contract stops the group) or ``exclude`` (it is quarantined - named, its domains untouched - and the rest proceed).
    ``extra``: hosts of stacks beyond the group's (a new QEMU or libvirt, before an upgrade): the ``<cpu>`` is rendered
    exact on theirs too.
    """
    section = _new_section(group, path, form)
    stopped = _stopped_before(section, group, contract, store_refusal, allow_partial)
    if stopped is not None:
        return stopped
    hosts = group.hosts()
    if not hosts:
        section["reasons"].append(f"group {name} has no hosts")
        return GroupRun(_with_contract(section, contract, None))
    today = compute_baseline(hosts, opts, registry)
    first = _pin_or_stored(section, name, hosts, contract, path, today, opts, registry, level)
    if isinstance(first, GroupRun):
        return first
    contract, to_write = first
    admitted = admission(contract, hosts)
    stacks = _stacks_to_render(hosts, admitted, today, on_refusal, extra, opts, registry)
    cpu, inexact = rendered(contract, stacks, form)
    refused = _admit(section, hosts, contract, today, [*admitted, *inexact], on_refusal, cpu)
    _report(section, group, contract, stacks, cpu, refused, domains, registry)
    return GroupRun(_with_contract(section, contract, cpu), to_write if not section["reasons"] else None, today, contract)


def _new_section(group: GroupFacts, path: str, form: str) -> dict[str, Any]:
    """The group's report section before anything is decided."""
    return {"contract_file": path, "pinned_now": False, "upgraded": None, "hosts": sorted([*group.usable, *group.incomplete]),
            "hosts_without_facts": {n: group.why(n) for n in group.incomplete}, "admission": None, "admitted": [],
            "could_raise": None, "domains": {}, "status_counts": {}, "reasons": [], "form": form}


def _stopped_before(section: dict[str, Any], group: GroupFacts, contract: Contract | None, store_refusal: str | None,
                    allow_partial: bool) -> GroupRun | None:
    """The run of a group that stops before its baseline: a store that cannot be trusted, hosts without usable facts."""
    if store_refusal:
        section["reasons"].append(store_refusal)
        return GroupRun(_with_contract(section, contract, None), None, None, contract)
    if group.incomplete and not allow_partial:
        section["reasons"].append("no usable facts from " + "; ".join(f"{n} ({w})" for n, w in section["hosts_without_facts"].items())
                                  + PARTIAL_HINT)
        return GroupRun(_with_contract(section, contract, None))
    return None


def _pin_or_stored(section: dict[str, Any], name: str, hosts: Sequence[HostCpu], contract: Contract | None, path: str,
                   today: Baseline, opts: BaselineOptions, registry: MapRegistry,
                   level: str | None) -> GroupRun | tuple[Contract, Contract | None]:
    """The first pin (today's baseline, or the chosen level), or the stored contract (upgraded from ``/1``): the
    contract to admit against and the one to write (None: nothing); a run that stops when there is nothing to pin."""
    if contract is None:
        source, why = today, "first pin of the group's baseline"
        if level:
            try:
                source, why = chosen_baseline(parse_level(level), hosts, opts, registry, today), f"first pin at the level {level}"
            except LEVEL_ERRORS as exc:
                section["reasons"].append(f"{named(name)} cannot be pinned at the chosen level: {exc}")
                return GroupRun(_with_contract(section, None, None), None, today)
        if source.guest is None:
            section["reasons"].append(f"no CPU to pin for {named(name)}: {source.guest_error}")
            return GroupRun(_with_contract(section, None, None), None, today)
        contract = pinned(name, source.guest, [h.name for h in hosts], why)
        section["pinned_now"] = True
        section["level"] = level
        return contract, contract
    contract.check_group(name, hosts, f"contract {path}")
    if contract.upgraded_from is not None:
        contract, section["upgraded"] = _upgrade(contract, today)
        return contract, contract
    return contract, None


def _stacks_to_render(hosts: Sequence[HostCpu], admitted: Sequence[Refusal], today: Baseline, on_refusal: str,
                      extra: Sequence[HostCpu], opts: BaselineOptions, registry: MapRegistry) -> GuestCpu | None:
    """The stacks the ``<cpu>`` is said for: the group's, or (``exclude``) those of the hosts that run the contract; with
    the ``extra`` hosts' stacks."""
    stacks = today.stacks
    cannot_run = {r.host for r in admitted if not r.why}
    if on_refusal == "exclude" and cannot_run and len(cannot_run) < len(hosts):
        # The <cpu> is said for the stacks of the hosts that run the contract: the QEMU of a host about to be quarantined
        # (one that lacks the contract's model, say) must not change what the admitted hosts' domains get.
        stacks = compute_baseline([h for h in hosts if h.name not in cannot_run], opts, registry).stacks
    return extended(stacks, extra, registry) if extra and stacks is not None else stacks


def _admit(section: dict[str, Any], hosts: Sequence[HostCpu], contract: Contract, today: Baseline, refused: list[Refusal],
           on_refusal: str, cpu: RenderedCpu | None) -> list[Refusal]:
    """Admission and quarantine into the section (the admitted hosts, the host table, the refusals diagnosed with the
    lower they would need, or what a raise would gain); the refusals that stop the group."""
    refused_names = {r.host for r in refused}
    section["admitted"] = sorted(h.name for h in hosts if h.name not in refused_names)
    section["host_table"] = _host_table(hosts, refused_names, today)
    section["quarantined"] = {}
    if not section["pinned_now"]:
        section["admission"] = {"ok": not refused, "refused": [r.to_dict() for r in refused], "lower_contract": None,
                                "on_refusal": on_refusal}
        if refused:
            lower = level_change(contract, today)
            section["admission"]["lower_contract"] = lower.to_dict()
            for entry, r in zip(section["admission"]["refused"], refused):
                entry["diagnosis"] = diagnosis(r, hosts, contract, lower)
        else:
            section["could_raise"] = could_raise(contract, today)
    if on_refusal == "exclude" and cpu is not None:
        # A host that cannot run the contract is quarantined; one on whose stack it cannot be said stops the group.
        section["quarantined"] = {e["host"]: e for e in (section["admission"] or {}).get("refused", []) if not e["why"]}
        refused = [r for r in refused if r.host not in section["quarantined"]]
    return refused


def _report(section: dict[str, Any], group: GroupFacts, contract: Contract, stacks: GuestCpu | None, cpu: RenderedCpu | None,
            refused: Sequence[Refusal], domains: Sequence[Domain] | None, registry: MapRegistry) -> None:
    """The rest of the report section: the refusals' reasons with their hints, the QEMU arguments, the domains."""
    section["reasons"] += [r.reason(contract) + " - " + _hint(section, r.host) for r in refused]
    section["qemu_args"] = _qemu_args(contract, stacks) if cpu is not None else None
    if domains is not None and cpu is not None:
        section["domains"] = compliance(cpu.spec, domains, host_maps(group, registry))
        section["status_counts"] = status_counts(section["domains"])


def _qemu_args(contract: Contract, stacks: GuestCpu | None) -> str | None:
    """The contract as plain QEMU's ``-cpu`` (what hosts without libvirt observe it as); None where it cannot be said."""
    if stacks is None:
        return None
    try:
        return render_qemu(contract.guest(stacks)).args
    except CpuCompatError:
        return None


def _host_table(hosts: Sequence[HostCpu], refused: set[str], today: Baseline) -> dict[str, dict[str, Any]]:
    """Per host: whether it runs the contract, its best model and x86-64 level, its microcode."""
    levels = levels_view(hosts, today)["hosts"]
    return {h.name: {"runs_contract": h.name not in refused, "best_model": levels[h.name]["best_model"],
                     "psabi": levels[h.name]["psabi"], "microcode": _microcode(h)} for h in hosts}


def _hint(section: Mapping[str, Any], host: str) -> str:
    """The refusal's likely cause and what to run, in one line (the report lists every command)."""
    for entry in (section.get("admission") or {}).get("refused", []):
        if entry["host"] == host and entry.get("diagnosis"):
            likely = entry["diagnosis"]["likely"]
            return ((f"{likely}. " if likely else "") + "Deploy the rest with -e cpucompat_contract_on_refusal=exclude, "
                    "or lower the contract (cpucompat.cluster.change_contract); the contract report lists the commands")
    return "the contract report says more"


def _upgrade(contract: Contract, today: Baseline) -> tuple[Contract, str]:
    """An older contract as ``/2``: its level shaped exact on today's stacks (what cannot be said exactly is left out)."""
    if today.stacks is None:
        raise ContractError(f"contract of group {contract.group}: cannot be upgraded from {contract.upgraded_from}: "
                            f"{today.guest_error}")
    shaped = exact(contract.guest(today.stacks))
    shaped = shaped if shaped.machine else replace(shaped, machine=today.stacks.machine)
    new = upgraded(contract, shaped)
    return new, str(new.history[-1]["reason"])


def _with_contract(section: dict[str, Any], contract: Contract | None, cpu: RenderedCpu | None) -> dict[str, Any]:
    if contract is not None:
        section.update(model=contract.cpu.model, features=sorted(contract.cpu.features), cpu=contract.cpu.level(),
                       xml=cpu.xml if cpu is not None else None, xml_model=cpu.model if cpu is not None else None,
                       pinned_at=contract.pinned_at, history=[dict(h) for h in contract.history])
    else:
        section.update(model=None, features=[], cpu=None, xml=None, xml_model=None, pinned_at=None, history=[])
    return section


__all__ = ["CpuCompatError", "GroupRun", "LevelChange", "Refusal", "admission", "could_raise",
           "group_contract", "level_change", "rendered"]
