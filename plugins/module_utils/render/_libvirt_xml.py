# Copyright (c) 2026 cpucompat.cluster contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Render a :class:`Baseline` as the libvirt ``<cpu>`` specification, in libvirt's own vocabulary. Private to the collection.

On x86_64 the features to require or disable are computed against the model as libvirt's CPU map defines it, and
spelled as libvirt spells them (``_libvirt_map``). s390x and aarch64: libvirt passes QEMU's model and feature names
through. The result is a :class:`RenderedCpu`; its text comes from the one writer, ``CpuSpec.to_xml``.
"""

from __future__ import annotations

from ..engine._baseline import Baseline, NoRunnability, best_model
from ._cpuspec import CpuSpec, RenderedCpu
from .._errors import BaselineError
from ..cpu._features import MODEL_VERSION_RE as _VERSION_RE
from ..cpu._libvirt_map import LIBVIRT_VENDOR, CpuMap, load_cpu_map

UNKNOWN_FEATURES = ("fail", "drop")


def render(baseline: Baseline, cpu_map: CpuMap | None = None, unknown_features: str = "drop") -> RenderedCpu:
    """The ``<cpu mode='custom' match='exact' check='full'>`` of a baseline.

    Features libvirt's map has no name for cannot be written (QEMU's paravirtual ``kvm*`` features, which QEMU
    enables by itself, or ``lmce``). They are left out and named in an XML comment, never silently; with
    ``unknown_features='fail'`` any such feature other than ``kvm*`` is an error.
    """
    if unknown_features not in UNKNOWN_FEATURES:
        raise BaselineError(f"unknown_features must be 'fail' or 'drop', got {unknown_features!r}")
    if baseline.arch is None:
        raise BaselineError("the baseline names no architecture ('arch'); pass a baseline as returned by cpu_baseline")
    if baseline.arch == "x86_64":
        return _render_x86(baseline, cpu_map or load_cpu_map(), unknown_features)
    if baseline.model is None:
        why = f"no named {baseline.arch} model runs on every host; libvirt needs one for mode='custom'"
        if baseline.arch == "aarch64":
            why = f"{NoRunnability.REASON}; libvirt needs a named model for mode='custom' (use host-passthrough on identical hosts)"
        raise BaselineError(why)
    features = [("require", f) for f in baseline.require] + [("disable", f) for f in baseline.disable]
    return RenderedCpu(_spec(baseline.model, None, features, (), baseline.maxphysaddr))


def _render_x86(baseline: Baseline, cpu_map: CpuMap, unknown_features: str) -> RenderedCpu:
    common, unexpressible = cpu_map.libvirt_names(baseline.features)
    unknown = [f for f in unexpressible if not f.startswith("kvm")]
    if unknown and unknown_features == "fail":
        raise BaselineError(f"libvirt's CPU map does not know these baseline features: {', '.join(unknown)} "
                            "(use the CPU map of the libvirt the hypervisors run, or unknown_features='drop' to leave them out)")
    vendor = LIBVIRT_VENDOR.get(str(baseline.vendor))
    model = libvirt_model(baseline, common, vendor, cpu_map)
    mfeats = cpu_map.models[model]
    features = [("require", f) for f in sorted(common - mfeats)] + [("disable", f) for f in sorted(mfeats - common)]
    return RenderedCpu(_spec(model, vendor, features, tuple(unexpressible), baseline.maxphysaddr), tuple(unexpressible))


def _spec(model: str, vendor: str | None, features: list[tuple[str, str]], unexpressible: tuple[str, ...],
          maxphysaddr: int | None = None) -> CpuSpec:
    note = f"left out, libvirt's CPU map has no name for: {', '.join(unexpressible)}" if unexpressible else None
    other = (f"<maxphysaddr mode='emulate' bits='{maxphysaddr}'/>",) if maxphysaddr else ()
    return CpuSpec(mode="custom", match="exact", check="full", model=model, model_attrs=(("fallback", "forbid"),),
                   vendor=vendor, features=tuple(features), other=other, note=note)


def libvirt_model(baseline: Baseline, common: frozenset[str], vendor: str | None, cpu_map: CpuMap) -> str:
    """libvirt's name of QEMU's model; failing that, the closest model every host runs that libvirt knows."""
    if baseline.model:
        base = _VERSION_RE.sub("", baseline.model)
        if base in cpu_map.models:
            return base
    names = {_VERSION_RE.sub("", c) for c in baseline.candidates} & set(cpu_map.models)
    pool = {n: cpu_map.models[n] for n in names if cpu_map.vendors.get(n) in (None, vendor)}
    chosen = best_model(pool, common)
    if chosen is None:
        raise BaselineError(f"no CPU model runs on every host and is known to libvirt for vendor {vendor} "
                            f"(models every host runs: {', '.join(baseline.candidates) or 'none'})")
    return chosen
