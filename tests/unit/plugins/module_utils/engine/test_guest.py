# Copyright (c) 2026 cpucompat.cluster contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The group's guest CPU over recorded hosts: its stacks, what it leaves out and why, and the value's round trip."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest

from ansible_collections.cpucompat.cluster.plugins.module_utils.cpu._exact import InexactError, name_order
from ansible_collections.cpucompat.cluster.plugins.module_utils.cpu._guest import GuestCpu, is_paravirt
from ansible_collections.cpucompat.cluster.plugins.module_utils.engine import _guest
from ansible_collections.cpucompat.cluster.plugins.module_utils.engine._baseline import baseline_of
from ansible_collections.cpucompat.cluster.plugins.module_utils.render._libvirt import render
from utils.recordings import facts_of

GOLD, PLATINUM = "x86_64-xeon-gold-6130", "x86_64-xeon-platinum-9242"


def test_the_stacks_are_the_groups_own() -> None:
    guest = baseline_of({"gold": facts_of(GOLD, "system"), "platinum": facts_of(PLATINUM, "backports")}).guest
    assert [lv.cpu_map.version for lv in guest.libvirt] == ["9.0.0", "11.3.0"] and [lv.hosts for lv in guest.libvirt] == [("gold",), ("platinum",)]
    assert {q.label.split()[1] for q in guest.qemu} == {"7.2.22", "10.0.2"}, "QEMU of unknown version: every catalogued release"
    assert guest.machine is None and guest.model in guest.candidates[:4], "the engine's model or a name QEMU defines alike"
    assert not any(is_paravirt(f) for f in guest.features) and guest.paravirt


def test_what_no_guest_can_get_exactly_is_left_out_with_the_reason() -> None:
    base = baseline_of({"gold": facts_of(GOLD), "platinum": facts_of(PLATINUM)})
    guest = base.guest
    assert guest.features < base.features and set(guest.left_out) == {"lmce", "vmx"}
    assert "has no name for it" in guest.left_out["lmce"]
    assert "none of the" in guest.left_out["vmx"], "the 6130's QEMU reports no vmx-* control: vmx alone is no nested guest"


def test_a_sub_feature_without_its_root_is_left_out() -> None:
    """QEMU clears a root's sub-features when the root is off: a host reporting npt without svm cannot give it."""
    epyc = facts_of("x86_64-epyc-7502")
    without_svm = dict(epyc, features=[f for f in epyc["features"] if f != "svm"])
    guest = baseline_of({"a": epyc, "b": without_svm}).guest
    assert "npt" not in guest.features and "exists only with svm" in guest.left_out["npt"]


def test_a_host_without_libvirt_constrains_nothing_libvirt_specific() -> None:
    guest = baseline_of({"gold": facts_of(GOLD, None), "platinum": facts_of(PLATINUM, None)}).guest
    assert guest.libvirt == () and "lmce" in guest.features, "no libvirt: nothing it cannot name"
    with pytest.raises(InexactError, match="no host of the group has a libvirt CPU map"):
        render(guest)


def test_the_value_round_trips_and_a_level_goes_onto_todays_stacks() -> None:
    guest = baseline_of({"gold": facts_of(GOLD), "platinum": facts_of(PLATINUM, "backports")}).guest
    again = GuestCpu.from_dict(json.loads(json.dumps(guest.to_dict())))
    assert again.level() == guest.level() and render(again).xml == render(guest).xml
    level = {**guest.level(), "features": sorted(guest.features - {"pku"})}
    lowered = guest.with_level(level, "a contract")
    assert "pku" not in lowered.features and lowered.libvirt == guest.libvirt
    assert "name='pku'" in render(lowered).xml and "policy='disable' name='pku'" in render(lowered).xml
    with pytest.raises(Exception, match="is for s390x"):
        guest.with_level({**level, "arch": "s390x"}, "a contract")


def _exact_trying_every_name(guest: GuestCpu) -> GuestCpu:
    """exact() as it searched before: every name of name_order shaped, the lowest (weight, rank) kept."""
    brought = _guest._brought(guest)
    gaps = {**_guest._dependency_gaps(guest, brought), **_guest._unnamed(guest)}
    guest = replace(guest, features=guest.features - frozenset(gaps), left_out={**guest.left_out, **gaps})
    scored = []
    for rank, name in enumerate(name_order(guest)):
        shaped, _failure = _guest._shape(guest, name, brought)
        if shaped is not None:
            scored.append((_guest._weight(shaped, guest, brought), rank, shaped))
    return min(scored, key=lambda s: s[:2])[2]


@pytest.mark.parametrize("group", [
    {"gold": GOLD, "platinum": PLATINUM}, {"a": GOLD, "b": GOLD}, {"epyc": "x86_64-epyc-7502", "epyc2": "x86_64-epyc-7502"},
    {"gold": GOLD, "platinum": PLATINUM, "old": "x86_64-xeon-gold-6130"},
], ids=lambda g: "+".join(g.values()))
def test_the_early_stop_chooses_what_trying_every_name_chooses(group: dict[str, str]) -> None:
    """exact() stops at the first name that leaves out nothing beyond the group's gaps: no later name scores better."""
    base = baseline_of({host: facts_of(rec) for host, rec in group.items()})
    assert base.stacks is not None
    assert _guest.exact(base.stacks) == _exact_trying_every_name(base.stacks) == base.guest
