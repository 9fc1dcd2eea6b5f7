#!/usr/bin/env python3
# Copyright (c) 2026 cpucompat.cluster contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""playbooks/site.yml over 20 inventory hosts (local connection, each probing the real local QEMU): cold, then warm.

A wrapper in front of qemu-system-x86_64 counts the QEMU processes each run
starts. The deploy play is disabled (cpucompat_deploy_enabled=false) so that no
domain of this machine changes. Rounds alternate cold (empty fact cache) and
warm (the cache the cold run left); medians.
"""
from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
HOSTS = 20
ROUNDS = int(os.environ.get("BENCH_SITE_ROUNDS", "3"))


def main() -> None:
    work = tempfile.mkdtemp(prefix="cpucompat-bench-site-")
    # The site run observes the contract CPU through libvirt, whose QEMU runs as its own user (libvirt-qemu): it must
    # reach the wrapper and append to the log.
    os.chmod(work, 0o755)
    log = os.path.join(work, "qemu-starts.log")
    wrapper = os.path.join(work, "qemu-system-x86_64")
    real = shutil.which("qemu-system-x86_64")
    with open(wrapper, "w", encoding="utf-8") as fh:
        fh.write(f"#!/bin/sh\necho started >> {log}\nexec {real} \"$@\"\n")
    os.chmod(wrapper, 0o755)
    with open(os.path.join(work, "inventory.ini"), "w", encoding="utf-8") as fh:
        fh.write("[hypervisors]\n" + "".join(f"hv{i:02d}\n" for i in range(HOSTS)))
        fh.write(f"[hypervisors:vars]\nansible_connection=local\nansible_python_interpreter={sys.executable}\n"
                 f"cpucompat_probe_qemu_binary={wrapper}\ncpucompat_deploy_enabled=false\n")
    env = {**os.environ, "ANSIBLE_CONFIG": os.path.join(ROOT, "ansible.cfg"),
           "ANSIBLE_COLLECTIONS_PATH": os.path.join(ROOT, ".collections"), "ANSIBLE_NOCOLOR": "1",
           # the contract store's default folder: the benchmark's own, never the operator's
           "XDG_DATA_HOME": os.path.join(work, "data")}

    def run(cache: str, *extra: str) -> tuple[float, int]:
        with open(log, "w", encoding="utf-8"):
            os.chmod(log, 0o666)
        start = time.perf_counter()
        proc = subprocess.run([os.path.join(os.path.dirname(sys.executable), "ansible-playbook"), "-i",
                               os.path.join(work, "inventory.ini"), os.path.join(ROOT, "playbooks", "site.yml"),
                               "-e", f"cpucompat_report_dir={work}/reports", *extra],
                              env={**env, "ANSIBLE_CACHE_PLUGIN_CONNECTION": cache}, capture_output=True, text=True, check=False)
        elapsed = time.perf_counter() - start
        if proc.returncode != 0:
            raise SystemExit(proc.stdout[-3000:])
        with open(log, encoding="utf-8") as fh:
            starts = sum(1 for _ in fh)
        return elapsed, starts

    runs: dict[str, list[tuple[float, int]]] = {"cold": [], "warm (fingerprint checked on each host)": [],
                                                 "warm (cpucompat_probe_max_age=3600)": []}
    for i in range(ROUNDS):
        cache = os.path.join(work, f"facts-{i}")
        runs["cold"].append(run(cache))
        runs["warm (fingerprint checked on each host)"].append(run(cache))
        runs["warm (cpucompat_probe_max_age=3600)"].append(run(cache, "-e", "cpucompat_probe_max_age=3600"))
    shutil.rmtree(work)
    print(f"site benchmark: {HOSTS} hosts, local connection, forks 5, {ROUNDS} rounds, medians")
    cold = statistics.median(t for t, _ in runs["cold"])
    for name, samples in runs.items():
        median = statistics.median(t for t, _ in samples)
        per_round = [t / c * 100 for (t, _), (c, _) in zip(samples, runs["cold"])]
        print(f"  {name:40s} {median:7.2f} s  {median / HOSTS * 1000:7.1f} ms/host  {median / cold * 100:5.1f} % of cold"
              f"  (rounds {min(per_round):.1f}-{max(per_round):.1f} %)  QEMU starts per run {[n for _, n in samples]}")
    print("  target: a warm run starts no QEMU and takes <= 40 % of the cold run")

if __name__ == "__main__":
    main()
