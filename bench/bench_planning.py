#!/usr/bin/env python3
# Copyright (c) 2026 cpucompat.cluster contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The planning checks from cached facts: migration matrix (1,000 domains x 100 targets), expansion plan (1,000 + 50 hosts).

Facts come from the recorded Intel hosts (each host its own facts objects);
the domains run CPUs that are baselines of random sub-clusters, rendered
with libvirt's CPU map, as the deploy role would have set them. Probes excluded.
"""
from __future__ import annotations

import gc
import os
import random
import statistics
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, ".collections"))
sys.path.insert(0, os.path.join(ROOT, "tests"))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from bench_baseline import INTEL, cluster  # noqa: E402  pylint: disable=wrong-import-position
from ansible_collections.cpucompat.cluster.plugins.filter.cpu import cpu_expansion_plan, cpu_migration_matrix  # noqa: E402  pylint: disable=wrong-import-position
from ansible_collections.cpucompat.cluster.plugins.module_utils.cpu._libvirt_map import DEFAULT_CPU_MAP  # noqa: E402  pylint: disable=wrong-import-position
from ansible_collections.cpucompat.cluster.plugins.module_utils.engine._baseline import baseline_of  # noqa: E402  pylint: disable=wrong-import-position
from ansible_collections.cpucompat.cluster.plugins.module_utils.render._libvirt import render  # noqa: E402  pylint: disable=wrong-import-position
from utils.recordings import facts_of  # noqa: E402  pylint: disable=wrong-import-position

ROUNDS = int(os.environ.get("BENCH_ROUNDS", "5"))


def timed(fn) -> float:
    gc.collect()
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def main() -> None:
    rng = random.Random(20261125)
    pool = {n: facts_of(n) for n in INTEL}
    cpus = []
    for _ in range(20):
        members = rng.sample(INTEL, rng.randint(1, 4))
        cpus.append(render(baseline_of({m: pool[m] for m in members}).guest).xml)
    domains = {f"src{h:02d}": [{"name": f"vm{h:02d}-{i:03d}", "cpu_xml": rng.choice(cpus), "live_cpu_xml": None} for i in range(10)]
               for h in range(100)}
    targets = cluster(100, rng)
    matrix_times = [timed(lambda: cpu_migration_matrix(domains, targets, cpu_map=DEFAULT_CPU_MAP)) for _ in range(ROUNDS)]
    report = cpu_migration_matrix(domains, targets, cpu_map=DEFAULT_CPU_MAP)
    cells = sum(len(row) for row in report["matrix"].values())
    current, candidates = cluster(1000, rng), {f"new{i:02d}": v for i, v in enumerate(cluster(50, rng).values())}
    plan_times = [timed(lambda: cpu_expansion_plan(current, candidates, fail_on="never")) for _ in range(ROUNDS)]
    print(f"planning benchmark: recorded Intel hosts, {ROUNDS} rounds, medians (probes excluded)")
    print(f"  migration matrix  1,000 domains x 100 targets ({cells} cells, {len(cpus)} distinct CPUs)  "
          f"{statistics.median(matrix_times):.3f} s  (target <= 2 s)")
    print(f"  expansion plan    1,000-host cluster + 50 candidates  {statistics.median(plan_times):.3f} s  (target <= 2 s)")


if __name__ == "__main__":
    main()
