# Copyright (c) 2026 cpucompat.cluster contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The baseline's result: :class:`Baseline` and its dict form, and the group's physical address bits. Private to the collection."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from .._errors import FactsError, InputError
from ..cpu._features import validate_feature_name
from ..cpu._guest import GuestCpu
from ._cluster import BaselineOptions
from ._hostcpu import HostCpu


@dataclass(frozen=True)
class Baseline:
    """The best CPU every host can run, and why it is not better."""

    arch: str | None
    vendor: str | None
    accel: str | None
    model: str | None
    features: frozenset[str]  # what the guest gets: exactly the common (migratable) features
    model_features: frozenset[str] = frozenset()  # the named model's own features (QEMU's view)
    candidates: tuple[str, ...] = ()
    hosts: tuple[str, ...] = ()
    lost: Mapping[str, list[str]] = field(default_factory=dict)
    bottlenecks: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    blocked_models: Mapping[str, Mapping[str, list[str]]] = field(default_factory=dict)
    non_migratable_left_out: tuple[str, ...] = ()
    excluded: tuple[str, ...] = ()
    models_without_features: tuple[str, ...] = ()
    options: BaselineOptions = BaselineOptions()
    phys_bits: int | None = None  # the group's fewest physical address bits (None: some host does not say)
    maxphysaddr: int | None = None  # the bits the <cpu> emulates (<maxphysaddr mode='emulate'>), where libvirt can
    phys_bits_note: str | None = None  # why there is no <maxphysaddr>
    guest: GuestCpu | None = None  # the exact guest CPU every renderer takes (None: see guest_error)
    guest_error: str | None = None
    stacks: GuestCpu | None = field(default=None, compare=False)  # the group's stacks, before exactness shaped the set

    @property
    def require(self) -> list[str]:
        """Features beyond the model (QEMU names)."""
        return sorted(self.features - self.model_features)

    @property
    def disable(self) -> list[str]:
        """Features of the model the guest must not get (QEMU names)."""
        return sorted(self.model_features - self.features)

    def to_dict(self) -> dict[str, Any]:
        return {
            "arch": self.arch, "vendor": self.vendor, "accel": self.accel, "model": self.model,
            "candidates": list(self.candidates), "require": self.require, "disable": self.disable,
            # The explanation's lists and mappings are the engine's own, built for this result: handed out, not copied.
            "features": sorted(self.features), "hosts": list(self.hosts), "lost": dict(self.lost),
            "bottlenecks": dict(self.bottlenecks), "blocked_models": dict(self.blocked_models),
            "non_migratable_left_out": list(self.non_migratable_left_out), "excluded": list(self.excluded),
            "models_without_features": list(self.models_without_features),
            "options": {"migratable_only": self.options.migratable_only, "allow_deprecated": self.options.allow_deprecated,
                        "vendor_neutral": self.options.vendor_neutral},
            "phys_bits": self.phys_bits, "maxphysaddr": self.maxphysaddr, "phys_bits_note": self.phys_bits_note,
            "guest": self.guest.to_dict() if self.guest is not None else None, "guest_error": self.guest_error,
        }

    @classmethod
    def from_dict(cls, cpu: Any, what: str = "CPU definition") -> Baseline:
        """A baseline (or any CPU definition with 'features' and optionally 'model', 'arch', 'require', 'disable')."""
        if isinstance(cpu, Baseline):
            return cpu
        if not isinstance(cpu, Mapping) or "features" not in cpu or not isinstance(cpu["features"], (list, tuple)):
            raise InputError(f"expected a baseline as returned by cpu_baseline (a mapping with 'model' and 'features'), "
                             f"got {type(cpu).__name__}")
        try:
            feats = frozenset(validate_feature_name(f, f"{what}: features") for f in cpu["features"])
            model = cpu.get("model")
            if model is not None:
                validate_feature_name(model, f"{what}: model", "model")
            require = frozenset(validate_feature_name(f, f"{what}: require") for f in cpu.get("require") or [])
            disable = frozenset(validate_feature_name(f, f"{what}: disable") for f in cpu.get("disable") or [])
        except FactsError as exc:
            raise InputError(str(exc)) from None
        return cls(arch=cpu.get("arch"), vendor=cpu.get("vendor"), accel=cpu.get("accel"), model=model, features=feats,
                   model_features=(feats - require) | disable, candidates=tuple(cpu.get("candidates") or ()),
                   hosts=tuple(cpu.get("hosts") or ()), phys_bits=_bits(cpu.get("phys_bits")),
                   maxphysaddr=_bits(cpu.get("maxphysaddr")))


def _bits(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and 0 < value <= 64 else None


# libvirt learnt <maxphysaddr mode='emulate' bits='N'/> in 8.7.0.
MAXPHYSADDR_LIBVIRT = (8, 7, 0)


def _version(text: str | None) -> tuple[int, ...] | None:
    try:
        return tuple(int(p) for p in str(text).split(".")[:3]) if text else None
    except ValueError:
        return None


def address_bits(hosts: Sequence[HostCpu]) -> tuple[int | None, int | None, str | None]:
    """(the group's fewest physical address bits, the bits to emulate in <cpu>, why none are emulated).

    A guest that booted with more address bits than its destination has can crash after migration, so the group's
    minimum is rendered as <maxphysaddr mode='emulate'> where every host's libvirt knows the element.
    """
    unknown = sorted(h.name for h in hosts if h.phys_bits is None)
    if unknown:
        return None, None, f"no physical address bits from {', '.join(unknown[:10])}{' ...' if len(unknown) > 10 else ''}"
    bits = min(h.phys_bits for h in hosts if h.phys_bits is not None)
    old = sorted(h.name for h in hosts if (_version(h.libvirt) or (0,)) < MAXPHYSADDR_LIBVIRT)
    if old:
        return bits, None, (f"libvirt older than 8.7.0 or unknown on {', '.join(old[:10])}{' ...' if len(old) > 10 else ''}: "
                            "no <maxphysaddr> in the XML")
    return bits, bits, None
