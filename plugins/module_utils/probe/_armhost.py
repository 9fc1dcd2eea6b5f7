# Copyright (c) 2026 cpucompat.cluster contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""What makes two arm64 hosts the same to a migrating guest, read from a host's ``/sys`` and ``/proc``. Private.

QEMU cannot tell an arm64 host's identity: under KVM only ``host`` (and ``max``) run, and ``host`` is whatever the
silicon, the firmware and the kernel make it. So the probe reads, under a root directory (``host_root``; ``/`` on a
live host, a recorded tree in tests):

- ``sys/devices/system/cpu/cpu*/regs/identification/midr_el1`` and ``revidr_el1``: every CPU's MIDR_EL1 (implementer,
  variant, part, revision) and REVIDR_EL1 (implementation-defined revision bits: errata fixes);
- ``proc/cpuinfo``: the ``Features`` line (the kernel's hwcaps: what its sanitised ID registers say the CPUs have)
  and CPU 0's implementer, variant, part and revision;
- ``proc/self/smaps``: the kernel's page size (``KernelPageSize`` of the first mapping: 4, 16 or 64 KiB);
- ``proc/sys/kernel/osrelease``: the kernel release;
- ``sys/class/dmi/id/bios_version`` (else ``bios_release``, else ``/sys/firmware/devicetree/base/model``): the firmware.

The kernel shows no other ID register under ``/sys``; the ``Features`` line is how it reports them. Reading is
:func:`read_tree` (the only I/O, a few small files); everything else is pure and typed.
"""

from __future__ import annotations

import glob
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

CPU_DIR = "sys/devices/system/cpu"
MIDR = "regs/identification/midr_el1"
REVIDR = "regs/identification/revidr_el1"
CPUINFO = "proc/cpuinfo"
SMAPS = "proc/self/smaps"
OSRELEASE = "proc/sys/kernel/osrelease"
FIRMWARE = ("sys/class/dmi/id/bios_version", "sys/class/dmi/id/bios_release", "sys/firmware/devicetree/base/model")
_CPU_RE = re.compile(r"^cpu([0-9]+)$")
_HEX_RE = re.compile(r"^0x[0-9a-fA-F]{1,16}$")
_PAGE_RE = re.compile(r"^KernelPageSize:\s+([0-9]+) kB$", re.M)
_FEATURE_RE = re.compile(r"^[a-z0-9_]{1,32}$")
_READ_LIMIT = 1 << 16  # /proc/cpuinfo of a few hundred CPUs is larger: only the first lines are needed
_CPUINFO_KEYS = {"CPU implementer": "implementer", "CPU variant": "variant", "CPU part": "part", "CPU revision": "revision"}


def _read(path: str, limit: int = 4096) -> str | None:
    try:
        with open(path, encoding="ascii", errors="replace") as fh:
            return fh.read(limit)
    except OSError:
        return None


def read_tree(root: str) -> dict[str, str]:
    """The files :func:`parse` reads, by their path relative to ``root`` (absent files are left out)."""
    out: dict[str, str] = {}
    for cpu_dir in sorted(glob.glob(os.path.join(root, CPU_DIR, "cpu[0-9]*"))):
        name = os.path.basename(cpu_dir)
        if not _CPU_RE.match(name):
            continue
        for reg in (MIDR, REVIDR):
            text = _read(os.path.join(cpu_dir, reg), 64)
            if text is not None:
                out[f"{CPU_DIR}/{name}/{reg}"] = text
    for rel, limit in ((CPUINFO, _READ_LIMIT), (SMAPS, 4096), (OSRELEASE, 256), *((f, 256) for f in FIRMWARE)):
        text = _read(os.path.join(root, rel), limit)
        if text is not None:
            out[rel] = text
    return out


def _hex(text: str | None) -> int | None:
    value = (text or "").strip().rstrip("\x00")
    return int(value, 16) if _HEX_RE.match(value) else None


def _printable(text: str | None, limit: int = 64) -> str | None:
    if text is None:
        return None
    clean = "".join(c for c in text.rstrip("\x00") if c.isprintable()).strip()[:limit]
    return clean or None


@dataclass(frozen=True)
class Midr:
    """MIDR_EL1 decoded (Arm ARM D23.2.122): implementer [31:24], variant [23:20], architecture [19:16], part [15:4],
    revision [3:0]."""

    value: int

    @property
    def implementer(self) -> int:
        return self.value >> 24 & 0xFF

    @property
    def variant(self) -> int:
        return self.value >> 20 & 0xF

    @property
    def part(self) -> int:
        return self.value >> 4 & 0xFFF

    @property
    def revision(self) -> int:
        return self.value & 0xF

    @property
    def text(self) -> str:
        return f"0x{self.value:08x}"

    def describe(self) -> str:
        name = PARTS.get((self.implementer, self.part))
        vendor = IMPLEMENTERS.get(self.implementer, f"implementer 0x{self.implementer:02x}")
        return (f"{name or f'{vendor} part 0x{self.part:03x}'} r{self.variant}p{self.revision} (MIDR {self.text})")


# The kernel's names (arch/arm64/include/asm/cputype.h) of the implementers and parts a KVM host is likely to have.
IMPLEMENTERS = {0x41: "Arm", 0x42: "Broadcom", 0x43: "Cavium", 0x46: "Fujitsu", 0x48: "HiSilicon", 0x4E: "NVIDIA",
                0x50: "APM", 0x51: "Qualcomm", 0x61: "Apple", 0xC0: "Ampere"}
PARTS = {
    (0x41, 0xD08): "Cortex-A72", (0x41, 0xD0C): "Neoverse-N1", (0x41, 0xD40): "Neoverse-V1", (0x41, 0xD49): "Neoverse-N2",
    (0x41, 0xD4F): "Neoverse-V2", (0x41, 0xD83): "Neoverse-V3", (0x41, 0xD8E): "Neoverse-N3",
    (0x43, 0x0A1): "ThunderX", (0x43, 0x0AF): "ThunderX2", (0x42, 0x516): "Vulcan", (0x48, 0xD01): "TSV110 (Kunpeng 920)",
    (0x46, 0x001): "A64FX", (0xC0, 0xAC3): "AmpereOne", (0x50, 0x000): "X-Gene (Potenza)",
}


@dataclass(frozen=True)
class ArmHost:
    """One arm64 host's identity as its kernel shows it (None: not shown)."""

    midr: tuple[int, ...]  # distinct MIDR_EL1 values, sorted
    revidr: tuple[int, ...]  # distinct REVIDR_EL1 values, sorted
    cpus: int  # CPUs whose MIDR was read
    features: tuple[str, ...] | None  # the Features line of /proc/cpuinfo, sorted
    page_size: int | None  # bytes
    kernel: str | None
    firmware: str | None
    cpuinfo: Mapping[str, str]  # CPU 0's implementer, variant, part, revision as /proc/cpuinfo writes them

    @property
    def is_arm(self) -> bool:
        return bool(self.midr) or "implementer" in self.cpuinfo

    def to_facts(self) -> dict[str, Any]:
        return {"midr": [f"0x{m:08x}" for m in self.midr], "revidr": [f"0x{r:x}" for r in self.revidr], "cpus": self.cpus,
                "cpuinfo": dict(self.cpuinfo), "features": list(self.features) if self.features is not None else None,
                "page_size": self.page_size, "kernel": self.kernel, "firmware": self.firmware}


def _cpuinfo(text: str | None) -> tuple[tuple[str, ...] | None, dict[str, str]]:
    """The Features of every processor block (they must agree: the kernel sanitises them; a mismatch keeps the
    intersection) and CPU 0's identity lines."""
    features: set[str] | None = None
    ident: dict[str, str] = {}
    for block in (text or "").split("\n\n"):
        for line in block.splitlines():
            key, sep, value = line.partition(":")
            key = key.strip()
            if not sep:
                continue
            if key == "Features":
                names = {f for f in value.split() if _FEATURE_RE.match(f)}
                features = names if features is None else features & names
            elif key in _CPUINFO_KEYS and _CPUINFO_KEYS[key] not in ident:
                ident[_CPUINFO_KEYS[key]] = _printable(value, 16) or ""
    return (tuple(sorted(features)) if features is not None else None), ident


def parse(files: Mapping[str, str]) -> ArmHost:
    """The identity in ``files`` (path relative to the root -> text, as :func:`read_tree` returns them)."""
    midr: set[int] = set()
    revidr: set[int] = set()
    cpus = 0
    for path, text in files.items():
        if path.endswith("/" + MIDR):
            value = _hex(text)
            if value is not None:
                midr.add(value)
                cpus += 1
        elif path.endswith("/" + REVIDR):
            value = _hex(text)
            if value is not None:
                revidr.add(value)
    features, ident = _cpuinfo(files.get(CPUINFO))
    page = _PAGE_RE.search(files.get(SMAPS) or "")
    firmware = next((_printable(files[f]) for f in FIRMWARE if _printable(files.get(f))), None)
    return ArmHost(tuple(sorted(midr)), tuple(sorted(revidr)), cpus, features,
                   int(page.group(1)) * 1024 if page else None, _printable(files.get(OSRELEASE)), firmware, ident)


def read(root: str) -> ArmHost:
    return parse(read_tree(root))


# QEMU's host expansion under KVM on arm64: which properties make the guest's CPU (the rest are migratable features).
_SVE_RE = re.compile(r"^sve([0-9]+)$")


def expansion(props: Mapping[str, Any]) -> dict[str, Any]:
    """What QEMU's expansion of ``host`` says a guest gets: the SVE vector lengths (bits), pmu, pauth and the ``kvm-*``
    properties."""
    matches = [_SVE_RE.match(k) for k, v in props.items() if v is True]
    lengths = sorted(int(m.group(1)) for m in matches if m)
    return {"sve_lengths": lengths if props.get("sve") is True else [],
            "pmu": props.get("pmu") if isinstance(props.get("pmu"), bool) else None,
            "pauth": props.get("pauth") if isinstance(props.get("pauth"), bool) else None,
            "kvm": {k: v for k, v in sorted(props.items()) if k.startswith("kvm-") and isinstance(v, bool)}}


def virt_machine(qemu_version: str | None, machines: Any) -> str | None:
    """The versioned ``virt-X.Y`` machine type guests get for ``virt``: query-machines' answer when the session has it,
    else the one QEMU X.Y.Z defines for its own release (upstream QEMU adds ``virt-X.Y`` in release X.Y)."""
    for entry in machines if isinstance(machines, list) else []:
        if isinstance(entry, dict) and entry.get("alias") == "virt" and isinstance(entry.get("name"), str):
            return _printable(entry["name"], 32)
    if not qemu_version:
        return None
    major, _sep, rest = qemu_version.partition(".")
    minor = rest.partition(".")[0]
    return f"virt-{int(major)}.{int(minor)}" if major.isdigit() and minor.isdigit() else None
