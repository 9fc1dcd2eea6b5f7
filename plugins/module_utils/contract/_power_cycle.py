# Copyright (c) 2026 cpucompat.cluster contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The rolling power cycle, planned: which running guests wait for a stop and a start to run their contract CPU, in
which batches, and what a run already did (its progress, kept beside the contract). Pure. Private.

- The guests: the "pending" domains of the contract report (:func:`pending`): running, their definition carries the
  contract, and the CPU they run is another (``restart-required``, or ``above-contract`` with the contract in the
  definition). A domain whose definition lacks the contract is the deploy's, not a power cycle's.
- A selection narrows them (:func:`select`), as ``cpucompat_migrate`` names domains: a host, ``host/name``, a name, or a
  pattern (``fnmatch``, e.g. ``web*``; ``~`` then a regular expression).
- Batches (:func:`plan_batches`): at most ``per_host`` guests of one host and ``overall`` guests in all are down at
  once, and no two guests of one anti-affinity group are ever in one batch.
- Progress (:func:`new_progress`, :func:`cycled`, :func:`record`): one document per group; a guest shut down and
  started again (``done``, or ``gate-failed``: started, its health gate failed) is never cycled again for the same
  contract; a new contract starts a new progress.
"""

from __future__ import annotations

import fnmatch
import hashlib
import re
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ._contract import ContractError

PROGRESS_SCHEMA = "cpucompat.power_cycle/1"
MODES = ("next_shutdown", "now")
PENDING = ("restart-required", "above-contract")
# Guest states a batch leaves (the domain_power_cycle module's words).
CYCLED = ("done", "gate-failed")  # shut down and started: never again for the same contract
STATES = (*CYCLED, "timeout", "armed", "shut-off", "error", "planned")


class PowerCycleError(ContractError):
    """A selection, a batch bound or an anti-affinity group that cannot be read; a progress document that does not read."""


@dataclass(frozen=True)
class Guest:
    """A running guest that waits for a power cycle, and what it gains and loses then (libvirt feature names)."""

    host: str
    name: str
    status: str
    gains: tuple[str, ...] = ()
    loses: tuple[str, ...] = ()

    @property
    def key(self) -> str:
        return f"{self.host}/{self.name}"

    def to_dict(self) -> dict[str, Any]:
        return {"key": self.key, "host": self.host, "name": self.name, "status": self.status, "gains": list(self.gains),
                "loses": list(self.loses)}


@dataclass(frozen=True)
class Bounds:
    """How many guests may be down at once: on one host, and in all."""

    per_host: int = 1
    overall: int = 1

    @classmethod
    def of(cls, value: Any) -> Bounds:
        """``cpucompat_cycle_batch``: a number (overall, and per host) or ``{per_host: n, overall: m}``."""
        if isinstance(value, Mapping):
            unknown = set(value) - {"per_host", "overall"}
            if unknown:
                raise PowerCycleError(f"cpucompat_cycle_batch: unknown key(s) {', '.join(sorted(unknown))} (per_host, overall)")
            overall = _positive(value.get("overall", 1), "cpucompat_cycle_batch.overall")
            return cls(_positive(value.get("per_host", overall), "cpucompat_cycle_batch.per_host"), overall)
        n = _positive(value, "cpucompat_cycle_batch")
        return cls(n, n)


def _positive(value: Any, what: str) -> int:
    try:
        n = int(value)
    except (TypeError, ValueError):
        raise PowerCycleError(f"{what}: {value!r} is not a number of guests") from None
    if isinstance(value, bool) or n < 1 or (isinstance(value, float) and value != n):
        raise PowerCycleError(f"{what}: {value!r} is not a positive whole number of guests")
    return n


def pending(domains: Mapping[str, Mapping[str, Any]]) -> list[Guest]:
    """The guests of a contract report's domains (``host/name`` -> status) that a stop and a start bring onto the
    contract, in ``host/name`` order."""
    out = []
    for key, d in sorted(domains.items()):
        if d.get("status") not in PENDING or not d.get("active") or not d.get("persistent"):
            continue
        host, _sep, name = key.partition("/")
        change = d.get("next_power_cycle") or {}
        loses = change.get("loses") or d.get("beyond_contract") or ()  # above the contract: what it runs beyond it
        out.append(Guest(host, name, str(d["status"]), tuple(change.get("gains") or ()), tuple(loses)))
    return out


def _items(value: Any, what: str) -> list[str]:
    if value is None or value == "":
        return []
    if isinstance(value, str):
        return [v.strip() for v in value.split(",") if v.strip()]
    if isinstance(value, Sequence) and all(isinstance(v, str) for v in value):
        return [v.strip() for v in value if v.strip()]
    raise PowerCycleError(f"{what}: {value!r} is neither a comma-separated string nor a list of names")


def _matches(item: str, guest: Guest, hosts: Iterable[str]) -> bool:
    if item.startswith("~"):
        try:
            return bool(re.search(item[1:], guest.name) or re.search(item[1:], guest.key))
        except re.error as exc:
            raise PowerCycleError(f"cpucompat_cycle_select: {item!r} is not a regular expression: {exc}") from None
    if any(c in item for c in "*?["):
        return fnmatch.fnmatchcase(guest.name, item) or fnmatch.fnmatchcase(guest.key, item)
    if "/" in item:
        return item == guest.key
    return item == guest.name or (item in hosts and item == guest.host)


def select(guests: Sequence[Guest], selection: Any, hosts: Iterable[str]) -> list[Guest]:
    """The guests a selection names (all without one): each item a host of ``hosts``, ``host/name``, a domain name, a
    pattern (``web*``) or ``~regex``. An item that names no pending guest is not an error (it may be done already)."""
    items = _items(selection, "cpucompat_cycle_select")
    if not items:
        return list(guests)
    known = set(hosts)
    return [g for g in guests if any(_matches(i, g, known) for i in items)]


def anti_affinity(groups: Any) -> list[list[str]]:
    """``cpucompat_cycle_anti_affinity``: a list of lists of domains (``name`` or ``host/name``) never down together."""
    if groups is None or groups == []:
        return []
    if not isinstance(groups, Sequence) or isinstance(groups, str):
        raise PowerCycleError(f"cpucompat_cycle_anti_affinity: {groups!r} is not a list of lists of domains")
    out = []
    for i, members in enumerate(groups):
        names = _items(members, f"cpucompat_cycle_anti_affinity[{i}]")
        if len(names) < 2:
            raise PowerCycleError(f"cpucompat_cycle_anti_affinity[{i}]: {members!r} names fewer than two domains")
        out.append(names)
    return out


def _groups_of(guest: Guest, groups: Sequence[Sequence[str]]) -> set[int]:
    return {i for i, members in enumerate(groups) if guest.name in members or guest.key in members}


def plan_batches(guests: Sequence[Guest], bounds: Bounds, groups: Sequence[Sequence[str]] = (),
                 skip: Iterable[str] = ()) -> list[list[Guest]]:
    """The guests (less those of ``skip``, by key) in batches, in order: a batch takes each remaining guest that keeps
    it within ``bounds`` and shares no anti-affinity group with a guest already in it; the others wait for the next."""
    skipped = set(skip)
    remaining = [g for g in guests if g.key not in skipped]
    batches: list[list[Guest]] = []
    while remaining:
        batch: list[Guest] = []
        per_host: Counter[str] = Counter()
        taken: set[int] = set()
        rest = []
        for guest in remaining:
            mine = _groups_of(guest, groups)
            if len(batch) < bounds.overall and per_host[guest.host] < bounds.per_host and not mine & taken:
                batch.append(guest)
                per_host[guest.host] += 1
                taken |= mine
            else:
                rest.append(guest)
        batches.append(batch)
        remaining = rest
    return batches


def contract_key(model: str | None, features: Iterable[str]) -> str:
    """Which contract a progress belongs to: its model and features, digested (a raise or a lower starts anew)."""
    text = f"{model}:{','.join(sorted(features))}"
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


@dataclass
class Progress:
    """A group's power-cycle progress: the contract it is for, the guests seen so far, and why the last run stopped."""

    group: str
    contract: str
    guests: dict[str, dict[str, Any]] = field(default_factory=dict)
    runs: list[dict[str, Any]] = field(default_factory=list)
    stopped: dict[str, Any] | None = None
    running: dict[str, Any] | None = None  # the run under way: by, started_at, seen_at (epoch seconds of its last write)

    def to_dict(self) -> dict[str, Any]:
        return {"schema": PROGRESS_SCHEMA, "group": self.group, "contract": self.contract, "guests": self.guests,
                "runs": self.runs, "stopped": self.stopped, "running": self.running}

    @classmethod
    def from_dict(cls, doc: Any, where: str) -> Progress:
        if not isinstance(doc, Mapping) or doc.get("schema") != PROGRESS_SCHEMA:
            raise PowerCycleError(f"power-cycle progress {where} is not a {PROGRESS_SCHEMA} document; move it aside to start anew")
        guests, runs = doc.get("guests"), doc.get("runs")
        if not isinstance(guests, Mapping) or not isinstance(runs, list) or not isinstance(doc.get("contract"), str):
            raise PowerCycleError(f"power-cycle progress {where}: guests, runs or contract missing; move it aside to start anew")
        return cls(str(doc.get("group")), doc["contract"], {str(k): dict(v) for k, v in guests.items()}, list(runs),
                   doc.get("stopped"), doc.get("running"))


LEASE = 3600.0  # seconds after its last write that a run under way keeps the group to itself


def claim(progress: Progress, by: str, at: str, now: float, lease: float = LEASE, takeover: bool = False) -> None:
    """This run takes the group's power cycle; refused while another run under way wrote within ``lease`` seconds
    (``takeover``: the operator says that run is gone)."""
    other = progress.running
    if other and not takeover and now - float(other.get("seen_at") or 0) < lease:
        raise PowerCycleError(f"the power cycle of group {progress.group} is under way: started by {other.get('by')} at "
                              f"{other.get('started_at')}, last recorded {now - float(other.get('seen_at') or 0):.0f} s ago; "
                              f"let it finish (or, if that run is gone, -e cpucompat_cycle_takeover=true)")
    progress.running = {"by": by, "started_at": at, "seen_at": now}


def current(stored: Progress | None, group: str, key: str) -> Progress:
    """The progress this run continues: the stored one when it is for this contract, else a new one."""
    if stored is not None and stored.contract == key:
        return stored
    return Progress(group, key)


def cycled(progress: Progress) -> set[str]:
    """The guests already shut down and started for this contract: never again."""
    return {k for k, g in progress.guests.items() if g.get("state") in CYCLED}


def record(progress: Progress, host: str, batch: int, results: Sequence[Mapping[str, Any]], at: str) -> list[str]:
    """A host's part of a batch into the progress (each guest's state, times and CPUs); the guests whose health gate
    failed, named ``host/name`` (the run stops there)."""
    failed = []
    for r in results:
        state = r.get("state")
        if state not in STATES:
            raise PowerCycleError(f"host {host}: domain {r.get('name')!r} came back in state {state!r}, not one of {', '.join(STATES)}")
        key = f"{host}/{r['name']}"
        progress.guests[key] = {**dict(r), "host": host, "batch": batch, "recorded_at": at}
        if state == "gate-failed":
            failed.append(key)
    if failed and progress.stopped is None:
        why = "; ".join(f"{k}: {progress.guests[k].get('why') or 'its health gate failed'}" for k in failed)
        progress.stopped = {"at": at, "batch": batch, "guests": failed, "why": why}
    return failed
