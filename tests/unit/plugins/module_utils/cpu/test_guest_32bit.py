# Copyright (c) 2026 cpucompat.cluster contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""A 32-bit x86 guest CPU (no ``lm``) carries no physical address bits: QEMU refuses phys-bits there."""

from __future__ import annotations

from ansible_collections.cpucompat.cluster.plugins.module_utils.cpu._guest import GuestCpu, level_of


def _guest(features: set[str], bits: int | None = 48) -> GuestCpu:
    return GuestCpu(arch="x86_64", vendor="GenuineIntel", model="486", features=frozenset(features), phys_bits=bits,
                    candidates=("486",))


def test_no_long_mode_no_phys_bits() -> None:
    assert _guest({"fpu", "vme"}).phys_bits is None
    assert _guest({"fpu", "lm"}).phys_bits == 48


def test_a_pinned_level_with_bits_but_without_lm_loses_them() -> None:
    """A contract pinned before the fix (phys_bits 48 on a 32-bit level) renders without them."""
    with_lm = _guest({"fpu", "lm"})
    level = {**_guest({"fpu"}).level(), "phys_bits": 48}
    again = with_lm.with_level(level, "contract")
    assert again.phys_bits is None
    assert level_of(level, "contract").phys_bits is None
