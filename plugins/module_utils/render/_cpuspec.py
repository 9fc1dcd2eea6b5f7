# Copyright (c) 2026 cpucompat.cluster contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The libvirt ``<cpu>`` element as a typed value: one parser, one writer. Private to the collection.

Everything that reads or writes a ``<cpu>`` goes through :class:`CpuSpec`: the renderer builds one, the deploy
module compares and writes one, the planning checks read the features one gives a guest, and the tests parse what
libvirt stored. Every error is a :class:`CpuXmlError` naming what was being read.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING
from xml.sax.saxutils import escape

from .._errors import CpuXmlError, FactsError
from ..cpu._features import validate_feature_name

if TYPE_CHECKING:
    from ..cpu._libvirt_map import CpuMap

# <cpu> attributes that carry meaning, in the order libvirt writes them.
CPU_ATTRS = ("mode", "match", "check", "migratable")
POLICIES = ("force", "require", "optional", "disable", "forbid")
HOST_MODES = ("host-model", "host-passthrough", "maximum")
_GIVES = ("force", "require")
_TAKES = ("disable", "forbid")


@dataclass(frozen=True)
class CpuSpec:
    """What a ``<cpu>`` element says. Features keep their written order; :meth:`key` is order-independent."""

    mode: str | None = None
    match: str | None = None
    check: str | None = None
    migratable: str | None = None
    model: str | None = None
    model_attrs: tuple[tuple[str, str], ...] = ()
    vendor: str | None = None
    features: tuple[tuple[str, str], ...] = ()  # (policy, name)
    other: tuple[str, ...] = ()  # further child elements (topology, numa, cache...), each as written by write_element
    note: str | None = None  # an XML comment the writer adds (what the renderer had to leave out)

    # ------------------------------------------------------------------ reading
    @classmethod
    def parse(cls, text: str, what: str = "cpu_xml") -> CpuSpec:
        """Parse ``<cpu>`` text; every model and feature name is validated before it can reach a definition."""
        try:
            elem = ET.fromstring(text)
        except ET.ParseError as exc:
            raise CpuXmlError(f"{what} is not well-formed XML: {exc}") from exc
        return cls.from_element(elem, what)

    @classmethod
    def from_element(cls, elem: ET.Element, what: str) -> CpuSpec:
        if elem.tag != "cpu":
            raise CpuXmlError(f"{what} must be a <cpu> element, got <{elem.tag}>")
        model_el = elem.find("model")
        model = (model_el.text or "").strip() or None if model_el is not None else None
        features = []
        try:
            if model is not None:
                validate_feature_name(model, f"{what}: <model>", "model")
            for feat in elem.findall("feature"):
                policy = feat.get("policy", "require")
                name = validate_feature_name(feat.get("name"), f"{what}: <feature>")
                if policy not in POLICIES:
                    raise CpuXmlError(f"{what}: feature {name} has an unknown policy {policy!r}")
                features.append((policy, name))
        except FactsError as exc:
            raise CpuXmlError(str(exc)) from None
        other = tuple(write_element(c) for c in elem
                      if isinstance(c.tag, str) and c.tag not in ("model", "vendor", "feature"))
        return cls(mode=elem.get("mode"), match=elem.get("match"), check=elem.get("check"),
                   migratable=elem.get("migratable"), model=model,
                   model_attrs=tuple(sorted(model_el.attrib.items())) if model_el is not None else (),
                   vendor=(elem.findtext("vendor") or "").strip() or None, features=tuple(features), other=other)

    # ------------------------------------------------------------------ meaning
    @property
    def follows_host(self) -> bool:
        """host-model, host-passthrough and maximum CPUs are whatever the host offers, not a fixed definition."""
        return (self.mode or "custom") in HOST_MODES

    def key(self) -> tuple[object, ...]:
        """What the element means, independent of feature order, whitespace and comments."""
        attrs = tuple((k, v) for k, v in zip(CPU_ATTRS, (self.mode, self.match, self.check, self.migratable)) if v is not None)
        return (attrs, self.model, self.model_attrs, self.vendor, tuple(sorted(self.features)), tuple(sorted(self.other)))

    def policy_names(self, policies: Iterable[str]) -> list[str]:
        wanted = set(policies)
        return [name for policy, name in self.features if policy in wanted]

    def guest_features(self, cpu_map: CpuMap) -> frozenset[str] | None:
        """The features (libvirt names) this CPU gives a guest; None for a CPU that follows its host."""
        if self.follows_host:
            return None
        feats: set[str] = set()
        if self.model:
            model = cpu_map.models.get(self.model)
            if model is None:
                raise CpuXmlError(f"CPU model {self.model!r} is not in libvirt's CPU map")
            feats |= model
        for policy, name in self.features:
            if policy in _GIVES:
                feats.add(name)
            elif policy in _TAKES:
                feats.discard(name)
        return frozenset(feats)

    # ------------------------------------------------------------------ writing
    def to_element(self, comments: bool = True) -> ET.Element:
        attrs = {k: v for k, v in zip(CPU_ATTRS, (self.mode, self.match, self.check, self.migratable)) if v is not None}
        cpu = ET.Element("cpu", attrs)
        if self.model is not None or self.model_attrs:
            ET.SubElement(cpu, "model", dict(self.model_attrs)).text = self.model
        if self.vendor:
            ET.SubElement(cpu, "vendor").text = self.vendor
        for text in self.other:
            cpu.append(ET.fromstring(text))
        for policy, name in self.features:
            ET.SubElement(cpu, "feature", {"policy": policy, "name": name})
        if comments and self.note:
            cpu.append(ET.Comment(f" {self.note} "))
        return cpu

    def to_xml(self, comments: bool = True) -> str:
        """The element as text, two-space indented, ending in a newline; the one writer of ``<cpu>`` text."""
        return write_element(self.to_element(comments)) + "\n"


def write_element(elem: ET.Element, indent: str = "") -> str:
    """Serialise an element the way libvirt's own XML reads: attributes in single quotes, two-space indentation."""
    if elem.tag is ET.Comment:  # pylint: disable=comparison-with-callable
        return f"{indent}<!--{(elem.text or '').replace('--', '- -')}-->"
    attrs = "".join(f" {k}={_quote(v)}" for k, v in elem.attrib.items())
    children = [c for c in elem if isinstance(c.tag, str) or c.tag is ET.Comment]  # pylint: disable=comparison-with-callable
    text = (elem.text or "").strip()
    if not children and not text:
        return f"{indent}<{elem.tag}{attrs}/>"
    if not children:
        return f"{indent}<{elem.tag}{attrs}>{escape(text)}</{elem.tag}>"
    inner = "\n".join(write_element(c, indent + "  ") for c in children)
    return f"{indent}<{elem.tag}{attrs}>\n{inner}\n{indent}</{elem.tag}>"


def _quote(value: str) -> str:
    return "'" + escape(value, {"'": "&apos;", '"': "&quot;"}) + "'"


@dataclass(frozen=True)
class RenderedCpu:
    """A rendered guest CPU: the specification, the features every host has that no guest gets, the model written."""

    spec: CpuSpec
    left_out: tuple[str, ...] = field(default=())
    model: str | None = None

    @property
    def xml(self) -> str:
        return self.spec.to_xml()

    def details(self) -> dict[str, object]:
        """The report's ``xml_details``: libvirt's model, vendor and feature lists (libvirt spellings)."""
        return {"model": self.spec.model, "vendor": self.spec.vendor, "require": self.spec.policy_names(["require"]),
                "disable": self.spec.policy_names(["disable"]), "left_out": list(self.left_out)}
