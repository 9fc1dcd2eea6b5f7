# Copyright (c) 2026 cpucompat.cluster contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The cpu_probe module's early start: the request it starts QEMU with before AnsibleModule is the one AnsibleModule
validates, or nothing starts early."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from ansible.module_utils import basic

from ansible_collections.cpucompat.cluster.plugins.modules import cpu_probe
from utils.source_tree import SOURCE_COLLECTIONS


def _validated(monkeypatch, args: dict) -> dict:
    monkeypatch.setattr(basic, "_ANSIBLE_ARGS", json.dumps({"ANSIBLE_MODULE_ARGS": args}).encode())
    monkeypatch.setattr(basic, "_ANSIBLE_PROFILE", "legacy")
    return basic.AnsibleModule(argument_spec=cpu_probe.CPU_PROBE_ARGS, supports_check_mode=True).params


def _given(monkeypatch, tmp_path, args: dict) -> dict | None:
    path = tmp_path / "args.json"
    path.write_text(json.dumps({"ANSIBLE_MODULE_ARGS": args}))
    monkeypatch.setattr(sys, "argv", ["cpu_probe", str(path)])
    monkeypatch.delitem(sys.modules, "ansible.module_utils.basic")
    return cpu_probe._given_params()  # pylint: disable=protected-access


@pytest.mark.parametrize("args", [
    {},
    {"qemu_binary": "qemu-system-s390x", "accel": "tcg", "machine": "q35", "timeout": 3},
    {"cache_dir": "/var/tmp/probe-cache", "cpu_map": "/usr/share/libvirt/cpu_map", "expand_models": False, "force": True, "max_age": 60,
     "cached_fingerprint": "sha256:x", "reuse_cached": True, "libvirt_version": "9.0.0", "_ansible_check_mode": True},
    {"cache_dir": ""},
], ids=["defaults", "options", "paths-and-flags", "cache-off"])
def test_the_early_request_is_the_validated_one(monkeypatch, tmp_path, args: dict) -> None:
    given = _given(monkeypatch, tmp_path, args)
    assert given is not None
    validated = _validated(monkeypatch, args)
    assert cpu_probe._request(given) == cpu_probe._request(validated)  # pylint: disable=protected-access


@pytest.mark.parametrize("args", [
    {"accel": "xen"}, {"timeout": "3"}, {"force": "yes"}, {"machine": 35}, {"no_such_option": 1}, {"max_age": 1.5},
    {"cache_dir": "~/probe-cache"}, {"cpu_map": "$HOME/map"},
], ids=["bad-choice", "string-number", "string-bool", "number-string", "unknown-option", "float-int", "home-path", "env-path"])
def test_anything_ansible_would_convert_or_refuse_starts_nothing_early(monkeypatch, tmp_path, args: dict) -> None:
    assert _given(monkeypatch, tmp_path, args) is None


def test_a_direct_run_prints_the_facts_and_keeps_its_cache(tmp_path) -> None:
    """``python -m ...cpu_probe <args file>``, as the benchmark times it: a cold and a warm run, the same facts."""
    args = tmp_path / "args.json"
    args.write_text(json.dumps({"ANSIBLE_MODULE_ARGS": {"qemu_binary": "qemu-system-s390x", "accel": "tcg",
                                                        "cache_dir": str(tmp_path / "cache")}}))
    env = {**os.environ, "PYTHONPATH": SOURCE_COLLECTIONS}
    runs = []
    for _run in range(2):
        done = subprocess.run([sys.executable, "-m", "ansible_collections.cpucompat.cluster.plugins.modules.cpu_probe", str(args)],
                              capture_output=True, text=True, env=env, cwd=tmp_path, check=False, timeout=120)
        assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
        runs.append(json.loads(done.stdout))
    assert all(r["probed"] is True for r in runs)
    cold, warm = ({k: v for k, v in r["ansible_facts"]["cpucompat"].items() if k != "probe"} for r in runs)
    assert cold == warm and cold["runnable_models"]
    assert len(os.listdir(tmp_path / "cache")) == 1


def test_a_direct_run_that_fails_names_the_problem(tmp_path) -> None:
    args = tmp_path / "args.json"
    args.write_text(json.dumps({"ANSIBLE_MODULE_ARGS": {"qemu_binary": "/nonexistent/qemu-system-x86_64", "cache_dir": ""}}))
    done = subprocess.run([sys.executable, "-m", "ansible_collections.cpucompat.cluster.plugins.modules.cpu_probe", str(args)],
                          capture_output=True, text=True, env={**os.environ, "PYTHONPATH": SOURCE_COLLECTIONS}, cwd=tmp_path,
                          check=False, timeout=120)
    result = json.loads(done.stdout)
    assert done.returncode == 1 and result["failed"] is True
    assert "CPU probe failed: QEMU binary '/nonexistent/qemu-system-x86_64' not found" in result["msg"]
