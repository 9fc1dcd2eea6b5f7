# Copyright (c) 2026 cpucompat.cluster contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Tiers: several CPU levels in one group. Private.

A group may define tiers (the group variable ``cpucompat_tiers``)::

    cpucompat_tiers:
      base: auto                          # the group's contract of today: spans every host of the group
      avx512: {level: Cascadelake-Server, hosts: "avx512_hosts"}   # an inventory group, host names or glob patterns

The base tier IS the group's contract (the store key ``<group>``, unchanged: a group without tiers reads and writes as
before). Each other tier is a contract of its own under the store key ``<group>@<tier>``, whose hosts are the tier's:
pinned on first use (at its ``level``, or the best every host of the tier runs), frozen until an operator changes it,
admitted, quarantined, raised and lowered like a group's (``contract``, ``change_contract -e cpucompat_group=<group>@<tier>``).
A tier's CPU is therefore at most what every host of the tier runs: a level a tier host cannot run is refused naming the
host and what it lacks (``engine/_level``).

A domain chooses its tier by an operator variable (``cpucompat_domain_tiers: {domain: tier}``, also ``host/domain``),
else by the ``tier`` attribute of the collection's element in its metadata (written by the deploy with the tier's stamp,
or by the operator: ``<cpucompat:cpu tier="avx512"/>``), else it is in the base tier. A domain whose host is not a host
of its tier is named, never given a lower CPU; a migration is allowed only to hosts of the domain's tier.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from .._errors import InputError
from ..deploy._stamp import SEPARATOR, TIER_NAME, base_group, contract_key
from ._domain import Domain

BASE = "base"

__all__ = ["BASE", "SEPARATOR", "Placement", "Tier", "TierError", "Tiers", "base_group", "contract_args", "named", "parse_tiers", "tier_key",
           "title"]


class TierError(InputError):
    """The tiers of a group are malformed, name hosts outside the group, or a domain's choice cannot be honoured."""


def tier_key(group: str, tier: str) -> str:
    """The store key (and contract group) of a tier: the group's own for the base tier."""
    return contract_key(group, None if tier == BASE else tier)


def title(key: str) -> str:
    """How a page names a contract key: ``Group g``, or ``Tier t of group g`` for a tier beyond the base."""
    group, _sep, tier = key.partition(SEPARATOR)
    return f"Tier {tier} of group {group}" if tier else f"Group {group}"


def named(key: str) -> str:
    """A contract key in a sentence: ``group g``, or ``tier t of group g``."""
    said = title(key)
    return said[0].lower() + said[1:]


def contract_args(key: str) -> str:
    """The playbook variables that choose a contract key: ``-e cpucompat_group=g`` (and ``-e cpucompat_contract_tier=t``
    for a tier beyond the base, which change_contract and rebuild_contract take)."""
    group, _sep, tier = key.partition(SEPARATOR)
    return f"-e cpucompat_group={group}" + (f" -e cpucompat_contract_tier={tier}" if tier else "")


@dataclass(frozen=True)
class Tier:
    group: str
    name: str
    level: str | None  # None: the best every host of the tier runs (the base tier: the group's contract as today)
    hosts: tuple[str, ...]

    @property
    def key(self) -> str:
        return tier_key(self.group, self.name)

    def describe(self) -> dict[str, Any]:
        """What a report says of the tier beside its contract's section: its group, name, hosts and chosen level."""
        return {"group": self.group, "name": self.name, "hosts": list(self.hosts), "level": self.level}


@dataclass(frozen=True)
class Placement:
    """The domains of a group sorted by tier: per tier key its domains, the reasons of those that cannot get their
    tier's CPU, and host -> {domain: tier key} for the domains beyond the base."""

    listed: dict[str, list[Domain]]
    misplaced: list[str]
    assigned: dict[str, dict[str, str]]


@dataclass(frozen=True)
class Tiers:
    """A group's tiers (the base first) and the operator's choices of tier per domain."""

    group: str
    tiers: tuple[Tier, ...]
    chosen: Mapping[str, str] = field(default_factory=dict)  # domain or host/domain -> tier (cpucompat_domain_tiers)

    @property
    def names(self) -> list[str]:
        return [t.name for t in self.tiers]

    @cached_property
    def _by_name(self) -> dict[str, tuple[Tier, frozenset[str]]]:
        return {t.name: (t, frozenset(t.hosts)) for t in self.tiers}

    def tier(self, name: str) -> Tier:
        if name not in self._by_name:
            raise TierError(f"group {self.group} has no tier {name!r} (its tiers: {', '.join(self.names)})")
        return self._by_name[name][0]

    def _runs(self, tier: str, host: str) -> bool:
        return tier in self._by_name and host in self._by_name[tier][1]

    def sort(self, domains: Sequence[Domain]) -> Placement:
        """The domains per tier key, the misplaced ones named, and host -> {domain: tier key} beyond the base tier (what
        the deploy gives them), at once: each domain's tier read once."""
        listed: dict[str, list[Domain]] = {t.key: [] for t in self.tiers}
        reasons: list[str] = []
        assigned: dict[str, dict[str, str]] = {}
        for dom in domains:
            tier = self.tier_of(dom)
            known, runs = tier in self._by_name, self._runs(tier, dom.host)
            if known and runs:
                listed[tier_key(self.group, tier)].append(dom)
            if known and tier != BASE:
                assigned.setdefault(dom.host, {})[dom.name] = tier_key(self.group, tier)
            if (not known or not runs) and not dom.excluded and dom.persistent:
                reasons.append(self._why(dom, tier))
        return Placement(listed, reasons, assigned)

    def _why(self, dom: Domain, tier: str) -> str:
        if tier not in self._by_name:
            return (f"domain {dom.name} on {dom.host} chooses tier {tier!r}, which group {self.group} does not define "
                    f"(its tiers: {', '.join(self.names)})")
        return (f"domain {dom.name} on {dom.host} is in tier {tier} of group {self.group}, but {dom.host} is not a host of "
                f"that tier (its hosts: {', '.join(self.tier(tier).hosts)}): it is not given a lower CPU; move it to a host "
                "of the tier, or choose its tier with cpucompat_domain_tiers")

    @property
    def extra(self) -> list[Tier]:
        """The tiers beyond the base, each a contract of its own."""
        return [t for t in self.tiers if t.name != BASE]

    def tier_of(self, domain: Domain) -> str:
        """The tier a domain chose: the operator's variable, else its metadata's ``tier``, else the base."""
        for key in (domain.key, domain.name):
            if key in self.chosen:
                return self.chosen[key]
        return domain.tier or BASE

    def split(self, domains: Sequence[Domain]) -> dict[str, list[Domain]]:
        """The listed domains per tier key; every tier key is present. A domain naming an unknown tier, or on a host that
        is not its tier's, stays in none (:meth:`sort` names it)."""
        return self.sort(domains).listed

    def allowed_targets(self, domain: Domain) -> tuple[str, tuple[str, ...]] | None:
        """The tier of a domain beyond the base and the hosts it may move to; None for a base-tier domain."""
        tier = self.tier_of(domain)
        if tier == BASE or tier not in self.names:
            return None
        return tier, self.tier(tier).hosts


def _hosts_of(tier: str, pattern: Any, group: str, members: Sequence[str], inventory: Mapping[str, Sequence[str]]) -> tuple[str, ...]:
    """The hosts a tier's ``hosts`` names: inventory groups, host names or glob patterns, separated by ``,`` or ``:``;
    every host must be a host of the group."""
    if isinstance(pattern, (list, tuple)):
        parts = [str(p) for p in pattern]
    elif isinstance(pattern, str) and pattern.strip():
        parts = [p for p in re.split(r"[,:]", pattern) if p.strip()]
    else:
        raise TierError(f"tier {tier} of group {group}: 'hosts' must name an inventory group, hosts or patterns, got {pattern!r}")
    chosen: dict[str, None] = {}
    for part in (p.strip() for p in parts):
        if part in inventory:
            found = list(inventory[part])
        elif any(c in part for c in "*?["):
            found = [h for h in members if fnmatch.fnmatchcase(h, part)]
        else:
            found = [part]
        if not found:
            raise TierError(f"tier {tier} of group {group}: {part!r} matches no host of the group")
        chosen.update(dict.fromkeys(found))
    outside = sorted(h for h in chosen if h not in members)
    if outside:
        raise TierError(f"tier {tier} of group {group} names hosts that are not in the group: {', '.join(outside)} (the "
                        "base tier spans the group; every tier is a part of it)")
    return tuple(h for h in members if h in chosen)


def parse_tiers(group: str, value: Any, members: Sequence[str], inventory: Mapping[str, Sequence[str]],
                chosen: Any = None) -> Tiers | None:
    """The group's tiers from ``cpucompat_tiers`` (None or empty: no tiers) and ``cpucompat_domain_tiers``."""
    if value in (None, "", {}):
        if chosen:
            raise TierError(f"cpucompat_domain_tiers chooses tiers, but group {group} defines none (cpucompat_tiers)")
        return None
    if not isinstance(value, Mapping):
        raise TierError(f"cpucompat_tiers of group {group} must map tier names to their level and hosts, got {value!r}")
    base = value.get(BASE, "auto")
    if base not in ("auto", None) and not (isinstance(base, Mapping) and set(base) <= {"level"}):
        raise TierError(f"tier base of group {group} spans the group: it is 'auto' (the group's contract) or "
                        f"{{level: ...}} (cpucompat_contract_level), got {base!r}")
    tiers = [Tier(group, BASE, base.get("level") if isinstance(base, Mapping) else None, tuple(members))]
    for name, spec in value.items():
        if name == BASE:
            continue
        if not isinstance(name, str) or not TIER_NAME.match(name):
            raise TierError(f"tier name {name!r} of group {group}: letters, digits, _ and - only")
        if not isinstance(spec, Mapping) or "hosts" not in spec or not set(spec) <= {"level", "hosts"}:
            raise TierError(f"tier {name} of group {group} must be {{level: <model or x86-64-vN>, hosts: <group or "
                            f"pattern>}}, got {spec!r}")
        level = spec.get("level")
        if level is not None and (not isinstance(level, str) or not level.strip()):
            raise TierError(f"tier {name} of group {group}: level must be a CPU level (Cascadelake-Server, x86-64-v4), "
                            f"got {level!r}")
        hosts = _hosts_of(name, spec["hosts"], group, members, inventory)
        tiers.append(Tier(group, name, level.strip() if level else None, hosts))
    choices = chosen or {}
    if not isinstance(choices, Mapping):
        raise TierError(f"cpucompat_domain_tiers must map domains to tiers, got {choices!r}")
    names = {t.name for t in tiers}
    unknown = sorted(f"{d} -> {t}" for d, t in choices.items() if t not in names)
    if unknown:
        raise TierError(f"cpucompat_domain_tiers names tiers group {group} does not define: {', '.join(unknown)} "
                        f"(its tiers: {', '.join(sorted(names))})")
    return Tiers(group, tuple(tiers), {str(k): str(v) for k, v in choices.items()})
