# Copyright (c) 2026 cpucompat.cluster contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The two virtualization stacks the suite judges with: this machine's (Debian 12: QEMU 7.2, libvirt 9.0) and the one
tools/backports.sh unpacks beside it (bookworm-backports: QEMU 10.0, libvirt 11.3), never installed."""

from __future__ import annotations

import functools
import os
import re
import shutil
import subprocess
from dataclasses import dataclass

from ansible_collections.cpucompat.cluster.plugins.module_utils.cpu._libvirt_map import DEFAULT_CPU_MAP, CpuMap
from ansible_collections.cpucompat.cluster.plugins.module_utils.probe._libvirt import read_cpu_map

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BACKPORTS = os.environ.get("CPUCOMPAT_BACKPORTS", os.path.join(ROOT, ".cache", "backports"))


@dataclass(frozen=True)
class Stack:
    """One QEMU and one libvirt: the binaries, the CPU map, and how to run this libvirt's virsh on its own map."""

    name: str
    qemu: str
    cpu_map_dir: str
    virsh: tuple[str, ...]  # a virsh that reads this stack's map (in-process drivers only: test:///default)

    @functools.cached_property
    def libvirt_version(self) -> str:
        out = subprocess.run([*self.virsh, "--version"], capture_output=True, text=True, check=True, timeout=30).stdout
        match = re.search(r"(\d+\.\d+\.\d+)", out)
        if not match:
            raise RuntimeError(f"{self.name} stack: cannot read libvirt's version from {out!r}")
        return match.group(1)

    @functools.cached_property
    def cpu_map(self) -> CpuMap:
        found = read_cpu_map(self.cpu_map_dir, self.libvirt_version)
        if found is None:
            raise RuntimeError(f"{self.name} stack: no libvirt CPU map at {self.cpu_map_dir}")
        return found


def _backports() -> Stack:
    if not os.path.isfile(os.path.join(BACKPORTS, ".complete")):
        raise RuntimeError(f"the backports stack is not unpacked at {BACKPORTS}: run tools/backports.sh (make setup does)")
    return Stack("backports", os.path.join(BACKPORTS, "bin", "qemu-system-x86_64"), os.path.join(BACKPORTS, "cpu_map"),
                 (os.path.join(BACKPORTS, "bin", "with-cpu-map"), os.path.join(BACKPORTS, "bin", "virsh")))


@functools.lru_cache(maxsize=None)
def by_name(name: str) -> Stack:
    if name == "system":
        return Stack("system", shutil.which("qemu-system-x86_64") or "/usr/bin/qemu-system-x86_64", DEFAULT_CPU_MAP, ("virsh",))
    if name == "backports":
        return _backports()
    raise ValueError(f"no stack {name!r} (system or backports)")


NAMES = ("system", "backports")
