# Copyright (c) 2026 cpucompat.cluster contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The contract stamp in a domain's ``<metadata>``: its one format, read and written, and the one rule for the names it
carries (a group, a tier, the contract key ``group@tier``). Private to the collection.

The stamp, ``<cpucompat:cpu group=... generation=... digest=... pinned-at=... tier=...>`` with the pinned level as JSON
text, says which contract a domain was deployed from: a lost contract store is detected from it, and rebuilt
(``contract/_stamps.py`` reads it through :class:`Stamp`). It is written beside other applications' metadata, every other
byte of the definition unchanged (``_splice``).
"""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from xml.sax.saxutils import escape, quoteattr

from .._errors import LibvirtError
from ._splice import metadata_child, top_level_spans

# The collection's own namespace in a domain's <metadata>: <cpucompat:cpu manage='no'/> keeps the deploy away.
CPUCOMPAT_NS = "https://github.com/cpucompat/cluster/xmlns/1"
# OpenStack Nova's namespaces (nova/virt/libvirt/config.py: http://openstack.org/xmlns/libvirt/nova/1.0, 1.1, ...).
NOVA_NS_PREFIX = "http://openstack.org/xmlns/libvirt/nova/"

# The one naming rule, for a group (the contract store keys its contract by it, a stamp carries it), a tier, and the
# contract key of a tier beyond the base (group@tier). A group name is any inventory group's name of at most 200
# characters that does not start with '.' and has no '/' (a contract is a file of that name in the file store). A stamp
# writes it as an XML attribute (escaped), so a stamp adds one constraint: no character XML 1.0 cannot carry (control
# characters other than tab, newline and carriage return; surrogates; U+FFFE, U+FFFF).
GROUP_NAME_MAX = 200
TIER_NAME = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
SEPARATOR = "@"
_DIGEST = re.compile(r"^sha256:[0-9a-f]{64}$")
_NOT_XML = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


def group_name_problem(group: Any) -> str | None:
    """Why ``group`` cannot name a group (its contract in the store, its stamp); None when it can. The rule the contract
    store and the stamps share (:func:`stamp_group_problem` adds the stamp's own constraint)."""
    if not isinstance(group, str) or not group:
        return "a group name is a non-empty string"
    if len(group) > GROUP_NAME_MAX:
        return f"a group name has at most {GROUP_NAME_MAX} characters"
    if "/" in group:
        return "a group name has no '/' (the file store keeps a contract in a file of the group's name)"
    if group.startswith("."):
        return "a group name does not start with '.' (the file store's own files and folders do)"
    return None


def stamp_group_problem(group: Any) -> str | None:
    """:func:`group_name_problem`, and a stamp's own constraint: every character one XML 1.0 attribute can carry."""
    problem = group_name_problem(group)
    if problem is None and _NOT_XML.search(group):
        problem = "a stamp cannot carry it: it has a character XML 1.0 cannot (a control character)"
    return problem


def contract_key(group: str, tier: str | None) -> str:
    """The contract a group's tier is held under: the group's own without a tier, else ``group@tier``."""
    return f"{group}{SEPARATOR}{tier}" if tier else group


def base_group(key: str) -> str:
    """The group a contract key belongs to (``g@avx512`` -> ``g``)."""
    return key.split(SEPARATOR, 1)[0]


@dataclass(frozen=True)
class Stamp:
    """The contract a domain was deployed from, as its metadata says."""

    group: str | None
    generation: int
    digest: str
    pinned_at: str | None = None
    level: Mapping[str, Any] = field(default_factory=dict)
    tier: str | None = None

    @classmethod
    def read(cls, attrs: Any, text: str) -> Stamp:
        """A stamp's attributes and level, checked for shape (the controller validates the level's names)."""
        group, digest = str(attrs.get("group")), str(attrs.get("digest"))
        try:
            generation = int(str(attrs.get("generation")))
            level = json.loads(text)
        except ValueError as exc:
            raise ValueError(f"the cpucompat stamp does not read: {exc}") from None
        problem = stamp_group_problem(group)
        if problem is not None:
            raise ValueError(f"the cpucompat stamp does not read: group {group!r} malformed ({problem})")
        if not _DIGEST.match(digest) or generation < 1 or not isinstance(level, dict):
            raise ValueError(f"the cpucompat stamp of group {group} does not read: generation, digest or level malformed")
        tier = attrs.get("tier")
        if tier is not None and not TIER_NAME.match(str(tier)):
            raise ValueError(f"the cpucompat stamp does not read: tier {tier!r} malformed")
        return cls(group, generation, digest, attrs.get("pinned-at"), level, str(tier) if tier else None)

    @classmethod
    def of(cls, value: Any) -> Stamp | None:
        """A stamp from its listing form (domain_cpu_info's ``stamp``, as :meth:`to_dict` writes it); None without one."""
        if not isinstance(value, Mapping):
            return None
        group = value.get("group")
        return cls(str(group) if group is not None else None, int(value.get("generation") or 0), str(value.get("digest")),
                   value.get("pinned_at"), value.get("level") or {}, str(value["tier"]) if value.get("tier") else None)

    def to_dict(self) -> dict[str, Any]:
        return {"group": self.group, "generation": self.generation, "digest": self.digest, "pinned_at": self.pinned_at,
                "level": self.level, **({"tier": self.tier} if self.tier else {})}

    @property
    def owner(self) -> str:
        """The contract the stamp names: its group's, or (with a tier) the tier's ``group@tier``."""
        return contract_key(str(self.group), self.tier)

    def key(self) -> tuple[Any, ...]:
        """What makes two stamps the same for the deploy (the pinned time and the level follow the digest)."""
        return (self.group, self.tier, self.generation, self.digest)


def read_stamp(attrs: Any, text: str) -> dict[str, Any]:
    """A stamp's attributes and level as the listing carries them (:meth:`Stamp.read`)."""
    return Stamp.read(attrs, text).to_dict()


def stamp_xml(stamp: Any) -> str:
    """The stamp element for ``stamp`` (group, generation, digest, pinned_at, level), checked as :func:`read_stamp`
    reads it."""
    Stamp.read({"group": stamp.get("group"), "generation": stamp.get("generation"), "digest": stamp.get("digest"),
                "tier": stamp.get("tier") or None}, json.dumps(stamp.get("level")))
    level = json.dumps(stamp["level"], sort_keys=True, separators=(",", ":"))
    return (f"<cpucompat:cpu xmlns:cpucompat={quoteattr(CPUCOMPAT_NS)} group={quoteattr(str(stamp['group']))} "
            f"generation='{int(stamp['generation'])}' digest={quoteattr(str(stamp['digest']))}"
            + (f" pinned-at={quoteattr(str(stamp['pinned_at']))}" if stamp.get("pinned_at") else "")
            + (f" tier={quoteattr(str(stamp['tier']))}" if stamp.get("tier") else "")
            + f">{escape(level)}</cpucompat:cpu>")


def stamp_key(stamp: Any) -> tuple[Any, ...] | None:
    """:meth:`Stamp.key` of a stamp in its listing form; None without one."""
    found = Stamp.of(stamp) if stamp else None
    return found.key() if found is not None else None


def manager(domain_xml: str) -> dict[str, Any]:
    """Who else decides a domain's CPU, from its <metadata>: ``nova`` (Nova rewrites the definition at every start),
    ``opted_out`` (the domain's own <cpucompat:cpu manage='no'/>), and the contract ``stamp`` a deploy left (None:
    none, or one that does not read; ``stamp_error`` says why)."""
    out: dict[str, Any] = {"nova": False, "opted_out": False, "stamp": None, "stamp_error": None, "tier": None}
    try:
        root = ET.fromstring(domain_xml)
    except ET.ParseError:
        return out
    metadata = root.find("metadata")
    children = list(metadata) if metadata is not None else []
    out["nova"] = any(isinstance(c.tag, str) and c.tag.startswith("{" + NOVA_NS_PREFIX) and c.tag.endswith("}instance")
                      for c in children)
    mark = next((c for c in children if c.tag == f"{{{CPUCOMPAT_NS}}}cpu"), None)
    if mark is not None:
        out["opted_out"] = mark.get("manage") == "no"
        out["tier"] = mark.get("tier")  # the tier the domain chose (contract/_tiers): the deploy's stamp, or the operator's
        if mark.get("group") is not None:
            try:
                out["stamp"] = read_stamp(mark.attrib, mark.text or "")
            except ValueError as exc:
                out["stamp_error"] = str(exc)
    return out


def replace_stamp(domain_xml: str, stamp: Any, domain: str) -> str:
    """The definition with the collection's stamp set to ``stamp`` in its <metadata> (created after <uuid> or <name>
    when missing); every other byte unchanged."""
    data = domain_xml.encode()
    meta, child = metadata_child(data, CPUCOMPAT_NS, "cpu")
    if meta is None:
        spans = top_level_spans(data, f"domain {domain} definition")
        anchor = spans.get("uuid") or spans.get("name")
        if anchor is None:
            raise LibvirtError(f"domain {domain}: its definition has no <name> to place <metadata> after")
        ind = anchor.indent.decode()
        text = f"\n{ind}<metadata>\n{ind}  {stamp_xml(stamp)}\n{ind}</metadata>".encode()
        return (data[:anchor.end] + text + data[anchor.end:]).decode()
    if child is not None:
        return (data[:child[0]] + stamp_xml(stamp).encode() + data[child[1]:]).decode()
    inner = data[meta.start:meta.end]
    if inner.endswith(b"/>"):  # <metadata/>
        ind = meta.indent.decode()
        text = f"<metadata>\n{ind}  {stamp_xml(stamp)}\n{ind}</metadata>".encode()
        return (data[:meta.start] + text + data[meta.end:]).decode()
    close = meta.start + inner.rindex(b"</")
    ind = meta.indent.decode()
    return (data[:close] + f"  {stamp_xml(stamp)}\n{ind}".encode() + data[close:]).decode()
