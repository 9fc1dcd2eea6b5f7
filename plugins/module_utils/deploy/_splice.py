# Copyright (c) 2026 cpucompat.cluster contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The byte splice of a libvirt domain definition: where its top-level elements and a metadata child are, and its
``<cpu>`` replaced. Private to the collection.

A definition is changed by replacing the bytes of one element and nothing else: other applications' metadata
(``<nova:instance xmlns:nova=...>``), ``qemu:commandline`` and every other byte stay exactly as libvirt wrote them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any
from xml.parsers import expat

from ..render._cpuspec import CpuSpec
from .._errors import LibvirtError

# libvirt writes <cpu> after these; the first one found (from the end) anchors a <cpu> a definition did not have.
_ANCHORS = ("features", "os", "vcpu", "currentMemory", "memory")


@dataclass(frozen=True)
class Span:
    start: int
    end: int
    indent: bytes


def top_level_spans(xml: bytes, what: str) -> dict[str, Span]:
    """Byte spans of the children of the root element, by tag (the first of each)."""
    parser = expat.ParserCreate()
    spans: dict[str, Span] = {}
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
            close = xml.index(b">", at) + 1 if xml.startswith(b"</", at) else empty_tag_end(xml, begin)
            line_start = xml.rfind(b"\n", 0, begin) + 1
            indent = xml[line_start:begin]
            spans[tag] = Span(begin, close, indent if not indent.strip() else b"")
        depth -= 1

    parser.StartElementHandler = start
    parser.EndElementHandler = end
    try:
        parser.Parse(xml, True)
    except expat.ExpatError as exc:
        raise LibvirtError(f"{what} is not well-formed XML: {exc}") from exc
    return spans


def empty_tag_end(xml: bytes, begin: int) -> int:
    match = re.compile(rb"""<[^\s/>]+(?:\s+[^\s=/>]+\s*=\s*(?:"[^"]*"|'[^']*'))*\s*/>""").match(xml, begin)
    if match is None:  # expat accepted it, so this cannot happen; refuse rather than guess
        raise LibvirtError("cannot find the end of an empty element in the domain definition")
    return match.end()


def domain_cpu(domain_xml: str, what: str) -> CpuSpec | None:
    """The ``<cpu>`` of a domain definition, or None when it has none."""
    data = domain_xml.encode()
    span = top_level_spans(data, what).get("cpu")
    return CpuSpec.parse(data[span.start:span.end].decode(), f"{what}: <cpu>") if span else None


def replace_cpu(domain_xml: str, cpu: CpuSpec | None, domain: str) -> str:
    """The definition with its ``<cpu>`` replaced (removed when ``cpu`` is None); every other byte unchanged."""
    data = domain_xml.encode()
    spans = top_level_spans(data, f"domain {domain} definition")
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


def metadata_child(xml: bytes, namespace: str, local: str) -> tuple[Span | None, tuple[int, int] | None]:
    """The <metadata> element and, inside it, the byte span of its first child ``local`` in ``namespace``."""
    meta = top_level_spans(xml, "domain definition").get("metadata")
    if meta is None:
        return None, None
    parser = expat.ParserCreate(namespace_separator=" ")
    wanted = f"{namespace} {local}"
    found: list[tuple[int, int]] = []
    depth = 0
    begin = -1

    def start(tag: str, _attrs: Any) -> None:
        nonlocal depth, begin
        depth += 1
        if depth == 2 and tag == wanted and not found:
            begin = parser.CurrentByteIndex

    def end(tag: str) -> None:
        nonlocal depth
        if depth == 2 and tag == wanted and begin >= 0 and not found:
            at = parser.CurrentByteIndex
            close = xml.index(b">", meta.start + at) + 1 if xml.startswith(b"</", meta.start + at) \
                else empty_tag_end(xml, meta.start + begin)
            found.append((meta.start + begin, close))
        depth -= 1

    parser.StartElementHandler = start
    parser.EndElementHandler = end
    try:
        parser.Parse(xml[meta.start:meta.end], True)
    except expat.ExpatError as exc:  # a child relying on a namespace declared outside <metadata>
        raise LibvirtError(f"the <metadata> of the definition does not read on its own: {exc}") from exc
    return meta, (found[0] if found else None)
