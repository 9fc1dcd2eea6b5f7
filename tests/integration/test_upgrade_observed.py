# Copyright (c) 2026 cpucompat.cluster contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The upgrade check observes the canary too: this machine with QEMU 10.0 and libvirt 11.3's map as the upgraded host,
its vCPU of the group's <cpu> against the words the contract records for the group (QEMU 7.2)."""

from __future__ import annotations

import json
import sys

import pytest
import yaml

from conftest import KVM
from integration.helpers import contract_file, run_playbook
from utils import stacks

pytestmark = [pytest.mark.usefixtures("no_leftover_qemu"), KVM]
LOCAL = {"ansible_connection": "local", "ansible_python_interpreter": sys.executable}
BACKPORTS = stacks.by_name("backports")


def _inventory(tmp_path, **canary_vars) -> str:
    inventory = {"hypervisors": {"hosts": {"this-machine": {**LOCAL, "cpucompat_probe_machine": "q35"}},
                                 "vars": {"cpucompat_deploy_enabled": False}},
                 "canaries": {"hosts": {"canary": {**LOCAL, "cpucompat_probe_machine": "q35", "cpucompat_probe_qemu_binary": BACKPORTS.qemu,
                                                   "cpucompat_cpu_map": BACKPORTS.cpu_map_dir,
                                                   "cpucompat_probe_libvirt_version": BACKPORTS.libvirt_version, **canary_vars}}}}
    path = tmp_path / "inventory.yml"
    path.write_text(yaml.safe_dump(inventory))
    return str(path)


def _run(tmp_path, playbook: str, inv: str, **extra):
    return run_playbook(playbook, tmp_path, inventory=inv, extra={"cpucompat_report_dir": str(tmp_path / "reports"), **extra})


def test_the_canary_observes_the_groups_words(tmp_path) -> None:
    inv = _inventory(tmp_path)
    assert _run(tmp_path, "cpucompat.cluster.site", inv).returncode == 0
    recorded = json.loads(contract_file(tmp_path).read_text())["observed"]
    assert len(recorded) == 1 and next(iter(recorded)).startswith("QEMU 7.2")

    proc = _run(tmp_path, "cpucompat.cluster.upgrade_check", inv, cpucompat_upgrade_canary="canary")
    assert proc.returncode == 0, proc.stdout[-4000:]
    group = json.loads((tmp_path / "reports" / "upgrade.json").read_text())["groups"]["hypervisors"]
    observed = group["observation"]
    assert not observed["refused"] and not observed["not_observed"]
    canary_stack = [k for k, v in observed["stacks"].items() if v["hosts"] == ["canary"]]
    assert len(canary_stack) == 1 and canary_stack[0].startswith("QEMU 10.0") and "pc-q35-10.0" in canary_stack[0]
    assert json.loads(contract_file(tmp_path).read_text())["observed"] == recorded, "the check writes no contract"


def test_a_canary_that_cannot_start_the_groups_guests_holds_the_upgrade(tmp_path) -> None:
    """The group's guests run pc-i440fx-2.0; QEMU 10.0 no longer has it: the canary's observation fails, the check too."""
    inv = _inventory(tmp_path, cpucompat_observe_machine="pc-i440fx-2.0")
    assert _run(tmp_path, "cpucompat.cluster.site", inv).returncode == 0
    proc = _run(tmp_path, "cpucompat.cluster.upgrade_check", inv, cpucompat_upgrade_canary="canary")
    assert proc.returncode != 0
    report = json.loads((tmp_path / "reports" / "upgrade.json").read_text())
    refused = report["groups"]["hypervisors"]["observation"]["refused"]
    assert [r["host"] for r in refused] == ["canary"] and "pc-i440fx-2.0" in refused[0]["failed"]
    assert any(r.startswith("canary does not start the contract CPU of group hypervisors") for r in report["verdict"]["reasons"])
