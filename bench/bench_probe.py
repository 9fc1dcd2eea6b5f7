#!/usr/bin/env python3
# Copyright (c) 2026 cpucompat.cluster contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Cold probe of this machine vs libvirt's own capability re-probe of the same QEMU, side by side.

Each round: (1) our probe, QEMU start to facts, model catalogue included; (2) a
bare QMP conversation (start, greeting, query-version) as the floor; (3) libvirt
re-probing the binary after its cache was invalidated by touching the binary.
The binary's mtime is bumped to invalidate libvirt's cache (a copy elsewhere
cannot load QEMU's accelerator modules) and restored afterwards.
"""
from __future__ import annotations

import os
import statistics
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, ".collections"))

from ansible_collections.cpucompat.cluster.plugins.module_utils.probe import _fingerprint, _probe  # noqa: E402  pylint: disable=wrong-import-position

ROUNDS = int(os.environ.get("BENCH_ROUNDS", "7"))


def timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def main() -> None:
    accel = "kvm" if _fingerprint.kvm_usable() else "tcg"
    binary = _probe.find_binary("qemu-system-x86_64")
    original = os.stat(binary)
    virttype = "kvm" if accel == "kvm" else "qemu"

    def ours() -> None:
        facts = _probe.probe(_probe.ProbeRequest(qemu_binary=binary, accel=accel))
        assert facts["models"], "model catalogue included"

    def machine_none() -> None:
        facts = _probe.probe(_probe.ProbeRequest(qemu_binary=binary, accel=accel, machine="none"))
        assert facts["machine"]["name"] == "none"

    def bare() -> None:
        with _probe.spawn_qemu(binary, accel, 10) as client:
            client.execute("query-version")

    def libvirt() -> None:
        os.utime(binary)  # invalidates libvirt's capability cache for this binary
        subprocess.run(["virsh", "-c", "qemu:///system", "domcapabilities", "--emulatorbin", binary,
                        "--virttype", virttype], check=True, capture_output=True)

    rows: dict[str, list[float]] = {"cpu_probe (cold, with models)": [], "cpu_probe, -machine none": [],
                                    "bare QMP conversation": [], "libvirt re-probe": []}
    ours(), libvirt()  # warm the page cache for both sides
    for _ in range(ROUNDS):
        rows["cpu_probe (cold, with models)"].append(timed(ours))
        rows["cpu_probe, -machine none"].append(timed(machine_none))
        rows["bare QMP conversation"].append(timed(bare))
        rows["libvirt re-probe"].append(timed(libvirt))
    os.utime(binary, ns=(original.st_atime_ns, original.st_mtime_ns))
    med = {k: statistics.median(v) for k, v in rows.items()}
    print(f"probe benchmark: x86_64, accel={accel}, {ROUNDS} rounds interleaved, medians")
    for name, value in med.items():
        print(f"  {name:32s} {value * 1000:8.1f} ms   (min {min(rows[name]) * 1000:.1f}, max {max(rows[name]) * 1000:.1f})")
    machine_cost = med["cpu_probe (cold, with models)"] - med["cpu_probe, -machine none"]
    print(f"  the default machine type costs   {machine_cost * 1000:8.1f} ms per probe (against -machine none)")
    ratio = med["libvirt re-probe"] / med["cpu_probe (cold, with models)"]
    print(f"  libvirt re-probe / cpu_probe   {ratio:8.1f} x   (target >= 15x; cpu_probe target <= 250 ms)")
    ok = ratio >= 15 and med["cpu_probe (cold, with models)"] <= 0.25
    print("  targets met" if ok else "  TARGETS MISSED")


if __name__ == "__main__":
    main()
