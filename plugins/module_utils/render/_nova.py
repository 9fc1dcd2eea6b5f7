# Copyright (c) 2026 cpucompat.cluster contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Render a :class:`GuestCpu` as OpenStack Nova's ``[libvirt]`` CPU options, exact on every compute host. Private.

Nova's libvirt driver builds each instance's ``<cpu mode='custom' match='exact'>`` from ``cpu_models`` (one of them:
the first, or the first with the CPU traits a flavor asks for) and every ``cpu_model_extra_flags`` (``+f`` require,
``-f`` disable, lower-cased). So the rule is the libvirt ``<cpu>``'s (``cpu/_exact`` with ``libvirt=True``): libvirt's
names, every feature on which some QEMU or libvirt map of the group disagrees with the pinned set named, and every model
listed is one that, with all the extra flags, means exactly the set on every stack (the chosen model and those every
QEMU of the group defines alike). At start-up Nova looks each model up case-insensitively among libvirt's model names
and compares the model with all the flags against the host (``compareHypervisorCPU``); it refuses to start on a
difference, which the ``nova_cpu_check`` module asks beforehand. ``-flag`` needs Nova 23.0.0 (Wallaby) or newer.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from .._errors import RenderError
from ..cpu._exact import Problem, Solution, name_order
from ..cpu._guest import GuestCpu
from ._platform import also_exact, first_exact, plain_name, require_libvirt, require_x86

PLATFORM = "OpenStack Nova"
MINUS_FLAGS_SINCE = "23.0.0"  # Wallaby: cpu_model_extra_flags takes -flag
CPU_MODELS_SINCE = "20.0.0"  # Train: cpu_models (before: cpu_model, one model)
MAXPHYSADDR_SINCE = "27.0.0"  # 2023.1 Antelope: hw:maxphysaddr_mode and hw:maxphysaddr_bits


@dataclass(frozen=True)
class NovaCpu:
    """Nova's ``[libvirt]`` CPU options: the models (libvirt's names) and the extra flags (libvirt's names, on/off)."""

    models: tuple[str, ...]
    flags: Mapping[str, bool] = field(default_factory=dict)
    phys_bits: int | None = None
    left_out: tuple[str, ...] = ()

    @property
    def extra_flags(self) -> list[str]:
        return [f"{'+' if on else '-'}{name}" for name, on in sorted(self.flags.items())]

    @property
    def options(self) -> dict[str, str]:
        """The three options as they are written in nova.conf (oslo.config lists: comma-separated)."""
        return {"cpu_mode": "custom", "cpu_models": ", ".join(self.models), "cpu_model_extra_flags": ", ".join(self.extra_flags)}

    @property
    def ini(self) -> str:
        return "[libvirt]\n" + "".join(f"{k} = {v}".rstrip() + "\n" for k, v in self.options.items())

    @property
    def requires(self) -> str:
        if any(not on for on in self.flags.values()):
            return f"Nova {MINUS_FLAGS_SINCE} (Wallaby) or newer: cpu_model_extra_flags disables features with -flag"
        return f"Nova {CPU_MODELS_SINCE} (Train) or newer: the cpu_models option"

    @property
    def flavor_extra_specs(self) -> dict[str, str]:
        """What nova.conf cannot say: the physical address bits, on every flavor (Nova 27.0.0 or newer)."""
        if not self.phys_bits:
            return {}
        return {"hw:maxphysaddr_mode": "emulate", "hw:maxphysaddr_bits": str(self.phys_bits)}

    def xml(self, model: str) -> str:
        """The ``<cpu>`` Nova builds for an instance of ``model`` (its LibvirtConfigGuestCPU: features sorted by name)."""
        feats = "".join(f'  <feature name="{n}" policy="{"require" if on else "disable"}"/>\n' for n, on in sorted(self.flags.items()))
        return f'<cpu mode="custom" match="exact">\n  <model>{model}</model>\n{feats}</cpu>\n'

    def to_dict(self) -> dict[str, Any]:
        return {"cpu_mode": "custom", "cpu_models": list(self.models), "cpu_model_extra_flags": self.extra_flags,
                "ini": self.ini, "requires": self.requires, "flavor_extra_specs": self.flavor_extra_specs,
                "left_out": list(self.left_out)}


def render(guest: GuestCpu, form: str = "minimal") -> NovaCpu:
    """Nova's options for ``guest``: the chosen model first, then the names every stack defines alike."""
    require_x86(guest, PLATFORM)
    require_libvirt(guest, PLATFORM)
    solution = first_exact(guest, name_order(guest), PLATFORM, form=form, libvirt=True, check=_refusals)
    spell = guest.libvirt[0].cpu_map.libvirt_name
    flags = {str(spell(f)): on for f, on in solution.policies.items()}
    check_flags(flags)
    models = [solution.model, *_equivalents(guest, solution)]
    return NovaCpu(tuple(models), flags, guest.phys_bits, tuple(sorted(guest.left_out)))


def _refusals(model: str, solution: Solution) -> list[Problem]:
    """A model name Nova's list and libvirt's XML can carry."""
    plain_name(model, "model", PLATFORM)
    return []


def _equivalents(guest: GuestCpu, solution: Solution) -> list[str]:
    """The other names every libvirt of the group knows that, with the same flags, mean exactly the set too."""
    out = []
    for name in name_order(guest):
        if name == solution.model or any(name not in lv.cpu_map.models for lv in guest.libvirt):
            continue
        if all(q.definitions.get(name) == q.definitions.get(solution.model) for q in guest.qemu) \
                and also_exact(guest, name, dict(solution.policies), libvirt=True):
            out.append(plain_name(name, "model", PLATFORM))
    return out


def check_flags(flags: Mapping[str, bool]) -> None:
    """Every flag as Nova passes it: lower-cased, so a libvirt name with a capital cannot be said."""
    for name in flags:
        plain_name(name, "feature", PLATFORM)
        if name != name.lower():
            raise RenderError(f"{PLATFORM}: feature {name} cannot be named: Nova lower-cases cpu_model_extra_flags "
                              "and libvirt's names are case-sensitive")
