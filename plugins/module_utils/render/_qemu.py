# Copyright (c) 2026 cpucompat.cluster contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Render a :class:`GuestCpu` as the value of QEMU's ``-cpu``, exact on every QEMU of its group. Private.

x86_64: ``MODEL,feature=on,other=off,...,phys-bits=N,enforce``: QEMU's canonical names, always ``name=on|off`` (never mixed with
the ``+f``/``-f`` form, which QEMU applies after every ``name=value`` whatever the order), and ``enforce``, so that a
host which cannot give a named feature refuses to start the guest instead of silently dropping it. No libvirt reads the
value: the features named are those on which some QEMU of the group defines the model differently from the pinned set
(``cpu/_exact`` with ``libvirt=False``), the model is one every QEMU of the group knows, preferably its versioned name
(an unversioned name follows the machine type), and every named feature is one every QEMU of the group is known to have.

s390x: ``MODEL,feature=on,...``, the static ``-base`` model of the guest CPU and the features it adds or removes, in
QEMU's s390x names (``sea_esop2``, ``msa5``). s390x has no ``enforce`` and no ``phys-bits``: QEMU's s390x CPU model check
always refuses a feature the host cannot give ("Some features requested in the CPU model are not available in the
configuration"), and a static model means the same on every QEMU that knows it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ..cpu._guest import GuestCpu
from .._errors import RenderError
from ..cpu._exact import name_order
from ._platform import qemu_solution, require_x86, versioned_first

PLATFORM = "QEMU -cpu"


@dataclass(frozen=True)
class QemuCpu:
    """A model name and its explicit properties, as QEMU's ``-cpu`` takes them."""

    model: str
    policies: Mapping[str, bool] = field(default_factory=dict)  # QEMU feature name -> on/off
    phys_bits: int | None = None
    left_out: tuple[str, ...] = ()
    enforce: bool = True  # x86: QEMU drops a feature the host lacks unless told to enforce; s390x always refuses

    @property
    def props(self) -> tuple[str, ...]:
        """The feature properties, ``name=on|off``, sorted by name."""
        return tuple(f"{name}={'on' if on else 'off'}" for name, on in sorted(self.policies.items()))

    @property
    def args(self) -> str:
        """The value of ``-cpu``."""
        bits = (f"phys-bits={self.phys_bits}",) if self.phys_bits else ()
        return ",".join((self.model, *self.props, *bits, *(("enforce",) if self.enforce else ())))

    def to_dict(self) -> dict[str, Any]:
        return {"args": self.args, "model": self.model, "props": list(self.props), "phys_bits": self.phys_bits,
                "left_out": list(self.left_out)}


def render(guest: GuestCpu, form: str = "minimal") -> QemuCpu:
    """The ``-cpu`` of ``guest``; ``form='explicit'`` names every feature some definition or the set has."""
    if guest.passthrough:  # aarch64 groups of identical hosts: -cpu host (identical hosts only)
        return QemuCpu("host", {}, None, (), enforce=False)
    if guest.arch == "s390x":
        if guest.model is None:
            raise RenderError(f"{PLATFORM}: the s390x guest CPU has no named model; QEMU's -cpu needs one")
        solution = qemu_solution(guest, name_order(guest), PLATFORM, form)
        return QemuCpu(solution.model, dict(solution.policies), None, tuple(sorted(guest.left_out)), enforce=False)
    require_x86(guest, PLATFORM)
    solution = qemu_solution(guest, versioned_first(guest), PLATFORM, form)
    return QemuCpu(solution.model, dict(solution.policies), guest.phys_bits, tuple(sorted(guest.left_out)))
