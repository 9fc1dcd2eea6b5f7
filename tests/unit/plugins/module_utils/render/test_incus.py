# Copyright (c) 2026 cpucompat.cluster contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Incus: the cluster-group keys, and the -cpu its cpuType() builds from them (with the topoext it adds for SMT)."""

from __future__ import annotations

from dataclasses import replace

import pytest

from ansible_collections.cpucompat.cluster.plugins.module_utils._errors import InputError, RenderError
from ansible_collections.cpucompat.cluster.plugins.module_utils.cpu._guest import GuestCpu, QemuStack
from ansible_collections.cpucompat.cluster.plugins.module_utils.render import _incus

QEMU = QemuStack("QEMU 10.0", ("i1",), {"EPYC-v4": frozenset({"fpu", "sse", "topoext"}), "M-v1": frozenset({"fpu", "sse", "lm"})})


def guest(model="M-v1", features=("fpu", "sse", "pku", "lm"), **more) -> GuestCpu:
    return GuestCpu("x86_64", "GenuineIntel", model, frozenset(features), candidates=(model,), qemu=(QEMU,), **more)


def test_keys_and_the_cpu_incus_builds() -> None:
    cpu = _incus.render(guest(phys_bits=40))
    assert cpu.keys == {"instances.vm.cpu.x86_64.baseline": "M-v1",
                        "instances.vm.cpu.x86_64.flags": "pku=on,topoext=off,phys-bits=40,enforce"}
    assert cpu.qemu_args(1) == "M-v1,pku=on,topoext=off,phys-bits=40,enforce"
    assert cpu.qemu_args(2) == "M-v1,topoext,pku=on,topoext=off,phys-bits=40,enforce", "ours come after Incus's own"
    assert cpu.commands("hypervisors") == ["incus cluster group set hypervisors instances.vm.cpu.x86_64.baseline=M-v1",
                                           "incus cluster group set hypervisors instances.vm.cpu.x86_64.flags="
                                           "pku=on,topoext=off,phys-bits=40,enforce"]


def test_a_set_with_topoext_lets_incus_add_it() -> None:
    cpu = _incus.render(guest("EPYC-v4", ("fpu", "sse", "topoext")))
    assert cpu.flags == "enforce" and cpu.qemu_args(2) == "EPYC-v4,topoext,enforce"


def test_a_feature_the_flags_cannot_carry_is_refused_naming_it() -> None:
    with pytest.raises(RenderError, match="feature 'a=b'"):
        _incus.render(replace(guest(), features=frozenset({"fpu", "sse", "a=b"})))


@pytest.mark.parametrize("group", ["two words", "x;rm -rf /", ""])
def test_a_group_name_is_refused_before_it_reaches_a_command(group) -> None:
    with pytest.raises(InputError, match="cluster group name"):
        _incus.render(guest()).commands(group)
