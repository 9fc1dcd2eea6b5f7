# Copyright (c) 2026 cpucompat.cluster contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The <cpu> element of libvirt domain definitions: normalise, compare, replace, apply. Private to the collection.

The XML work is pure (ElementTree); :func:`apply_cpu` takes an open
libvirt connection and never changes anything before it has compared the
desired ``<cpu>`` with the one in the domain's inactive definition, so
check mode and the real run report the same ``changed``.
"""

from __future__ import annotations

import contextlib
import datetime
import os
import re
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from ._errors import LibvirtError
from ._features import validate_feature_name

_CPU_ATTRS = ("mode", "match", "check", "migratable")


def _parse(xml: str, what: str) -> ET.Element:
    try:
        return ET.fromstring(xml)
    except ET.ParseError as exc:
        raise LibvirtError(f"{what} is not well-formed XML: {exc}") from exc


def parse_cpu(cpu_xml: str, what: str = "cpu_xml") -> ET.Element:
    """Parse a ``<cpu>`` element, validating every model and feature name."""
    cpu = _parse(cpu_xml, what)
    if cpu.tag != "cpu":
        raise LibvirtError(f"{what} must be a <cpu> element, got <{cpu.tag}>")
    for feature in cpu.findall("feature"):
        validate_feature_name(feature.get("name"), f"{what}: <feature>")
        if feature.get("policy") not in ("require", "disable", "force", "optional", "forbid", None):
            raise LibvirtError(f"{what}: feature {feature.get('name')} has an unknown policy {feature.get('policy')!r}")
    model = cpu.find("model")
    if model is not None and model.text:
        validate_feature_name(model.text.strip(), f"{what}: <model>")
    return cpu


def normalized(cpu: ET.Element | None) -> dict[str, Any] | None:
    """What a <cpu> element means, independent of order, whitespace and comments."""
    if cpu is None:
        return None
    model = cpu.find("model")
    return {
        "attrs": {k: cpu.get(k) for k in _CPU_ATTRS if cpu.get(k) is not None},
        "model": model.text.strip() if model is not None and model.text else None,
        "model_attrs": dict(sorted(model.attrib.items())) if model is not None else {},
        "vendor": (cpu.findtext("vendor") or "").strip() or None,
        "features": sorted((f.get("policy", "require"), f.get("name", "")) for f in cpu.findall("feature")),
        "other": sorted(ET.tostring(c, encoding="unicode").strip() for c in cpu if c.tag not in ("model", "vendor", "feature")),
    }


def canonical_text(cpu: ET.Element | None) -> str:
    """A stable text rendering of a <cpu> element for diffs."""
    if cpu is None:
        return ""
    out = ET.Element("cpu", {k: cpu.get(k, "") for k in _CPU_ATTRS if cpu.get(k) is not None})
    for child in cpu:
        if child.tag is ET.Comment:  # pylint: disable=comparison-with-callable
            continue
        out.append(child)
    ET.indent(out, "  ")
    return ET.tostring(out, encoding="unicode") + "\n"


def replace_cpu(domain_xml: str, cpu: ET.Element | None, domain: str) -> str:
    """The domain definition with its <cpu> replaced (or removed when cpu is None); all else untouched."""
    root = _parse(domain_xml, f"domain {domain} definition")
    old = root.find("cpu")
    if old is not None:
        index = list(root).index(old)
        root.remove(old)
    else:
        # libvirt writes <cpu> after <features>/<os>; any position parses, this one reads naturally.
        anchors = [i for i, child in enumerate(root) if child.tag in ("features", "os", "vcpu", "memory")]
        index = max(anchors) + 1 if anchors else len(root)
    if cpu is not None:
        root.insert(index, cpu)
    return ET.tostring(root, encoding="unicode")


@dataclass
class CpuChange:
    domain: str
    changed: bool
    before: str
    after: str
    active: bool
    backup: str | None = None

    @property
    def restart_required(self) -> bool:
        return self.changed and self.active


def _libvirt_error(action: str, domain: str, exc: Exception) -> LibvirtError:
    text = str(exc).strip() or type(exc).__name__
    return LibvirtError(f"{action} domain {domain}: {text}")


def apply_cpu(conn: Any, domain: str, cpu_xml: str | None, *, check_mode: bool, backup_dir: str | None = None) -> CpuChange:
    """Make the persistent definition of ``domain`` carry ``cpu_xml`` (None: no <cpu> element).

    The comparison happens before anything is written; check mode stops there.
    A running domain gets the new persistent definition only (restart_required).
    libvirt replaces a definition atomically: when it refuses the new XML the
    domain keeps exactly the old one. A domain that vanished after it was read
    is not recreated.
    """
    import libvirt  # pylint: disable=import-outside-toplevel  # checked by the module with missing_required_lib

    desired = parse_cpu(cpu_xml) if cpu_xml is not None else None
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
    current = _parse(inactive, f"domain {domain} definition").find("cpu")
    change = CpuChange(domain, normalized(current) != normalized(desired), canonical_text(current), canonical_text(desired), active)
    if not change.changed or check_mode:
        return change
    new_xml = replace_cpu(inactive, desired, domain)
    if backup_dir:
        change.backup = _write_backup(backup_dir, domain, inactive)
    try:
        # Re-check right before writing: defineXML would recreate a vanished domain.
        if conn.lookupByUUIDString(uuid).XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE | libvirt.VIR_DOMAIN_XML_SECURE) != inactive:
            raise LibvirtError(f"domain {domain} changed while its CPU was being updated; nothing was written, run again")
    except libvirt.libvirtError as exc:
        raise _libvirt_error("re-reading (it may have been undefined meanwhile)", domain, exc) from exc
    try:
        conn.defineXMLFlags(new_xml, libvirt.VIR_DOMAIN_DEFINE_VALIDATE)
    except libvirt.libvirtError as exc:
        raise _libvirt_error("libvirt refused the new definition of", domain, exc) from exc
    return change


def _write_backup(backup_dir: str, domain: str, xml: str) -> str:
    os.makedirs(backup_dir, mode=0o700, exist_ok=True)
    stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y%m%dT%H%M%S.%fZ")
    safe = re.sub(r"[^A-Za-z0-9._-]", "_", domain)
    path = os.path.join(backup_dir, f"{safe}-{stamp}.xml")
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(xml)
    return path


def list_domains(conn: Any) -> list[dict[str, Any]]:
    """Every domain with its state and the <cpu> of its persistent (or live) definition."""
    import libvirt  # pylint: disable=import-outside-toplevel

    out = []
    try:
        for dom in conn.listAllDomains():
            persistent = bool(dom.isPersistent())
            flags = libvirt.VIR_DOMAIN_XML_INACTIVE if persistent else 0
            cpu = _parse(dom.XMLDesc(flags), f"domain {dom.name()} definition").find("cpu")
            active = bool(dom.isActive())
            # A running guest has the CPU of its live definition (host-model expanded there).
            live = _parse(dom.XMLDesc(0), f"domain {dom.name()} live definition").find("cpu") if active else None
            out.append({"name": dom.name(), "uuid": dom.UUIDString(), "active": active,
                        "persistent": persistent, "cpu_xml": canonical_text(cpu) or None,
                        "live_cpu_xml": canonical_text(live) or None})
    except libvirt.libvirtError as exc:
        raise LibvirtError(f"listing domains: {str(exc).strip()}") from exc
    return sorted(out, key=lambda d: d["name"])


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
