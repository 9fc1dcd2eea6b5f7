# Copyright (c) 2026 cpucompat.cluster contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""cpucompat.cluster.cpu_probe through ansible-playbook: real QEMU, replayed recordings, faults."""

from __future__ import annotations

import json
import sys

import pytest

from conftest import KVM
from integration.helpers import run_playbook
from utils.recordings import build, load, names, primary_key, served_replies

pytestmark = pytest.mark.usefixtures("no_leftover_qemu")

PROBE_AND_DUMP = """
- hosts: localhost
  gather_facts: false
  tasks:
    - name: probe
      cpucompat.cluster.cpu_probe: {args}
      register: result
    - name: dump
      check_mode: false
      ansible.builtin.copy:
        content: "{{{{ {{'result': result, 'facts': ansible_facts['cpucompat'] | default(none)}} | to_json }}}}"
        dest: "{out}"
"""


def _probe(tmp_path, args: dict, check: bool = False):
    out = tmp_path / "out.json"
    proc = run_playbook(PROBE_AND_DUMP.format(args=json.dumps(args), out=out), tmp_path, check=check)
    return proc, (json.loads(out.read_text()) if out.exists() else None)


@pytest.mark.parametrize("binary, accel, arch", [
    pytest.param("qemu-system-x86_64", "kvm", "x86_64", marks=KVM, id="x86_64-kvm"),
    pytest.param("qemu-system-x86_64", "tcg", "x86_64", id="x86_64-tcg"),
    pytest.param("qemu-system-s390x", "auto", "s390x", id="s390x-tcg"),
    pytest.param("qemu-system-aarch64", "auto", "aarch64", id="aarch64-tcg"),
])
def test_live_probe_through_ansible(tmp_path, binary: str, accel: str, arch: str) -> None:
    proc, out = _probe(tmp_path, {"qemu_binary": binary, "accel": accel}, check=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    result, facts = out["result"], out["facts"]
    assert result["changed"] is False and result["probed"] is True
    assert facts["arch"] == arch and facts["fingerprint"] == result["fingerprint"]
    assert facts["accel"] == ("kvm" if accel == "kvm" else "tcg")
    assert len(json.dumps(facts)) < 64 * 1024
    runnable = facts["runnable_models"]
    if arch != "aarch64":
        assert runnable
        for model in runnable:
            needs = set(facts["model_features"].get(model) or [])
            assert needs - set(facts["features"]) <= {"svm", "monitor", "acpi", "topoext"}, model


def test_cached_fingerprint_skips_qemu(tmp_path) -> None:
    _proc, first = _probe(tmp_path, {"qemu_binary": "qemu-system-s390x"})
    proc, second = _probe(tmp_path, {"qemu_binary": "qemu-system-s390x", "cached_fingerprint": first["result"]["fingerprint"]})
    assert proc.returncode == 0, proc.stdout
    assert second["result"]["probed"] is False
    assert second["result"]["fingerprint"] == first["result"]["fingerprint"]
    _proc, third = _probe(tmp_path, {"qemu_binary": "qemu-system-s390x", "cached_fingerprint": "sha256:stale"})
    assert third["result"]["probed"] is True


def test_quick_fingerprint_check_sends_no_module(tmp_path) -> None:
    """A matching cached fingerprint is confirmed by the action plugin's small script: no AnsiballZ module is sent."""
    _proc, first = _probe(tmp_path, {"qemu_binary": "qemu-system-s390x"})
    cached = first["result"]["fingerprint"]
    out = tmp_path / "out.json"
    play = PROBE_AND_DUMP.format(args=json.dumps({"qemu_binary": "qemu-system-s390x", "cached_fingerprint": cached}), out=out)
    proc = run_playbook(play, tmp_path, env={"ANSIBLE_VERBOSITY": "3"})
    assert proc.returncode == 0, proc.stdout[-3000:]
    assert json.loads(out.read_text())["result"]["probed"] is False
    assert "AnsiballZ_cpu_probe" not in proc.stdout, "the module was sent although the cached fingerprint matched"
    # a stale fingerprint: the module runs and probes
    play = PROBE_AND_DUMP.format(args=json.dumps({"qemu_binary": "qemu-system-s390x", "cached_fingerprint": "sha256:stale"}), out=out)
    proc = run_playbook(play, tmp_path, env={"ANSIBLE_VERBOSITY": "3"})
    assert proc.returncode == 0 and "AnsiballZ_cpu_probe" in proc.stdout
    assert json.loads(out.read_text())["result"]["probed"] is True


def test_quick_check_waits_for_interpreter_discovery(tmp_path) -> None:
    """With interpreter discovery, the first run goes through the module (which discovers); later runs use the quick path."""
    _proc, first = _probe(tmp_path, {"qemu_binary": "qemu-system-s390x"})
    cached = first["result"]["fingerprint"]
    out = tmp_path / "out.json"
    play = PROBE_AND_DUMP.format(args=json.dumps({"qemu_binary": "qemu-system-s390x", "cached_fingerprint": cached}), out=out)
    # discovery among one candidate: this machine's other Pythons may lack the modules' requirements
    auto = {"ansible_python_interpreter": "auto_silent", "ansible_interpreter_python_fallback": [sys.executable]}
    sent = []
    for _run in range(2):
        proc = run_playbook(play, tmp_path, extra=auto, env={"ANSIBLE_VERBOSITY": "3"})
        assert proc.returncode == 0, proc.stdout[-3000:]
        assert json.loads(out.read_text())["result"]["probed"] is False
        sent.append("AnsiballZ_cpu_probe" in proc.stdout)
    assert sent == [True, False]


def test_every_recording_through_the_module(tmp_path, replay) -> None:
    """qmp_socket mode, one playbook run looping over every recording served on its own socket."""
    servers = {name: replay(name) for name in names()}
    out = tmp_path / "all.json"
    play = f"""
- hosts: localhost
  gather_facts: false
  tasks:
    - name: probe every replayed host
      cpucompat.cluster.cpu_probe:
        qmp_socket: "{{{{ item.value }}}}"
        timeout: 5
      loop: "{{{{ sockets | dict2items }}}}"
      register: probes
    - name: dump
      ansible.builtin.copy:
        content: "{{{{ probes.results | map(attribute='ansible_facts') | list | to_json }}}}"
        dest: "{out}"
"""
    proc = run_playbook(play, tmp_path, extra={"sockets": {n: s.path for n, s in servers.items()}})
    assert proc.returncode == 0, proc.stdout[-3000:]
    results = json.loads(out.read_text())
    assert len(results) == len(servers)
    for name, got in zip(sorted(servers), results):
        rec = load(name)
        replies, errors = served_replies(rec)
        want = build(replies, errors, primary_key(rec), name)
        facts = got["cpucompat"]
        assert facts["features"] == want["features"], name
        assert facts["models"] == want["models"] and facts["model_blockers"] == want["model_blockers"], name
        assert facts["probe"]["socket"] == servers[name].path


@pytest.mark.parametrize("args, message", [
    ({"qemu_binary": "/nonexistent/qemu-system-x86_64"}, "CPU probe failed: QEMU binary '/nonexistent/qemu-system-x86_64' not found"),
    ({"qemu_binary": "qemu-system-s390x", "accel": "kvm"}, "accel=kvm requested, but .*emulates s390x"),
    ({"qmp_socket": "/nonexistent.sock"}, "cannot connect to QMP socket /nonexistent.sock"),
    ({"timeout": -1}, "timeout must be positive"),
], ids=["no-binary", "kvm-foreign", "no-socket", "bad-timeout"])
def test_failures_are_clear(tmp_path, args: dict, message: str) -> None:
    proc, _out = _probe(tmp_path, args)
    assert proc.returncode == 2
    assert "Traceback" not in proc.stdout
    import re  # pylint: disable=import-outside-toplevel
    assert re.search(message, proc.stdout), proc.stdout[-2000:]
