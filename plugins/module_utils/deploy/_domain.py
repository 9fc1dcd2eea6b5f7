# Copyright (c) 2026 cpucompat.cluster contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""A libvirt domain's ``<cpu>``: the connection, the listing the read-only modules import, and the apply. Private to the
collection.

The definition's bytes are changed by the splice (``_splice``: the ``<cpu>`` element) and the stamp (``_stamp``: the
collection's element in ``<metadata>``), both in one ``defineXML``: a definition is never left with the new ``<cpu>`` and
the old stamp, or the other way round. :func:`apply_cpu` takes an open libvirt connection and never changes anything
before it has compared the desired ``<cpu>`` with the one in the domain's inactive definition, so check mode and the
real run report the same ``changed``.
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

from ..render._cpuspec import CpuSpec
from .._errors import CpuXmlError, LibvirtError
from ._splice import domain_cpu, replace_cpu
from ._stamp import CPUCOMPAT_NS, manager, replace_stamp, stamp_key, stamp_xml

__all__ = ["OBSERVE_PREFIX", "CpuChange", "apply_cpu", "connection", "domain_cpu", "guest_timing", "guests_machine",
           "list_domains", "machine_type", "skip_reason"]


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
    stamp_changed = stamp is not None and stamp_key(manager(inactive)["stamp"]) != stamp_key(stamp)
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
    definition = dom.XMLDesc(flags)  # each definition asked of libvirt once
    cpu = domain_cpu(definition, f"domain {dom.name()} definition")
    active = bool(dom.isActive())
    # A running guest has the CPU of its live definition (host-model expanded there).
    live_xml = (definition if not flags else dom.XMLDesc(0)) if active else None
    live = domain_cpu(live_xml, f"domain {dom.name()} live definition") if live_xml is not None else None
    extras = guest_timing(live_xml if live_xml is not None else definition)
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
