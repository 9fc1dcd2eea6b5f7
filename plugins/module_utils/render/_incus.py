# Copyright (c) 2026 cpucompat.cluster contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Render a :class:`GuestCpu` as Incus cluster-group configuration keys. Private.

Incus runs QEMU itself, without libvirt. For a VM that can live-migrate (``migration.stateful=true``) on a clustered
server, its ``cpuType()`` builds ``-cpu`` from the VM's cluster group: ``instances.vm.cpu.<arch>.baseline`` as the model,
then its own extensions (``topoext`` when the VM has more than one thread per core), then the comma-separated
``instances.vm.cpu.<arch>.flags`` verbatim. QEMU applies ``name=value`` properties in order, later ones winning, so
the flags name ``topoext`` whenever the pinned set lacks it; otherwise the rule is QEMU's (``cpu/_exact`` with
``libvirt=False``): QEMU's names, every feature on which some QEMU of the group defines the model differently from the
set named ``name=on|off``, ``phys-bits`` when the group's hosts say how many address bits, and ``enforce``, so that a
host which cannot give a named feature refuses to start the VM instead of dropping the feature. The keys exist from
Incus 6.4 on; other VMs (not stateful-migratable, or on a standalone server) get ``host`` and are not covered.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from .._errors import InputError
from ..cpu._guest import GuestCpu
from ._platform import qemu_solution, require_x86, versioned_first

PLATFORM = "Incus"
SINCE = "6.4"
GROUP_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$")
SMT_EXTENSION = "topoext"  # cpuType() adds it before the group's flags when the VM has more than one thread per core


@dataclass(frozen=True)
class IncusCpu:
    """The cluster group's baseline model and flags (QEMU's names)."""

    model: str
    policies: Mapping[str, bool] = field(default_factory=dict)
    phys_bits: int | None = None
    arch: str = "x86_64"
    left_out: tuple[str, ...] = ()

    @property
    def flags(self) -> str:
        props = [f"{name}={'on' if on else 'off'}" for name, on in sorted(self.policies.items())]
        return ",".join([*props, *([f"phys-bits={self.phys_bits}"] if self.phys_bits else []), "enforce"])

    @property
    def keys(self) -> dict[str, str]:
        return {f"instances.vm.cpu.{self.arch}.baseline": self.model, f"instances.vm.cpu.{self.arch}.flags": self.flags}

    def qemu_args(self, threads: int = 1) -> str:
        """The ``-cpu`` Incus builds for a stateful-migratable VM of the cluster group (``cpuType()``)."""
        extensions = [SMT_EXTENSION] if self.arch == "x86_64" and threads > 1 else []
        extensions += [f.strip() for f in self.flags.split(",") if f.strip()]
        return ",".join([self.model, *extensions])

    def commands(self, group: str = "default") -> list[str]:
        """The ``incus`` commands that set the keys on cluster group ``group``."""
        if not isinstance(group, str) or not GROUP_RE.match(group):
            raise InputError(f"{PLATFORM}: {group!r} is not a cluster group name (letters, digits, '.', '_', '-')")
        return [f"incus cluster group set {group} {key}={value}" for key, value in self.keys.items()]

    def to_dict(self) -> dict[str, Any]:
        return {"keys": self.keys, "qemu_args": self.qemu_args(), "qemu_args_smt": self.qemu_args(2),
                "applies_to": f"VMs with migration.stateful=true on clustered Incus {SINCE} or newer servers",
                "left_out": list(self.left_out)}


def render(guest: GuestCpu, form: str = "minimal") -> IncusCpu:
    """The cluster-group keys for ``guest``."""
    require_x86(guest, PLATFORM)
    solution = qemu_solution(guest, versioned_first(guest), PLATFORM, form)
    policies = dict(solution.policies)
    if SMT_EXTENSION not in guest.features:
        policies[SMT_EXTENSION] = False  # overrides the topoext cpuType() adds for SMT guests
    return IncusCpu(solution.model, policies, guest.phys_bits, guest.arch, tuple(sorted(guest.left_out)))
