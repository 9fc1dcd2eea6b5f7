# Copyright (c) 2026 cpucompat.cluster contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Render a :class:`GuestCpu` as the libvirt ``<cpu>`` element, exact on every stack of its group. Private.

The element is ``<cpu mode='custom' match='exact' check='full'>`` with ``<model fallback='forbid'>``: libvirt then
refuses to start a guest whose CPU differs from what the element says, and never swaps the model. Which features are
named, and the model name written, come from ``cpu/_exact``: every feature on which some QEMU or some libvirt map of
the group disagrees with the guest's set is named, in the spelling every libvirt of the group knows, and the model is
one every host's libvirt and QEMU know (the alias or unversioned name while some libvirt predates versioned models).
On s390x and aarch64 libvirt passes QEMU's names through. The text comes from the one writer, ``CpuSpec.to_xml``.
"""

from __future__ import annotations

from collections.abc import Callable

from .._errors import RenderError
from ..cpu._exact import FORMS, InexactError, Solution, choose
from ..cpu._guest import GuestCpu
from ..cpu._libvirt_map import LIBVIRT_VENDOR
from . import _passthrough
from ._cpuspec import CpuSpec, RenderedCpu

__all__ = ["FORMS", "render"]


def _verbatim(name: str) -> str | None:
    return name


def render(guest: GuestCpu, form: str = "minimal") -> RenderedCpu:
    """The ``<cpu>`` of ``guest``; ``form='explicit'`` names every feature of the group's common vocabulary."""
    if guest.passthrough:  # aarch64 groups of identical hosts
        return _passthrough.libvirt(guest)
    if guest.model is None:
        raise RenderError(f"the {guest.arch} guest CPU has no named model; libvirt needs one for mode='custom' "
                          "(use host-passthrough on identical hosts)")
    if guest.arch == "x86_64":
        if not guest.libvirt:
            raise InexactError("no host of the group has a libvirt CPU map in its facts (probe hosts that run libvirt, "
                               "or pass the CPU map of the hosts' libvirt)")
        solution = choose(guest, form, libvirt=True)
        spell: Callable[[str], str | None] = guest.libvirt[0].cpu_map.libvirt_name
        vendor = LIBVIRT_VENDOR.get(str(guest.vendor))
    else:
        solution = choose(guest, form, libvirt=False)
        vendor = None
        spell = _verbatim
    return RenderedCpu(_spec(guest, solution, spell, vendor), tuple(sorted(guest.left_out)), solution.model)


def _spec(guest: GuestCpu, solution: Solution, spell, vendor: str | None) -> CpuSpec:  # type: ignore[no-untyped-def]
    features = ([("require", str(spell(f))) for f, on in sorted(solution.policies.items()) if on]
                + [("disable", str(spell(f))) for f, on in sorted(solution.policies.items()) if not on])
    # libvirt knows <maxphysaddr> for x86 only: on s390x and aarch64 it refuses to define the domain ("CPU maximum
    # physical address bits specification is not supported for 's390x' architecture").
    other = (f"<maxphysaddr mode='emulate' bits='{guest.phys_bits}'/>",) if guest.phys_bits and guest.arch == "x86_64" else ()
    note = None
    if guest.left_out:
        note = f"every host has, no guest gets exactly (the report says why): {', '.join(sorted(guest.left_out))}"
    return CpuSpec(mode="custom", match="exact", check="full", model=solution.model, model_attrs=(("fallback", "forbid"),),
                   vendor=vendor, features=tuple(features), other=other, note=note)
