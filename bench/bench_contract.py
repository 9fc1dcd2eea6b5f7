#!/usr/bin/env python3
# Copyright (c) 2026 cpucompat.cluster contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Admission and compliance of a 1,000-host group from cached facts, 10 domains per host: the action's own time.

The cpu_contract action (report=contract) runs as Ansible runs it, through the plugin loader on a real task,
with task variables as a run_once task gets them: every host's facts (each host its own facts objects, drawn from the
recorded Intel hosts), and each host's registered domain_cpu_info result. The contract is pinned beforehand; the timed
call reads it, admits every host and judges every domain, and writes nothing (the contract is unchanged).
"""
from __future__ import annotations

import gc
import json
import os
import random
import statistics
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, ".collections"))
sys.path.insert(0, os.path.join(ROOT, "tests"))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
os.environ.setdefault("ANSIBLE_COLLECTIONS_PATH", os.path.join(ROOT, ".collections"))

# pylint: disable=wrong-import-position
from ansible.parsing.dataloader import DataLoader  # noqa: E402
from ansible.playbook.play_context import PlayContext  # noqa: E402
from ansible.playbook.task import Task  # noqa: E402
from ansible.plugins.loader import action_loader, connection_loader, init_plugin_loader  # noqa: E402
from ansible.template import Templar  # noqa: E402

init_plugin_loader([os.path.join(ROOT, ".collections")])
from bench_baseline import cluster  # noqa: E402

ROUNDS = int(os.environ.get("BENCH_ROUNDS", "5"))
HOSTS, DOMAINS = 1000, 10


def action(args: dict) -> object:
    loader = DataLoader()
    task = Task.load({"action": "cpucompat.cluster.cpu_contract", "args": args}, loader=loader)
    context = PlayContext()
    return action_loader.get("cpucompat.cluster.cpu_contract", task=task, play_context=context, loader=loader,
                             connection=connection_loader.get("local", context, sys.stdin), templar=Templar(loader=loader),
                             shared_loader_obj=None)


def main() -> None:
    rng = random.Random(20261127)
    facts = cluster(HOSTS, rng)
    names = sorted(facts)
    with tempfile.TemporaryDirectory() as tmp:
        args = {"report": "contract", "group": "fleet", "contract_dir": tmp}
        hostvars = {n: {"ansible_facts": {"cpucompat": facts[n]}} for n in names}
        task_vars = {"hostvars": hostvars, "groups": {"all": names, "fleet": names}, "ansible_play_hosts_all": names,
                     "ansible_play_hosts": names}
        pinned = action(args).run(task_vars=task_vars)
        xml = pinned["contracts"]["fleet"]["xml"]
        old = "<cpu mode='custom' match='exact' check='full'><model fallback='forbid'>Nehalem</model></cpu>"
        for n in names:
            hostvars[n]["found"] = {"domains": [
                {"name": f"{n}-vm{i}", "active": i % 2 == 0, "cpu_xml": xml if i < 8 else old,
                 "live_cpu_xml": (xml if i < 6 else old) if i % 2 == 0 else None} for i in range(DOMAINS)]}
        stamp = os.stat(os.path.join(tmp, "fleet.json")).st_mtime_ns
        times, result = [], None
        for _ in range(ROUNDS):
            gc.collect()
            start = time.perf_counter()
            result = action({**args, "domains_var": "found"}).run(task_vars=task_vars)
            times.append(time.perf_counter() - start)
        assert os.stat(os.path.join(tmp, "fleet.json")).st_mtime_ns == stamp, "admission writes nothing"
    section = result["report"]["groups"]["fleet"]
    counts = {k: v for k, v in section["status_counts"].items() if v}
    print(f"contract benchmark: {HOSTS} hosts (recorded Intel facts), {DOMAINS} domains each, {ROUNDS} rounds, medians")
    print(f"  admission + compliance, the action's own time   {statistics.median(times):.3f} s  (target <= 2 s)"
          f"  min {min(times):.3f} max {max(times):.3f}")
    print(f"  admitted {len(section['admitted'])} of {HOSTS}; domains {json.dumps(counts)}")


if __name__ == "__main__":
    main()
