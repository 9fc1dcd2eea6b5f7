# Copyright (c) 2026 cpucompat.cluster contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The libvirt CPU map of a host, read from disk: on a hypervisor by the probe, on the controller by reports. Private.

The files and their digest come from ``_fingerprint`` (the same digest the fingerprint script computes on the host);
the parsing is ``cpu/_libvirt_map``'s. No libvirt library is needed: the map is plain XML.
"""

from __future__ import annotations

import functools
import os

from .._errors import CpuMapError
from ..cpu._libvirt_map import DEFAULT_CPU_MAP, CpuMap, is_shipped, parse_cpu_map
from ._fingerprint import cpu_map_digest, cpu_map_files


def read_cpu_map(path: str = DEFAULT_CPU_MAP, version: str | None = None) -> CpuMap | None:
    """The x86 CPU map at ``path`` (None when there is none: no libvirt installed there).

    A map this collection ships (known by its digest) is neither parsed nor compressed here: the facts name it by its
    digest, and its content is decoded from the shipped data only if something reads it.
    """
    files = cpu_map_files(path)
    if not files:
        return None
    digest = cpu_map_digest(files)
    if is_shipped(digest):
        return CpuMap.shipped(digest, version, path)
    return parse_cpu_map(files, path, digest, version)


def load_cpu_map(path: str = DEFAULT_CPU_MAP, version: str | None = None) -> CpuMap:
    """:func:`read_cpu_map`, where a missing map is an error that says what to do."""
    if not os.path.isdir(path):
        raise CpuMapError(f"libvirt's CPU map not found at {path}: install libvirt there or pass the path of a CPU map")
    found = read_cpu_map(path, version)
    if found is None:
        raise CpuMapError(f"libvirt's CPU map at {path} has no x86 files (is it a CPU map directory?)")
    return found


def cached_cpu_map(path: str = DEFAULT_CPU_MAP) -> CpuMap:
    """:func:`load_cpu_map`, read once per process while the directory is unchanged (controllers aggregate often)."""
    try:
        stamp = os.stat(path).st_mtime_ns
    except OSError:
        stamp = 0
    return _cached(path, stamp)


@functools.lru_cache(maxsize=8)
def _cached(path: str, _stamp: int) -> CpuMap:
    return load_cpu_map(path)
