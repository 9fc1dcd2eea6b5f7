#!/usr/bin/env python3
# Copyright (c) 2026 cpucompat.cluster contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The guest CPU observed, per host, side by side in one run (target: at most 0.5 s per host):

- cpu_observe of the group's -cpu as plain QEMU (start, two qom-get, kill);
- cpu_observe of the group's <cpu> through libvirt (transient domain, paused, check='full', destroyed);
- the floors: a bare QEMU start with the same -cpu answering query-version; libvirt starting and destroying the same
  domain without QMP.
The <cpu> is this machine's baseline (a one-host group), under the q35 machine type.
"""
from __future__ import annotations

import os
import statistics
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, ".collections"))

import libvirt  # noqa: E402  pylint: disable=wrong-import-position,import-error

from ansible_collections.cpucompat.cluster.plugins.module_utils.engine import _baseline  # noqa: E402  pylint: disable=wrong-import-position
from ansible_collections.cpucompat.cluster.plugins.module_utils.probe import _fingerprint, _observe, _probe  # noqa: E402  pylint: disable=wrong-import-position
from ansible_collections.cpucompat.cluster.plugins.module_utils.render import _libvirt, _qemu  # noqa: E402  pylint: disable=wrong-import-position

ROUNDS = int(os.environ.get("BENCH_ROUNDS", "9"))
MACHINE = "q35"


def timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def main() -> None:
    accel = "kvm" if _fingerprint.kvm_usable() else "tcg"
    facts = _probe.probe(_probe.ProbeRequest(accel=accel, machine=MACHINE))
    guest = _baseline.baseline_of({"me": facts}).guest
    xml, args = _libvirt.render(guest).xml, _qemu.render(guest).args
    binary = facts["qemu"]["binary"]

    def plain() -> None:
        assert _observe.observe(_observe.ObserveRequest(qemu_args=args, machine=MACHINE, accel=accel))["cpuid"]

    def through_libvirt() -> None:
        assert _observe.observe(_observe.ObserveRequest(cpu_xml=xml, machine=MACHINE, accel=accel), libvirt)["cpuid"]

    def bare_qemu() -> None:
        with _probe.spawn_qemu(binary, accel, 10, machine=MACHINE, extra_args=("-cpu", args, "-m", "16")) as client:
            client.execute("query-version")

    conn = libvirt.open("qemu:///system")
    domain = _observe.domain_xml(_observe.guest_cpu_element(xml), "cpucompat-bench-observe", "x86_64",
                                 _fingerprint.default_machine(binary, MACHINE), binary, accel == "kvm")

    def bare_libvirt() -> None:
        conn.createXML(domain, libvirt.VIR_DOMAIN_START_PAUSED | libvirt.VIR_DOMAIN_START_AUTODESTROY).destroy()

    rows: dict[str, list[float]] = {"cpu_observe, -cpu (plain QEMU)": [], "bare QEMU start, same -cpu": [],
                                    "cpu_observe, <cpu> (libvirt)": [], "libvirt start+destroy, same domain": []}
    plain(), through_libvirt()  # warm the page cache
    for _ in range(ROUNDS):  # interleaved: each row sees the same machine load
        for label, fn in zip(rows, (plain, bare_qemu, through_libvirt, bare_libvirt)):
            rows[label].append(timed(fn))
    conn.close()
    medians = {k: statistics.median(v) for k, v in rows.items()}
    print(f"cpu_observe, {ROUNDS} rounds, accel={accel}, machine {MACHINE} (target: at most 0.5 s per host)")
    for label, value in medians.items():
        print(f"  {label:40s} median {value * 1000:7.1f} ms")
    print(f"  plain QEMU observation / its floor: {medians['cpu_observe, -cpu (plain QEMU)'] / medians['bare QEMU start, same -cpu']:.2f}x")
    print(f"  libvirt observation / its floor:    {medians['cpu_observe, <cpu> (libvirt)'] / medians['libvirt start+destroy, same domain']:.2f}x")


if __name__ == "__main__":
    main()
