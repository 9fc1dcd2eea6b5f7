# Copyright (c) 2026 cpucompat.cluster contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""libvirt's CPU map: its model definitions and the one QEMU<->libvirt feature vocabulary. Private to the collection.

libvirt's model definitions are not QEMU's (libvirt 9.0's pentium3 lacks the apic and hypervisor that QEMU's has),
and libvirt spells features its own way (``lahf_lm`` for QEMU's ``lahf-lm``, ``pclmuldq`` for ``pclmulqdq``). Only the
x86 part of the map has models with feature lists that libvirt checks; for s390x and aarch64 libvirt passes QEMU's
names through, so no map is needed (and none is loaded).
"""

from __future__ import annotations

import functools
import os
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field

from .._errors import BaselineError

DEFAULT_CPU_MAP = "/usr/share/libvirt/cpu_map"
MAP_ARCHES = ("x86_64",)
LIBVIRT_VENDOR = {"GenuineIntel": "Intel", "AuthenticAMD": "AMD", "HygonGenuine": "Hygon"}
# Maps older than libvirt's <alias source='qemu'> entries: the one QEMU name not found by the dash/dot rule.
_QEMU_TO_LIBVIRT = {"pclmulqdq": "pclmuldq"}


@dataclass(frozen=True)
class CpuMap:
    """libvirt's x86 CPU map: feature vocabulary and model feature sets (inheritance resolved)."""

    features: frozenset[str]
    models: dict[str, frozenset[str]]
    vendors: dict[str, str | None]
    qemu_aliases: dict[str, str] = field(default_factory=dict)  # QEMU spelling -> libvirt feature (<alias source='qemu'>)
    _to_libvirt: dict[str, str | None] = field(default_factory=dict, compare=False, repr=False)

    def libvirt_name(self, qemu_name: str) -> str | None:
        """libvirt's spelling of a QEMU feature, or None when libvirt's map has no name for it."""
        if qemu_name not in self._to_libvirt:
            found = None
            spellings = (self.qemu_aliases.get(qemu_name), _QEMU_TO_LIBVIRT.get(qemu_name), qemu_name,
                         qemu_name.replace("-", "_"), qemu_name.replace(".", "_"))
            for cand in spellings:
                if cand and cand in self.features:
                    found = cand
                    break
            self._to_libvirt[qemu_name] = found
        return self._to_libvirt[qemu_name]

    def libvirt_names(self, qemu_names: frozenset[str] | list[str]) -> tuple[frozenset[str], list[str]]:
        """(libvirt names of the features libvirt knows, QEMU names of those it does not)."""
        known: set[str] = set()
        unknown: list[str] = []
        for name in qemu_names:
            lv = self.libvirt_name(name)
            if lv is None:
                unknown.append(name)
            else:
                known.add(lv)
        return frozenset(known), sorted(unknown)


def require_map_arch(arch: str, what: str) -> None:
    """Fail clearly where a path needs libvirt's CPU map and the architecture has none we can use."""
    if arch not in MAP_ARCHES:
        raise BaselineError(f"{what} is implemented for x86_64 only (it needs libvirt's x86 CPU map); "
                            f"this input is {arch}")


def load_cpu_map(path: str = DEFAULT_CPU_MAP, arch: str = "x86_64") -> CpuMap:
    """Read libvirt's CPU map for ``arch`` (x86_64 only: see the module docstring)."""
    require_map_arch(arch, "reading libvirt's CPU map")
    if not os.path.isdir(path):
        raise BaselineError(f"libvirt's CPU map not found at {path}: install libvirt on the controller or pass cpu_map")
    feats: set[str] = set()
    aliases: dict[str, str] = {}
    raw: dict[str, ET.Element] = {}
    for name in sorted(os.listdir(path)):
        if not name.startswith("x86_") or not name.endswith(".xml"):
            continue
        try:
            root = ET.parse(os.path.join(path, name)).getroot()
        except ET.ParseError as exc:
            raise BaselineError(f"libvirt CPU map file {os.path.join(path, name)} is not well-formed: {exc}") from exc
        for elem in root:
            if elem.tag == "feature" and elem.get("name"):
                feats.add(elem.get("name", ""))
                aliases.update((a.get("name", ""), elem.get("name", "")) for a in elem.iter("alias") if a.get("source") == "qemu")
            elif elem.tag == "model" and elem.get("name"):
                raw[elem.get("name", "")] = elem
    if not raw:
        raise BaselineError(f"libvirt's CPU map at {path} defines no x86 model (is it a CPU map directory?)")
    models: dict[str, frozenset[str]] = {}
    vendors: dict[str, str | None] = {}
    for model in raw:
        _resolve(model, raw, models, vendors, 0)
    return CpuMap(frozenset(feats), models, vendors, aliases)


def _resolve(model: str, raw: dict[str, ET.Element], models: dict[str, frozenset[str]], vendors: dict[str, str | None],
             depth: int) -> frozenset[str]:
    if model in models:
        return models[model]
    if depth > 20 or model not in raw:
        raise BaselineError(f"libvirt CPU map: model {model!r} is missing or its ancestry loops")
    out: set[str] = set()
    vendor = None
    for child in raw[model]:
        if child.tag == "model":
            out |= _resolve(child.get("name", ""), raw, models, vendors, depth + 1)
            vendor = vendor or vendors.get(child.get("name", ""))
        elif child.tag == "feature":
            out.add(child.get("name", ""))
        elif child.tag == "vendor":
            vendor = child.get("name")
    models[model] = frozenset(out)
    vendors[model] = vendor
    return models[model]


def cached_cpu_map(path: str = DEFAULT_CPU_MAP) -> CpuMap:
    """:func:`load_cpu_map`, read once per process while the directory is unchanged (controllers aggregate often)."""
    try:
        stamp = os.stat(path).st_mtime_ns
    except OSError:
        stamp = 0
    return _cached(path, stamp)


@functools.lru_cache(maxsize=4)
def _cached(path: str, _stamp: int) -> CpuMap:
    return load_cpu_map(path)
