# Copyright (c) 2026 cpucompat.cluster contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""What can change a spawned probe's answer, read without starting QEMU. Private to the collection.

Standard library only, and no imports of the collection: besides serving
``_probe``, the ``cpu_probe`` action plugin sends this file's text to the
managed host as a plain ``python -c`` script (:func:`script`) to confirm cached
facts without shipping and starting the whole module. Both paths compute the
fingerprint with the same code, so they cannot disagree.
"""

from __future__ import annotations

import hashlib
import json
import os
import glob
import platform
import re
import xml.etree.ElementTree as ET
import shutil
from collections.abc import Mapping
from typing import Any

QEMU_ARCH_BY_MACHINE = {
    "x86_64": "x86_64", "amd64": "x86_64",
    "aarch64": "aarch64", "arm64": "aarch64",
    "s390x": "s390x",
}

DEFAULT_CPU_MAP = "/usr/share/libvirt/cpu_map"
# The libvirt daemons whose binary tells an upgrade of libvirt (the monolithic one, then the modular QEMU one).
LIBVIRT_DAEMONS = ("libvirtd", "virtqemud")

_CPUINFO_KEYS = ("microcode", "model name", "vendor_id", "cpu family", "model", "stepping", "processor 0", "address sizes")


class EnvironmentProblem(Exception):
    """The host cannot run the requested probe (no binary, no KVM...)."""


def kvm_usable() -> bool:
    """True when /dev/kvm can be opened read-write by this process."""
    try:
        fd = os.open("/dev/kvm", os.O_RDWR | os.O_CLOEXEC)
    except OSError:
        return False
    os.close(fd)
    return True


def default_qemu_binary(machine: str | None = None) -> str:
    machine = machine or platform.machine()
    arch = QEMU_ARCH_BY_MACHINE.get(machine, machine)
    return f"qemu-system-{arch}"


def binary_arch(binary: str) -> str | None:
    base = os.path.basename(binary)
    if base.startswith("qemu-system-"):
        return QEMU_ARCH_BY_MACHINE.get(base[len("qemu-system-"):], base[len("qemu-system-"):])
    return None


def resolve_accel(requested: str, binary: str) -> str:
    """Pick kvm or tcg; 'kvm' fails clearly when it cannot work."""
    host_arch = QEMU_ARCH_BY_MACHINE.get(platform.machine(), platform.machine())
    target = binary_arch(binary) or host_arch
    if requested == "tcg":
        return "tcg"
    native = target == host_arch
    usable = native and kvm_usable()
    if requested == "kvm":
        if not native:
            raise EnvironmentProblem(f"accel=kvm requested, but {binary} emulates {target} and this host is {host_arch}")
        if not usable:
            raise EnvironmentProblem("accel=kvm requested, but /dev/kvm is missing or not accessible read-write on this host")
        return "kvm"
    if requested != "auto":
        raise EnvironmentProblem(f"unknown accel {requested!r}: use auto, kvm or tcg")
    return "kvm" if usable else "tcg"


def find_binary(binary: str) -> str:
    path = shutil.which(binary) if os.sep not in binary else binary
    if not path or not os.access(path, os.X_OK):
        raise EnvironmentProblem(f"QEMU binary {binary!r} not found or not executable "
                                 "(install the qemu-system package for this architecture)")
    return os.path.realpath(path)


def cpuinfo_identity() -> dict[str, str]:
    """Microcode revision, CPU model name and a digest of the flags of CPU 0."""
    out: dict[str, str] = {}
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as fh:
            for line in fh:
                if not line.strip():
                    break  # first processor only
                key, _sep, value = line.partition(":")
                key = key.strip()
                if key in _CPUINFO_KEYS:
                    out[key] = value.strip()
                elif key in ("flags", "features", "Features"):
                    out["flags_sha256"] = hashlib.sha256(value.strip().encode()).hexdigest()
    except OSError:
        pass
    return out


def cpu_map_files(path: str) -> dict[str, bytes] | None:
    """The files that make libvirt's x86 CPU map (``index.xml`` and ``x86_*.xml``); None when there is no map."""
    try:
        names = sorted(n for n in os.listdir(path) if n == "index.xml" or (n.startswith("x86_") and n.endswith(".xml")))
    except OSError:
        return None
    out: dict[str, bytes] = {}
    for name in names:
        try:
            with open(os.path.join(path, name), "rb") as fh:
                out[name] = fh.read()
        except OSError:
            continue
    return out or None


def cpu_map_digest(files: Mapping[str, bytes]) -> str:
    """``sha256:`` over the map's file names and contents: equal maps, equal digests, wherever they are installed."""
    h = hashlib.sha256()
    for name in sorted(files):
        h.update(name.encode() + b"\0" + hashlib.sha256(files[name]).digest())
    return "sha256:" + h.hexdigest()


def libvirt_inputs(cpu_map: str | None = None) -> dict[str, Any]:
    """What tells a libvirt upgrade without asking libvirt: its daemon's binary and its CPU map's digest."""
    daemon = next((p for p in (shutil.which(d) for d in LIBVIRT_DAEMONS) if p), None)
    stat = None
    if daemon:
        try:
            st = os.stat(daemon)
            stat = [st.st_size, st.st_mtime_ns, st.st_ino]
        except OSError:
            stat = None
    files = cpu_map_files(cpu_map or DEFAULT_CPU_MAP)
    return {"daemon": daemon, "daemon_stat": stat, "cpu_map": cpu_map_digest(files) if files else None}


# The machine type a probe runs with when its guests' is not known: the one most guests of the architecture use (x86_64
# has i440fx as QEMU's default, but q35 is what libvirt, OpenStack, Proxmox and KubeVirt create today; aarch64 has none).
DEFAULT_MACHINE = {"x86_64": "q35", "aarch64": "virt"}


GUESTS_DIR = "/etc/libvirt/qemu"  # the persistent definitions of qemu:///system's domains


def guests_machine(arch: str | None, directory: str = GUESTS_DIR, binary: str | None = None) -> str | None:
    """The machine type most of the host's libvirt domains of ``arch`` run by ``binary`` use (a machine type is one
    QEMU's: another emulator's may not exist in this one), read from their persistent definitions (standard library
    only: the fingerprint script runs it too); None without any."""
    counts: dict[str, int] = {}
    own = os.path.realpath(binary) if binary else None
    for path in sorted(glob.glob(os.path.join(directory, "*.xml"))):
        try:
            root = ET.parse(path).getroot()
        except (OSError, ET.ParseError):
            continue
        emulator = (root.findtext("./devices/emulator") or "").strip()
        if own and emulator and os.path.realpath(emulator) != own:
            continue
        node = root.find("./os/type")
        machine = node.get("machine") if node is not None else None
        if node is not None and machine and (arch is None or node.get("arch") in (None, arch)) and re.match(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$", machine):
            counts[machine] = counts.get(machine, 0) + 1
    return min(counts, key=lambda m: (-counts[m], m)) if counts else None


def default_machine(binary: str, machine: str | None) -> str | None:
    """``machine``, else the one most of the host's domains use, else the architecture's usual one (None: QEMU's own
    default). QEMU defines CPU models by machine type: the probe sees what the guests get."""
    if machine:
        return machine
    arch = binary_arch(binary)
    return guests_machine(arch, binary=binary) or DEFAULT_MACHINE.get(arch or "")


def environment_inputs(binary: str, accel: str, machine: str | None = None, cpu_map: str | None = None) -> dict[str, Any]:
    """What can change a spawned probe's answer, readable without starting QEMU."""
    machine = default_machine(binary, machine)
    st = os.stat(binary)
    inputs = {
        "mode": "spawn",
        "binary": binary,
        "binary_stat": [st.st_size, st.st_mtime_ns, st.st_ino],
        "accel": accel,
        "machine": machine,
        "kvm_usable": kvm_usable(),
        "kernel": platform.release(),
        "cpu": cpuinfo_identity(),
        "libvirt": libvirt_inputs(cpu_map),
    }
    if binary_arch(binary) == "aarch64":
        inputs["arm"] = arm_identity_inputs()
    return inputs


def arm_identity_inputs(root: str = "/") -> dict[str, Any]:
    """What of an arm64 host's identity (probe/_armhost) the kernel release and CPU 0's Features do not already say: every
    CPU's MIDR_EL1 and REVIDR_EL1, the page size and the firmware version, so that a firmware update is probed again."""
    regs: set[str] = set()
    for path in glob.glob(os.path.join(root, "sys/devices/system/cpu/cpu[0-9]*/regs/identification/*_el1")):
        try:
            with open(path, encoding="ascii", errors="replace") as fh:
                regs.add(f"{os.path.basename(path)}={fh.read(64).strip()}")
        except OSError:
            continue
    firmware = None
    try:
        with open(os.path.join(root, "sys/class/dmi/id/bios_version"), encoding="ascii", errors="replace") as fh:
            firmware = fh.read(256).strip()
    except OSError:
        pass
    return {"regs": sorted(regs), "page_size": os.sysconf("SC_PAGE_SIZE"), "firmware": firmware}


def digest(inputs: Mapping[str, Any], schema_version: int) -> str:
    """A stable digest of everything that can change a probe's answer, under one facts schema."""
    blob = json.dumps({"schema_version": schema_version, **inputs}, sort_keys=True, separators=(",", ":"), default=str)
    return "sha256:" + hashlib.sha256(blob.encode()).hexdigest()


def current(qemu_binary: str | None, accel: str, schema_version: int, machine: str | None = None,
            cpu_map: str | None = None) -> str:
    """The fingerprint a spawned probe of this host would report now (raises EnvironmentProblem)."""
    binary = find_binary(qemu_binary or default_qemu_binary())
    try:
        inputs = environment_inputs(binary, resolve_accel(accel, binary), machine, cpu_map)
    except OSError as exc:
        raise EnvironmentProblem(f"cannot read {binary}: {exc}") from exc
    return digest(inputs, schema_version)


def report(request: Mapping[str, Any]) -> str:
    """One JSON line for the action plugin: the current fingerprint, or why there is none."""
    try:
        return json.dumps({"fingerprint": current(request.get("qemu_binary"), request.get("accel") or "auto",
                                                  int(request["schema_version"]), request.get("machine"),
                                                  request.get("cpu_map"))})
    except EnvironmentProblem as exc:
        return json.dumps({"fingerprint": None, "error": str(exc)})


def script(source: str, request: Mapping[str, Any]) -> str:
    """Python code (this module's ``source`` plus one call) printing :func:`report` for ``request``."""
    return f"{source}\nprint(report(json.loads({json.dumps(json.dumps(dict(request)))})))\n"
