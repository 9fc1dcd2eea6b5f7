# Copyright (c) 2026 cpucompat.cluster contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""What the playbooks restate from the code: the site playbook's once-for-the-group freshness decision."""

from __future__ import annotations

import os

import yaml

from ansible_collections.cpucompat.cluster.plugins.module_utils.probe import _freshness

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _decide_task() -> dict:
    with open(os.path.join(ROOT, "playbooks", "site.yml"), encoding="utf-8") as fh:
        plays = yaml.safe_load(fh)
    play = next(p for p in plays if p.get("name") == "Decide which hosts have work to do")
    return play["tasks"][0]


def test_site_freshness_is_the_probe_actions_own_rule() -> None:
    """The decision is the filter over the function the cpu_probe action's max_age step calls, not a copy of it."""
    assert "cpucompat.cluster.cpu_run_groups(hostvars)" in _decide_task()["vars"]["_cpucompat_work"]
    with open(os.path.join(ROOT, "plugins", "action", "cpu_probe.py"), encoding="utf-8") as fh:
        assert "fresh_by_age(cached, " in fh.read()


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
    assert (_freshness.PROBE_DUE, _freshness.DEPLOY_HOSTS, _freshness.OBSERVE_HOSTS) == decided
