# Copyright (c) 2026 cpucompat.cluster contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""QEMU's -cpu value: its grammar, the names it may carry, and the refusals that name the stack and the name."""

from __future__ import annotations

from dataclasses import replace

import pytest

from ansible_collections.cpucompat.cluster.plugins.module_utils._errors import RenderError
from ansible_collections.cpucompat.cluster.plugins.module_utils.cpu._exact import InexactError
from ansible_collections.cpucompat.cluster.plugins.module_utils.cpu._guest import GuestCpu, QemuStack
from ansible_collections.cpucompat.cluster.plugins.module_utils.engine._baseline import baseline_of
from ansible_collections.cpucompat.cluster.plugins.module_utils.render import _qemu
from utils.recordings import facts_of

OLD = QemuStack("QEMU 7.2", ("hv1",), {"M": frozenset({"fpu", "sse", "pku"}), "M-v1": frozenset({"fpu", "sse", "pku"}),
                                       "N": frozenset({"fpu", "avx"})})
NEW = QemuStack("QEMU 10.0", ("hv2",), {"M": frozenset({"fpu", "sse", "pku", "avx"}), "M-v1": frozenset({"fpu", "sse", "pku", "avx"})})


def guest(features=("fpu", "sse", "mpx"), qemu=(OLD, NEW), **more) -> GuestCpu:
    return GuestCpu("x86_64", "GenuineIntel", "M", frozenset(features), candidates=("M", "M-v1"), qemu=qemu, **more)


def test_every_disagreement_is_named_in_one_syntax_and_enforced() -> None:
    cpu = _qemu.render(guest(), )
    assert cpu.model == "M-v1", "the versioned name every QEMU defines alike"
    assert cpu.args == "M-v1,avx=off,mpx=on,pku=off,enforce"
    assert not any(p.startswith(("+", "-")) for p in cpu.args.split(",")[1:])


def test_phys_bits_are_emulated() -> None:
    """For a 64-bit guest (lm); a 32-bit one has none to emulate (test_guest_32bit)."""
    assert _qemu.render(guest(features=("fpu", "sse", "mpx", "lm"), phys_bits=39)).args.endswith(",phys-bits=39,enforce")


def test_a_feature_some_qemu_may_not_know_is_refused_naming_the_stack() -> None:
    """QEMU 10.0 defines M with avx; QEMU 7.2 mentions avx nowhere: avx=off could be an unknown property there."""
    with pytest.raises(InexactError, match=r"QEMU 7.2 \(hosts hv1\) may not know feature avx"):
        _qemu.render(guest(qemu=(replace(OLD, definitions={"M": OLD.definitions["M"]}),
                                 replace(NEW, definitions={"M": NEW.definitions["M"]}))))


def test_a_model_one_qemu_lacks_is_refused_naming_it() -> None:
    with pytest.raises(InexactError, match="QEMU 7.2 .*does not know the model M"):
        _qemu.render(replace(guest(), candidates=("M",), qemu=(QemuStack("QEMU 7.2", ("hv1",), {"X": frozenset()}), NEW)))


@pytest.mark.parametrize("features, message", [
    (("fpu", "sse", "bad,name"), "feature 'bad,name'"),
    (("fpu", "sse", "mpx", "trailing-"), "feature 'trailing-'"),
], ids=["comma", "trailing-dash"])
def test_a_name_qemu_cannot_carry_is_refused_naming_it(features, message) -> None:
    with pytest.raises(RenderError, match=message):
        _qemu.render(guest(features))


@pytest.mark.parametrize("change, message", [
    ({"arch": "aarch64"}, "implemented for x86_64"),
    ({"arch": "s390x", "model": None}, "s390x guest CPU has no named model"),
    ({"model": None}, "no named model"),
    ({"qemu": ()}, "carries no QEMU stack"),
])
def test_what_is_not_a_renderable_guest_cpu_is_refused(change, message) -> None:
    with pytest.raises(RenderError, match=message):
        _qemu.render(replace(guest(), **change))


def test_a_recorded_group() -> None:
    cpu = _qemu.render(baseline_of({n: facts_of(n, lv) for n, lv in zip(("x86_64-xeon-gold-6130", "x86_64-xeon-platinum-9242"),
                                                                        ("system", "backports"))}).guest)
    assert cpu.model == "Skylake-Server-v2" and "mpx=on" in cpu.props and cpu.args.endswith(",enforce")
    assert cpu.to_dict()["left_out"] == ["lmce", "vmx"]


def test_a_recorded_s390x_group_has_no_enforce_and_no_phys_bits() -> None:
    """s390x has neither property: QEMU's s390x model check refuses what the host lacks (judged live in
    tests/integration/test_s390x_end_to_end.py)."""
    names = ("s390x-z14.2-qemu-4.0.0", "s390x-gen15a-qemu-8.2.0")
    cpu = _qemu.render(baseline_of({n: {**facts_of(n), "phys_bits": 48} for n in names}).guest)
    assert cpu.model == "z14.2-base" and cpu.phys_bits is None and not cpu.enforce
    assert cpu.args.startswith("z14.2-base,") and "enforce" not in cpu.args and "phys-bits" not in cpu.args
    assert "sea_esop2=on" in cpu.props and "vx=on" in cpu.props
