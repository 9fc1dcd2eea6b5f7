# Copyright (c) 2026 cpucompat.cluster contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The guest CPU observed: start a CPU as the deploy starts it, read back what QEMU gives the vCPU, stop it. Private.

The probe asks QEMU what its models *mean* (definitions); this asks a created vCPU what it *is*. On x86 that is the
CPUID QEMU presents (the vCPU's ``feature-words``) and what was asked for and not given (``filtered-features``): words
no feature name shows (the XSAVE components of leaf 0xD, leaves a newer QEMU adds) and what the machine type's
compatibility properties, the accelerator and the host kernel did to the model. Elsewhere the vCPU's boolean feature
properties, read one by one.

Two ways to start it:

- ``cpu_xml`` (a libvirt ``<cpu>``): a transient libvirt domain, paused, ``check='full'``, no disk, 16 MiB, created
  with ``AUTODESTROY`` (libvirt destroys it when our connection closes, whatever happens to this process), so libvirt's
  own conversion to ``-cpu`` and its own check run; QMP through libvirt's monitor passthrough.
- ``qemu_args`` (a ``-cpu`` value, for plain QEMU, Proxmox and Incus): the probe's throwaway QEMU with ``-S``.

Nothing stays running or defined after any fault: the transient domain is destroyed (and autodestroyed), the QEMU
process group killed and its socket directory removed.
"""

from __future__ import annotations

import contextlib
import json
import os
import platform
import time
import uuid
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from .._errors import CpuXmlError, LibvirtError, QMPError, QemuStartError
from ..cpu._cpuid import words_from_qom
from ..cpu._features import FEATURE_NAME_RE, is_cpu_feature
from . import _fingerprint
from ._probe import spawn_qemu

OBSERVE_MEMORY_MIB = 16
DOMAIN_PREFIX = "cpucompat-observe-"
_QEMU_ARG_OK = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-,=+")


@dataclass(frozen=True)
class ObserveRequest:
    """What the cpu_observe module was asked to observe."""

    cpu_xml: str | None = None
    qemu_args: str | None = None
    machine: str | None = None  # the guests' machine type (None: the architecture's usual one, as the probe chooses)
    emulator: str | None = None  # None: this architecture's QEMU on PATH
    accel: str = "auto"
    libvirt_uri: str = "qemu:///system"
    timeout: float = 10.0


Execute = Callable[[str, "dict[str, Any] | None"], Any]


def _name(name: object, what: str, where: str) -> str:
    """A model or feature name as libvirt and QEMU accept it, checked before it reaches XML or a command line."""
    if not isinstance(name, str) or not FEATURE_NAME_RE.match(name):
        raise CpuXmlError(f"{where}: {name!r} is not a valid CPU {what} name")
    return name


def check_qemu_args(value: str) -> str:
    """A ``-cpu`` value: model then ``,prop=value`` / ``,+feat`` items, nothing a shell or QEMU's option parser could
    read as another option."""
    if not value or not set(value) <= _QEMU_ARG_OK or value.startswith(("-", ",")) or ",," in value:
        raise CpuXmlError(f"qemu_args {value!r} is not a -cpu value (model[,prop=value|,+feature|,-feature]...)")
    model, *items = value.split(",")
    _name(model, "model", f"qemu_args {value!r}")
    for item in items:
        _name(item.lstrip("+-").split("=", 1)[0], "feature", f"qemu_args {value!r}")
    return value


def guest_cpu_element(cpu_xml: str) -> ET.Element:
    """The ``<cpu>`` to start, with ``check='full'`` (libvirt then compares what QEMU gave with what it asked for);
    every model and feature name checked before it reaches the domain XML."""
    try:
        cpu = ET.fromstring(cpu_xml)
    except ET.ParseError as exc:
        raise CpuXmlError(f"cpu_xml is not well-formed XML: {exc}") from None
    if cpu.tag != "cpu":
        raise CpuXmlError(f"cpu_xml must be a <cpu> element, got <{cpu.tag}>")
    for model in cpu.iter("model"):
        _name((model.text or "").strip(), "model", "cpu_xml <model>")
    for feature in cpu.iter("feature"):
        _name(feature.get("name"), "feature", "cpu_xml <feature>")
    cpu.set("check", "full")
    return cpu


def domain_xml(cpu: ET.Element, name: str, arch: str, machine: str | None, emulator: str, kvm: bool) -> str:
    """The smallest domain that gives the CPU a vCPU: no disk, no network, no USB, no balloon."""
    dom = ET.Element("domain", type="kvm" if kvm else "qemu")
    ET.SubElement(dom, "name").text = name
    ET.SubElement(dom, "memory", unit="MiB").text = str(OBSERVE_MEMORY_MIB)
    ET.SubElement(dom, "vcpu").text = "1"
    os_el = ET.SubElement(dom, "os")
    type_attrs = {"arch": arch, **({"machine": machine} if machine else {})}
    ET.SubElement(os_el, "type", type_attrs).text = "hvm"
    if arch in ("x86_64", "aarch64"):  # as guests have it; without it libvirt 9.0 passes -no-acpi, which QEMU 10 removed
        ET.SubElement(ET.SubElement(dom, "features"), "acpi")
    dom.append(cpu)
    devices = ET.SubElement(dom, "devices")
    ET.SubElement(devices, "emulator").text = emulator
    ET.SubElement(devices, "controller", type="usb", model="none")
    ET.SubElement(devices, "memballoon", model="none")
    return ET.tostring(dom, encoding="unicode")


def read_vcpu(execute: Execute, arch: str) -> dict[str, Any]:
    """What the first vCPU is: its QOM path, and on x86 its CPUID words and the filtered ones; elsewhere its enabled
    boolean properties."""
    cpus = execute("query-cpus-fast", None)
    if not isinstance(cpus, list) or not cpus or not isinstance(cpus[0], dict) or not isinstance(cpus[0].get("qom-path"), str):
        raise QMPError(f"query-cpus-fast named no vCPU: {cpus!r:.200}")
    path = cpus[0]["qom-path"]
    out: dict[str, Any] = {"qom_path": path}
    if arch == "x86_64":
        out["cpuid"] = words_from_qom(execute("qom-get", {"path": path, "property": "feature-words"}))
        filtered = words_from_qom(execute("qom-get", {"path": path, "property": "filtered-features"}))
        out["filtered"] = {k: v for k, v in filtered.items() if v}
        return out
    props = execute("qom-list", {"path": path})
    names = sorted(p["name"] for p in props if isinstance(p, dict) and p.get("type") == "bool"
                   and isinstance(p.get("name"), str) and is_cpu_feature(arch, p["name"]))
    out["features"] = sorted(n for n in names if execute("qom-get", {"path": path, "property": n}) is True)
    out["cpuid"], out["filtered"] = {}, {}
    return out


def _qemu(execute: Execute, binary: str) -> dict[str, Any]:
    """QEMU's exact version (point release) and package string, from the running QEMU itself."""
    reply = execute("query-version", None)
    q = reply.get("qemu") if isinstance(reply, dict) else None
    package = reply.get("package") if isinstance(reply, dict) else None
    return {"binary": binary,
            "version": f"{q.get('major')}.{q.get('minor')}.{q.get('micro')}" if isinstance(q, dict) else None,
            "package": (package.strip() or None) if isinstance(package, str) else None}


def _machine(execute: Execute) -> str | None:
    """The running machine's versioned name (an alias such as ``q35`` resolved)."""
    running = execute("qom-get", {"path": "/machine", "property": "type"})
    return running.removesuffix("-machine") if isinstance(running, str) else None


def _observation(execute: Execute, arch: str, accel: str, via: str, binary: str, started: float) -> dict[str, Any]:
    vcpu = read_vcpu(execute, arch)
    return {"arch": arch, "accel": accel, "via": via, "machine": _machine(execute),
            "qemu": _qemu(execute, binary),
            "kernel": platform.release() or None, "cpuid": vcpu["cpuid"], "filtered": vcpu["filtered"],
            "features": vcpu.get("features"), "duration_s": round(time.monotonic() - started, 4)}


def observe(req: ObserveRequest, libvirt_module: Any = None) -> dict[str, Any]:
    """Start the CPU, read it, stop it. ``libvirt_module``: the imported libvirt binding (the ``cpu_xml`` path)."""
    if bool(req.cpu_xml) == bool(req.qemu_args):
        raise CpuXmlError("give exactly one of cpu_xml (a libvirt <cpu>) and qemu_args (a -cpu value)")
    if req.timeout <= 0:
        raise QemuStartError(f"timeout must be positive, got {req.timeout}")
    started = time.monotonic()
    try:
        binary = _fingerprint.find_binary(req.emulator or _fingerprint.default_qemu_binary())
        accel = _fingerprint.resolve_accel(req.accel, binary)
    except _fingerprint.EnvironmentProblem as exc:
        raise QemuStartError(str(exc)) from None
    arch = _fingerprint.binary_arch(binary) or "x86_64"
    machine = _fingerprint.default_machine(binary, req.machine)
    if req.qemu_args:
        cpu_arg = check_qemu_args(req.qemu_args)
        with spawn_qemu(binary, accel, req.timeout, machine=machine,
                        extra_args=("-cpu", cpu_arg, "-m", str(OBSERVE_MEMORY_MIB))) as client:
            return _observation(client.execute, arch, accel, "qemu", binary, started)
    if libvirt_module is None:
        raise LibvirtError("observing a <cpu> needs libvirt-python on the host (python3-libvirt)")
    cpu = guest_cpu_element(str(req.cpu_xml))
    with transient_domain(libvirt_module, req.libvirt_uri, cpu, arch, machine, binary, accel == "kvm") as execute:
        return _observation(execute, arch, accel, "libvirt", binary, started)


@contextlib.contextmanager
def transient_domain(libvirt: Any, uri: str, cpu: ET.Element, arch: str, machine: str | None, emulator: str,
                     kvm: bool) -> Iterator[Execute]:
    """A paused transient domain with this CPU, and QMP to it through libvirt; destroyed on every exit path."""
    import libvirt_qemu  # pylint: disable=import-outside-toplevel,import-error  # shipped with libvirt-python

    name = f"{DOMAIN_PREFIX}{os.getpid()}-{uuid.uuid4().hex[:8]}"
    xml = domain_xml(cpu, name, arch, machine, emulator, kvm)
    try:
        conn = libvirt.open(uri)
    except libvirt.libvirtError as exc:
        raise LibvirtError(f"cannot connect to libvirt at {uri}: {exc.get_error_message()}") from None
    dom = None
    try:
        flags = libvirt.VIR_DOMAIN_START_PAUSED | libvirt.VIR_DOMAIN_START_AUTODESTROY
        try:
            dom = conn.createXML(xml, flags)
        except libvirt.libvirtError as exc:
            raise LibvirtError(f"libvirt at {uri} does not start the <cpu> (check='full', machine "
                               f"{machine or 'default'}, emulator {emulator}): {exc.get_error_message()}") from None

        def execute(command: str, arguments: dict[str, Any] | None) -> Any:
            msg = {"execute": command, **({"arguments": arguments} if arguments is not None else {})}
            try:
                reply = json.loads(libvirt_qemu.qemuMonitorCommand(dom, json.dumps(msg), 0))
            except libvirt.libvirtError as exc:
                raise QMPError(f"domain {name}: {command} through libvirt: {exc.get_error_message()}") from None
            if "error" in reply:
                raise QMPError(f"domain {name}: QEMU rejected '{command}': {reply['error'].get('class')}: "
                               f"{reply['error'].get('desc')}")
            return reply.get("return")

        yield execute
    finally:
        if dom is not None:
            with contextlib.suppress(libvirt.libvirtError):
                dom.destroy()
        with contextlib.suppress(libvirt.libvirtError):
            conn.close()
