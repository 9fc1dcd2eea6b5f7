# Copyright (c) 2026 cpucompat.cluster contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Render a :class:`GuestCpu` for Proxmox VE: a custom CPU model of ``/etc/pve/virtual-guest/cpu-models.conf``. Private.

Proxmox hands QEMU its own names, without libvirt: a VM with ``cpu: custom-NAME`` gets ``-cpu`` composed by
``PVE::QemuServer::CPUConfig::get_cpu_options`` from the section ``cpu-model: NAME``: the section's ``reported-model`` as
the model, Proxmox's own flags for that model (``+kvm_pv_unhalt``, ``+kvm_pv_eoi``; ``-rdtscp`` for Opteron models;
``+lahf_lm`` and ``+sep`` for kvm64), then the section's ``flags`` (``+f;-f``, later ones win, by name), then
``enforce`` (not for ``host``) and ``vendor=`` (from Proxmox's model list), all sorted by name, then ``phys-bits=``.

So the features named are those on which some QEMU of the group defines the reported model differently from the pinned
set (``cpu/_exact`` with ``libvirt=False``), and those Proxmox's own flags would set otherwise than the set, spelled as
Proxmox spells them so that ours override. ``reported-model`` must be in Proxmox's list of models, which keeps only the
alias names of QEMU's versioned models (``Skylake-Server-IBRS``, never ``Skylake-Server-v2``). :data:`PROXMOX_MODELS` is
Proxmox's own list: the hash of qemu-server's ``CPUConfig.pm`` (``_proxmox_models``, written by
``tools/gen_proxmox_models.py`` with the commit it was taken from), plus ``host``, which Proxmox adds for the node's
architecture. ``qemu_args`` is checked against Proxmox's own ``cfg2cmd`` test vectors (``tests/fixtures/proxmox``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from .._errors import InputError, RenderError
from ..cpu._exact import Problem, Solution, name_order
from ..cpu._features import canonical_name
from ..cpu._guest import GuestCpu, is_paravirt
from ._proxmox_models import DEPRECATED, MODELS, SOURCE_COMMIT
from ._platform import Refusal, qemu_solution, require_x86, same_everywhere

PLATFORM = "Proxmox VE"
DEFAULT_NAME = "cpucompat"
CPU_MODELS_CONF = "/etc/pve/virtual-guest/cpu-models.conf"
# The strictest section name every Proxmox release accepts (older ones allowed no '-'): 2 to 40 characters.
NAME_RE = re.compile(r"^[a-z][a-z0-9_]{1,39}$")
# Proxmox's custom-model flag: an operator and a name (PVE::QemuServer::CPUFlags' "any flag" pattern).
FLAG_RE = re.compile(r"^([+-])([a-zA-Z0-9._-]+)$")


# ------------------------------------------------------------------------------------------------ Proxmox's model list
# Proxmox's reported-model list for x86_64 (model -> vendor; ``default``: a generic model, the host's vendor), as
# qemu-server lists it, with ``host``, which initialize_cpu_models adds for the node's own architecture.
PROXMOX_MODELS: Mapping[str, str] = MappingProxyType({**MODELS["x86_64"], "host": "default"})
# Reported models Proxmox maps to another before QEMU sees them (there never was such a client CPU).
_REPLACED: Mapping[str, str] = MappingProxyType(dict(DEPRECATED))
# Listed, but never a model of ours: neither is one fixed CPU.
_UNFIXED = frozenset({"host", "max"})


def model_vendor(model: str) -> str | None:
    """The vendor Proxmox's list gives ``model`` (``default``: none), or None when the list lacks it."""
    return PROXMOX_MODELS.get(model)


def pve_flags(reported_model: str) -> dict[str, bool]:
    """The flags Proxmox itself adds for a Linux guest under KVM on x86_64 (``get_pve_cpu_flags``), as it spells them."""
    flags = {"kvm_pv_unhalt": True, "kvm_pv_eoi": True}
    if reported_model == "kvm64":
        flags["lahf_lm"] = True
    if reported_model in ("kvm64", "kvm32"):
        flags["sep"] = True
    if reported_model.startswith("Opteron"):
        flags["rdtscp"] = False
    return flags


# ------------------------------------------------------------------------------------------------ the rendering
@dataclass(frozen=True)
class ProxmoxCpu:
    """A custom CPU model of Proxmox VE: its section name, reported model and flags (Proxmox's spellings)."""

    name: str
    reported_model: str
    flags: Mapping[str, bool] = field(default_factory=dict)  # flag as written -> on/off
    phys_bits: int | None = None
    left_out: tuple[str, ...] = ()

    @property
    def flags_text(self) -> str:
        return ";".join(f"{'+' if on else '-'}{name}" for name, on in sorted(self.flags.items()))

    @property
    def cpu_models_conf(self) -> str:
        """The section as Proxmox writes it: header, then the properties sorted by key, tab-indented."""
        props = {"flags": self.flags_text, "phys-bits": str(self.phys_bits or ""), "reported-model": self.reported_model}
        return f"cpu-model: {self.name}\n" + "".join(f"\t{k} {v}\n" for k, v in sorted(props.items()) if v)

    @property
    def vm_cpu(self) -> str:
        return f"custom-{self.name}"

    @property
    def qemu_args(self) -> str:
        """The ``-cpu`` Proxmox composes for a Linux VM with ``cpu: custom-NAME`` under KVM (``get_cpu_options``): no
        ``enforce`` for ``host``, no ``vendor=`` for a generic model."""
        model = _REPLACED.get(self.reported_model, self.reported_model)
        resolved: dict[str, tuple[str, str]] = {n: ("+" if on else "-", "") for n, on in pve_flags(model).items()}
        resolved.update({n: ("+" if on else "-", "") for n, on in self.flags.items()})
        if model != "host":
            resolved["enforce"] = ("", "")
        vendor = model_vendor(model)
        if vendor not in (None, "default"):
            resolved["vendor"] = ("", f"={vendor}")
        parts = [f"{op}{name}{value}" for name, (op, value) in sorted(resolved.items())]
        return ",".join([model, *parts, *([f"phys-bits={self.phys_bits}"] if self.phys_bits else [])])

    def to_dict(self) -> dict[str, Any]:
        return {"cpu_models_conf": self.cpu_models_conf, "vm_cpu": self.vm_cpu, "qemu_args": self.qemu_args,
                "name": self.name, "reported_model": self.reported_model, "flags": self.flags_text,
                "phys_bits": self.phys_bits, "path": CPU_MODELS_CONF, "left_out": list(self.left_out)}


def render(guest: GuestCpu, name: str = DEFAULT_NAME, form: str = "minimal") -> ProxmoxCpu:
    """The custom CPU model ``name`` that gives ``guest`` exactly on every host of the group."""
    if not isinstance(name, str) or not NAME_RE.match(name):
        raise InputError(f"{PLATFORM}: {name!r} is not a custom CPU model name every Proxmox release accepts "
                         "(a lower-case letter, then 1 to 39 lower-case letters, digits or '_')")
    require_x86(guest, PLATFORM)
    solution = qemu_solution(guest, _names(guest), PLATFORM, form, check=_listed)
    flags = _flags(guest, solution)
    for flag, on in flags.items():
        if not FLAG_RE.match(f"{'+' if on else '-'}{flag}"):
            raise RenderError(f"{PLATFORM}: feature {flag!r} does not fit Proxmox's flag syntax (+name or -name)")
    return ProxmoxCpu(name, solution.model, flags, guest.phys_bits, tuple(sorted(guest.left_out)))


def _names(guest: GuestCpu) -> list[str]:
    """The engine's order, each name replaced by the name Proxmox lists for it (its alias) where the two are defined
    alike by every QEMU of the group."""
    listed = set(PROXMOX_MODELS) - set(_REPLACED) - _UNFIXED
    pool = sorted(set(guest.candidates) | {m for q in guest.qemu for m in q.definitions})
    out: list[str] = []
    for name in name_order(guest):
        spelled = [name] if name in listed else [a for a in pool if a in listed and same_everywhere(guest, a, name)]
        out += [s for s in (spelled or [name]) if s not in out]
    return out


def _listed(model: str, solution: Solution) -> list[Problem]:
    if model in _REPLACED:
        why = f"Proxmox replaces reported-model {model} by {_REPLACED[model]}"
    elif model in _UNFIXED:
        why = f"reported-model {model} is no fixed CPU"
    elif model not in PROXMOX_MODELS:
        why = (f"Proxmox's reported-model list has no {model} (qemu-server's CPUConfig.pm at "
               f"{SOURCE_COMMIT[:12]} lists the alias names of QEMU's versioned models, and not every model)")
    else:
        return []
    return [Refusal("model", model, PLATFORM, (), why)]


def _flags(guest: GuestCpu, solution: Solution) -> dict[str, bool]:
    """The section's flags: the solution's features, and Proxmox's own flags where they differ from the set, each
    spelled as Proxmox spells it (a later flag of the same name wins in ``get_cpu_options``)."""
    flags = dict(solution.policies)
    for spelling, on in pve_flags(solution.model).items():
        feature = canonical_name("x86_64", spelling)
        if is_paravirt(feature):
            continue
        named = feature in flags
        wanted = flags.pop(feature) if named else feature in guest.features
        if wanted != on or named:
            flags[spelling] = wanted
    return flags
