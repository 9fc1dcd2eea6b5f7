# Copyright (c) 2026 cpucompat.cluster contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The cluster CPU contract: a pinned baseline a group keeps until an operator raises or lowers it. Private to the collection.

One JSON document per inventory group (schema ``cpucompat.contract/1``), kept on the controller beside the inventory.
A contract is read and validated once into a :class:`Contract`; admission, the raise/lower plan and the compliance of
domains are pure functions of it and of the group's :class:`HostCpu` values.
"""

from __future__ import annotations

import datetime
import json
import os
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..engine._baseline import Baseline, BaselineOptions, compare, compute_baseline
from ..render._cpuspec import CpuSpec
from .._errors import BaselineError, CpuCompatError, CpuXmlError
from ..cpu._features import SECURITY_FEATURES
from ..reports._cluster import GroupFacts
from ..engine._hostcpu import HostCpu
from ..cpu._libvirt_map import CpuMap
from ..render._libvirt_xml import render

CONTRACT_SCHEMA = "cpucompat.contract/1"


class ContractError(CpuCompatError):
    """A contract file is malformed, foreign (another group, arch or vendor) or cannot be written."""


@dataclass(frozen=True)
class Level:
    """A CPU level: a named model and the features a guest gets."""

    model: str | None
    features: frozenset[str]

    def to_dict(self) -> dict[str, Any]:
        return {"model": self.model, "features": sorted(self.features)}


@dataclass(frozen=True)
class Contract:
    """A group's pinned CPU."""

    group: str
    arch: str
    vendor: str | None
    baseline: Baseline
    baseline_dict: Mapping[str, Any]
    xml: str
    spec: CpuSpec
    pinned_at: str
    history: tuple[Mapping[str, Any], ...] = ()

    @property
    def level(self) -> Level:
        return Level(self.baseline.model, self.baseline.features)

    @classmethod
    def from_dict(cls, doc: Any, where: str) -> Contract:
        if not isinstance(doc, Mapping):
            raise ContractError(f"{where}: not a cpucompat contract (a JSON object is expected)")
        if doc.get("schema") != CONTRACT_SCHEMA:
            raise ContractError(f"{where}: not a cpucompat contract (schema {doc.get('schema')!r}, expected {CONTRACT_SCHEMA})")
        for key in ("group", "arch", "baseline", "xml", "pinned_at", "history"):
            if key not in doc:
                raise ContractError(f"{where}: the contract lacks {key!r}")
        if not isinstance(doc["history"], list) or not all(isinstance(h, Mapping) for h in doc["history"]):
            raise ContractError(f"{where}: the contract's history is not a list of entries")
        try:
            baseline = Baseline.from_dict(doc["baseline"], f"{where}: baseline")
            spec = CpuSpec.parse(str(doc["xml"]), f"{where}: xml")
        except (BaselineError, CpuXmlError) as exc:
            raise ContractError(str(exc)) from None
        if baseline.arch not in (None, doc["arch"]):
            raise ContractError(f"{where}: the contract is for {doc['arch']} but its baseline for {baseline.arch}")
        return cls(str(doc["group"]), str(doc["arch"]), doc.get("vendor"), baseline, doc["baseline"], str(doc["xml"]), spec,
                   str(doc["pinned_at"]), tuple(doc["history"]))

    def to_dict(self) -> dict[str, Any]:
        return {"schema": CONTRACT_SCHEMA, "group": self.group, "arch": self.arch, "vendor": self.vendor,
                "baseline": dict(self.baseline_dict), "xml": self.xml, "pinned_at": self.pinned_at,
                "history": [dict(h) for h in self.history]}

    def check_group(self, group: str, hosts: Sequence[HostCpu], where: str) -> None:
        """Refuse a contract of another group, architecture or vendor than the hosts'."""
        if self.group != group:
            raise ContractError(f"{where} is the contract of group {self.group!r}, not of {group!r}")
        for attr, label in (("arch", "architecture"), ("vendor", "CPU vendor")):
            wrong = sorted(h.name for h in hosts if getattr(h, attr) != getattr(self, attr))
            if wrong:
                raise ContractError(f"{where} is for {label} {getattr(self, attr)}; hosts of another {label}: {', '.join(wrong)}")


def now_iso() -> str:
    return datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0).isoformat().replace("+00:00", "Z")


def pinned(group: str, baseline: Baseline, xml: str, reason: str, when: str | None = None) -> Contract:
    """A new contract: the group's baseline of today, pinned."""
    when = when or now_iso()
    entry = {"at": when, "action": "pin", "from": None, "to": Level(baseline.model, baseline.features).to_dict(),
             "reason": reason, "hosts": list(baseline.hosts)}
    return Contract(group, str(baseline.arch), baseline.vendor, baseline, baseline.to_dict(), xml, CpuSpec.parse(xml),
                    when, (entry,))


def changed(old: Contract, action: str, baseline: Baseline, xml: str, reason: str, hosts: list[str], when: str | None = None) -> Contract:
    """The contract after ``action`` (raise or lower), its history extended by one entry."""
    when = when or now_iso()
    entry = {"at": when, "action": action, "from": old.level.to_dict(), "to": Level(baseline.model, baseline.features).to_dict(),
             "reason": reason, "hosts": hosts}
    return Contract(old.group, old.arch, old.vendor, baseline, baseline.to_dict(), xml, CpuSpec.parse(xml), when,
                    (*old.history, entry))


# ------------------------------------------------------------------------------------------------ files
def contract_path(directory: str, group: str) -> str:
    if not group or "/" in group or group.startswith("."):
        raise ContractError(f"group name {group!r} cannot name a contract file")
    return os.path.join(directory, f"{group}.json")


def load(path: str) -> Contract | None:
    """The contract at ``path``, None when there is none; a malformed one is an error, never overwritten."""
    try:
        with open(path, encoding="utf-8") as fh:
            text = fh.read()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise ContractError(f"contract {path} cannot be read: {exc.strerror or exc}") from exc
    try:
        doc = json.loads(text)
    except ValueError as exc:
        raise ContractError(f"contract {path} is not JSON: {exc}") from exc
    return Contract.from_dict(doc, f"contract {path}")


def render_text(contract: Contract) -> str:
    return json.dumps(contract.to_dict(), indent=2, sort_keys=True) + "\n"


def save(path: str, contract: Contract) -> bool:
    """Write atomically; an identical file is left alone. True when the file changed."""
    text = render_text(contract)
    try:
        with open(path, encoding="utf-8") as fh:
            if fh.read() == text:
                return False
    except FileNotFoundError:
        pass
    directory = os.path.dirname(path) or "."
    try:
        os.makedirs(directory, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=directory, prefix=f".{os.path.basename(path)}.")
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except OSError as exc:
        raise ContractError(f"contract {path} cannot be written: {exc.strerror or exc}") from exc
    return True


def check_xml(contract: Contract, cpu_map: CpuMap | None, path: str) -> None:
    """Refuse a contract whose ``<cpu>`` libvirt's map cannot read (an unknown model), before anything is deployed."""
    if cpu_map is None:
        return
    try:
        contract.spec.guest_features(cpu_map)
    except CpuXmlError as exc:
        raise ContractError(f"contract {path}: its xml cannot be deployed: {exc}") from None


# ------------------------------------------------------------------------------------------------ admission
@dataclass(frozen=True)
class Refusal:
    host: str
    missing: tuple[str, ...]
    model_blocked_by: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        return {"host": self.host, "missing_features": list(self.missing), "model_blocked_by": list(self.model_blocked_by)}


def admission(contract: Contract, hosts: Sequence[HostCpu]) -> list[Refusal]:
    """The hosts that cannot run the pinned CPU, with what they lack."""
    out = []
    for host in hosts:
        cmp = compare(contract.baseline, host)
        if not cmp.runnable:
            out.append(Refusal(host.name, cmp.missing, cmp.model_blocked_by))
    return out


@dataclass(frozen=True)
class LevelChange:
    """How a group's level would move from the contract's to a new baseline."""

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
    old = contract.level
    lost = tuple(sorted(old.features - new.features))
    return LevelChange(old, Level(new.model, new.features), tuple(sorted(new.features - old.features)), lost,
                       tuple(f for f in lost if f in SECURITY_FEATURES),
                       {f: list(new.lost.get(f, [])) for f in lost})


def could_raise(contract: Contract, hosts: Sequence[HostCpu], opts: BaselineOptions) -> dict[str, Any] | None:
    """What the group would gain by raising the contract to today's baseline (None when nothing)."""
    now = compute_baseline(hosts, opts)
    change = level_change(contract, now)
    if change.direction != "raise":
        return None
    return {"model": now.model, "features_gained": list(change.gained), "model_changes": now.model != contract.baseline.model}


# ------------------------------------------------------------------------------------------------ domains
COMPLIANCE = ("compliant", "restart-required", "above-contract", "follows-host", "no-cpu", "not-deployed")


class _Specs:
    """Parsed ``<cpu>`` texts and the features they give, once per distinct text: fleets share a few CPUs."""

    def __init__(self, cpu_map: CpuMap | None) -> None:
        self.cpu_map = cpu_map
        self._specs: dict[str, CpuSpec] = {}
        self._features: dict[str, frozenset[str] | None] = {}

    def spec(self, text: str, what: str) -> CpuSpec:
        if text not in self._specs:
            self._specs[text] = CpuSpec.parse(text, what)
        return self._specs[text]

    def features(self, text: str, what: str) -> frozenset[str] | None:
        """The features a CPU gives a guest (libvirt names); None without a map (s390x, aarch64)."""
        if text not in self._features:
            spec = self.spec(text, what)
            self._features[text] = spec.guest_features(self.cpu_map) if self.cpu_map is not None else None
        return self._features[text]


def domain_status(contract: Contract, dom: Mapping[str, Any], specs: _Specs, where: str) -> dict[str, Any]:
    """One domain against the contract: its persistent definition, its live CPU, and a status (COMPLIANCE)."""
    active = bool(dom.get("active"))
    out: dict[str, Any] = {"active": active, "persistent": False, "live": None}
    if not dom.get("cpu_xml"):
        return {**out, "status": "no-cpu", "why": "no <cpu> element: libvirt's default model, which follows the host"}
    persistent = specs.spec(dom["cpu_xml"], f"{where}: <cpu>")
    if persistent.follows_host:
        return {**out, "status": "follows-host", "why": f"mode {persistent.mode}: the guest gets whatever its host offers"}
    out["persistent"] = persistent.key() == contract.spec.key()
    if active and dom.get("live_cpu_xml"):
        live = specs.spec(dom["live_cpu_xml"], f"{where}: live <cpu>")
        want, have = specs.features(contract.xml, "the contract's <cpu>"), specs.features(dom["live_cpu_xml"], f"{where}: live <cpu>")
        if want is not None and have is not None:
            out["live"] = have == want
            extra = sorted(have - want)
            if extra:
                return {**out, "status": "above-contract", "beyond_contract": extra,
                        "why": "the running guest has features the contract lacks: it cannot migrate to every host"}
        else:
            out["live"] = live.model == contract.spec.model and sorted(live.features) == sorted(contract.spec.features)
    if not out["persistent"]:
        return {**out, "status": "not-deployed", "why": "its definition does not carry the contract CPU"}
    if active and out["live"] is False:
        return {**out, "status": "restart-required", "why": "the definition carries the contract; the guest runs its old CPU until it restarts"}
    return {**out, "status": "compliant"}


def compliance(contract: Contract, domains: Mapping[str, list[Mapping[str, Any]]], cpu_map: CpuMap | None) -> dict[str, dict[str, Any]]:
    """Every domain of every host of the group, keyed ``host/name``."""
    out: dict[str, dict[str, Any]] = {}
    specs = _Specs(cpu_map)
    for host, entries in sorted(domains.items()):
        for dom in entries:
            key = f"{host}/{dom['name']}"
            try:
                out[key] = domain_status(contract, dom, specs, f"domain {key}")
            except CpuCompatError as exc:
                out[key] = {"active": bool(dom.get("active")), "persistent": False, "live": None, "status": "not-deployed",
                            "why": str(exc)}
    return out


def domain_changes(new: CpuSpec, domains: Mapping[str, list[Mapping[str, Any]]]) -> dict[str, dict[str, Any]]:
    """What moving the group to ``new`` does to each domain: its CPUs now, whether it changes, whether it must restart."""
    out: dict[str, dict[str, Any]] = {}
    for host, entries in sorted(domains.items()):
        for dom in entries:
            key = f"{host}/{dom['name']}"
            cpu_xml = dom.get("cpu_xml")
            try:
                current = CpuSpec.parse(cpu_xml, f"domain {key}: <cpu>") if cpu_xml else None
            except CpuXmlError as exc:
                out[key] = {"persistent_cpu": cpu_xml, "live_cpu": dom.get("live_cpu_xml"), "changes": None, "why": str(exc)}
                continue
            changes = current is None or (not current.follows_host and current.key() != new.key())
            out[key] = {"persistent_cpu": cpu_xml, "live_cpu": dom.get("live_cpu_xml"), "active": bool(dom.get("active")),
                        "changes": changes, "follows_host": bool(current is not None and current.follows_host),
                        "restart_required": bool(changes and dom.get("active"))}
    return out


# ------------------------------------------------------------------------------------------------ reports
@dataclass
class GroupRun:
    """What one group's contract step found: the report section, and the contract to write (None: nothing)."""

    section: dict[str, Any]
    to_write: Contract | None = None


def _host_notes(hosts: Sequence[HostCpu], names: Sequence[str]) -> dict[str, dict[str, Any]]:
    """Per host responsible for a loss: what is known of the software and microcode that decide it."""
    by_name = {h.name: h for h in hosts}
    out = {}
    for name in names:
        facts = by_name[name].facts if name in by_name else {}
        versions = facts.get("versions") if isinstance(facts.get("versions"), Mapping) else {}
        out[name] = {"model_id": facts.get("model_id"), "qemu": by_name[name].qemu_version if name in by_name else None,
                     "microcode": versions.get("microcode"), "kernel": versions.get("kernel")}
    return out


def group_contract(name: str, group: GroupFacts, contract: Contract | None, path: str, opts: BaselineOptions,
                   cpu_map: CpuMap | None, domains: Mapping[str, list[Mapping[str, Any]]] | None,
                   allow_partial: bool = False) -> GroupRun:
    """Pin a group's first contract, or admit its hosts against the pinned one; then the compliance of its domains.

    Hosts without usable facts are never admitted; unless ``allow_partial``, they stop the group (nothing pinned).
    """
    section: dict[str, Any] = {"contract_file": path, "pinned_now": False, "hosts": sorted([*group.usable, *group.incomplete]),
                               "hosts_without_facts": {n: group.why(n) for n in group.incomplete}, "admission": None,
                               "admitted": [], "could_raise": None, "domains": {}, "status_counts": {}, "reasons": []}
    if group.incomplete and not allow_partial:
        section["reasons"].append("no usable facts from " + "; ".join(f"{n} ({w})" for n, w in section["hosts_without_facts"].items()))
        return GroupRun(_with_contract(section, contract))
    hosts = group.hosts()
    if not hosts:
        section["reasons"].append(f"group {name} has no hosts")
        return GroupRun(_with_contract(section, contract))
    to_write = None
    if contract is None:
        baseline = compute_baseline(hosts, opts)
        contract = to_write = pinned(name, baseline, render(baseline, cpu_map).xml, "first pin of the group's baseline")
        section["pinned_now"] = True
        section["admitted"] = sorted(h.name for h in hosts)
    else:
        contract.check_group(name, hosts, f"contract {path}")
        check_xml(contract, cpu_map, path)
        refused = admission(contract, hosts)
        section["admission"] = {"ok": not refused, "refused": [r.to_dict() for r in refused], "lower_contract": None}
        refused_names = {r.host for r in refused}
        section["admitted"] = sorted(h.name for h in hosts if h.name not in refused_names)
        if refused:
            lower = compute_baseline(hosts, opts)
            section["admission"]["lower_contract"] = level_change(contract, lower).to_dict()
            section["reasons"] += [f"{r.host} cannot run the contract CPU of group {name} (lacks "
                                   f"{', '.join(r.missing) or 'its model ' + str(contract.baseline.model)})" for r in refused]
        else:
            section["could_raise"] = could_raise(contract, hosts, opts)
    if domains is not None:
        section["domains"] = compliance(contract, domains, cpu_map)
        counts: dict[str, int] = dict.fromkeys(COMPLIANCE, 0)
        for entry in section["domains"].values():
            counts[entry["status"]] += 1
        section["status_counts"] = counts
    return GroupRun(_with_contract(section, contract), to_write)


def _with_contract(section: dict[str, Any], contract: Contract | None) -> dict[str, Any]:
    if contract is not None:
        section.update(model=contract.baseline.model, features=sorted(contract.baseline.features), xml=contract.xml,
                       pinned_at=contract.pinned_at, history=[dict(h) for h in contract.history])
    else:
        section.update(model=None, features=[], xml=None, pinned_at=None, history=[])
    return section


@dataclass(frozen=True)
class ChangeRequest:
    action: str  # raise | lower
    without: tuple[str, ...] = ()
    allow_lower: bool = False
    allow_security_loss: bool = False
    reason: str = ""


def plan_change(name: str, group: GroupFacts, contract: Contract | None, path: str, req: ChangeRequest, opts: BaselineOptions,
                cpu_map: CpuMap | None, domains: Mapping[str, list[Mapping[str, Any]]]) -> GroupRun:
    """The plan of raising or lowering a group's contract; the new contract when the plan may be applied."""
    if req.action not in ("raise", "lower"):
        raise ContractError(f"contract action must be raise or lower, got {req.action!r}")
    if contract is None:
        raise ContractError(f"group {name} has no contract at {path}: run cpucompat.cluster.site first to pin one")
    plan: dict[str, Any] = {"group": name, "action": req.action, "contract_file": path, "without": list(req.without),
                            "what_if": bool(req.without), "hosts_without_facts": {n: group.why(n) for n in group.incomplete},
                            "change": None, "xml": None, "domains": {}, "security": {}, "reasons": [], "applicable": False}
    if group.incomplete:
        plan["reasons"].append("no usable facts from " + "; ".join(f"{n} ({w})" for n, w in plan["hosts_without_facts"].items()))
        return GroupRun(plan)
    hosts = group.hosts()
    contract.check_group(name, hosts, f"contract {path}")
    unknown = sorted(set(req.without) - {h.name for h in hosts})
    if unknown:
        raise ContractError(f"cpucompat_contract_without names hosts that are not in group {name}: {', '.join(unknown)}")
    staying = [h for h in hosts if h.name not in req.without]
    new = compute_baseline(staying, opts)
    rendered = render(new, cpu_map)
    change = level_change(contract, new)
    plan.update(change=change.to_dict(), xml=rendered.xml, domains=domain_changes(rendered.spec, domains),
                security={f: _host_notes(hosts, change.lost_because_of.get(f, [])) for f in change.security_lost})
    plan["reasons"] = _refusals(req, change, [h for h in hosts if not compare(new, h).runnable])
    applicable = not plan["reasons"] and not req.without and change.direction != "same"
    plan["applicable"] = applicable
    if not applicable:
        return GroupRun(plan)
    responsible = sorted({h for hosts_ in change.lost_because_of.values() for h in hosts_}) if change.lost else sorted(new.hosts)
    reason = req.reason or f"{req.action} to the group's baseline of {now_iso()[:10]}"
    return GroupRun(plan, changed(contract, req.action, new, rendered.xml, reason, responsible))


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
        reasons.append(f"security features would be lost: {', '.join(change.security_lost)} (on "
                       + "; ".join(f"{f}: {', '.join(change.lost_because_of.get(f, []))}" for f in change.security_lost)
                       + "); set cpucompat_contract_allow_security_loss=true to allow it")
    return reasons


# ------------------------------------------------------------------------------------------------ planning checks
def expansion_against(contract: Contract, candidates: Sequence[HostCpu], joined: Sequence[HostCpu],
                      opts: BaselineOptions) -> dict[str, Any]:
    """The expansion plan's view of a pinned group: which candidates would be refused, and what ``lower`` would cost."""
    refused = {r.host: r.to_dict() for r in admission(contract, candidates)}
    out: dict[str, Any] = {"contract_model": contract.baseline.model, "pinned_at": contract.pinned_at,
                           "candidates": {h.name: {"would_be_refused": h.name in refused,
                                                   "missing_features": refused.get(h.name, {}).get("missing_features", [])}
                                          for h in candidates},
                           "lower_needed": None}
    if refused:
        out["lower_needed"] = level_change(contract, compute_baseline(joined, opts)).to_dict()
    return out


def migration_against(contract: Contract, domains: Mapping[str, list[Mapping[str, Any]]], cpu_map: CpuMap | None) -> dict[str, Any]:
    """The pre-migration check's view of a pinned group: every source domain's compliance with the contract."""
    statuses = compliance(contract, domains, cpu_map)
    return {"group": contract.group, "contract_model": contract.baseline.model, "domains": statuses,
            "status_counts": {s: sum(1 for d in statuses.values() if d["status"] == s) for s in COMPLIANCE}}
