# Copyright (c) 2026 cpucompat.cluster contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""aarch64 groups of identical hosts: the identity from the facts of recorded hosts, compared field by field with what
each difference does to a migrating guest, and the baseline that is host-passthrough over it or names why not."""

from __future__ import annotations

import pytest

from ansible_collections.cpucompat.cluster.plugins.module_utils._errors import FactsError
from ansible_collections.cpucompat.cluster.plugins.module_utils.cpu._guest import identity_digest, identity_label, level_of
from ansible_collections.cpucompat.cluster.plugins.module_utils.engine import _arm_identity
from ansible_collections.cpucompat.cluster.plugins.module_utils.engine._baseline import baseline_of
from utils.arm_hosts import facts

N1 = ["neoverse-n1-altra-a", "neoverse-n1-altra-b"]


def _identity(name: str) -> dict:
    return _arm_identity.identity_of(facts(name), f"host {name}")


def test_identical_hosts_have_one_identity_and_one_digest() -> None:
    a, b = _identity(N1[0]), _identity(N1[1])
    assert a == b and identity_digest(a) == identity_digest(b) and _arm_identity.differences(a, b) == []
    assert a["midr"] == ["0x413fd0c1"] and a["page_size"] == 4096 and a["qemu"] == "8.2.0" and a["machine"] == "virt-8.2"
    label = identity_label(a)
    assert len(label) == 40 and label.isalnum() and label.islower()
    assert _arm_identity.describe(a).startswith("Neoverse-N1 r3p1 (MIDR 0x413fd0c1); 4 KiB pages; kernel 6.12.48")


@pytest.mark.parametrize("other, fields", [
    ("thunderx2", ["MIDR part", "ID registers (Features)", "firmware"]),
    ("neoverse-v1-graviton3", ["MIDR part", "ID registers (Features)", "SVE vector lengths", "pointer authentication",
                               "kernel", "firmware"]),
    ("neoverse-v2-grace", ["MIDR part", "ID registers (Features)", "SVE vector lengths", "page size", "kernel", "firmware"]),
    ("neoverse-n1-altra-kernel-6.16", ["kernel"]),
])
def test_each_differing_field_is_named_with_its_consequence(other: str, fields: list[str]) -> None:
    found = _arm_identity.differences(_identity(N1[0]), _identity(other))
    assert [d.what for d in found] == fields
    by = {d.what: d for d in found}
    assert all(d.consequence for d in found)
    if "kernel" in by:
        assert "cpreg_vmstate_array_len" in by["kernel"].consequence
    if other == "neoverse-n1-altra-kernel-6.16":
        assert "Linux 6.13 and 6.16" in by["kernel"].text() and "6.16.3+deb14-arm64 instead of 6.12.48+deb13-arm64" in by["kernel"].text()
    if "SVE vector lengths" in by:
        assert "vector length is not available" in by["SVE vector lengths"].consequence
    if "ID registers (Features)" in by and other == "thunderx2":
        assert "lacks asimddp" in by["ID registers (Features)"].consequence


def test_a_revision_is_not_a_different_part() -> None:
    a = _identity(N1[0])
    b = {**a, "midr": ["0x413fd0c0"]}  # r3p0: same Neoverse-N1, another revision
    assert [d.what for d in _arm_identity.differences(a, b)] == ["MIDR revision"]


def test_facts_without_an_identity_are_refused_naming_the_host() -> None:
    f = facts(N1[0])
    f["arm"]["identity"] = None
    with pytest.raises(FactsError, match="host h1: its facts do not show the host's arm64 identity"):
        _arm_identity.identity_of(f, "host h1")


def test_a_group_of_identical_hosts_gets_host_passthrough_over_its_identity() -> None:
    b = baseline_of({n: facts(n) for n in N1})
    assert b.guest is not None and b.guest.passthrough and b.guest.model is None and b.guest_error is None
    assert b.guest.identity == _identity(N1[0])
    level = b.guest.level()
    assert level["identity"] == _identity(N1[0]) and level["machine"] == "virt"
    assert level_of(level, "pinned").identity == _identity(N1[0])  # what a contract pins reads back


def test_a_mixed_group_gets_no_guest_cpu_and_is_told_which_hosts_differ_how() -> None:
    b = baseline_of({n: facts(n) for n in [*N1, "thunderx2", "neoverse-n1-altra-kernel-6.16"]})
    assert b.guest is None
    assert "neoverse-n1-altra-kernel-6.16: kernel" in b.guest_error and "thunderx2: MIDR part" in b.guest_error
    assert "compared with neoverse-n1-altra-a" in b.guest_error


def test_grouped_splits_hosts_by_identity() -> None:
    ids = {n: _identity(n) for n in [*N1, "thunderx2"]}
    groups = _arm_identity.grouped(ids)
    assert sorted(groups.values()) == [N1, ["thunderx2"]]
