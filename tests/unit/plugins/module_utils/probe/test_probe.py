# Copyright (c) 2026 cpucompat.cluster contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The probe over real sockets: replayed recordings, real QEMU, and every fault we promise to survive."""

from __future__ import annotations

import glob
import inspect
import json
import os
import stat
import subprocess
import sys
import tempfile
import time

import pytest

from ansible_collections.cpucompat.cluster.plugins.module_utils.probe import _cache, _facts, _fingerprint, _probe
from ansible_collections.cpucompat.cluster.plugins.module_utils._errors import QemuStartError, QMPError, QMPProtocolError, QMPTimeout
from ansible_collections.cpucompat.cluster.plugins.module_utils.probe._qmp import QMPClient
from ansible_collections.cpucompat.cluster.plugins.module_utils.probe._session import Query
from conftest import KVM
from utils.recordings import build, load, names, primary_key, served_replies
from utils.engine import model_view

pytestmark = pytest.mark.usefixtures("no_leftover_qemu")


def _probe_dirs() -> set[str]:
    """The probe's socket folders in the temporary folder (this test process's own: tests/conftest.py)."""
    return set(glob.glob(os.path.join(tempfile.gettempdir(), "cpucompat-probe-*")))


@pytest.mark.parametrize("name", names())
def test_replayed_recording_gives_the_same_facts_as_the_pure_conversion(replay, name: str) -> None:
    rec = load(name)
    server = replay(name)
    facts = _probe.probe(_probe.ProbeRequest(qmp_socket=server.path, timeout=5))
    replies, errors = served_replies(rec)
    direct = build(replies, errors, primary_key(rec), name)
    for key in ("arch", "vendor", "model_id", "accel", "features", "models", "base_model"):
        assert facts[key] == direct[key], key
    assert facts["probe"]["mode"] == "socket"
    # The probe asked the recorded questions and nothing that would need invention
    assert "query-cpu-definitions" in server.commands


def test_replay_speaks_qmp_to_an_independent_client(replay) -> None:
    """qemu.qmp, QEMU's own Python client, accepts the replay server as a QMP peer."""
    from qemu.qmp.legacy import QEMUMonitorProtocol  # pylint: disable=import-outside-toplevel

    server = replay("x86_64-epyc-9654-qemu-10.0.0")
    mon = QEMUMonitorProtocol(server.path)
    mon.connect()
    try:
        assert mon.cmd("query-target") == {"arch": "x86_64"}
        assert mon.cmd("query-kvm")["enabled"] is True
    finally:
        mon.close()


LIVE = [
    pytest.param("qemu-system-x86_64", "kvm", "x86_64", marks=KVM, id="x86_64-kvm"),
    pytest.param("qemu-system-x86_64", "tcg", "x86_64", id="x86_64-tcg"),
    pytest.param("qemu-system-s390x", "tcg", "s390x", id="s390x-tcg"),
    pytest.param("qemu-system-aarch64", "tcg", "aarch64", id="aarch64-tcg"),
]


@pytest.mark.parametrize("binary, accel, arch", LIVE)
def test_live_probe(binary: str, accel: str, arch: str) -> None:
    before = _probe_dirs()
    facts = _probe.probe(_probe.ProbeRequest(qemu_binary=binary, accel=accel))
    assert _probe_dirs() == before, "the private socket directory must be removed"
    assert (facts["arch"], facts["accel"]) == (arch, accel)
    assert facts["qemu"]["version"].count(".") == 2
    assert facts["qemu"]["binary"].endswith(binary)
    feats = set(facts["features"])
    view = model_view(facts)
    runnable = {m: info for m, info in view.items() if info["runnable"]}
    if arch == "aarch64":
        # QEMU reports no runnability on ARM: unknown, never guessed
        assert all(info["runnable"] is None for info in view.values()) and not facts["runnable_models"]
        assert {"aarch64", "pmu"} <= feats
        return
    assert runnable, "some named model runs here"
    expanded = {m: info["features"] for m, info in runnable.items() if info.get("features") is not None}
    assert expanded
    soft = _probe_soft(arch, accel)
    for model, needs in expanded.items():
        # Real content: the host model offers everything a runnable model needs.
        assert set(needs) - feats <= soft, f"{model} runs here but needs {sorted(set(needs) - feats)}"
    blocked = {m: i["unavailable_features"] for m, i in view.items() if i["runnable"] is False and not i["alias_of"]}
    for model, missing in blocked.items():
        assert missing and not set(missing) <= feats, f"{model} is blocked by features the host has: {missing}"
    if arch == "s390x":
        assert facts["capabilities"]["comparison"] is True and facts["capabilities"]["baseline"] is True
        assert facts["base_model"].endswith("-base")
    else:
        assert facts["capabilities"]["comparison"] is False
    if accel == "kvm":
        assert facts["non_migratable_features"] is not None


def _probe_soft(arch: str, accel: str) -> set[str]:
    from ansible_collections.cpucompat.cluster.plugins.module_utils.cpu._features import X86_KVM_SOFT_FEATURES  # pylint: disable=import-outside-toplevel
    return set(X86_KVM_SOFT_FEATURES) if arch == "x86_64" and accel == "kvm" else set()


def test_fingerprint_is_stable_and_predictable() -> None:
    req = _probe.ProbeRequest(qemu_binary="qemu-system-s390x", accel="tcg")
    first = _probe.probe(req)
    assert _probe.current_fingerprint(req) == first["fingerprint"] == _probe.probe(req)["fingerprint"]
    assert _probe.current_fingerprint(_probe.ProbeRequest(qemu_binary="qemu-system-x86_64", accel="tcg")) != first["fingerprint"]


@pytest.mark.parametrize("binary, accel", [("qemu-system-s390x", "auto"), ("qemu-system-x86_64", "tcg"), (None, "auto")])
def test_standalone_fingerprint_script_agrees_with_the_module(binary, accel) -> None:
    """The script the cpu_probe action sends (python -c, standard library only) computes the module's fingerprint."""
    code = _fingerprint.script(inspect.getsource(_fingerprint), {"qemu_binary": binary, "accel": accel, "schema_version": _facts.SCHEMA_VERSION})
    request = _probe.ProbeRequest(qemu_binary=binary, accel=accel)
    # The fingerprint holds the machine type most of this machine's domains use: the comparison counts only while no
    # test of another process defines or removes one (the module's fingerprint is the same before and after).
    for _attempt in range(10):
        before = _probe.current_fingerprint(request)
        proc = subprocess.run([sys.executable, "-I", "-S", "-c", code], capture_output=True, text=True, check=True, cwd="/")
        if _probe.current_fingerprint(request) == before:
            break
    reply = json.loads(proc.stdout)
    assert reply == {"fingerprint": before}


def test_standalone_fingerprint_script_names_the_problem() -> None:
    code = _fingerprint.script(inspect.getsource(_fingerprint), {"qemu_binary": "/nonexistent/qemu", "accel": "auto", "schema_version": 1})
    reply = json.loads(subprocess.run([sys.executable, "-I", "-S", "-c", code], capture_output=True, text=True, check=True).stdout)
    assert reply["fingerprint"] is None and "'/nonexistent/qemu' not found" in reply["error"]


def test_fingerprint_changes_with_the_facts_schema() -> None:
    inputs = {"mode": "spawn", "binary": "/usr/bin/qemu-system-x86_64"}
    assert _fingerprint.digest(inputs, 1) != _fingerprint.digest(inputs, 2)
    assert _facts.fingerprint(inputs) == _fingerprint.digest(inputs, _facts.SCHEMA_VERSION)


# --- faults --------------------------------------------------------------------------

def _alive(pid: str, grace: float = 2.0) -> bool:
    """A process exists and is not a zombie awaiting its reaper, ``grace`` seconds after it was sent SIGKILL.

    SIGKILL is delivered asynchronously: on a loaded machine the victim may still be scheduled for a moment.
    """
    deadline = time.monotonic() + grace
    while True:
        try:
            with open(f"/proc/{pid}/stat", encoding="utf-8") as fh:
                if fh.read().rsplit(")", 1)[1].split()[0] == "Z":
                    return False
        except OSError:
            return False
        if time.monotonic() > deadline:
            return True
        time.sleep(0.02)


def _script(tmp_path, body: str) -> str:
    path = tmp_path / "qemu-system-x86_64"
    path.write_text("#!/bin/sh\n" + body + "\n")
    path.chmod(path.stat().st_mode | stat.S_IEXEC)
    return str(path)


def test_missing_binary(tmp_path) -> None:
    with pytest.raises(QemuStartError, match=r"QEMU binary '.*/nope' not found"):
        _probe.probe(_probe.ProbeRequest(qemu_binary=str(tmp_path / "nope")))


def test_kvm_for_a_foreign_architecture_is_refused() -> None:
    with pytest.raises(QemuStartError, match="accel=kvm requested, but .*qemu-system-s390x emulates s390x"):
        _probe.probe(_probe.ProbeRequest(qemu_binary="qemu-system-s390x", accel="kvm"))


@pytest.mark.skipif(_fingerprint.kvm_usable(), reason="KVM is usable here; the 'KVM unusable' message is tested where it is not")
def test_kvm_unusable() -> None:
    with pytest.raises(QemuStartError, match="/dev/kvm is missing or not accessible"):
        _probe.probe(_probe.ProbeRequest(accel="kvm"))


def test_qemu_exits_at_start_reports_its_stderr(tmp_path) -> None:
    binary = _script(tmp_path, 'echo "qemu: could not load PC BIOS" >&2; exit 1')
    with pytest.raises(QemuStartError, match="exited with status 1 before its QMP monitor connected: qemu: could not load PC BIOS"):
        _probe.probe(_probe.ProbeRequest(qemu_binary=binary, accel="tcg"))


def test_real_qemu_refusing_its_options(tmp_path) -> None:
    """A real QEMU that dies on start (an accelerator it does not have) is reported with QEMU's own words."""
    binary = _script(tmp_path, 'exec qemu-system-x86_64 -accel nosuchaccel "$@"')
    with pytest.raises(QemuStartError, match="exited with status 1 .*accel"):
        _probe.probe(_probe.ProbeRequest(qemu_binary=binary, accel="tcg"))


def test_hanging_qemu_is_killed_at_the_timeout(tmp_path) -> None:
    pids = tmp_path / "pids"
    binary = _script(tmp_path, f'sleep 600 & echo "$$ $!" > {pids}; wait')
    before = _probe_dirs()
    started = time.monotonic()
    with pytest.raises(QemuStartError, match="did not connect its QMP monitor within 0.5 s; it was killed"):
        _probe.probe(_probe.ProbeRequest(qemu_binary=binary, accel="tcg", timeout=0.5))
    assert time.monotonic() - started < 5
    alive = [pid for pid in pids.read_text().split() if _alive(pid)]
    assert not alive, f"processes of the hung QEMU survive: {alive}"
    assert _probe_dirs() == before


def test_qemu_that_connects_but_never_greets_is_killed(tmp_path) -> None:
    """A monitor that accepts the connection and then says nothing."""
    pidfile = tmp_path / "pid"
    binary = _script(tmp_path, f"""echo $$ > {pidfile}
exec python3 -c '
import socket, sys, time
path = [a for a in sys.argv if a.startswith("socket,")][0].split("path=")[1]
s = socket.socket(socket.AF_UNIX); s.connect(path); time.sleep(600)' "$@" """)
    with pytest.raises(QMPTimeout, match="no answer from .* within 1 s while waiting for the QMP greeting"):
        _probe.probe(_probe.ProbeRequest(qemu_binary=binary, accel="tcg", timeout=1))
    assert not _alive(pidfile.read_text().strip())


@pytest.mark.parametrize("fault, error, message", [
    ("hang", QMPTimeout, "within 0.5 s while waiting for the QMP greeting"),
    ("garbage", QMPProtocolError, "is not a QMP monitor or sent a malformed reply"),
    ("not-qmp", QMPProtocolError, "is not a QMP monitor: its first message has no 'QMP' member"),
    ("close", QMPProtocolError, "closed the connection while waiting for the reply to 'qmp_capabilities'"),
    ("truncate", QMPProtocolError, r"closed the connection while waiting for the reply to 'query-version' \(truncated message"),
])
def test_socket_faults(replay, fault: str, error: type, message: str) -> None:
    server = replay("x86_64-epyc-9654-qemu-10.0.0", fault=fault)
    with pytest.raises(error, match=message) as info:
        _probe.probe(_probe.ProbeRequest(qmp_socket=server.path, timeout=0.5))
    assert server.path in str(info.value)


def test_socket_that_does_not_exist(tmp_path) -> None:
    with pytest.raises(QMPProtocolError, match="cannot connect to QMP socket .*/none.sock"):
        _probe.probe(_probe.ProbeRequest(qmp_socket=str(tmp_path / "none.sock")))


def test_unknown_reply_id_is_a_protocol_error(replay) -> None:
    server = replay("x86_64-epyc-9654-qemu-10.0.0")
    client = QMPClient.connect(server.path, 2)
    client.handshake()
    client._next_id = 10**6  # pylint: disable=protected-access
    client._sock.sendall(b'{"execute": "query-kvm", "id": 7}\n')  # pylint: disable=protected-access
    with pytest.raises(QMPProtocolError, match="unknown command id 7"):
        client.execute("query-target")
    client.close()


def test_missing_host_expansion_is_reported(replay) -> None:
    """aarch64 QEMU 6.0 recording: the probe gets definitions but asks for an expansion key the recording lacks."""
    server = replay("aarch64-unidentified-nosve-qemu-8.2.0")
    server.replies.pop(Query.expansion("full", "host"))
    with pytest.raises(QMPError, match="expanded no host CPU model"):
        _probe.probe(_probe.ProbeRequest(qmp_socket=server.path, timeout=2))


def test_kvm_rejected_features_are_found_and_confirmed(tmp_path) -> None:
    """A QEMU whose KVM refuses two arch-capabilities bits, like a nested hypervisor's: both are named."""
    binary = _script(tmp_path, """case "$*" in
  *"-cpu host,-rdctl-no,-mds-no"*) exec python3 -c 'import socket,sys,json,time
p=[a for a in sys.argv if a.startswith("socket,")][0].split("path=")[1]
s=socket.socket(socket.AF_UNIX); s.connect(p); f=s.makefile("rw")
f.write(json.dumps({"QMP": {"version": {}, "capabilities": []}})+"\\n"); f.flush()
for line in f:
    m=json.loads(line); f.write(json.dumps({"return": [] if m["execute"]!="qmp_capabilities" else {}, "id": m.get("id")})+"\\n"); f.flush()' "$@";;
  *) echo "qemu-system-x86_64: error: failed to set MSR 0x10a to 0x21" >&2; exit 1;;
esac""")
    rejected, detail = _probe.kvm_rejected_features(binary, 5)
    assert rejected == ["rdctl-no", "mds-no"] and detail is None


def test_kvm_vcpu_failure_that_names_no_feature_is_reported(tmp_path) -> None:
    binary = _script(tmp_path, 'echo "qemu-system-x86_64: kvm_init_vcpu: kvm_arch_init_vcpu failed (-22)" >&2; exit 1')
    rejected, detail = _probe.kvm_rejected_features(binary, 5)
    assert rejected == []
    assert "does not start" in detail and "kvm_arch_init_vcpu failed" in detail


@KVM
def test_live_kvm_facts_leave_out_what_kvm_rejects() -> None:
    facts = _probe.probe(_probe.ProbeRequest(accel="kvm"))
    rejected = facts["host_cpu"]["kvm_rejected_features"]
    assert isinstance(rejected, list) and not set(rejected) & set(facts["features"])
    assert not set(rejected) & set(facts["non_migratable_features"]), "refused by KVM is not 'non-migratable'"
    assert facts["host_cpu"]["kvm_vcpu_check"] is None, facts["host_cpu"]["kvm_vcpu_check"]


# --- the host-side cache ----------------------------------------------------------------

def _without_timings(facts: dict) -> dict:
    return {k: v for k, v in facts.items() if k != "probe"}


def _count_qemus(monkeypatch) -> list[tuple[str, ...]]:
    """The extra arguments of every QEMU the probe starts from now on."""
    started: list[tuple[str, ...]] = []
    spawn = _probe.spawn_qemu

    def counting(*args, **kwargs):
        started.append(tuple(kwargs.get("extra_args", ())))
        return spawn(*args, **kwargs)

    monkeypatch.setattr(_probe, "spawn_qemu", counting)
    return started


CACHED = [
    pytest.param("qemu-system-x86_64", "kvm", marks=KVM, id="x86_64-kvm"),
    pytest.param("qemu-system-s390x", "tcg", id="s390x-tcg"),
]


@pytest.mark.parametrize("binary, accel", CACHED)
def test_a_cache_hit_gives_the_facts_of_a_cold_probe(tmp_path, monkeypatch, binary: str, accel: str) -> None:
    uncached = _probe.probe(_probe.ProbeRequest(qemu_binary=binary, accel=accel))
    req = _probe.ProbeRequest(qemu_binary=binary, accel=accel, cache_dir=str(tmp_path / "cache"))
    cold = _probe.probe(req)
    entries = os.listdir(tmp_path / "cache")
    assert len(entries) == 1 and entries[0].startswith("probe-") and entries[0].endswith(".json"), entries
    entry = json.loads((tmp_path / "cache" / entries[0]).read_text())
    assert entry["expansions"], "QEMU's model definitions are kept"
    started = _count_qemus(monkeypatch)
    warm = _probe.probe(req)
    assert _without_timings(warm) == _without_timings(cold) == _without_timings(uncached)
    if accel == "kvm":
        # One QEMU: it runs the vCPU of the host model (minus what KVM refuses) and answers the probe.
        rejected = warm["host_cpu"]["kvm_rejected_features"]
        assert sorted(entry["kvm_rejected"]) == rejected
        assert started == [("-cpu", "host" + "".join(f",-{f}" for f in entry["kvm_rejected"]))]
    else:
        assert started == [()]
    assert os.listdir(tmp_path / "cache") == entries, "a hit that learnt nothing writes nothing"


def test_the_cache_asks_only_for_models_it_does_not_know(tmp_path, monkeypatch) -> None:
    req = _probe.ProbeRequest(qemu_binary="qemu-system-s390x", accel="tcg", cache_dir=str(tmp_path))
    cold = _probe.probe(req)
    (path,) = tmp_path.iterdir()
    entry = json.loads(path.read_text())
    dropped = sorted(entry["expansions"])[0]
    del entry["expansions"][dropped]
    path.write_text(json.dumps(entry))
    asked: list[str] = []
    execute_many = QMPClient.execute_many

    def recording(self, commands):
        asked.extend(Query.from_request(c, a).encode() for c, a in commands)
        return execute_many(self, commands)

    monkeypatch.setattr(QMPClient, "execute_many", recording)
    warm = _probe.probe(req)
    assert _without_timings(warm) == _without_timings(cold)
    model_queries = [q for q in asked if q in entry["expansions"] or q == dropped]
    assert model_queries == [dropped]
    assert dropped in json.loads(path.read_text())["expansions"], "the answer is added to the entry"


@pytest.mark.parametrize("content", ["", "{not json", "[]", '{"key": {"format": 1, "binary": "/usr/bin/other"}, "expansions": {}}',
                                     "foreign"], ids=["empty", "truncated", "not-an-object", "other-key", "other-host"])
def test_a_corrupt_or_foreign_cache_entry_is_ignored_and_replaced(tmp_path, content: str) -> None:
    req = _probe.ProbeRequest(qemu_binary="qemu-system-s390x", accel="tcg", cache_dir=str(tmp_path))
    target = _probe.spawn_target(req)
    key = _cache.load(None, target.inputs).key
    path = _cache._path(str(tmp_path), key)  # pylint: disable=protected-access
    if content == "foreign":
        # A well-formed entry of another host (another kernel), at this host's place: poisoned definitions.
        other = {**key, "kernel": "0.0.0-other"}
        content = json.dumps({"key": other, "expansions": {"query-cpu-model-expansion:full:z14-base": {"model": {"name": "x"}}},
                              "kvm_rejected": ["vx"]})
    with open(path, "w", encoding="utf-8") as fh:
        fh.write(content)
    facts = _probe.probe(req)
    assert _without_timings(facts) == _without_timings(_probe.probe(_probe.ProbeRequest(qemu_binary="qemu-system-s390x", accel="tcg")))
    replaced = json.loads(open(path, encoding="utf-8").read())
    assert replaced["key"] == key and replaced["expansions"]
    assert [p.name for p in tmp_path.iterdir()] == [os.path.basename(path)], "no temporary file is left"


def test_a_cache_folder_that_cannot_be_written_costs_no_facts(tmp_path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    facts = _probe.probe(_probe.ProbeRequest(qemu_binary="qemu-system-s390x", accel="tcg", cache_dir=str(blocker / "cache")))
    assert facts["runnable_models"]


def test_the_default_cache_folder(monkeypatch) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", "/somewhere/cache")
    assert _cache.default_cache_dir() == "/somewhere/cache/cpucompat"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setattr(os, "geteuid", lambda: 0)
    assert _cache.default_cache_dir() == "/var/cache/cpucompat"
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    monkeypatch.setenv("HOME", "/home/op")
    assert _cache.default_cache_dir() == "/home/op/.cache/cpucompat"


@KVM
def test_a_cached_rejection_that_no_longer_starts_is_probed_cold(tmp_path, monkeypatch) -> None:
    """The cache says KVM refuses nothing, but a vCPU of the host model no longer starts: the probe is a cold one."""
    binary = _script(tmp_path, """case "$*" in
  *"-cpu host"*) echo "qemu-system-x86_64: error: failed to set MSR 0x10a to 0x21" >&2; exit 1;;
  *) exec qemu-system-x86_64 "$@";;
esac""")
    cache = str(tmp_path / "cache")
    req = _probe.ProbeRequest(qemu_binary=binary, accel="kvm", cache_dir=cache, machine="q35")
    target = _probe.spawn_target(req)
    entry = _cache.load(cache, target.inputs)
    entry.kvm_rejected, entry.changed = [], True
    _cache.save(cache, entry)
    started = _count_qemus(monkeypatch)
    facts = _probe.probe(req, target)
    assert started[0] == ("-cpu", "host"), "the cached rejection was tried first"
    assert () in started[1:], "then the probe's own QEMU and the check, as without a cache"
    assert "does not start" in facts["host_cpu"]["kvm_vcpu_check"]
    assert _cache.load(cache, target.inputs).kvm_rejected == [], "a failure that names no feature is not cached"


# --- the PC machine types without their optional onboard devices ----------------------

LEAN = [
    pytest.param("kvm", "q35", marks=KVM, id="kvm-q35"),
    pytest.param("kvm", "pc", marks=KVM, id="kvm-i440fx"),
    pytest.param("tcg", "q35", id="tcg-q35"),
]


@pytest.mark.parametrize("accel, machine", LEAN)
def test_the_onboard_devices_change_no_answer(accel: str, machine: str) -> None:
    """Every reply of the conversation is the same with and without SATA, SMBus, USB, VGA, HPET, vmport and PIT."""
    binary = _probe.find_binary("qemu-system-x86_64")
    sessions = []
    for lean in (False, True):
        with _probe._spawn_qemu(binary, accel, 10, machine, (), lean) as client:  # pylint: disable=protected-access
            sessions.append(_probe.converse(client).encode())
    assert sessions[0] == sessions[1]
    assert _probe._lean(machine)  # pylint: disable=protected-access


def test_a_qemu_without_the_lean_properties_is_started_with_its_devices(tmp_path) -> None:
    calls = tmp_path / "calls"
    binary = _script(tmp_path, f"""echo "$*" >> {calls}
case "$*" in
  *hpet=off*) echo "qemu-system-x86_64: Property 'pc-q35-5.1-machine.hpet' not found" >&2; exit 1;;
  *) exec qemu-system-x86_64 "$@";;
esac""")
    facts = _probe.probe(_probe.ProbeRequest(qemu_binary=binary, accel="tcg", machine="q35"))
    assert facts["machine"]["requested"] == "q35" and facts["runnable_models"]
    machines = [line.split("-machine ", 1)[1].split()[0] for line in calls.read_text().splitlines()]
    assert machines == [f"q35,{_probe._LEAN_PC},accel=tcg", "q35,accel=tcg"]  # pylint: disable=protected-access
    assert not _probe._lean("virt") and not _probe._lean("none") and not _probe._lean("pc-q35-7.2,x=y")  # pylint: disable=protected-access


def test_the_cache_keeps_libvirts_version_while_its_daemon_is_the_same_binary(tmp_path, monkeypatch) -> None:
    from ansible_collections.cpucompat.cluster.plugins.module_utils.probe import _hostinfo  # pylint: disable=import-outside-toplevel

    req = _probe.ProbeRequest(qemu_binary="qemu-system-s390x", accel="tcg", cache_dir=str(tmp_path))
    target = _probe.spawn_target(req)
    daemon = target.inputs["libvirt"]
    if not daemon["daemon"]:
        pytest.skip("no libvirt daemon here")
    cold = _probe.probe(req, target)
    asked: list[str] = []
    monkeypatch.setattr(_hostinfo, "libvirt_version", lambda *a: asked.append("asked") or "0.0.1")
    warm = _probe.probe(req, target)
    assert asked == [] and warm["versions"]["libvirt"] == cold["versions"]["libvirt"] == cold["libvirt"]["version"]
    assert _without_timings(warm) == _without_timings(cold)
    # another daemon binary (an upgrade): asked again
    entry = _cache.load(str(tmp_path), target.inputs)
    assert _cache.libvirt_version(entry, {**daemon, "daemon_stat": [0, 0, 0]}) is None
    assert _cache.libvirt_version(entry, daemon) == cold["versions"]["libvirt"]
