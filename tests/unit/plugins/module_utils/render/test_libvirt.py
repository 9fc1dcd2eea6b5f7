# Copyright (c) 2026 cpucompat.cluster contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The libvirt <cpu> per architecture: what libvirt accepts for each (judged live in the integration tests)."""

from __future__ import annotations

from dataclasses import replace

from ansible_collections.cpucompat.cluster.plugins.module_utils.engine._baseline import baseline_of
from ansible_collections.cpucompat.cluster.plugins.module_utils.render import _libvirt
from utils.recordings import facts_of

S390X = ("s390x-z14.2-qemu-4.0.0", "s390x-gen15a-qemu-8.2.0")


def test_an_s390x_cpu_never_carries_maxphysaddr() -> None:
    """libvirt refuses <maxphysaddr> for s390x ("not supported for 's390x' architecture"), whatever the facts say."""
    guest = baseline_of({n: {**facts_of(n), "phys_bits": 48} for n in S390X}).guest
    xml = _libvirt.render(replace(guest, phys_bits=48)).spec.to_xml()
    assert "maxphysaddr" not in xml
    assert "<model fallback='forbid'>z14.2-base</model>" in xml and "<vendor>" not in xml
    assert "<feature policy='require' name='sea_esop2'/>" in xml


def test_an_x86_cpu_emulates_the_groups_address_bits() -> None:
    names = ("x86_64-xeon-gold-6130", "x86_64-xeon-e5-2650-v4")
    guest = baseline_of({n: facts_of(n) for n in names}).guest
    assert "<maxphysaddr mode='emulate' bits='46'/>" in _libvirt.render(replace(guest, phys_bits=46)).spec.to_xml()
