# Copyright (c) 2026 cpucompat.cluster contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""What decides a live migration beyond CPUID, across a group: machine types, address bits, TSC, Hyper-V, mitigations,
and drift (hosts of one CPU signature on different microcode or kernels). Private to the collection.

Pure functions over :class:`HostCpu` values and a :class:`Baseline`; the baseline report shows their results.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from ._result import Baseline
from ..cpu._features import SECURITY_FEATURES
from ._hostcpu import HostCpu


def _grouped(pairs: Sequence[tuple[str, Any]]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for host, value in pairs:
        out.setdefault("unknown" if value is None else str(value), []).append(host)
    return {k: sorted(v) for k, v in sorted(out.items())}


def _versions(h: HostCpu) -> Mapping[str, Any]:
    value = h.facts.get("versions")
    return value if isinstance(value, Mapping) else {}


def security(hosts: Sequence[HostCpu], base: Baseline) -> dict[str, Any]:
    """Mitigation features the baseline keeps, and those it loses with the hosts responsible and their microcode."""
    microcode = {h.name: _versions(h).get("microcode") for h in hosts}
    lost = {f: {"hosts": list(base.lost[f]), "microcode": {n: microcode.get(n) for n in base.lost[f]}}
            for f in sorted(base.lost) if f in SECURITY_FEATURES}
    return {"kept": sorted(base.features & SECURITY_FEATURES), "lost": lost}


def drift(hosts: Sequence[HostCpu]) -> list[dict[str, Any]]:
    """Hosts of one CPU signature that differ in microcode, kernel or features: the usual reason one of them lacks
    hle/rtm, md-clear or spec-ctrl is microcode, not silicon."""
    by_signature: dict[tuple[Any, ...], list[HostCpu]] = {}
    for h in hosts:
        f = h.facts
        if f.get("family") is None:
            continue
        by_signature.setdefault((h.vendor, f.get("family"), f.get("model"), f.get("stepping")), []).append(h)
    out = []
    for (vendor, family, model, stepping), members in sorted(by_signature.items(), key=lambda kv: str(kv[0])):
        if len(members) < 2:
            continue
        micro = _grouped([(h.name, _versions(h).get("microcode")) for h in members])
        kernel = _grouped([(h.name, _versions(h).get("kernel")) for h in members])
        differing = sorted(frozenset.union(*(h.features for h in members)) - frozenset.intersection(*(h.features for h in members)))
        if len(micro) > 1 or len(kernel) > 1 or differing:
            out.append({"signature": f"{vendor} family {family} model {model} stepping {stepping}",
                        "hosts": sorted(h.name for h in members), "microcode": micro, "kernel": kernel,
                        "features_differing": differing,
                        "lacking": {feat: sorted(h.name for h in members if feat not in h.features) for feat in differing}})
    return out


def hyperv(hosts: Sequence[HostCpu]) -> dict[str, Any]:
    """The Hyper-V enlightenments every host's KVM supports (hosts whose QEMU does not say are listed)."""
    known = {h.name: frozenset(h.facts["hyperv"]) for h in hosts if isinstance(h.facts.get("hyperv"), list)}
    unknown = sorted(h.name for h in hosts if h.name not in known)
    if not known:
        return {"common": None, "unknown": unknown, "lacking": {}}
    common = frozenset.intersection(*known.values())
    every = frozenset.union(*known.values())
    return {"common": sorted(common), "unknown": unknown,
            "lacking": {f: sorted(n for n, s in known.items() if f not in s) for f in sorted(every - common)}}


def tsc(hosts: Sequence[HostCpu]) -> dict[str, Any]:
    """TSC frequencies and scaling: a guest with invtsc or a fixed TSC frequency needs the same frequency, or scaling."""
    readings = {h.name: t for h in hosts if isinstance(t := h.facts.get("tsc"), Mapping)}
    return {"frequencies": _grouped([(n, r.get("frequency")) for n, r in readings.items()]),
            "without_scaling": sorted(n for n, r in readings.items() if r.get("scaling") is False),
            "unknown": sorted(h.name for h in hosts if h.name not in readings)}


def axes(hosts: Sequence[HostCpu], base: Baseline) -> dict[str, Any]:
    """Everything of this module for one group, as the baseline report keeps it."""
    versions = [(h.name, _versions(h)) for h in hosts]
    return {
        "machines": _grouped([(h.name, (h.facts.get("machine") or {}).get("name") if isinstance(h.facts.get("machine"), Mapping) else None)
                              for h in hosts]),
        "versions": {key: _grouped([(name, v.get(key)) for name, v in versions]) for key in ("libvirt", "kernel", "microcode")},
        "address_bits": {"min": base.phys_bits, "maxphysaddr": base.maxphysaddr, "note": base.phys_bits_note,
                         "by_bits": _grouped([(h.name, h.phys_bits) for h in hosts])},
        "tsc": tsc(hosts),
        "hyperv": hyperv(hosts),
        "security": security(hosts, base),
        "drift": drift(hosts),
    }
