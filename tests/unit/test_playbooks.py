# Copyright (c) 2026 cpucompat.cluster contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""What the playbooks restate from the code: the site playbook's once-for-the-group freshness decision."""

from __future__ import annotations

import os

import yaml

from ansible_collections.cpucompat.cluster.plugins.module_utils.probe._facts import SCHEMA_VERSION

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _decide_task() -> dict:
    with open(os.path.join(ROOT, "playbooks", "site.yml"), encoding="utf-8") as fh:
        plays = yaml.safe_load(fh)
    play = next(p for p in plays if p.get("name") == "Decide which hosts have work to do")
    return play["tasks"][0]


def test_site_freshness_uses_the_probe_schema() -> None:
    """The decision keeps a host's cached facts only when they are of the schema the cpu_probe action keeps."""
    assert _decide_task()["vars"]["_cpucompat_schema"] == SCHEMA_VERSION


def test_site_per_host_plays_run_on_the_decided_groups() -> None:
    """Every play that works per host runs on a group the decision fills; the others only have run_once tasks."""
    with open(os.path.join(ROOT, "playbooks", "site.yml"), encoding="utf-8") as fh:
        plays = yaml.safe_load(fh)
    decided = ("cpucompat_probe_due", "cpucompat_deploy_hosts", "cpucompat_observe_hosts")
    for play in plays[2:]:
        if any(group in play["hosts"] for group in decided):
            continue
        assert all(task.get("run_once") for task in play.get("tasks", [])), play["name"]
        assert not play.get("roles"), play["name"]
    task = _decide_task()
    assert task["run_once"] and task["ansible.builtin.add_host"]["groups"] == "{{ item.1 }}"
    assert all(group in task["vars"]["_cpucompat_work"] for group in decided)
