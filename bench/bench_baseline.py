#!/usr/bin/env python3
# Copyright (c) 2026 cpucompat.cluster contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""cpu_baseline and the exact libvirt <cpu> over 10 .. 10,000 hosts drawn from the recordings, and libvirt's virsh
cpu-baseline side by side.

Our figures are the filter's own work (input facts built beforehand; peak
memory by tracemalloc during the call). libvirt takes at most 256 CPUs per
call; its marginal cost is its 256-CPU time minus its 1-CPU time.
"""
from __future__ import annotations

import gc
import glob
import os
import random
import re
import statistics
import subprocess
import sys
import tempfile
import time
import tracemalloc

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, ".collections"))
sys.path.insert(0, os.path.join(ROOT, "tests"))

from ansible_collections.cpucompat.cluster.plugins.filter.cpu import cpu_baseline, libvirt_cpu_xml  # noqa: E402  pylint: disable=wrong-import-position
from utils.recordings import FIXTURES, facts_of, load, names  # noqa: E402  pylint: disable=wrong-import-position

ROUNDS = int(os.environ.get("BENCH_ROUNDS", "7"))
INTEL = [n for n in names("x86_64") if load(n)["replies"].get("query-cpu-definitions") and load(n)["cpu_identity"]["vendor"] == "GenuineIntel"]


def cluster(size: int, rng: random.Random) -> dict[str, dict]:
    """Every host gets its own facts objects, as Ansible's hostvars would hold them (inner values shared)."""
    pool = {n: facts_of(n) for n in INTEL}
    out = {}
    for i in range(size):
        facts = pool[rng.choice(INTEL)]
        out[f"hv{i:05d}"] = {**facts, "features": list(facts["features"]), "models": dict(facts["models"])}
    return out


def timed(fn) -> float:
    gc.collect()  # each sample starts from the same heap state
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def median_time(fn, rounds: int = ROUNDS) -> float:
    return statistics.median(timed(fn) for _ in range(rounds))


def host_cpu_xml(path: str) -> str:
    """libvirt's guest-format CPU of a real host (the -json.xml inputs of its baseline tests) in host format.

    virsh cpu-baseline takes host CPUs: no mode/fallback/policy, an <arch>.
    Disabled features have no host-format spelling and are dropped.
    """
    with open(path, encoding="utf-8") as fh:
        text = fh.read()
    text = re.sub(r"<cpu [^>]*>", "<cpu>\n  <arch>x86_64</arch>", text)
    text = re.sub(r"<model [^>]*>", "<model>", text)
    text = "\n".join(line for line in text.splitlines() if "policy='disable'" not in line)
    return text.replace(" policy='require'", "").strip()


def virsh_input(xml_files: list[str], count: int) -> str:
    cpus = [host_cpu_xml(xml_files[i % len(xml_files)]) for i in range(count)]
    with tempfile.NamedTemporaryFile("w", suffix=".xml", delete=False) as fh:
        fh.write("\n".join(cpus) + "\n")  # virsh takes concatenated <cpu> elements
        return fh.name


def virsh_baseline(path: str) -> None:
    subprocess.run(["virsh", "-c", "qemu:///system", "cpu-baseline", path], check=True, capture_output=True)


def main() -> None:
    rng = random.Random(20261125)
    print(f"cpu_baseline benchmark: clusters drawn from {len(INTEL)} recorded Intel hosts, {ROUNDS} rounds, medians")
    ours: dict[int, float] = {}
    for size in (10, 100, 256, 1000, 10000):
        hosts = cluster(size, rng)
        ours[size] = median_time(lambda h=hosts: libvirt_cpu_xml(cpu_baseline(h)), 3 if size >= 1000 else ROUNDS)
        tracemalloc.start()
        result = cpu_baseline(hosts)
        xml = libvirt_cpu_xml(result)
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        written = xml.split("<model fallback='forbid'>")[1].split("<")[0]
        print(f"  cpu_baseline + libvirt_cpu_xml {size:6d} hosts  {ours[size] * 1000:9.2f} ms   peak {peak / 2**20:7.2f} MiB   "
              f"model {result['model']} (written {written})")
    intel_xml = sorted(glob.glob(os.path.join(FIXTURES, "libvirt-baseline-cases", "x86_64-cpuid-*-json.xml")))
    intel_xml = [p for p in intel_xml if "<vendor>Intel</vendor>" in open(p, encoding="utf-8").read()]
    # Inputs written with libvirt 11.3's map may name features the installed libvirt does not know.
    usable = []
    for path in intel_xml:
        with tempfile.NamedTemporaryFile("w", suffix=".xml") as fh:
            fh.write(host_cpu_xml(path))
            fh.flush()
            if subprocess.run(["virsh", "-c", "qemu:///system", "cpu-baseline", fh.name], capture_output=True, check=False).returncode == 0:
                usable.append(path)
    print(f"  libvirt inputs: {len(usable)} of {len(intel_xml)} real Intel host CPUs accepted by the installed libvirt")
    intel_xml = usable
    one_path, many_path = virsh_input(intel_xml, 1), virsh_input(intel_xml, 256)
    hosts256 = cluster(256, rng)
    samples: dict[str, list[float]] = {"ours": [], "one": [], "many": []}
    for _ in range(15):  # interleaved, side by side
        samples["ours"].append(timed(lambda: cpu_baseline(hosts256)))
        samples["one"].append(timed(lambda: virsh_baseline(one_path)))
        samples["many"].append(timed(lambda: virsh_baseline(many_path)))
    os.unlink(one_path)
    os.unlink(many_path)
    ours256, one, many = (statistics.median(samples[k]) for k in ("ours", "one", "many"))
    marginal = many - one
    print("  side by side, 256 hosts, 15 interleaved rounds:")
    print(f"    cpu_baseline        256 hosts {ours256 * 1000:9.2f} ms")
    print(f"    virsh cpu-baseline    1 CPU   {one * 1000:9.2f} ms")
    print(f"    virsh cpu-baseline  256 CPUs  {many * 1000:9.2f} ms   marginal {marginal * 1000:.2f} ms")
    print(f"    cpu_baseline 256 / libvirt marginal 256: {ours256 / marginal:.2f} (target <= 0.5)")
    print(f"  cpu_baseline + exact <cpu>, 10,000 hosts: {ours[10000]:.3f} s (target <= 0.4 s, <= 200 MiB)")


if __name__ == "__main__":
    main()
