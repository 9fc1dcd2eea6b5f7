# Copyright (c) 2026 cpucompat.cluster contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""A listed libvirt domain as a typed value, built once from a domain_cpu_info entry. Private.

A :class:`Domain` carries what every walk over the listed domains reads: its host and name, whether it runs and is
persistent, the ``<cpu>`` of its definition and of the running guest (their text and their :class:`CpuSpec`, each
distinct text parsed once per run), the contract stamp a deploy left (``deploy/_stamp``), the tier its metadata chose and
why the deploy spares it. A ``<cpu>`` that does not read raises its CpuXmlError (naming the domain) only where it is
read: one unreadable domain does not stop a walk. Domains with the same two ``<cpu>`` texts share one
:class:`DomainCpus` (fleets run a few CPUs): what depends on the CPUs alone is worked out once for all of them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from .._errors import CpuXmlError
from ..deploy._stamp import Stamp
from ..render._cpuspec import CpuSpec

__all__ = ["Domain", "DomainCpus", "domains_of", "spared"]


def spared(entry: Mapping[str, Any]) -> str | None:
    """Why the deploy never changes this domain, from its listing (domain_cpu_info); None when it may."""
    if entry.get("nova"):
        return "OpenStack Nova manages it: give Nova the contract CPU (nova.conf)"
    if entry.get("opted_out"):
        return "opted out in its metadata (<cpucompat:cpu manage='no'/>)"
    if entry.get("excluded"):
        return "excluded by the domain selection (cpucompat_domains.exclude)"
    return None


def _spec(text: str | None, specs: dict[str, CpuSpec | None]) -> CpuSpec | None:
    """The spec of a ``<cpu>`` text, once per text; None without a text or when it does not read (read again where it
    is needed, so that the error names the domain)."""
    if not text:
        return None
    if text not in specs:
        try:
            specs[text] = CpuSpec.parse(text)
        except CpuXmlError:
            specs[text] = None
    return specs[text]


@dataclass(frozen=True, eq=False)
class DomainCpus:
    """The two ``<cpu>`` of a domain: its definition's and the running guest's (as listed: the live one may be listed
    for a guest that is shut off), their text and their spec (None: no text, or it does not read)."""

    cpu_xml: str | None
    live_cpu_xml: str | None
    parsed: CpuSpec | None
    live_parsed: CpuSpec | None


_NEW, _SET = object.__new__, object.__setattr__


class _Seen:
    """What one run has read already: each distinct pair of ``<cpu>`` texts, each distinct stamp."""

    def __init__(self) -> None:
        self.specs: dict[str, CpuSpec | None] = {}
        self.cpus: dict[tuple[str | None, str | None], DomainCpus] = {}
        self.stamps: dict[tuple[Any, ...], Stamp] = {}

    def pair(self, cpu_xml: str | None, live_xml: str | None) -> DomainCpus:
        found = self.cpus.get((cpu_xml, live_xml))
        if found is None:
            found = DomainCpus(cpu_xml, live_xml, _spec(cpu_xml, self.specs), _spec(live_xml, self.specs))
            self.cpus[(cpu_xml, live_xml)] = found
        return found

    def stamp(self, value: Any) -> Stamp | None:
        if not isinstance(value, Mapping):
            return None
        get = value.get
        key = (get("group"), get("generation"), get("digest"), get("pinned_at"), get("tier"))
        found = self.stamps.get(key)
        if found is None or (found.level is not get("level") and found.level != (get("level") or {})):
            found = Stamp.of(value)
            if found is not None:
                self.stamps[key] = found
        return found


@dataclass(frozen=True, eq=False)
class Domain:
    """One listed domain of one host (domain_cpu_info's entry, read once)."""

    host: str
    name: str
    active: bool
    cpus: DomainCpus
    stamp: Stamp | None
    tier: str | None  # the tier its metadata chose: the stamp's, else the operator's <cpucompat:cpu tier=...>
    spared: str | None  # why the deploy never changes it (Nova, opted out, excluded); None when it may
    entry: Mapping[str, Any]  # the listing as it came (Hyper-V, TSC frequency, machine type, persistent, excluded)

    @classmethod
    def of(cls, host: str, entry: Mapping[str, Any]) -> Domain:
        """The domain of a domain_cpu_info entry on ``host`` (:func:`domains_of` reads a whole listing)."""
        return domains_of({host: [entry]})[0]

    @property
    def key(self) -> str:
        """``host/name``, as reports key a domain."""
        return f"{self.host}/{self.name}"

    @property
    def persistent(self) -> bool:
        return bool(self.entry.get("persistent", True))

    @property
    def excluded(self) -> bool:
        return bool(self.entry.get("excluded"))

    @property
    def cpu_xml(self) -> str | None:
        return self.cpus.cpu_xml

    @property
    def live_cpu_xml(self) -> str | None:
        return self.cpus.live_cpu_xml

    @property
    def cpu(self) -> CpuSpec | None:
        """The definition's ``<cpu>`` (None: it has none); a ``<cpu>`` that does not read raises its CpuXmlError."""
        cpus = self.cpus
        if cpus.parsed is None and cpus.cpu_xml:  # it does not read: the parser says why, naming the domain
            return CpuSpec.parse(cpus.cpu_xml, f"domain {self.key}: <cpu>")
        return cpus.parsed

    @property
    def live_cpu(self) -> CpuSpec | None:
        """The running guest's ``<cpu>`` as listed (None: libvirt gave none); one that does not read raises."""
        cpus = self.cpus
        if cpus.live_parsed is None and cpus.live_cpu_xml:
            return CpuSpec.parse(cpus.live_cpu_xml, f"domain {self.key}: live <cpu>")
        return cpus.live_parsed

    @property
    def runs_live_cpu(self) -> bool:
        """The guest runs and libvirt gives its live ``<cpu>``."""
        return self.active and self.cpus.live_cpu_xml is not None

    @property
    def moving_cpu_xml(self) -> str | None:
        """The CPU that moves with the guest: the live ``<cpu>`` where it runs, else its definition's."""
        return self.cpus.live_cpu_xml or self.cpus.cpu_xml

    @property
    def moving_cpu(self) -> CpuSpec | None:
        """:attr:`moving_cpu_xml`, parsed (None where it does not read)."""
        return self.cpus.live_parsed if self.cpus.live_cpu_xml else self.cpus.parsed


def domains_of(domains: Mapping[str, Sequence[Mapping[str, Any]]]) -> list[Domain]:
    """Every listed domain of every host (host -> domain_cpu_info entries), hosts sorted, each host's in its order."""
    read = _Seen()
    out, new, set_all = [], _NEW, _SET
    for host, entries in sorted(domains.items()):
        for entry in entries:
            get = entry.get
            stamp = read.stamp(get("stamp")) if get("stamp") else None
            tier = (stamp.tier if stamp is not None else None) or get("tier")
            texts = (get("cpu_xml") or None, get("live_cpu_xml") or None)
            # 10,000 domains in a fleet of 1,000 hosts: each Domain's fields are set at once, where the generated
            # __init__ of a frozen dataclass sets them one by one
            domain = new(Domain)
            set_all(domain, "__dict__", {
                "host": host, "name": str(entry["name"]), "active": bool(get("active")),
                "cpus": read.pair(*texts), "stamp": stamp, "tier": str(tier) if tier else None,
                "spared": spared(entry), "entry": entry})
            out.append(domain)
    return out
