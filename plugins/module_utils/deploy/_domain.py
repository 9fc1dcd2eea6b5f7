# Copyright (c) 2026 cpucompat.cluster contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The <cpu> element of libvirt domain definitions: read, compare, splice, apply. Private to the collection.

A definition is changed by replacing the bytes of its ``<cpu>`` element (and of the collection's own stamp in its
``<metadata>``) and nothing else: other applications' metadata (``<nova:instance xmlns:nova=...>``),
``qemu:commandline`` and every other byte stay exactly as libvirt wrote them. Both change in one ``defineXML``: a
definition is never left with the new ``<cpu>`` and the old stamp, or the other way round.

The stamp, ``<cpucompat:cpu group=... generation=... digest=... pinned-at=...>`` with the pinned level as JSON text,
says which contract a domain was deployed from: a lost contract store is detected from it, and rebuilt.
:func:`apply_cpu` takes an open libvirt connection and never changes anything before it has compared the desired
``<cpu>`` with the one in the domain's inactive definition, so check mode and the real run report the same ``changed``.
"""

from __future__ import annotations

import contextlib
import datetime
import json
import os
import re
from xml.sax.saxutils import escape, quoteattr
import xml.etree.ElementTree as ET
from xml.parsers import expat
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from ..render._cpuspec import CpuSpec
from .._errors import CpuXmlError, LibvirtError

# libvirt writes <cpu> after these; the first one found (from the end) anchors a <cpu> a definition did not have.
_ANCHORS = ("features", "os", "vcpu", "currentMemory", "memory")
# The collection's own namespace in a domain's <metadata>: <cpucompat:cpu manage='no'/> keeps the deploy away.
CPUCOMPAT_NS = "https://github.com/cpucompat/cluster/xmlns/1"
# OpenStack Nova's namespaces (nova/virt/libvirt/config.py: http://openstack.org/xmlns/libvirt/nova/1.0, 1.1, ...).
NOVA_NS_PREFIX = "http://openstack.org/xmlns/libvirt/nova/"


_DIGEST = re.compile(r"^sha256:[0-9a-f]{64}$")
_GROUP = re.compile(r"^[A-Za-z0-9_.:@+-]{1,200}$")
_TIER = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


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


def read_stamp(attrs: Any, text: str) -> dict[str, Any]:
    """A stamp's attributes and level, checked for shape (the controller validates the level's names)."""
    group, digest = str(attrs.get("group")), str(attrs.get("digest"))
    try:
        generation = int(str(attrs.get("generation")))
        level = json.loads(text)
    except ValueError as exc:
        raise ValueError(f"the cpucompat stamp does not read: {exc}") from None
    if not _GROUP.match(group) or not _DIGEST.match(digest) or generation < 1 or not isinstance(level, dict):
        raise ValueError("the cpucompat stamp does not read: group, generation, digest or level malformed")
    tier = attrs.get("tier")
    if tier is not None and not _TIER.match(str(tier)):
        raise ValueError(f"the cpucompat stamp does not read: tier {tier!r} malformed")
    return {"group": group, "generation": generation, "digest": digest, "pinned_at": attrs.get("pinned-at"), "level": level,
            **({"tier": str(tier)} if tier else {})}


def stamp_xml(stamp: Any, indent: str = "") -> str:
    """The stamp element for ``stamp`` (group, generation, digest, pinned_at, level), checked as :func:`read_stamp`
    reads it."""
    read_stamp({"group": stamp.get("group"), "generation": stamp.get("generation"), "digest": stamp.get("digest"),
                "tier": stamp.get("tier") or None}, json.dumps(stamp.get("level")))
    level = json.dumps(stamp["level"], sort_keys=True, separators=(",", ":"))
    return (f"<cpucompat:cpu xmlns:cpucompat={quoteattr(CPUCOMPAT_NS)} group={quoteattr(str(stamp['group']))} "
            f"generation='{int(stamp['generation'])}' digest={quoteattr(str(stamp['digest']))}"
            + (f" pinned-at={quoteattr(str(stamp['pinned_at']))}" if stamp.get("pinned_at") else "")
            + (f" tier={quoteattr(str(stamp['tier']))}" if stamp.get("tier") else "")
            + f">{escape(level)}</cpucompat:cpu>")


def _stamp_key(stamp: Any) -> tuple[Any, ...] | None:
    if not stamp:
        return None
    return (stamp.get("group"), stamp.get("tier") or None, int(stamp.get("generation") or 0), stamp.get("digest"))


def _metadata_spans(xml: bytes) -> tuple[_Span | None, tuple[int, int] | None]:
    """The <metadata> element and, inside it, the byte span of the collection's own <cpucompat:cpu> child."""
    meta = _top_level_spans(xml, "domain definition").get("metadata")
    if meta is None:
        return None, None
    parser = expat.ParserCreate(namespace_separator=" ")
    found: list[tuple[int, int]] = []
    depth = 0
    begin = -1

    def start(tag: str, _attrs: Any) -> None:
        nonlocal depth, begin
        depth += 1
        if depth == 2 and tag == f"{CPUCOMPAT_NS} cpu" and not found:
            begin = parser.CurrentByteIndex

    def end(tag: str) -> None:
        nonlocal depth
        if depth == 2 and tag == f"{CPUCOMPAT_NS} cpu" and begin >= 0 and not found:
            at = parser.CurrentByteIndex
            close = xml.index(b">", meta.start + at) + 1 if xml.startswith(b"</", meta.start + at) \
                else _empty_tag_end(xml, meta.start + begin)
            found.append((meta.start + begin, close))
        depth -= 1

    parser.StartElementHandler = start
    parser.EndElementHandler = end
    try:
        parser.Parse(xml[meta.start:meta.end], True)
    except expat.ExpatError as exc:  # a child relying on a namespace declared outside <metadata>
        raise LibvirtError(f"the <metadata> of the definition does not read on its own: {exc}") from exc
    return meta, (found[0] if found else None)


def replace_stamp(domain_xml: str, stamp: Any, domain: str) -> str:
    """The definition with the collection's stamp set to ``stamp`` in its <metadata> (created after <uuid> or <name>
    when missing); every other byte unchanged."""
    data = domain_xml.encode()
    meta, child = _metadata_spans(data)
    if meta is None:
        spans = _top_level_spans(data, f"domain {domain} definition")
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


def skip_reason(domain_xml: str, current: CpuSpec | None, convert_host_cpu: bool) -> str | None:
    """Why the deploy leaves a domain alone (None: it may change it)."""
    found = manager(domain_xml)
    if found["nova"]:
        return ("managed by OpenStack Nova, which rewrites its definition at every start: give Nova the cluster CPU in "
                "nova.conf instead (the cpu_nova renderer)")
    if found["opted_out"]:
        return f"opted out in its metadata (<cpucompat:cpu xmlns:cpucompat='{CPUCOMPAT_NS}' manage='no'/>)"
    if current is not None and current.follows_host and not convert_host_cpu:
        return (f"mode {current.mode}: the guest gets its host's CPU on purpose (nested virtualisation, -march=native); "
                "set convert_host_cpu to put it on the cluster CPU")
    return None


@dataclass(frozen=True)
class _Span:
    start: int
    end: int
    indent: bytes


def _top_level_spans(xml: bytes, what: str) -> dict[str, _Span]:
    """Byte spans of the children of the root element, by tag (the first of each)."""
    parser = expat.ParserCreate()
    spans: dict[str, _Span] = {}
    depth = 0
    opened: dict[int, tuple[str, int]] = {}

    def start(tag: str, _attrs: Any) -> None:
        nonlocal depth
        depth += 1
        if depth == 2:
            opened[depth] = (tag, parser.CurrentByteIndex)

    def end(tag: str) -> None:
        nonlocal depth
        if depth == 2 and tag not in spans:
            begin = opened[2][1]
            at = parser.CurrentByteIndex
            close = xml.index(b">", at) + 1 if xml.startswith(b"</", at) else _empty_tag_end(xml, begin)
            line_start = xml.rfind(b"\n", 0, begin) + 1
            indent = xml[line_start:begin]
            spans[tag] = _Span(begin, close, indent if not indent.strip() else b"")
        depth -= 1

    parser.StartElementHandler = start
    parser.EndElementHandler = end
    try:
        parser.Parse(xml, True)
    except expat.ExpatError as exc:
        raise LibvirtError(f"{what} is not well-formed XML: {exc}") from exc
    return spans


def _empty_tag_end(xml: bytes, begin: int) -> int:
    match = re.compile(rb"""<[^\s/>]+(?:\s+[^\s=/>]+\s*=\s*(?:"[^"]*"|'[^']*'))*\s*/>""").match(xml, begin)
    if match is None:  # expat accepted it, so this cannot happen; refuse rather than guess
        raise LibvirtError("cannot find the end of an empty element in the domain definition")
    return match.end()


def domain_cpu(domain_xml: str, what: str) -> CpuSpec | None:
    """The ``<cpu>`` of a domain definition, or None when it has none."""
    data = domain_xml.encode()
    span = _top_level_spans(data, what).get("cpu")
    return CpuSpec.parse(data[span.start:span.end].decode(), f"{what}: <cpu>") if span else None


def replace_cpu(domain_xml: str, cpu: CpuSpec | None, domain: str) -> str:
    """The definition with its ``<cpu>`` replaced (removed when ``cpu`` is None); every other byte unchanged."""
    data = domain_xml.encode()
    spans = _top_level_spans(data, f"domain {domain} definition")
    old = spans.get("cpu")
    if old is not None:
        start, end, indent = old.start, old.end, old.indent
        if cpu is None:  # remove the element and the line it stood on
            line_start = start - len(indent)
            start, end = (line_start - 1, end) if line_start > 0 and data[line_start - 1:line_start] == b"\n" else (start, end)
            return (data[:start] + data[end:]).decode()
    else:
        if cpu is None:
            return domain_xml
        anchor = next((spans[t] for t in _ANCHORS if t in spans), None)
        if anchor is None:
            raise LibvirtError(f"domain {domain}: its definition has none of {', '.join(_ANCHORS)} to place <cpu> after")
        start = end = anchor.end
        indent = anchor.indent
    text = cpu.to_xml(comments=False).rstrip("\n").replace("\n", "\n" + indent.decode()).encode()
    if old is None:
        text = b"\n" + indent + text
    return (data[:start] + text + data[end:]).decode()


@dataclass
class CpuChange:
    domain: str
    changed: bool
    before: str
    after: str
    active: bool
    backup: str | None = None
    skipped: str | None = None  # why the domain was left alone
    cpu_changed: bool | None = None  # None: as changed (the stamp alone may change, which needs no power cycle)

    @property
    def restart_required(self) -> bool:
        return bool(self.changed if self.cpu_changed is None else self.cpu_changed) and self.active


def _libvirt_error(action: str, domain: str, exc: Exception) -> LibvirtError:
    text = str(exc).strip() or type(exc).__name__
    return LibvirtError(f"{action} domain {domain}: {text}")


def apply_cpu(conn: Any, domain: str, cpu_xml: str | None, *, check_mode: bool, backup_dir: str | None = None,
              convert_host_cpu: bool = False, stamp: Any = None) -> CpuChange:
    """Make the persistent definition of ``domain`` carry ``cpu_xml`` (None: no <cpu> element).

    The comparison happens before anything is written; check mode stops there.
    A running domain gets the new persistent definition only (restart_required): it applies at the guest's next power
    cycle. libvirt replaces a definition atomically: when it refuses the new XML the
    domain keeps exactly the old one. A domain that vanished after it was read
    is not recreated. Domains Nova manages, domains opted out in their metadata and, unless ``convert_host_cpu``,
    host-model and host-passthrough domains are left alone (``skipped`` says why). ``stamp``: the contract the CPU
    comes from, written into the domain's metadata in the same definition.
    """
    import libvirt  # pylint: disable=import-outside-toplevel  # checked by the module with missing_required_lib

    desired = CpuSpec.parse(cpu_xml) if cpu_xml is not None else None
    if stamp is not None:
        try:
            stamp_xml(stamp)
        except ValueError as exc:
            raise LibvirtError(f"domain {domain}: {exc}") from None
    try:
        dom = conn.lookupByName(domain)
        uuid = dom.UUIDString()
        inactive = dom.XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE | libvirt.VIR_DOMAIN_XML_SECURE)
        active = bool(dom.isActive())
        persistent = bool(dom.isPersistent())
    except libvirt.libvirtError as exc:
        raise _libvirt_error("reading", domain, exc) from exc
    if not persistent:
        raise LibvirtError(f"domain {domain} is transient: it has no persistent definition to change")
    current = domain_cpu(inactive, f"domain {domain} definition")
    skipped = skip_reason(inactive, current, convert_host_cpu)
    if skipped is not None:
        return CpuChange(domain, False, _text(current), _text(current), active, skipped=skipped)
    cpu_changed = _key(current) != _key(desired)
    stamp_changed = stamp is not None and _stamp_key(manager(inactive)["stamp"]) != _stamp_key(stamp)
    change = CpuChange(domain, cpu_changed or stamp_changed, _text(current), _text(desired), active, cpu_changed=cpu_changed)
    if not change.changed or check_mode:
        return change
    new_xml = replace_cpu(inactive, desired, domain) if cpu_changed else inactive
    if stamp_changed:
        new_xml = replace_stamp(new_xml, stamp, domain)
    try:
        # Re-check right before writing: defineXML would recreate a vanished domain.
        if conn.lookupByUUIDString(uuid).XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE | libvirt.VIR_DOMAIN_XML_SECURE) != inactive:
            raise LibvirtError(f"domain {domain} changed while its CPU was being updated; nothing was written, run again")
    except libvirt.libvirtError as exc:
        raise _libvirt_error("re-reading (it may have been undefined meanwhile)", domain, exc) from exc
    if backup_dir:  # only now is the change going to be attempted
        change.backup = _write_backup(backup_dir, domain, inactive)
    try:
        conn.defineXMLFlags(new_xml, libvirt.VIR_DOMAIN_DEFINE_VALIDATE)
    except libvirt.libvirtError as exc:
        raise _libvirt_error("libvirt refused the new definition of", domain, exc) from exc
    return change


def _key(cpu: CpuSpec | None) -> tuple[object, ...] | None:
    return cpu.key() if cpu is not None else None


def _text(cpu: CpuSpec | None) -> str:
    """The element for diffs and results: the one writer, without comments."""
    return cpu.to_xml(comments=False) if cpu is not None else ""


def _write_backup(backup_dir: str, domain: str, xml: str) -> str:
    os.makedirs(backup_dir, mode=0o700, exist_ok=True)
    stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y%m%dT%H%M%S.%fZ")
    safe = re.sub(r"[^A-Za-z0-9._-]", "_", domain)
    path = os.path.join(backup_dir, f"{safe}-{stamp}.xml")
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(xml)
    return path


# The transient domains cpu_observe starts for a moment (probe/_observe.DOMAIN_PREFIX): never the deploy's business.
OBSERVE_PREFIX = "cpucompat-observe-"


def _listed(libvirt: Any, dom: Any) -> dict[str, Any] | None:
    """One domain's entry (None for an observation's own transient domain)."""
    persistent = bool(dom.isPersistent())
    if not persistent and dom.name().startswith(OBSERVE_PREFIX):
        return None
    flags = libvirt.VIR_DOMAIN_XML_INACTIVE if persistent else 0
    cpu = domain_cpu(dom.XMLDesc(flags), f"domain {dom.name()} definition")
    active = bool(dom.isActive())
    # A running guest has the CPU of its live definition (host-model expanded there).
    live = domain_cpu(dom.XMLDesc(0), f"domain {dom.name()} live definition") if active else None
    definition = dom.XMLDesc(flags)
    extras = guest_timing(dom.XMLDesc(0 if active else flags))
    return {"name": dom.name(), "uuid": dom.UUIDString(), "active": active,
            "persistent": persistent, "cpu_xml": _text(cpu) or None, "live_cpu_xml": _text(live) or None,
            "machine": machine_type(definition), **manager(definition), **extras}


def list_domains(conn: Any) -> list[dict[str, Any]]:
    """Every domain with its state and the <cpu> of its persistent (or live) definition."""
    import libvirt  # pylint: disable=import-outside-toplevel

    out = []
    try:
        for dom in conn.listAllDomains():
            try:
                entry = _listed(libvirt, dom)
            except libvirt.libvirtError as exc:
                if exc.get_error_code() == libvirt.VIR_ERR_NO_DOMAIN:
                    continue  # gone between the list and its definition (a transient domain destroyed meanwhile)
                raise
            if entry is not None:
                out.append(entry)
    except libvirt.libvirtError as exc:
        raise LibvirtError(f"listing domains: {str(exc).strip()}") from exc
    except CpuXmlError as exc:
        raise LibvirtError(f"listing domains: {exc}") from exc
    return sorted(out, key=lambda d: d["name"])


_MACHINE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


def machine_type(domain_xml: str) -> str | None:
    """The machine type a definition names (``<os><type machine=...>``), as written (pc-q35-7.2, q35, pc, virt)."""
    try:
        node = ET.fromstring(domain_xml).find("./os/type")
    except ET.ParseError:
        return None
    value = node.get("machine") if node is not None else None
    return value if value and _MACHINE.match(value) else None


def guests_machine(domains: list[dict[str, Any]]) -> str | None:
    """The machine type most of the domains use (ties: the first by name); None without any."""
    counts: dict[str, int] = {}
    for dom in domains:
        if dom.get("machine"):
            counts[dom["machine"]] = counts.get(dom["machine"], 0) + 1
    return min(counts, key=lambda m: (-counts[m], m)) if counts else None


def guest_timing(domain_xml: str) -> dict[str, Any]:
    """What else a guest carries across a migration: its Hyper-V enlightenments and a fixed TSC frequency."""
    root = ET.fromstring(domain_xml)
    hyperv = root.find("./features/hyperv")
    hv: dict[str, Any] | None = None
    if hyperv is not None:
        hv = {"mode": hyperv.get("mode", "custom"),
              "features": sorted(c.tag for c in hyperv if isinstance(c.tag, str) and c.get("state", "on") == "on")}
    timer = root.find("./clock/timer[@name='tsc']")
    frequency = timer.get("frequency") if timer is not None else None
    return {"hyperv": hv, "tsc_frequency": int(frequency) if frequency and frequency.isdigit() else None}


@contextlib.contextmanager
def connection(uri: str) -> Iterator[Any]:
    """A libvirt connection to ``uri``, closed on every way out.

    Closing a connection whose daemon has gone away can fail too; that failure is not allowed to hide the error that
    brought us out.
    """
    import libvirt  # pylint: disable=import-outside-toplevel

    try:
        conn = libvirt.open(uri)
    except libvirt.libvirtError as exc:
        raise LibvirtError(f"cannot connect to libvirt at {uri}: {str(exc).strip()}") from exc
    try:
        yield conn
    finally:
        with contextlib.suppress(libvirt.libvirtError):
            conn.close()
