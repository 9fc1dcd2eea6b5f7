# Copyright (c) 2026 cpucompat.cluster contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""No green run that did nothing (issue 29): a group that does not exist or has no hosts stops every playbook that
takes cpucompat_group, naming it and the inventory's groups."""

from __future__ import annotations

import pytest
import yaml

from integration.helpers import run_playbook

PLAYBOOKS = ["site", "baseline", "change_contract", "rebuild_contract", "plan_expansion", "upgrade_check", "platforms",
             "premigration_check"]


@pytest.fixture
def inventory(tmp_path) -> str:
    path = tmp_path / "inventory.yml"
    path.write_text(yaml.safe_dump({"hypervisors": {"hosts": {"hv1": {"ansible_connection": "local"}}},
                                    "lab": {"hosts": {}}, "candidates": {"hosts": {}}}))
    return str(path)


@pytest.mark.parametrize("playbook", PLAYBOOKS)
def test_a_mistyped_group_fails_naming_it_and_the_inventorys_groups(tmp_path, inventory, playbook) -> None:
    proc = run_playbook(f"cpucompat.cluster.{playbook}", tmp_path, inventory=inventory, extra={"cpucompat_group": "hypervsors"})
    text = " ".join(proc.stdout.split())
    assert proc.returncode != 0, text[-2000:]
    assert "no inventory group hypervsors. The inventory's groups: candidates, hypervisors, lab" in text


def test_an_empty_group_fails_and_a_list_is_checked_whole(tmp_path, inventory) -> None:
    proc = run_playbook("cpucompat.cluster.site", tmp_path, inventory=inventory, extra={"cpucompat_group": "lab"})
    assert proc.returncode != 0 and "inventory group lab has no hosts" in proc.stdout
    proc = run_playbook("cpucompat.cluster.site", tmp_path, inventory=inventory, extra={"cpucompat_group": ["hypervisors", "nope"]})
    assert proc.returncode != 0 and "no inventory group nope" in proc.stdout


def test_a_mistyped_contract_action_is_one_line(tmp_path, inventory) -> None:
    """Not the role's argument spec printed once per host (16.7 KB for two hosts before)."""
    proc = run_playbook("cpucompat.cluster.change_contract", tmp_path, inventory=inventory,
                        extra={"cpucompat_contract_action": "rasie"})
    assert proc.returncode != 0 and "cpucompat_contract_action must be raise or lower, got 'rasie'" in proc.stdout
    assert "argument_spec" not in proc.stdout and len(proc.stdout) < 3000, len(proc.stdout)
