# Copyright (c) 2026 cpucompat.cluster contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The guest CPU: one platform-neutral value every renderer takes, and the stacks it must be exact on. Private.

A :class:`GuestCpu` says which features a guest gets, exactly (QEMU's canonical names), on which base model and machine
type family it was judged, and what else a renderer needs: the names of the models every host runs and what each QEMU
and each libvirt of the group makes of them (:class:`QemuStack`, :class:`LibvirtStack`). A model name alone means one
feature set to QEMU and another to libvirt's map, and both change between releases; the stacks are how a renderer
knows every meaning its output will get in the group.

The engine builds it; a contract pins its :meth:`GuestCpu.level`; renderers never import the engine.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from .._errors import BaselineError, FactsError, InputError
from ._features import validate_feature_name
from ._libvirt_map import CpuMap

GUEST_CPU_SCHEMA = "cpucompat.guest_cpu/1"


def is_paravirt(name: str) -> bool:
    """QEMU's paravirtual KVM features (kvmclock, kvm-pv-eoi...): set by the hypervisor's defaults, not by a model, and
    named by no libvirt CPU map; a guest CPU leaves them to the hypervisor."""
    return name.startswith("kvm")


def _names(value: Any, where: str, what: str = "feature") -> frozenset[str]:
    if not isinstance(value, (list, tuple, set, frozenset)):
        raise InputError(f"{where}: expected a list of names, got {type(value).__name__}")
    try:
        return frozenset(validate_feature_name(v, where, what) for v in value)
    except FactsError as exc:
        raise InputError(str(exc)) from None


@dataclass(frozen=True)
class QemuStack:
    """What one QEMU (release, machine type, accelerator) makes of the candidate models, and which hosts run it.

    ``definitions``: model name (aliases too) -> the features a guest of that model gets, with the accelerator's
    defaults and the machine type's compatibility properties. ``latent``/``hidden``: per model and dependency root, the
    features that appear when the root is turned on (vmx brings a model's vmx-* controls) or vanish when it is off.
    """

    label: str
    hosts: tuple[str, ...]
    definitions: Mapping[str, frozenset[str]]
    latent: Mapping[str, Mapping[str, frozenset[str]]] = field(default_factory=dict)
    hidden: Mapping[str, Mapping[str, frozenset[str]]] = field(default_factory=dict)

    def view(self, model: str, policies: Mapping[str, bool]) -> frozenset[str] | None:
        """The features QEMU gives a guest of ``model`` with these explicit properties (None: unknown model)."""
        base = self.definitions.get(model)
        if base is None:
            return None
        feats = set(base)
        for root, on in policies.items():
            if on and root not in base:
                feats |= self.latent.get(model, {}).get(root, frozenset())
            elif not on and root in base:
                feats -= self.hidden.get(model, {}).get(root, frozenset())
        feats |= {f for f, on in policies.items() if on}
        feats -= {f for f, on in policies.items() if not on}
        return frozenset(feats)

    def to_dict(self, models: Iterable[str] | None = None) -> dict[str, Any]:
        keep = sorted(self.definitions if models is None else set(models) & set(self.definitions))
        return {"label": self.label, "hosts": list(self.hosts),
                "definitions": {m: sorted(self.definitions[m]) for m in keep},
                "latent": {m: {r: sorted(f) for r, f in self.latent[m].items()} for m in keep if m in self.latent},
                "hidden": {m: {r: sorted(f) for r, f in self.hidden[m].items()} for m in keep if m in self.hidden}}

    @classmethod
    def from_dict(cls, data: Any, where: str) -> QemuStack:
        if not isinstance(data, Mapping):
            raise InputError(f"{where}: a QEMU stack must be a mapping")
        try:
            defs = {validate_feature_name(m, where, "model"): _names(f, f"{where}: {m}") for m, f in dict(data["definitions"]).items()}
            roots = {}
            for key in ("latent", "hidden"):
                roots[key] = {m: {r: _names(f, f"{where}: {m} {r}") for r, f in dict(v).items()}
                              for m, v in dict(data.get(key) or {}).items()}
        except (KeyError, TypeError, ValueError, FactsError) as exc:
            raise InputError(f"{where}: malformed QEMU stack ({exc})") from None
        return cls(str(data.get("label") or "QEMU"), tuple(str(h) for h in data.get("hosts") or ()), defs,
                   roots["latent"], roots["hidden"])


@dataclass(frozen=True)
class LibvirtStack:
    """One libvirt CPU map of the group, and the hosts whose libvirt reads it."""

    cpu_map: CpuMap
    hosts: tuple[str, ...]

    @property
    def label(self) -> str:
        return self.cpu_map.label

    def to_dict(self) -> dict[str, Any]:
        return {"label": self.label, "hosts": list(self.hosts), "version": self.cpu_map.version,
                "cpu_map": self.cpu_map.to_facts()}

    @classmethod
    def from_dict(cls, data: Any, where: str) -> LibvirtStack:
        if not isinstance(data, Mapping):
            raise InputError(f"{where}: a libvirt stack must be a mapping")
        version = data.get("version") if isinstance(data.get("version"), str) else None
        return cls(CpuMap.from_facts(data.get("cpu_map"), version, where), tuple(str(h) for h in data.get("hosts") or ()))


@dataclass(frozen=True)
class GuestCpu:
    """The exact CPU a group's guests get, and what its renderers need to say it on every stack of the group."""

    arch: str
    vendor: str | None
    model: str | None  # the base model (QEMU's name) the engine chose
    features: frozenset[str]  # exactly what a guest gets (QEMU's canonical names), paravirtual features left out
    machine: str | None = None  # the machine type family the models were judged under (pc-q35, pc-i440fx, virt...)
    phys_bits: int | None = None  # physical address bits to emulate (<maxphysaddr>); None: none
    candidates: tuple[str, ...] = ()  # names of the models every host runs, best first: what a renderer may write
    paravirt: frozenset[str] = frozenset()  # paravirtual features every host offers, left to the hypervisor
    left_out: Mapping[str, str] = field(default_factory=dict)  # feature every host has -> why a guest cannot get it
    qemu: tuple[QemuStack, ...] = ()
    libvirt: tuple[LibvirtStack, ...] = ()
    # aarch64: the host identity a host-passthrough guest CPU is pinned over (engine/_arm_identity); None elsewhere.
    identity: Mapping[str, Any] | None = None

    def __post_init__(self) -> None:
        # A 32-bit x86 guest (no long mode) has no physical address width to emulate: QEMU refuses phys-bits there
        # ("phys-bits is not user-configurable in 32 bit"), and libvirt's <maxphysaddr> becomes that phys-bits. Said
        # here, every renderer and every pinned level leaves it out.
        if self.phys_bits is not None and self.arch == "x86_64" and "lm" not in self.features:
            object.__setattr__(self, "phys_bits", None)

    # ------------------------------------------------------------------ the part a contract pins
    def level(self) -> dict[str, Any]:
        """What a contract pins: the feature set and what it was judged on (and why features every host had were left
        out, for the record); no stack, no XML."""
        return {"arch": self.arch, "vendor": self.vendor, "model": self.model, "features": sorted(self.features),
                "machine": self.machine, "phys_bits": self.phys_bits, "left_out": dict(sorted(self.left_out.items())),
                **({"identity": dict(self.identity)} if self.identity is not None else {})}

    @property
    def passthrough(self) -> bool:
        """host-passthrough over a pinned host identity (aarch64 groups of identical hosts)."""
        return self.identity is not None

    def with_level(self, level: Mapping[str, Any], where: str) -> GuestCpu:
        """This group's stacks and candidates with a pinned level (a contract's) instead of today's."""
        pinned = level_of(level, where)
        if pinned.arch != self.arch:
            raise InputError(f"{where} is for {pinned.arch}; the hosts are {self.arch}")
        candidates = self.candidates if pinned.model in self.candidates or pinned.model is None else (pinned.model, *self.candidates)
        return replace(self, vendor=pinned.vendor, model=pinned.model, features=pinned.features, machine=pinned.machine,
                       phys_bits=pinned.phys_bits, candidates=candidates, left_out=pinned.left_out, identity=pinned.identity)

    # ------------------------------------------------------------------ dicts, at the edges
    def to_dict(self) -> dict[str, Any]:
        return {"schema": GUEST_CPU_SCHEMA, **self.level(), "candidates": list(self.candidates),
                "paravirt": sorted(self.paravirt),
                "qemu": [q.to_dict(self.candidates) for q in self.qemu],
                "libvirt": [lv.to_dict() for lv in self.libvirt]}

    @classmethod
    def from_dict(cls, data: Any, where: str = "guest CPU") -> GuestCpu:
        """A guest CPU as :meth:`to_dict` gives it, or a baseline report carrying one under ``guest``."""
        if isinstance(data, GuestCpu):
            return data
        if isinstance(data, Mapping) and "guest" in data and "features" in data:  # a baseline: its guest CPU, or why none
            if data["guest"] is None:
                raise BaselineError(f"{where}: the baseline has no guest CPU: {data.get('guest_error') or 'none was computed'}")
            data = data["guest"]
        if not isinstance(data, Mapping) or data.get("schema") != GUEST_CPU_SCHEMA:
            raise InputError(f"{where}: expected a guest CPU ({GUEST_CPU_SCHEMA}) as cpu_baseline returns it under "
                             f"'guest', got {type(data).__name__}")
        base = level_of(data, where)
        return replace(
            base,
            candidates=tuple(_names(data.get("candidates") or [], f"{where}: candidates", "model")),
            paravirt=_names(data.get("paravirt") or [], f"{where}: paravirt"),
            qemu=tuple(QemuStack.from_dict(q, f"{where}: qemu[{i}]") for i, q in enumerate(data.get("qemu") or [])),
            libvirt=tuple(LibvirtStack.from_dict(lv, f"{where}: libvirt[{i}]") for i, lv in enumerate(data.get("libvirt") or [])))


IDENTITY_SCHEMA = "cpucompat.arm_identity/1"


def identity_digest(identity: Mapping[str, Any]) -> str:
    """``sha256:`` of an arm64 host identity (engine/_arm_identity) as canonical JSON: equal identities, equal digests."""
    canonical = json.dumps({"schema": IDENTITY_SCHEMA, **identity}, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return "sha256:" + hashlib.sha256(canonical.encode("ascii")).hexdigest()


IDENTITY_LABEL_KEY = "cpucompat.io/arm-identity"


def identity_label(identity: Mapping[str, Any]) -> str:
    """A Kubernetes label value (40 characters of [0-9a-f]) naming an arm64 host identity: what a nodeSelector matches."""
    return identity_digest(identity)[len("sha256:"):][:40]


def level_of(data: Any, where: str) -> GuestCpu:
    """A pinned level (:meth:`GuestCpu.level`) as a guest CPU without stacks; every name validated."""
    if not isinstance(data, Mapping):
        raise InputError(f"{where}: a CPU level must be a mapping with arch, model and features")
    for key in ("arch", "features"):
        if key not in data:
            raise InputError(f"{where}: the CPU level lacks {key!r}")
    model = data.get("model")
    if model is not None:
        _names([model], f"{where}: model", "model")
    bits = data.get("phys_bits")
    machine = data.get("machine")
    if machine is not None:
        _names([machine], f"{where}: machine", "machine type")
    left_out = data.get("left_out") or {}
    if not isinstance(left_out, Mapping):
        raise InputError(f"{where}: left_out must be a mapping of feature to reason")
    identity = data.get("identity")
    if identity is not None and (not isinstance(identity, Mapping) or not all(isinstance(k, str) for k in identity)):
        raise InputError(f"{where}: identity must be a mapping of field to value (an arm64 host identity)")
    return GuestCpu(arch=str(data["arch"]), vendor=None if data.get("vendor") is None else str(data["vendor"]),
                    model=model, features=_names(data["features"], f"{where}: features"),
                    machine=machine, phys_bits=bits if isinstance(bits, int) and not isinstance(bits, bool) and 0 < bits <= 64 else None,
                    left_out={f: str(left_out[f]) for f in _names(list(left_out), f"{where}: left_out")},
                    identity=dict(identity) if identity is not None else None)
