#!/usr/bin/env python3
# Copyright (c) 2026 cpucompat.cluster contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The probe as Ansible runs it vs libvirt's own capability re-probe of the same QEMU, side by side.

Each round, interleaved (each round starting with the next side), medians over the rounds:

1. the whole module process, as Ansible runs it on a host: ``python -m
   ansible_collections.cpucompat.cluster.plugins.modules.cpu_probe <args file>``, from interpreter start to facts on
   stdout, with the host-side probe cache warm (the steady state: the host was probed before) and cold (an empty
   cache folder: the first probe of a host, or one after a QEMU or kernel upgrade);
2. the probe function inside this warm interpreter (no interpreter start, no imports, no Ansible), no cache;
3. a bare QMP conversation (start QEMU with the probe's machine type, greeting, query-version): the floor;
4. libvirt re-probing the binary (``virsh domcapabilities``) after its capability cache was invalidated.

Beside wall time, the CPU time each side used (user + system, with the processes it started: the module's QEMUs;
libvirtd, its QEMUs and virsh) is reported: on a shared, loaded machine wall times stretch with the load, CPU times
much less.

libvirt 9 keys its cache on the binary's ctime in whole seconds: every round bumps the binary's mtime to a distinct
value (original + round seconds) in a second of its own, and checks in libvirt's cache file that it did re-probe (a
round where it did not is reported, not timed). The original times are restored right after each round (the probe
cache is keyed by the binary's mtime too: for the other sides the binary is unchanged, as between two probes of a host),
and libvirt is let re-probe it once more, untimed: every probe asks libvirt for its host capabilities (the TSC), which
re-probes any binary libvirt holds as changed, and that would land on whichever side runs next. The probe cache lives in
a temporary folder, never the host's.
"""
from __future__ import annotations

import hashlib
import json
import os
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
COLLECTIONS = os.path.join(ROOT, ".collections")
sys.path.insert(0, COLLECTIONS)

from ansible_collections.cpucompat.cluster.plugins.module_utils.probe import _fingerprint, _probe  # noqa: E402  pylint: disable=wrong-import-position
from ansible_collections.cpucompat.cluster.plugins.module_utils._common_args import CPU_PROBE_ARGS  # noqa: E402  pylint: disable=wrong-import-position

ROUNDS = int(os.environ.get("BENCH_ROUNDS", "7"))
# Another copy of the collection (a folder holding ansible_collections/, e.g. an older commit's plugins/) whose module
# is timed in the same rounds, for a before/after measured side by side on a shared machine.
COMPARE = os.environ.get("BENCH_COMPARE")
MODULE = "ansible_collections.cpucompat.cluster.plugins.modules.cpu_probe"
LIBVIRT_CAPS = "/var/cache/libvirt/qemu/capabilities"
WHOLE_TARGET_S = 0.4
RATIO_TARGET = 15.0


def timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def run_module(args: str, env: dict[str, str], cwd: str) -> tuple[int, bytes, bytes, float]:
    """Run the module on ``args``: exit status, stdout, stderr, and the CPU seconds of its process tree (wait4)."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        proc = subprocess.Popen([sys.executable, "-m", MODULE, args], stdout=out, stderr=err, env=env, cwd=cwd)  # pylint: disable=consider-using-with
        _pid, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        return proc.returncode, out.read(), err.read(), usage.ru_utime + usage.ru_stime


def children_cpu() -> float:
    """CPU seconds (user + system) of this process's reaped children and theirs: a module process and its QEMUs."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _stat(pid: str) -> list[str]:
    with open(f"/proc/{pid}/stat", encoding="utf-8") as fh:
        return fh.read().rsplit(")", 1)[1].split()  # from field 3 (state) on


def libvirt_cpu() -> float | None:
    """CPU seconds libvirtd has used, with its reaped children and those its subreaper reaped (the QEMUs it probes
    with); None when it cannot be read. Other users of libvirtd meanwhile count too: on a shared machine, an upper bound."""
    try:
        pid = subprocess.run(["pgrep", "-x", "-o", "libvirtd"], capture_output=True, text=True, check=True).stdout.split()[0]
        daemon = _stat(pid)
        reaper = _stat(daemon[1])
    except (OSError, subprocess.CalledProcessError, IndexError):
        return None
    # utime, stime, cutime, cstime are fields 14-17; the subreaper's own CPU is not libvirt's.
    ticks = sum(int(v) for v in daemon[11:15]) + sum(int(v) for v in reaper[13:15])
    return ticks / os.sysconf("SC_CLK_TCK")


def libvirt_ctime(binary: str) -> int | None:
    """The binary's ctime libvirt recorded when it last probed it (its capability cache file), None when unknown."""
    path = os.path.join(LIBVIRT_CAPS, hashlib.sha256(binary.encode()).hexdigest() + ".xml")
    try:
        with open(path, encoding="utf-8") as fh:
            match = re.search(r"<qemuctime>(\d+)</qemuctime>", fh.read())
    except OSError:
        return None
    return int(match.group(1)) if match else None


def main() -> None:  # pylint: disable=too-many-locals,too-many-statements
    accel = "kvm" if _fingerprint.kvm_usable() else "tcg"
    binary = _probe.find_binary("qemu-system-x86_64")
    machine = "q35"  # the probe's default on x86_64; the host's domains (which the module would follow) vary here
    original = os.stat(binary)
    virttype = "kvm" if accel == "kvm" else "qemu"
    work = tempfile.mkdtemp(prefix="cpucompat-bench-probe-")
    caching = "cache_dir" in CPU_PROBE_ARGS  # the option is new: the script also measures the code before it
    warm_cache, cold_cache = os.path.join(work, "warm"), os.path.join(work, "cold")
    env = {**os.environ, "PYTHONPATH": COLLECTIONS, "XDG_CACHE_HOME": os.path.join(work, "xdg")}

    def args_file(cache: str) -> str:
        path = os.path.join(work, f"args-{os.path.basename(cache)}.json")
        args = {"qemu_binary": binary, "accel": accel, "machine": machine, **({"cache_dir": cache} if caching else {})}
        with open(path, "w", encoding="utf-8") as fh:
            json.dump({"ANSIBLE_MODULE_ARGS": args}, fh)
        return path

    warm_args, cold_args = args_file(warm_cache), args_file(cold_cache)
    outputs: dict[str, dict] = {}
    module_cpu: list[float] = []  # the last module run's process tree, from wait4

    def whole(args: str, name: str) -> None:
        status, stdout, stderr, used = run_module(args, env, work)
        result = json.loads(stdout)
        assert status == 0 and result["probed"], stdout[-2000:] + stderr[-2000:]
        assert result["ansible_facts"]["cpucompat"]["model_features"], "model definitions included"
        module_cpu.append(used)
        outputs[name] = result["ansible_facts"]["cpucompat"]

    def whole_warm() -> None:
        whole(warm_args, "warm")

    def whole_compare() -> None:
        path = os.path.join(work, "args-compare.json")
        with open(path, "w", encoding="utf-8") as fh:
            json.dump({"ANSIBLE_MODULE_ARGS": {"qemu_binary": binary, "accel": accel, "machine": machine}}, fh)
        status, stdout, stderr, used = run_module(path, {**env, "PYTHONPATH": str(COMPARE)}, work)
        assert status == 0 and json.loads(stdout)["probed"], stdout[-2000:] + stderr[-2000:]
        module_cpu.append(used)

    def whole_cold() -> None:
        shutil.rmtree(cold_cache, ignore_errors=True)
        whole(cold_args, "cold")

    def in_process() -> None:
        facts = _probe.probe(_probe.ProbeRequest(qemu_binary=binary, accel=accel, machine=machine))
        assert facts["model_features"], "model definitions included"

    def bare() -> None:
        with _probe.spawn_qemu(binary, accel, 10, machine=machine) as client:
            client.execute("query-version")

    bumps = {"last": int(time.time()), "round": 0, "missed": 0}

    def domcapabilities() -> None:
        subprocess.run(["virsh", "-c", "qemu:///system", "domcapabilities", "--emulatorbin", binary, "--virttype", virttype],
                       check=True, capture_output=True)

    def settle() -> None:
        """Not timed: libvirt re-probes the binary as restored, so that no other side pays for it (every probe asks
        libvirt for its host capabilities, the TSC, which re-probes a binary libvirt's cache holds as changed)."""
        while int(time.time()) <= int(os.stat(binary).st_ctime):
            time.sleep(0.02)
        domcapabilities()
        bumps["last"] = int(os.stat(binary).st_ctime)

    def libvirt() -> None:
        # A second of its own (libvirt compares whole seconds of the ctime) and a distinct mtime per round.
        while int(time.time()) <= bumps["last"]:
            time.sleep(0.02)
        bumps["round"] += 1
        mtime = original.st_mtime_ns + bumps["round"] * 1_000_000_000
        os.utime(binary, ns=(original.st_atime_ns, mtime))
        ctime = int(os.stat(binary).st_ctime)
        bumps["last"] = ctime
        try:
            domcapabilities()
        finally:
            # The probe cache is keyed by the binary's mtime too: the binary is unchanged for the other sides.
            os.utime(binary, ns=(original.st_atime_ns, original.st_mtime_ns))
        if libvirt_ctime(binary) not in (None, ctime):
            bumps["missed"] += 1
            raise LookupError("libvirt did not re-probe")

    rows: dict[str, list[float]] = {"whole process, cache warm": [], "whole process, cache cold": [],
                                    "in-process probe (no cache)": [], f"bare QMP (-machine {machine})": [],
                                    "libvirt re-probe": []}
    funcs = [whole_warm, whole_cold, in_process, bare, libvirt]
    if COMPARE:
        rows = {f"whole process, {os.path.basename(os.path.normpath(COMPARE))}": [], **rows}
        funcs.insert(0, whole_compare)
    cpu: dict[str, list[float]] = {name: [] for name in rows}

    def measure(name: str, fn) -> None:
        daemon = libvirt_cpu() if fn is libvirt else None
        before = time.process_time() + children_cpu()
        wall = timed(fn)
        used = time.process_time() + children_cpu() - before
        after = libvirt_cpu() if fn is libvirt else None
        rows[name].append(wall)
        if fn in (whole_warm, whole_cold, whole_compare):
            cpu[name].append(module_cpu[-1])
        elif daemon is not None and after is not None:
            cpu[name].append(used + after - daemon)
        elif fn is not libvirt:
            cpu[name].append(used)

    try:
        for fn in funcs:  # warm the page cache for every side, and the probe cache
            try:
                fn()
            except LookupError:
                pass
        settle()
        bumps["missed"] = 0
        sides = list(zip(list(rows), funcs))
        for index in range(ROUNDS):
            # Each round starts with another side: none always runs after libvirt's re-probe (whose QEMU libvirtd
            # still reaps and whose cache it still writes) or after the same neighbour.
            shift = index % len(sides)
            for name, fn in sides[shift:] + sides[:shift]:
                try:
                    measure(name, fn)
                except LookupError:
                    pass
                if fn is libvirt:
                    settle()
    finally:
        os.utime(binary, ns=(original.st_atime_ns, original.st_mtime_ns))
        shutil.rmtree(work, ignore_errors=True)
    same = {k: v for k, v in outputs["warm"].items() if k != "probe"} == {k: v for k, v in outputs["cold"].items() if k != "probe"}
    med = {k: statistics.median(v) for k, v in rows.items() if v}
    print(f"probe benchmark: {binary}, accel={accel}, machine={machine}, {ROUNDS} rounds interleaved, medians"
          f"{'' if caching else ' (no probe cache in this version)'}")
    print(f"  {'':32s} {'wall':>8s}      {'(min, max, rounds)':28s} {'CPU':>8s}")
    for name, value in med.items():
        used = f"{statistics.median(cpu[name]) * 1000:8.1f} ms" if cpu[name] else "       ?"
        spread = f"(min {min(rows[name]) * 1000:.1f}, max {max(rows[name]) * 1000:.1f}, n={len(rows[name])})"
        print(f"  {name:32s} {value * 1000:8.1f} ms   {spread:28s} {used}")
    if bumps["missed"]:
        print(f"  libvirt did not re-probe in {bumps['missed']} round(s): not timed")
    print(f"  facts of a warm-cache and a cold-cache run identical (probe timings aside): {same}")
    whole_med = med["whole process, cache warm"]
    libvirt_med = med.get("libvirt re-probe", float("nan"))
    print(f"  libvirt re-probe / whole process (warm)  {libvirt_med / whole_med:6.1f} x")
    print(f"  libvirt re-probe / whole process (cold)  {libvirt_med / med['whole process, cache cold']:6.1f} x")
    print(f"  libvirt re-probe / in-process probe      {libvirt_med / med['in-process probe (no cache)']:6.1f} x")
    print(f"  libvirt re-probe / bare QMP              {libvirt_med / med[f'bare QMP (-machine {machine})']:6.1f} x   (the ceiling)")
    if cpu["libvirt re-probe"] and cpu["whole process, cache warm"]:
        cpu_ratio = statistics.median(cpu["libvirt re-probe"]) / statistics.median(cpu["whole process, cache warm"])
        print(f"  CPU: libvirt re-probe / whole process (warm) {cpu_ratio:6.1f} x"
              "   (CPU time: what a loaded machine stretches; libvirtd's includes any other client's meanwhile)")
    print(f"  targets: whole process <= {WHOLE_TARGET_S * 1000:.0f} ms: {'met' if whole_med <= WHOLE_TARGET_S else 'MISSED'};"
          f" libvirt / whole process >= {RATIO_TARGET:g} x: {'met' if libvirt_med / whole_med >= RATIO_TARGET else 'MISSED'}")


if __name__ == "__main__":
    main()
