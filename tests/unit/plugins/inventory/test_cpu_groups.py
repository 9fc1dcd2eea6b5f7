# Copyright (c) 2026 cpucompat.cluster contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The cpu_groups inventory plugin's grouping of one host (the full plugin runs in tests/integration/test_cpu_groups.py)."""

from __future__ import annotations

import pytest

from ansible_collections.cpucompat.cluster.plugins.inventory.cpu_groups import InventoryModule, host_groups
from utils.recordings import facts_of

GOLD = facts_of("x86_64-xeon-gold-6130")
Z14 = facts_of("s390x-z14-qemu-3.0.0")


@pytest.mark.parametrize("facts, features, models, max_age, now, expected, absent", [
    (None, [], True, 0, 0, ["cpu_facts_missing"], []),
    ({"schema_version": 0}, [], True, 0, 0, ["cpu_facts_stale"], ["cpu_arch_x86_64"]),
    (GOLD, ["avx512f", "sve"], False, 0, 0, ["cpu_arch_x86_64", "cpu_vendor_GenuineIntel", "cpu_feature_avx512f"],
     ["cpu_feature_sve", "cpu_facts_stale", "cpu_model_Skylake_Server_v2"]),
    (GOLD, [], True, 0, 0, ["cpu_model_Skylake_Server_v2", "cpu_model_Skylake_Server"], []),
    (Z14, [], False, 60, 10**10, ["cpu_arch_s390x", "cpu_vendor_IBM", "cpu_facts_stale"], []),
], ids=["missing", "schema", "features", "models", "stale"])
def test_host_groups(facts, features, models, max_age, now, expected, absent) -> None:
    groups = host_groups(facts, "cpu_", features, models, max_age, now)
    assert set(expected) <= set(groups), groups
    assert not set(absent) & set(groups)
    assert all(g.replace("_", "a").isalnum() for g in groups), "group names are Ansible-safe"


@pytest.mark.parametrize("path, ok", [("inv/cpu_groups.yml", True), ("inv/cpu_groups.yaml", True), ("inv/hosts.yml", False)])
def test_verify_file(tmp_path, path: str, ok: bool) -> None:
    target = tmp_path / path
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text("plugin: cpucompat.cluster.cpu_groups\n")
    assert InventoryModule().verify_file(str(target)) is ok


def test_arm64_hosts_are_grouped_by_identity() -> None:
    from utils.arm_hosts import facts  # pylint: disable=import-outside-toplevel

    def identity_groups(name: str) -> list[str]:
        return [g for g in host_groups(facts(name), "cpu_", [], False, 0, 0) if g.startswith("cpu_arm_identity_")]

    names = ("neoverse-n1-altra-a", "neoverse-n1-altra-b", "thunderx2", "neoverse-n1-altra-kernel-6.16")
    a, b, tx2, kernel = (identity_groups(n) for n in names)
    assert len(a) == 1 and a == b and tx2 != a and kernel != a and len(a[0]) == len("cpu_arm_identity_") + 16
    unknown = facts("neoverse-n1-altra-a")
    unknown["arm"]["identity"] = None
    assert "cpu_arm_identity_unknown" in host_groups(unknown, "cpu_", [], False, 0, 0)
