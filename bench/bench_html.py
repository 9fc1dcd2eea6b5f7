#!/usr/bin/env python3
# Copyright (c) 2026 cpucompat.cluster contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""HTML rendering of large reports: a 1,000-host baseline and a 1,000-domain x 100-target migration matrix.

The reports are built beforehand (the engine's own time is in bench_baseline and bench_planning); the timed call is the
cpu_report_html filter. The page sizes say what a browser has to open.
"""
from __future__ import annotations

import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, ".collections"))
sys.path.insert(0, os.path.join(ROOT, "tests"))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

# pylint: disable=wrong-import-position
from bench_baseline import INTEL, cluster  # noqa: E402
from bench_planning import timed  # noqa: E402
from ansible_collections.cpucompat.cluster.plugins.filter.cpu import cpu_migration_matrix, cpu_report_html  # noqa: E402
from ansible_collections.cpucompat.cluster.plugins.module_utils.cpu._libvirt_map import DEFAULT_CPU_MAP  # noqa: E402  pylint: disable=wrong-import-position
from ansible_collections.cpucompat.cluster.plugins.module_utils.engine._baseline import BaselineOptions, baseline_of  # noqa: E402
from ansible_collections.cpucompat.cluster.plugins.module_utils.reports._cluster import cluster_view  # noqa: E402
from ansible_collections.cpucompat.cluster.plugins.module_utils.engine._group import group_facts  # noqa: E402
from ansible_collections.cpucompat.cluster.plugins.module_utils.render._libvirt import render  # noqa: E402
from utils.recordings import facts_of  # noqa: E402

ROUNDS = int(os.environ.get("BENCH_ROUNDS", "5"))


def main() -> None:
    rng = random.Random(20261127)
    baseline = cluster_view(group_facts(cluster(1000, rng)), BaselineOptions())
    pool = {n: facts_of(n) for n in INTEL}
    cpus = [render(baseline_of({m: pool[m] for m in rng.sample(INTEL, rng.randint(1, 4))}).guest).xml for _ in range(20)]
    domains = {f"src{h:02d}": [{"name": f"vm{h:02d}-{i:03d}", "cpu_xml": rng.choice(cpus), "live_cpu_xml": None} for i in range(10)]
               for h in range(100)}
    matrix = cpu_migration_matrix(domains, cluster(100, rng), cpu_map=DEFAULT_CPU_MAP)
    print(f"html benchmark: {ROUNDS} rounds, medians (reports built beforehand)")
    for name, report in (("baseline, 1,000 hosts", baseline), ("migration matrix, 1,000 domains x 100 targets", matrix)):
        times = [timed(lambda r=report: cpu_report_html(r)) for _ in range(ROUNDS)]
        page = cpu_report_html(report)
        print(f"  {name:48s} {statistics.median(times):.3f} s  page {len(page.encode()) / 1024:.0f} KiB  (target <= 2 s)"
              f"{browser_time(page)}")


def browser_time(page: str) -> str:
    """Headless Chromium opening the page and laying it out (process start included), when Chromium is installed."""
    chromium = shutil.which("chromium")
    if chromium is None:
        return ""
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "page.html")
        with open(path, "w", encoding="utf-8") as fh:
            fh.write(page)
        argv = [chromium, "--headless=new", "--no-sandbox", "--disable-gpu", "--window-size=1280,1800",
                f"--screenshot={os.path.join(tmp, 'shot.png')}", f"file://{path}"]
        blank = os.path.join(tmp, "blank.html")
        with open(blank, "w", encoding="utf-8") as fh:
            fh.write("<!DOCTYPE html><title>blank</title>")
        opened = [timed(lambda: subprocess.run(argv, capture_output=True, check=True, timeout=120)) for _ in range(3)]
        empty = [timed(lambda: subprocess.run([*argv[:-1], f"file://{blank}"], capture_output=True, check=True, timeout=120))
                 for _ in range(3)]
    return f"; Chromium opens and paints it in {statistics.median(opened):.2f} s ({statistics.median(empty):.2f} s for a blank page)"


if __name__ == "__main__":
    main()
