# Copyright (c) 2026 cpucompat.cluster contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""A fleet probed in --limit slices into one shared fact cache, then aggregated once; bad cache input.

Real components: a real redis-server on a loopback port with the community.general redis cache plugin (from the
pinned ``ansible`` package), or a jsonfile cache in one shared folder; real ansible-playbook runs of the collection's
own playbooks (probe, then baseline with cpucompat_probe_enabled=false); recorded Intel hosts served over real QMP
sockets, so nothing depends on this machine's CPU.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from typing import Any

import pytest
import yaml

from integration.helpers import run_playbook
from utils.qmp_replay import ReplayServer
from utils.recordings import load
from utils.redis_server import RedisServer as Redis

pytestmark = pytest.mark.usefixtures("no_leftover_qemu")

# Recorded Intel servers with a common model libvirt knows (Haswell-noTSX); hv1 alone would run Skylake-Server-v2.
RECORDINGS = ["x86_64-xeon-gold-6130", "x86_64-cooperlake", "x86_64-xeon-platinum-9242", "x86_64-ice-lake-server",
              "x86_64-xeon-e5-2650-v4", "x86_64-xeon-e5-2609-v3"]
HOSTS = [f"hv{i}" for i in range(1, len(RECORDINGS) + 1)]
PREFIX = "cpucompat-test-"
SLICES = ["hv1,hv2", "hv3,hv4"]  # hv5 and hv6 are probed by no slice at first


class Cache:
    """One shared fact cache, as every controller (or job slice) is configured to use it."""

    def __init__(self, kind: str, tmp_path, server: Redis | None = None) -> None:
        self.kind, self.server = kind, server
        self.folder = str(tmp_path / "shared-facts")
        if kind == "redis":
            assert server is not None
            self.env = {"ANSIBLE_CACHE_PLUGIN": "community.general.redis",
                        "ANSIBLE_CACHE_PLUGIN_CONNECTION": server.connection,
                        "ANSIBLE_CACHE_PLUGIN_PREFIX": PREFIX}
        else:
            self.env = {"ANSIBLE_CACHE_PLUGIN": "jsonfile", "ANSIBLE_CACHE_PLUGIN_CONNECTION": self.folder}

    def raw(self, host: str) -> bytes | None:
        """The stored bytes of a host's entry (ansible-core 2.19 keys it s1_<host>)."""
        if self.kind == "redis":
            assert self.server is not None
            return self.server.client.get(f"{PREFIX}s1_{host}")
        path = os.path.join(self.folder, f"s1_{host}")
        return open(path, "rb").read() if os.path.exists(path) else None

    def facts(self, host: str) -> dict[str, Any]:
        raw = self.raw(host)
        assert raw is not None, f"{host} has no cache entry"
        return json.loads(json.loads(raw)["__payload__"])

    def put(self, host: str, data: bytes) -> None:
        if self.kind == "redis":
            assert self.server is not None
            self.server.client.set(f"{PREFIX}s1_{host}", data)
        else:
            with open(os.path.join(self.folder, f"s1_{host}"), "wb") as fh:
                fh.write(data)


@pytest.fixture(params=["redis", "jsonfile"])
def cache(request, tmp_path) -> Iterator[Cache]:
    server = Redis(str(tmp_path)) if request.param == "redis" else None
    try:
        yield Cache(request.param, tmp_path, server)
    finally:
        if server is not None:
            server.stop()


@pytest.fixture
def inventory(tmp_path, replay) -> str:
    local = {"ansible_connection": "local", "ansible_python_interpreter": sys.executable}
    hosts = {h: {**local, "cpucompat_probe_qmp_socket": replay(rec).path} for h, rec in zip(HOSTS, RECORDINGS)}
    path = tmp_path / "inventory.yml"
    path.write_text(yaml.safe_dump({"hypervisors": {"hosts": hosts}}))
    return str(path)


@pytest.fixture(scope="module")
def probed(tmp_path_factory) -> Iterator[dict[str, Any]]:
    """The whole group probed once into each kind of cache, for the tests that start from a probed group and then take
    its cache apart (test_slices_then_one_aggregation shows how the probe fills it): the jsonfile folder, and the Redis
    keys as DUMPed (value and time to live), which each test RESTOREs into a server of its own; and the group's
    inventory, which those tests, never probing, take as it is (its replay servers stay up for the module)."""
    tmp = tmp_path_factory.mktemp("probed")
    sockets = tempfile.TemporaryDirectory(prefix="cpucompat-test-")  # a short path: a socket's is at most 107 bytes
    servers = [ReplayServer(load(rec), os.path.join(sockets.name, f"{i}.sock")).start() for i, rec in enumerate(RECORDINGS)]
    server = Redis(str(tmp))
    try:
        local = {"ansible_connection": "local", "ansible_python_interpreter": sys.executable}
        path = tmp / "inventory.yml"
        hosts = {h: {**local, "cpucompat_probe_qmp_socket": s.path} for h, s in zip(HOSTS, servers)}
        path.write_text(yaml.safe_dump({"hypervisors": {"hosts": hosts}}))
        jsonfile = Cache("jsonfile", tmp)
        _probe(tmp, str(path), jsonfile, "hypervisors")
        redis = Cache("redis", tmp, server)
        _probe(tmp, str(path), redis, "hypervisors")
        keys = {key: (server.client.pttl(key), server.client.dump(key)) for key in server.client.keys("*")}
        assert all(redis.raw(h) for h in HOSTS) and all(jsonfile.raw(h) for h in HOSTS)
        yield {"jsonfile": jsonfile.folder, "redis": keys, "inventory": str(path)}
    finally:
        server.stop()
        for replayed in servers:
            replayed.stop()
        sockets.cleanup()


def _restored(kind: str, probed: dict[str, Any], tmp_path, server: Redis | None = None) -> Cache:
    """A cache of its own holding what the group's probe wrote (``probed``)."""
    cache = Cache(kind, tmp_path, server)
    if kind == "redis":
        assert server is not None
        for key, (ttl, dumped) in probed["redis"].items():
            server.client.restore(key, max(ttl, 0), dumped)
    else:
        shutil.copytree(probed["jsonfile"], cache.folder)
    assert all(cache.raw(h) for h in HOSTS)
    return cache


def _probe(tmp_path, inventory: str, cache: Cache, limit: str) -> None:
    proc = run_playbook("cpucompat.cluster.probe", tmp_path, inventory=inventory, env=cache.env, limit=limit,
                        extra={"cpucompat_hosts": "hypervisors"})
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]


def _aggregate(tmp_path, inventory: str, cache: Cache, **extra: Any) -> tuple[subprocess.CompletedProcess[str], dict[str, Any]]:
    reports = tmp_path / "reports"
    proc = run_playbook("cpucompat.cluster.baseline", tmp_path, inventory=inventory, env=cache.env,
                        extra={"cpucompat_probe_enabled": False, "cpucompat_report_dir": str(reports), **extra})
    report = json.loads((reports / "baseline.json").read_text())
    assert report.pop("written")["at"], "every report file says when it was written"  # the rest is the run's answer
    return proc, report


def test_slices_then_one_aggregation(tmp_path, inventory: str, cache: Cache) -> None:
    for limit in SLICES:
        _probe(tmp_path, inventory, cache, limit)
    probed = {h: cache.raw(h) for h in HOSTS}
    assert all(probed[h] for h in HOSTS[:4]) and not probed["hv5"] and not probed["hv6"]

    # Hosts probed by no slice are named; no baseline from a partial group, and nothing is written to the cache.
    proc, report = _aggregate(tmp_path, inventory, cache)
    assert proc.returncode != 0 and "hv5, hv6" in proc.stdout
    assert report["missing_facts"] == ["hv5", "hv6"] and report["baseline"] is None and not report["complete"]
    assert {h: cache.raw(h) for h in HOSTS} == probed

    # The last slice, then the whole group in one run: every host keeps the same small fact.
    _probe(tmp_path, inventory, cache, "hv5,hv6")
    sizes = {h: len(cache.raw(h) or b"") for h in HOSTS}
    proc, report = _aggregate(tmp_path, inventory, cache)
    assert proc.returncode == 0, proc.stdout[-3000:]
    assert report["complete"] and sorted(report["hosts"]) == HOSTS and report["xml"]
    facts = {h: cache.facts(h) for h in HOSTS}
    clusters = [f["cpucompat_cluster"] for f in facts.values()]
    assert all(c == clusters[0] for c in clusters)
    assert clusters[0]["hosts"] == len(HOSTS) and clusters[0]["xml"] == report["xml"] and clusters[0]["group"] == "hypervisors"
    assert all(f["cpucompat"]["schema_version"] for f in facts.values())  # the probe facts are kept beside it
    assert all(len(cache.raw(h) or b"") - sizes[h] <= 2048 for h in HOSTS), "cache growth above 2 KiB per host"

    # Aggregating again changes nothing: no host's entry is rewritten.
    before = {h: cache.raw(h) for h in HOSTS}
    proc, again = _aggregate(tmp_path, inventory, cache)
    assert proc.returncode == 0 and again == report and {h: cache.raw(h) for h in HOSTS} == before


OUTAGE = """
- hosts: hv1
  gather_facts: false
  tasks:
    - name: Read hv1's facts while the server is there
      ansible.builtin.assert:
        that: ansible_facts['cpucompat']['arch'] == 'x86_64'
    - name: The server goes away
      ansible.builtin.command: {redis_cli} -p {port} shutdown nosave
      changed_when: true
      failed_when: false
- hosts: hypervisors
  gather_facts: false
  tasks:
    - name: Aggregate the group
      ansible.builtin.include_role:
        name: cpucompat.cluster.baseline
      run_once: true
"""


@pytest.mark.parametrize("partial", [False, True], ids=["whole-group", "partial-allowed"])
def test_redis_going_away_mid_run(tmp_path, probed: dict[str, Any], partial: bool) -> None:
    """In one run hv1's facts are read, the server stops, then the group is aggregated: the others are named."""
    server = Redis(str(tmp_path))
    try:
        cache = _restored("redis", probed, tmp_path, server)
        play = OUTAGE.format(redis_cli=shutil.which("redis-cli"), port=server.port)
        reports = tmp_path / "reports"
        proc = run_playbook(play, tmp_path, inventory=probed["inventory"], env=cache.env,
                            extra={"cpucompat_report_dir": str(reports), "cpucompat_group": "hypervisors",
                                   "cpucompat_allow_partial": partial})
        report = json.loads((reports / "baseline.json").read_text())
        assert report["unreadable"] == HOSTS[1:], proc.stdout[-3000:]
        assert all("ConnectionError" in report["unreadable_errors"][h] for h in HOSTS[1:]), report["unreadable_errors"]
        if partial:
            assert report["baseline"] is not None and sorted(report["hosts"]) == ["hv1"]
        else:
            assert report["baseline"] is None and "hv2, hv3, hv4, hv5, hv6" in report["error"]
            assert proc.returncode != 0
    finally:
        server.stop()


@pytest.mark.parametrize("entry, expected", [
    (b"this is not JSON", "unreadable"),
    (json.dumps({"__payload__": "{not json either"}).encode(), "unreadable"),
    (json.dumps({"__payload__": json.dumps({"cpucompat": {"schema_version": 1, "arch": "x86_64"}})}).encode(),
     "other_schema"),
], ids=["not-json", "payload-not-json", "other-schema"])
def test_bad_jsonfile_entries(tmp_path, probed: dict[str, Any], entry: bytes, expected: str) -> None:
    cache = _restored("jsonfile", probed, tmp_path)
    cache.put("hv3", entry)
    others = {h: cache.raw(h) for h in HOSTS if h != "hv3"}
    proc, report = _aggregate(tmp_path, probed["inventory"], cache)
    assert proc.returncode != 0 and "hv3" in report["error"]
    assert report[expected] == ["hv3"] and report["baseline"] is None
    if expected == "unreadable":
        assert report["unreadable_errors"]["hv3"]
    assert {h: cache.raw(h) for h in HOSTS if h != "hv3"} == others, "another host's entry was touched"
    # With a partial group allowed the others get their baseline (and the fact) while hv3 stays named.
    proc, report = _aggregate(tmp_path, probed["inventory"], cache, cpucompat_allow_partial=True)
    assert report["baseline"] is not None and "hv3" not in report["hosts"]
