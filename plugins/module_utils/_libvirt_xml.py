# Copyright (c) 2026 cpucompat.cluster contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Render a baseline as libvirt ``<cpu>`` XML in libvirt's own vocabulary. Private to the collection.

libvirt's model definitions are not QEMU's (libvirt 9.0's pentium3 lacks the
apic and hypervisor that QEMU's has), so features to require or disable are
computed against the model as libvirt's CPU map defines it, and feature names
are spelled as libvirt's map spells them.
"""

from __future__ import annotations

import os
import xml.etree.ElementTree as ET
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ._errors import BaselineError
from ._features import MODEL_VERSION_RE as _VERSION_RE
from ._features import validate_feature_name

DEFAULT_CPU_MAP = "/usr/share/libvirt/cpu_map"
_LIBVIRT_VENDOR = {"GenuineIntel": "Intel", "AuthenticAMD": "AMD", "HygonGenuine": "Hygon"}
# QEMU canonical names libvirt spells differently, beyond the dash/underscore rule.
_QEMU_TO_LIBVIRT = {"pclmulqdq": "pclmuldq"}


@dataclass(frozen=True)
class CpuMap:
    """libvirt's x86 CPU map: feature vocabulary and model feature sets (with inheritance resolved)."""

    features: frozenset[str]
    models: dict[str, frozenset[str]]
    vendors: dict[str, str | None]


def load_cpu_map(path: str = DEFAULT_CPU_MAP) -> CpuMap:
    if not os.path.isdir(path):
        raise BaselineError(f"libvirt's CPU map not found at {path}: install libvirt on the controller or pass cpu_map")
    feats: set[str] = set()
    raw: dict[str, ET.Element] = {}
    for name in sorted(os.listdir(path)):
        if not name.startswith("x86_") or not name.endswith(".xml"):
            continue
        try:
            root = ET.parse(os.path.join(path, name)).getroot()
        except ET.ParseError as exc:
            raise BaselineError(f"libvirt CPU map file {name} is not well-formed: {exc}") from exc
        for elem in root:
            if elem.tag == "feature" and elem.get("name"):
                feats.add(elem.get("name", ""))
            elif elem.tag == "model" and elem.get("name"):
                raw[elem.get("name", "")] = elem
    models: dict[str, frozenset[str]] = {}
    vendors: dict[str, str | None] = {}

    def resolve(model: str, depth: int = 0) -> frozenset[str]:
        if model in models:
            return models[model]
        if depth > 20 or model not in raw:
            raise BaselineError(f"libvirt CPU map: model {model!r} is missing or its ancestry loops")
        elem = raw[model]
        out: set[str] = set()
        vendor = None
        for child in elem:
            if child.tag == "model":
                out |= resolve(child.get("name", ""), depth + 1)
                vendor = vendor or vendors.get(child.get("name", ""))
            elif child.tag == "feature":
                out.add(child.get("name", ""))
            elif child.tag == "vendor":
                vendor = child.get("name")
        models[model] = frozenset(out)
        vendors[model] = vendor
        return models[model]

    for model in raw:
        resolve(model)
    return CpuMap(frozenset(feats), models, vendors)


def libvirt_feature_name(qemu_name: str, cpu_map: CpuMap) -> str | None:
    """libvirt's spelling of a QEMU feature, or None when libvirt's map does not know it."""
    for cand in (_QEMU_TO_LIBVIRT.get(qemu_name), qemu_name, qemu_name.replace("-", "_"), qemu_name.replace(".", "_")):
        if cand and cand in cpu_map.features:
            return cand
    return None


def _libvirt_model(model: str | None, candidates: list[str], common: frozenset[str], vendor: str | None, cpu_map: CpuMap) -> str:
    if model:
        base = _VERSION_RE.sub("", model)
        if base in cpu_map.models:
            return base
    # No libvirt name for QEMU's choice: among the models every host's QEMU
    # runs, the one libvirt knows that needs the fewest adjustments.
    names = {_VERSION_RE.sub("", c) for c in candidates} & set(cpu_map.models)
    best: tuple[int, int, str] | None = None
    for name in sorted(names):
        feats = cpu_map.models[name]
        if cpu_map.vendors.get(name) not in (None, vendor):
            continue
        key = (-(len(common - feats) + 2 * len(feats - common)), len(feats), name)
        if best is None or key > best:
            best = key
    if best is None:
        raise BaselineError(f"no CPU model runs on every host and is known to libvirt for vendor {vendor} "
                            f"(models every host runs: {', '.join(candidates) or 'none'})")
    return best[2]


def render(baseline: Any, cpu_map: CpuMap | None = None, unknown_features: str = "drop") -> dict[str, Any]:
    """The ``<cpu>`` element and what it is made of.

    Features libvirt's map has no name for cannot be written (QEMU's
    paravirtual ``kvm*`` features, which QEMU enables by itself, or ``lmce``).
    They are left out and named in an XML comment, never silently; with
    ``unknown_features='fail'`` any such feature other than ``kvm*`` is an error.
    """
    if unknown_features not in ("fail", "drop"):
        raise BaselineError(f"unknown_features must be 'fail' or 'drop', got {unknown_features!r}")
    if not isinstance(baseline, Mapping) or "features" not in baseline or "arch" not in baseline:
        raise BaselineError("expected a baseline as returned by cpu_baseline (with 'arch' and 'features')")
    arch = baseline["arch"]
    feats = [validate_feature_name(f, "baseline features") for f in baseline["features"]]
    model = baseline.get("model")
    if model is not None:
        validate_feature_name(model, "baseline model")
    unexpressible: list[str] = []
    if arch == "x86_64":
        cpu_map = cpu_map or load_cpu_map()
        common: set[str] = set()
        for f in feats:
            name = libvirt_feature_name(f, cpu_map)
            if name is None:
                unexpressible.append(f)
            else:
                common.add(name)
        unknown = [f for f in unexpressible if not f.startswith("kvm")]
        if unknown and unknown_features == "fail":
            raise BaselineError(f"libvirt's CPU map does not know these baseline features: {', '.join(unknown)} "
                                "(use the CPU map of the libvirt the hypervisors run, or unknown_features='drop' to leave them out)")
        vendor = _LIBVIRT_VENDOR.get(str(baseline.get("vendor")))
        lv_model = _libvirt_model(model, list(baseline.get("candidates") or []), frozenset(common), vendor, cpu_map)
        mfeats = cpu_map.models[lv_model]
        require = sorted(common - mfeats)
        disable = sorted(mfeats - common)
    else:
        # s390x and aarch64: libvirt passes QEMU's model and feature names through.
        if model is None:
            raise BaselineError(f"no named {arch} model runs on every host; libvirt needs one for mode='custom'")
        lv_model, vendor = model, None
        require = sorted(baseline.get("require") or [])
        disable = sorted(baseline.get("disable") or [])
    lines = ["<cpu mode='custom' match='exact' check='full'>", f"  <model fallback='forbid'>{lv_model}</model>"]
    if vendor:
        lines.append(f"  <vendor>{vendor}</vendor>")
    lines += [f"  <feature policy='require' name='{f}'/>" for f in require]
    lines += [f"  <feature policy='disable' name='{f}'/>" for f in disable]
    if unexpressible:
        lines.append(f"  <!-- left out, libvirt's CPU map has no name for: {', '.join(sorted(unexpressible))} -->")
    lines.append("</cpu>")
    xml = "\n".join(lines) + "\n"
    ET.fromstring(xml)  # well-formed by construction; this guards the construction
    return {"xml": xml, "model": lv_model, "vendor": vendor, "require": require, "disable": disable, "unexpressible": sorted(unexpressible)}
