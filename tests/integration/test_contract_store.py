# Copyright (c) 2026 cpucompat.cluster contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The contract store under real ansible-playbook runs: two runs racing on one group, a store lost while the domains
carry stamps (refused, then rebuilt), and a Redis store whose server is killed mid-run."""

from __future__ import annotations

import fcntl
import json
import os
import subprocess
import sys
import threading
import time

import pytest
import yaml

from ansible_collections.cpucompat.cluster.plugins.module_utils.deploy import _stamp
from integration.helpers import ROOT, contract_file, run_playbook
from integration.libvirt_helpers import cpu_element, define, ensure_libvirtd, remove, virsh
from utils.redis_server import RedisServer

pytestmark = pytest.mark.usefixtures("no_leftover_qemu")
VENDOR = "AuthenticAMD" if "AuthenticAMD" in open("/proc/cpuinfo", encoding="utf-8").read() else "GenuineIntel"
RECORDED = ["x86_64-epyc-7502", "x86_64-epyc-9654-qemu-10.0.0"] if VENDOR == "AuthenticAMD" else ["x86_64-xeon-gold-6130", "x86_64-xeon-platinum-9242"]
LOCAL = {"ansible_connection": "local", "ansible_python_interpreter": sys.executable}
SITE = os.path.join(ROOT, "playbooks", "site.yml")


def _recorded_inventory(tmp_path, replay) -> str:
    hosts = {f"rec-{n}": {**LOCAL, "cpucompat_probe_qmp_socket": replay(n).path, "cpucompat_deploy_enabled": False} for n in RECORDED}
    path = tmp_path / "inventory.yml"
    path.write_text(yaml.safe_dump({"hypervisors": {"hosts": hosts}}))
    return str(path)


def _popen(tmp_path, playbook: str, inventory: str, extra: dict) -> subprocess.Popen:
    """ansible-playbook in the background, as run_playbook runs it, its output read line by line."""
    cmd = [os.path.join(os.path.dirname(sys.executable), "ansible-playbook"), "-i", inventory, "-c", "local",
           os.path.join(ROOT, "playbooks", playbook + ".yml"), "-e", f"ansible_python_interpreter={sys.executable}",
           "-e", json.dumps(extra)]
    from integration.helpers import SOURCE_COLLECTIONS  # pylint: disable=import-outside-toplevel
    env = {**os.environ, "ANSIBLE_CONFIG": os.path.join(ROOT, "ansible.cfg"), "ANSIBLE_COLLECTIONS_PATH": SOURCE_COLLECTIONS,
           "ANSIBLE_CACHE_PLUGIN_CONNECTION": str(tmp_path / "facts"), "ANSIBLE_NOCOLOR": "1",
           "ANSIBLE_LOCAL_TEMP": str(tmp_path / "tmp"), "XDG_DATA_HOME": str(tmp_path / "data")}
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env, cwd=ROOT)


class Output:
    """Collects a process's output on a thread; ``wait_for`` blocks until a text appears."""

    def __init__(self, proc: subprocess.Popen) -> None:
        self.proc, self.text, self._lock = proc, "", threading.Lock()
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        for line in self.proc.stdout:  # type: ignore[union-attr]
            with self._lock:
                self.text += line

    def wait_for(self, needle: str, timeout: float = 240) -> None:
        deadline = time.monotonic() + timeout
        while needle not in self.text:
            assert self.proc.poll() is None or needle in self.text, f"ended before {needle!r}:\n{self.text[-3000:]}"
            assert time.monotonic() < deadline, f"no {needle!r} within {timeout} s:\n{self.text[-3000:]}"
            time.sleep(0.1)

    def finish(self, timeout: float = 600) -> int:
        rc = self.proc.wait(timeout)
        self._thread.join(10)
        return rc


def _openers(path) -> set[int]:
    """The processes, other than this one, that have ``path`` open."""
    target, found = os.path.realpath(path), set()
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            fds = os.listdir(f"/proc/{entry.name}/fd")
        except OSError:  # gone meanwhile, or not ours to read
            continue
        for fd in fds:
            try:
                if os.readlink(f"/proc/{entry.name}/fd/{fd}") == target:
                    found.add(int(entry.name))
                    break
            except OSError:
                continue
    return found


def test_two_runs_race_to_change_one_group_one_wins_the_other_names_its_generation(tmp_path, replay) -> None:
    inv = _recorded_inventory(tmp_path, replay)
    reports = str(tmp_path / "reports")
    pin = run_playbook(open(SITE, encoding="utf-8").read(), tmp_path, inventory=inv,
                       extra={"cpucompat_report_dir": reports, "cpucompat_policy_exclude_features": ["sse4.2"]})
    assert pin.returncode == 0, pin.stdout[-3000:]
    stored = contract_file(tmp_path)
    assert json.loads(stored.read_text())["generation"] == 1
    # Hold the group's write lock: both runs plan against generation 1, then wait for it.
    with open(stored.parent / ".hypervisors.lock", "w", encoding="utf-8") as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        runs = [Output(_popen(tmp_path, "change_contract", inv, {"cpucompat_contract_action": "raise",
                                                                 "cpucompat_contract_reason": f"run {i}",
                                                                 "cpucompat_report_dir": f"{reports}-{i}"}))
                for i in (1, 2)]
        for run in runs:
            run.wait_for("TASK [cpucompat.cluster.contract : Plan the change")
        # Both are past their read, polling the lock: each holds the lock file open while it waits for it.
        deadline = time.monotonic() + 240
        while len(_openers(stored.parent / ".hypervisors.lock")) < 2:
            assert all(r.proc.poll() is None for r in runs), "a run ended while the lock was held"
            assert time.monotonic() < deadline, f"the runs never waited for the lock:\n{runs[0].text[-2000:]}\n{runs[1].text[-2000:]}"
            time.sleep(0.1)
        assert all(r.proc.poll() is None for r in runs), "a run ended while the lock was held"
        assert json.loads(stored.read_text())["generation"] == 1, "nothing written while the lock is held"
    codes = [r.finish() for r in runs]
    assert sorted(codes) == [0, 2], [r.text[-2000:] for r in runs]
    winner, loser = (runs[0], runs[1]) if codes[0] == 0 else (runs[1], runs[0])
    final = json.loads(stored.read_text())  # whole JSON: never half-written
    assert final["generation"] == 2 and final["history"][-1]["reason"] in ("run 1", "run 2")
    text = " ".join(loser.text.split())
    assert "the contract of group hypervisors changed while this run planned" in text
    assert f"generation 2 was written by {final['written_by']}" in text and "this run read generation 1" in text
    assert "sse4.2" in final["cpu"]["features"] and "Contract raise refused" not in winner.text
    assert sorted(os.listdir(stored.parent)) == [".hypervisors.lock", "hypervisors.json"], "no temporary file left"


def test_a_lost_store_is_detected_from_the_stamps_and_rebuilt(tmp_path) -> None:
    ensure_libvirtd()
    name = define(tmp_path, cpu="<cpu mode='custom' match='exact' check='none'><model fallback='forbid'>486</model></cpu>",
                  prefix="cpucompat-stamp")
    try:
        inv = tmp_path / "inventory.yml"
        inv.write_text(yaml.safe_dump({"hypervisors": {"hosts": {"this-machine": {**LOCAL, "cpucompat_domains": {"names": [name]}}}}}))
        site = open(SITE, encoding="utf-8").read()
        extra = {"cpucompat_report_dir": str(tmp_path / "reports")}
        first = run_playbook(site, tmp_path, inventory=str(inv), extra=extra)
        assert first.returncode == 0, first.stdout[-3000:]
        stored = contract_file(tmp_path)
        pinned = json.loads(stored.read_text())
        stamp = _stamp.manager(virsh("dumpxml", "--inactive", name, check=True).stdout)["stamp"]
        assert stamp["group"] == "hypervisors" and stamp["generation"] == pinned["generation"] == 1
        assert stamp["level"] == pinned["cpu"]

        # The store is lost (an AWX job's folder): the run refuses to pin anew over stamped domains.
        os.remove(stored)
        before = virsh("dumpxml", "--inactive", name, check=True).stdout
        lost = run_playbook(site, tmp_path, inventory=str(inv), extra=extra)
        text = " ".join(lost.stdout.split())
        assert lost.returncode != 0 and "has no contract in the store" in text and "carry the stamp of its contract, generation 1" in text
        assert "cpucompat.cluster.rebuild_contract -e cpucompat_group=hypervisors" in text
        assert not stored.exists() and virsh("dumpxml", "--inactive", name, check=True).stdout == before

        # The documented command rebuilds it (check mode first: nothing written).
        checked = run_playbook("cpucompat.cluster.rebuild_contract", tmp_path, inventory=str(inv), extra=extra, check=True)
        assert checked.returncode == 0 and not stored.exists(), checked.stdout[-3000:]
        rebuilt = run_playbook("cpucompat.cluster.rebuild_contract", tmp_path, inventory=str(inv), extra=extra)
        assert rebuilt.returncode == 0, rebuilt.stdout[-3000:]
        doc = json.loads(stored.read_text())
        assert doc["generation"] == 1 and doc["cpu"] == pinned["cpu"] and doc["history"][-1]["action"] == "rebuild"
        again = run_playbook(site, tmp_path, inventory=str(inv), extra=extra)
        assert again.returncode == 0 and f"ok: [this-machine] => (item={name})" in again.stdout, again.stdout[-3000:]
        assert cpu_element(virsh("dumpxml", "--inactive", name, check=True).stdout) == cpu_element(before)
        twice = run_playbook("cpucompat.cluster.rebuild_contract", tmp_path, inventory=str(inv), extra=extra)
        assert twice.returncode != 0 and "nothing to rebuild" in twice.stdout
    finally:
        remove(name)


def test_a_redis_store_killed_mid_run_is_a_clear_error_and_nothing_is_lost(tmp_path, replay) -> None:
    data = tmp_path / "redis"
    data.mkdir()
    server = RedisServer(str(data), persistent=True)
    port = server.port
    inv = _recorded_inventory(tmp_path, replay)
    store = {"cpucompat_contract_store": "redis", "cpucompat_contract_store_connection": server.connection,
             "cpucompat_report_dir": str(tmp_path / "reports")}
    try:
        pin = run_playbook(open(SITE, encoding="utf-8").read(), tmp_path, inventory=inv, extra=store)
        assert pin.returncode == 0, pin.stdout[-3000:]
        before = server.client.get("cpucompat_contract_hypervisors")
        assert json.loads(before)["generation"] == 1 and not contract_file(tmp_path).exists(), "the contract is in Redis"

        run = Output(_popen(tmp_path, "site", inv, store))
        run.wait_for("TASK [cpucompat.cluster.probe")
        server.stop()  # killed while the run probes, before its contract step
        assert run.finish() != 0
        text = " ".join(run.text.split())
        assert f"contract store redis://127.0.0.1:{port}/0 cannot read the contract of group hypervisors: ConnectionError" in text
        assert "nothing was written" in text

        server = RedisServer(str(data), persistent=True, port=port)
        assert server.client.get("cpucompat_contract_hypervisors") == before, "the contract survived the kill"
        again = run_playbook(open(SITE, encoding="utf-8").read(), tmp_path, inventory=inv, extra=store)
        assert again.returncode == 0, again.stdout[-3000:]
        assert server.client.get("cpucompat_contract_hypervisors") == before, "admitted, not pinned anew"
    finally:
        server.stop()
