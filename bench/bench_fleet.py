#!/usr/bin/env python3
# Copyright (c) 2026 cpucompat.cluster contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Fleet scale through Ansible itself: a group aggregated from the jsonfile fact cache by ansible-playbook.

Each size gets an inventory of that many hosts (local connection, nothing runs on them) and a jsonfile cache seeded
with real recorded facts (the recorded Intel hosts, drawn at random, in ansible-core 2.19's ``s1_<host>`` form). Timed:
the wall time of ``ansible-playbook cpucompat.cluster.baseline -e cpucompat_probe_enabled=false`` (no probing, as after
``--limit`` slices), first on the seeded cache (every host gets the ``cpucompat_cluster`` fact) and again on the cache
that run left (nothing changed, nothing rewritten); the cache's growth per host; the peak memory of the run. Then the
planning playbooks (plan_expansion with 50 candidates, premigration_check) over the 1,000-host group from the cache,
without their per-host libvirt listing (a module run per host is not what this measures); and the 1,000-host baseline
once more with the cache in a real redis-server on a loopback port (community.general.redis), seeded with the same
entries.

Side by side with another commit (BENCH_FLEET_REF, e.g. the last release): that commit's collection is built from a git
worktree, its own test utilities seed a cache with the facts its schema has, and the baseline and site playbooks of both
run interleaved, round by round, over caches of the same hosts (1,000). The site run is from the cache: facts probed
within cpucompat_probe_max_age, nothing deployed (the aggregation and contract steps, not QEMU, are measured).

ansible-core's own floor, side by side with the baseline role (interleaved, round by round, on copies of the same seeded
cache): one play over the same inventory and cache whose one task, run_once on the first host, templates
``groups[group] | map('extract', hostvars, ['ansible_facts', 'cpucompat', 'fingerprint'])``. That is the cheapest form
in which ansible-core itself decodes every host's cache entry once (``hostvars[h]`` reads the host's entry from the fact
cache, the JSON decode with its tag checks included) and hands each host's ``cpucompat`` fact to a template: one task
(a run_once task is one worker, not one per host), no fact written, nothing rendered per host. Anything the role does
beyond it (its include, its argument validation, its three tasks, the aggregation, the reports, the fact written back
to every host) is measured as the ratio role / floor (targets: <= 1.3x at 1,000 hosts, <= 2.1x at 2,000). The site
playbook from the cache (BENCH_FLEET_SITE_SIZES) is measured the same way, against the floor of the same size: probes
skipped as fresh (cpucompat_probe_max_age), the contract pinned by a first run and admitted by the timed one, in check
mode with cpucompat_deploy_enabled=false (the hosts are names in an inventory: no libvirt to list) (target <= 1.3x).

Environment: BENCH_FLEET_SIZES (default 1000,2000,10000), BENCH_FLEET_ROUNDS (default 3; sizes over 2,000 run once),
BENCH_FLEET_REF (a git ref to compare with; unset: no comparison), BENCH_FLEET_FLOOR_SIZES (the sizes at which the role
is measured against the floor, default 1000,2000), BENCH_FLEET_SITE_SIZES (the site run against the floor, default
1000; 10000 for the full measure), BENCH_FLEET_PARTS (default all: baseline,floor,site,planning,redis,reference).
"""
from __future__ import annotations

import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, ".collections"))
sys.path.insert(0, os.path.join(ROOT, "tests"))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from bench_baseline import INTEL  # noqa: E402  pylint: disable=wrong-import-position
from utils.redis_server import RedisServer  # noqa: E402  pylint: disable=wrong-import-position
from utils.recordings import facts_of  # noqa: E402  pylint: disable=wrong-import-position

SIZES = [int(s) for s in os.environ.get("BENCH_FLEET_SIZES", "1000,2000,10000").split(",") if s.strip() and int(s) > 0]
ROUNDS = int(os.environ.get("BENCH_FLEET_ROUNDS", "3"))
FLOOR_SIZES = [int(s) for s in os.environ.get("BENCH_FLEET_FLOOR_SIZES", "1000,2000").split(",") if s.strip()]
SITE_SIZES = [int(s) for s in os.environ.get("BENCH_FLEET_SITE_SIZES", "1000").split(",") if s.strip()]
PARTS = set(os.environ.get("BENCH_FLEET_PARTS", "baseline,floor,site,planning,redis,reference").split(","))
CANDIDATES = 50
PLAYBOOK = os.path.join(os.path.dirname(sys.executable), "ansible-playbook")
# The child's peak RSS (the controller process; forked workers share its pages until they write).
RUNNER = ("import resource, subprocess, sys; rc = subprocess.call(sys.argv[1:], stdout=subprocess.DEVNULL); "
          "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss); sys.exit(rc)")


def seed(work: str, size: int, rng: random.Random, pool_facts: dict[str, dict] | None = None) -> tuple[str, int]:
    """The inventory and a seeded cache of ``size`` hosts (plus the candidates); the cache's size in bytes.

    ``pool_facts``: the recorded hosts' facts (by default this tree's), each marked probed now (a site run keeps them).
    """
    now = int(time.time())
    facts = pool_facts or {n: facts_of(n) for n in INTEL}
    pool = {n: json.dumps({"__payload__": json.dumps({"cpucompat": {**f, "probe": {**(f.get("probe") or {}), "probed_at": now}}})})
            for n, f in facts.items()}
    cache = os.path.join(work, "seed")
    os.makedirs(cache)
    hosts = [f"hv{i:05d}" for i in range(size)]
    candidates = [f"new{i:03d}" for i in range(CANDIDATES)]
    for name in [*hosts, *candidates]:
        with open(os.path.join(cache, f"s1_{name}"), "w", encoding="utf-8") as fh:
            fh.write(pool[rng.choice(INTEL)])
    with open(os.path.join(work, "inventory.ini"), "w", encoding="utf-8") as fh:
        fh.write("[hypervisors]\n" + "\n".join(hosts) + "\n[candidates]\n" + "\n".join(candidates) + "\n")
        fh.write(f"[all:vars]\nansible_connection=local\nansible_python_interpreter={sys.executable}\n")
    return cache, du(cache)


def du(path: str) -> int:
    return sum(os.path.getsize(os.path.join(path, f)) for f in os.listdir(path))


def run(work: str, cache: str, playbook: str, *extra: str, plugin: str = "jsonfile", tree: str = ROOT,
        collections: str = os.path.join(ROOT, ".collections")) -> tuple[float, int]:
    """Wall time and peak RSS (KiB) of one ansible-playbook run (of ``tree``'s playbook and installed collection)."""
    env = {**os.environ, "ANSIBLE_CONFIG": os.path.join(ROOT, "ansible.cfg"), "ANSIBLE_CACHE_PLUGIN": plugin,
           "ANSIBLE_CACHE_PLUGIN_CONNECTION": cache, "ANSIBLE_COLLECTIONS_PATH": collections,
           "ANSIBLE_NOCOLOR": "1", "XDG_DATA_HOME": os.path.join(work, "data")}  # the contract store: the run's own
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-c", RUNNER, PLAYBOOK, "-i", os.path.join(work, "inventory.ini"),
                           os.path.join(tree, "playbooks", playbook), "-e", "cpucompat_probe_enabled=false",
                           "-e", f"cpucompat_report_dir={work}/reports", *extra],
                          env=env, capture_output=True, text=True, check=False)
    elapsed = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(f"{playbook} failed ({proc.returncode}): {proc.stdout[-2000:]}{proc.stderr[-2000:]}")
    return elapsed, int(proc.stdout.split()[-1])


def baseline_rounds(work: str, seeded: str, size: int) -> dict[str, list[tuple[float, int, int]]]:
    out: dict[str, list[tuple[float, int, int]]] = {"first": [], "again": []}
    for i in range(ROUNDS if size <= 2000 else 1):
        cache = os.path.join(work, f"cache-{i}")
        shutil.copytree(seeded, cache)
        for kind in ("first", "again"):
            elapsed, rss = run(work, cache, "baseline.yml")
            out[kind].append((elapsed, rss, du(cache)))
        shutil.rmtree(cache)
    return out


def main() -> None:
    print(f"fleet benchmark: ansible-playbook wall time, jsonfile fact cache, forks 5, medians of {ROUNDS} rounds "
          "(one round above 2,000 hosts)")
    medians: dict[int, float] = {}
    sizes = sorted({*(SIZES if "baseline" in PARTS else ()), *(FLOOR_SIZES if "floor" in PARTS else ()),
                    *(SITE_SIZES if "site" in PARTS else ()), *([1000] if PARTS & {"planning", "redis", "reference"} else ())})
    for size in sizes:
        work = tempfile.mkdtemp(prefix=f"cpucompat-bench-fleet-{size}-")
        try:
            seeded, before = seed(work, size, random.Random(size))
            per_host = before / (size + CANDIDATES)
            if size in SIZES and "baseline" in PARTS:
                for kind, samples in baseline_rounds(work, seeded, size).items():
                    median = statistics.median(t for t, _, _ in samples)
                    growth = (statistics.median(b for _, _, b in samples) - before) / (size + CANDIDATES)
                    if kind == "first":
                        medians[size] = median
                    print(f"  baseline {size:6d} hosts, {kind:5s}: {median:7.2f} s  (rounds {min(t for t, _, _ in samples):.2f}-"
                          f"{max(t for t, _, _ in samples):.2f})  peak RSS {max(r for _, r, _ in samples) / 1024:6.0f} MiB  "
                          f"cache {per_host / 1024:.1f} KiB/host before, growth {growth:7.0f} B/host")
            if size in FLOOR_SIZES and "floor" in PARTS:
                role_over_floor(work, seeded, size)
            if size in SITE_SIZES and "site" in PARTS:
                site_over_floor(work, seeded, size)
            if size == 1000:
                if "reference" in PARTS:
                    reference(work, seeded)
                if "planning" in PARTS:
                    planning(work, seeded)
                if "redis" in PARTS:
                    on_redis(work, seeded)
        finally:
            shutil.rmtree(work)
    if os.environ.get("BENCH_FLEET_REF"):
        compare_ref(os.environ["BENCH_FLEET_REF"])
    if 1000 in medians and 2000 in medians:
        print(f"  2,000 / 1,000 hosts: {medians[2000] / medians[1000]:.2f}x (target <= 2.2x)")
    if "baseline" in PARTS:
        print("  targets: 1,000 hosts <= 5 s with growth <= 2 KiB/host; 10,000 hosts <= 60 s; planning checks <= 10 s")


# ansible-core's own floor (see the module's docstring): every host's cpucompat fact decoded once, by ansible-core.
FLOOR = """
- name: ansible-core's own floor, every host's cpucompat fact read once
  hosts: hypervisors
  gather_facts: false
  tasks:
    - name: Read every host's cpucompat fact from the fact cache once
      ansible.builtin.debug:
        msg: "{{ groups['hypervisors'] | map('extract', hostvars, ['ansible_facts', 'cpucompat', 'fingerprint'])
                 | select | list | length }} hosts with cpucompat facts"
      run_once: true
"""
FLOOR_TARGETS = {1000: 1.3, 2000: 2.1}
SITE_TARGET = 1.3


def floor_playbook(work: str) -> str:
    path = os.path.join(work, "floor.yml")
    with open(path, "w", encoding="utf-8") as fh:
        fh.write(FLOOR)
    return path


def role_over_floor(work: str, seeded: str, size: int) -> None:
    """The floor and the baseline playbook (first run on the seeded cache, then again), interleaved round by round."""
    floor = floor_playbook(work)
    samples: dict[str, list[float]] = {"floor": [], "first": [], "again": []}
    for i in range(ROUNDS if size <= 2000 else 1):
        cache = os.path.join(work, f"cache-floor-{i}")
        shutil.copytree(seeded, cache)
        samples["floor"].append(run(work, cache, floor)[0])
        for kind in ("first", "again"):
            samples[kind].append(run(work, cache, "baseline.yml")[0])
        shutil.rmtree(cache)
    medians = {k: statistics.median(v) for k, v in samples.items()}
    target = FLOOR_TARGETS.get(size)
    print(f"  floor vs baseline role, {size:6d} hosts, {len(samples['floor'])} interleaved rounds: floor {medians['floor']:6.2f} s  "
          f"role first {medians['first']:6.2f} s ({medians['first'] / medians['floor']:.2f}x)  "
          f"again {medians['again']:6.2f} s ({medians['again'] / medians['floor']:.2f}x)"
          f"{f'  (target <= {target}x)' if target else ''}")


def site_over_floor(work: str, seeded: str, size: int) -> None:
    """The site playbook from the cache (a first run pins the contract; then timed: admitted, deploy in check mode)
    and the floor, interleaved, on the same cache."""
    floor = floor_playbook(work)
    cache = os.path.join(work, "cache-site")
    shutil.copytree(seeded, cache)
    extra = [e.format(work=work) for e in SITE_EXTRA]
    pin, _rss = run(work, cache, "site.yml", *extra)
    samples: dict[str, list[float]] = {"floor": [], "site": []}
    for _round in range(ROUNDS if size <= 2000 else 1):
        samples["floor"].append(run(work, cache, floor)[0])
        samples["site"].append(run(work, cache, "site.yml", "--check", *extra)[0])
    shutil.rmtree(cache)
    floor_s, site_s = (statistics.median(samples[k]) for k in ("floor", "site"))
    print(f"  site from the cache, {size:6d} hosts: first run (pins the contract) {pin:6.2f} s; {len(samples['site'])} interleaved "
          f"rounds: floor {floor_s:6.2f} s  site (admitted, --check) {site_s:6.2f} s  ratio {site_s / floor_s:.2f}x "
          f"(target <= {SITE_TARGET}x)")


REFERENCE = """
- hosts: hypervisors
  gather_facts: false
  tasks:
    - name: What ansible-core itself costs to give every host a value of the fact's size once
      ansible.builtin.set_fact:
        reference_fact: "{{ 'x' * 1150 }}"
        cacheable: CACHEABLE
      run_once: true
"""


def reference(work: str, seeded: str) -> None:
    """Side by side: Ansible's own run_once set_fact of a value as large as cpucompat_cluster, over the same cache."""
    for cacheable in ("true", "false"):
        path = os.path.join(work, f"reference-{cacheable}.yml")
        with open(path, "w", encoding="utf-8") as fh:
            fh.write(REFERENCE.replace("CACHEABLE", cacheable))
        samples = []
        for i in range(ROUNDS):
            cache = os.path.join(work, f"cache-reference-{i}")
            shutil.copytree(seeded, cache)
            samples.append(run(work, cache, path)[0])
            shutil.rmtree(cache)
        what = "stored in every cache entry" if cacheable == "true" else "in memory only"
        print(f"  reference: run_once set_fact, {what:27s}: {statistics.median(samples):7.2f} s "
              f"(rounds {min(samples):.2f}-{max(samples):.2f})")


def planning(work: str, seeded: str) -> None:
    cache = os.path.join(work, "cache-planning")
    shutil.copytree(seeded, cache)
    checks = {"plan_expansion": ("plan_expansion.yml", "-e", "cpucompat_libvirt_enabled=false"),
              "premigration_check": ("premigration_check.yml", "-e", "cpucompat_libvirt_enabled=false")}
    for name, (playbook, *extra) in checks.items():
        samples = [run(work, cache, playbook, *extra) for _ in range(ROUNDS)]
        print(f"  {name:18s} 1000 hosts{f' + {CANDIDATES} candidates' if 'expansion' in name else ''}: "
              f"{statistics.median(t for t, _ in samples):7.2f} s  peak RSS {max(r for _, r in samples) / 1024:6.0f} MiB")
    shutil.rmtree(cache)


def on_redis(work: str, seeded: str) -> None:
    """The 1,000-host baseline with the same entries in a real redis-server (the community.general.redis plugin)."""
    server = RedisServer(work)
    try:
        samples: dict[str, list[tuple[float, int]]] = {"first": [], "again": []}
        for _round in range(ROUNDS):
            server.client.flushall()
            for name in os.listdir(seeded):  # the plugin's layout: the value (default prefix), the key in its sorted set
                with open(os.path.join(seeded, name), encoding="utf-8") as fh:
                    server.client.set(f"ansible_facts{name}", fh.read())
                server.client.zadd("ansible_cache_keys", {name: time.time()})
            for kind in samples:
                samples[kind].append(run(work, server.connection, "baseline.yml", plugin="community.general.redis"))
        for kind, runs in samples.items():
            print(f"  baseline   1000 hosts, {kind:5s}, Redis cache: {statistics.median(t for t, _ in runs):7.2f} s  "
                  f"(rounds {min(t for t, _ in runs):.2f}-{max(t for t, _ in runs):.2f})")
    finally:
        server.stop()


SITE_EXTRA = ("-e", "cpucompat_probe_max_age=86400", "-e", "cpucompat_deploy_enabled=false", "-e", "cpucompat_group=hypervisors",
              "-e", "cpucompat_contract_dir={work}/contracts")


def _ref_tree(ref: str, work: str) -> tuple[str, str, dict[str, dict]]:
    """A worktree of ``ref``, its collection installed apart, and the recorded hosts' facts as its own code builds them."""
    tree = os.path.join(work, "ref")
    subprocess.run(["git", "-C", ROOT, "worktree", "add", "--detach", "--force", tree, ref], check=True, capture_output=True)
    collections = os.path.join(work, "ref-collections")
    build = os.path.join(work, "ref-build")
    subprocess.run([os.path.join(os.path.dirname(sys.executable), "ansible-galaxy"), "collection", "build", "--force",
                    "--output-path", build, tree], check=True, capture_output=True)
    artifact = next(os.path.join(build, f) for f in os.listdir(build) if f.endswith(".tar.gz"))
    subprocess.run([os.path.join(os.path.dirname(sys.executable), "ansible-galaxy"), "collection", "install", "--force", "-p",
                    collections, artifact], check=True, capture_output=True)
    code = ("import json, sys; sys.path.insert(0, sys.argv[1]); from utils.source_tree import SOURCE_COLLECTIONS; "
            "sys.path.insert(0, SOURCE_COLLECTIONS); from ansible.plugins.loader import init_plugin_loader; "
            "init_plugin_loader([SOURCE_COLLECTIONS]); from utils.recordings import facts_of; "
            "print(json.dumps({n: facts_of(n) for n in json.loads(sys.argv[2])}))")
    out = subprocess.run([sys.executable, "-c", code, os.path.join(tree, "tests"), json.dumps(INTEL)], check=True,
                         capture_output=True, text=True, cwd=tree).stdout
    return tree, collections, json.loads(out)


def compare_ref(ref: str, size: int = 1000) -> None:
    """The baseline and site playbooks of ``ref`` and of this tree, interleaved round by round, 1,000 hosts."""
    work = tempfile.mkdtemp(prefix="cpucompat-bench-ref-")
    try:
        tree, collections, ref_facts = _ref_tree(ref, work)
        trees = {ref: (tree, collections, ref_facts), "this tree": (ROOT, os.path.join(ROOT, ".collections"), None)}
        seeded = {}
        for name, (_t, _c, facts) in trees.items():
            os.makedirs(os.path.join(work, name))
            seeded[name] = seed(os.path.join(work, name), size, random.Random(size), facts)
        samples: dict[tuple[str, str], list[float]] = {}
        for _round in range(ROUNDS):
            for playbook, extra in (("baseline.yml", ()), ("site.yml", SITE_EXTRA)):
                for name, (t, c, _facts) in trees.items():
                    home = os.path.join(work, name)
                    cache = os.path.join(home, "cache")
                    shutil.rmtree(cache, ignore_errors=True)
                    shutil.copytree(seeded[name][0], cache)
                    for kind in ("first", "again"):
                        elapsed, _rss = run(home, cache, playbook, *(e.format(work=home) for e in extra), tree=t, collections=c)
                        samples.setdefault((f"{playbook} {kind}", name), []).append(elapsed)
                    shutil.rmtree(os.path.join(home, "contracts"), ignore_errors=True)  # the store beside the inventory (older trees)
                    shutil.rmtree(os.path.join(home, "data"), ignore_errors=True)  # the store under XDG_DATA_HOME
        print(f"  side by side with {ref}, {size} hosts, {ROUNDS} interleaved rounds (cache {seeded[ref][1] / (size + CANDIDATES) / 1024:.1f} "
              f"KiB/host there, {seeded['this tree'][1] / (size + CANDIDATES) / 1024:.1f} KiB/host here):")
        for what in sorted({w for w, _n in samples}):
            old, new = (statistics.median(samples[(what, n)]) for n in (ref, "this tree"))
            print(f"    {what:22s} {ref}: {old:6.2f} s   this tree: {new:6.2f} s   ratio {new / old:.2f}")
    finally:
        subprocess.run(["git", "-C", ROOT, "worktree", "remove", "--force", os.path.join(work, "ref")], check=False, capture_output=True)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
