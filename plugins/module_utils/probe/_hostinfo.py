# Copyright (c) 2026 cpucompat.cluster contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""What the host says about itself beyond QEMU: versions, physical address bits, TSC. Private to the collection.

Standard library only (the probe runs on hypervisors without extra Python libraries). Every reading is optional: a
value the host does not give is None, never a guess, and no reading can fail the probe.
"""

from __future__ import annotations

import platform
import re
import shutil
import subprocess
import xml.etree.ElementTree as ET
from typing import Any

from ._fingerprint import cpuinfo_identity

_ADDRESS_SIZES_RE = re.compile(r"(\d+) bits physical")
_VERSION_RE = re.compile(r"(\d+\.\d+\.\d+)")


def _run(argv: list[str], timeout: float) -> str | None:
    if shutil.which(argv[0]) is None:
        return None
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=False, stdin=subprocess.DEVNULL)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return done.stdout if done.returncode == 0 else None


def libvirt_version(timeout: float = 3.0) -> str | None:
    """The installed libvirt's version (``libvirtd --version``), None without libvirt."""
    text = _run(["libvirtd", "--version"], timeout) or _run(["virsh", "--version"], timeout)
    match = _VERSION_RE.search(text or "")
    return match.group(1) if match else None


def tsc(timeout: float = 5.0) -> dict[str, Any] | None:
    """libvirt's view of the host TSC (``<counter name='tsc' frequency=… scaling=…>`` in its host capabilities)."""
    text = _run(["virsh", "-r", "-c", "qemu:///system", "capabilities"], timeout)
    if not text:
        return None
    try:
        counter = ET.fromstring(text).find("./host/cpu/counter[@name='tsc']")
    except ET.ParseError:
        return None
    if counter is None:
        return None
    frequency = counter.get("frequency")
    scaling = counter.get("scaling")
    return {"frequency": int(frequency) if frequency and frequency.isdigit() else None,
            "scaling": {"yes": True, "no": False}.get(scaling or "")}


def host_info(timeout: float = 5.0, libvirt: str | None = None) -> dict[str, Any]:
    """Kernel, microcode, libvirt, physical address bits and TSC of the host this runs on (``libvirt``: its version when
    the caller knows it, else asked of the installed daemon)."""
    cpu = cpuinfo_identity()  # CPU 0's lines of /proc/cpuinfo, as the fingerprint reads them
    bits = _ADDRESS_SIZES_RE.search(cpu.get("address sizes", ""))
    return {
        "kernel": platform.release() or None,
        "microcode": cpu.get("microcode") or None,
        "libvirt": libvirt or libvirt_version(min(timeout, 3.0)),
        "phys_bits": int(bits.group(1)) if bits else None,
        "tsc": tsc(timeout),
    }
