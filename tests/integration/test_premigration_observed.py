# Copyright (c) 2026 cpucompat.cluster contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The pre-migration gate judges a move by observation too: the domain's CPU observed on its source (QEMU 7.2) against
the same CPU observed on the target (this machine with QEMU 10.0 and libvirt 11.3's map), with real domains."""

from __future__ import annotations

import json
import sys
import uuid

import pytest
import yaml

from ansible_collections.cpucompat.cluster.plugins.module_utils.engine import _baseline
from ansible_collections.cpucompat.cluster.plugins.module_utils.probe import _probe
from ansible_collections.cpucompat.cluster.plugins.module_utils.render import _libvirt
from conftest import KVM
from integration.helpers import run_playbook
from integration.libvirt_helpers import domain_xml, ensure_libvirtd, remove, virsh
from utils import stacks

pytestmark = [pytest.mark.usefixtures("no_leftover_qemu"), KVM]
LOCAL = {"ansible_connection": "local", "ansible_python_interpreter": sys.executable}
BACKPORTS = stacks.by_name("backports")


@pytest.fixture
def domains(tmp_path):
    """One domain on a machine type both QEMUs have, one on pc-i440fx-2.0, which QEMU 10.0 no longer has."""
    ensure_libvirtd()
    me = _probe.probe(_probe.ProbeRequest(machine="pc-i440fx-7.2"))
    cpu = _libvirt.render(_baseline.baseline_of({"me": me}).guest).xml
    names = {}
    for key, machine in (("current", "pc-i440fx-7.2"), ("old", "pc-i440fx-2.0")):
        name = f"cpucompat-obsmig-{key}-{uuid.uuid4().hex[:6]}"
        path = tmp_path / f"{name}.xml"
        path.write_text(domain_xml(name, cpu).replace("machine='pc'", f"machine='{machine}'"))
        virsh("define", str(path), check=True)
        names[key] = name
    yield names
    for name in names.values():
        remove(name)


def test_the_gate_compares_the_source_and_target_observations(tmp_path, domains) -> None:
    inv = tmp_path / "inv.yml"
    inv.write_text(yaml.safe_dump({"hypervisors": {"hosts": {
        "this-machine": {**LOCAL, "cpucompat_probe_machine": "pc-i440fx-7.2"},
        "me-10.0": {**LOCAL, "cpucompat_probe_machine": "pc-i440fx-7.2", "cpucompat_probe_qemu_binary": BACKPORTS.qemu,
                    "cpucompat_cpu_map": BACKPORTS.cpu_map_dir, "cpucompat_probe_libvirt_version": BACKPORTS.libvirt_version}}}}))
    reports = tmp_path / "reports"

    def gate(moves: str):
        return run_playbook("cpucompat.cluster.premigration_check", tmp_path, inventory=str(inv),
                            extra={"cpucompat_migrate": moves, "cpucompat_report_dir": str(reports)})

    ok = gate(f"this-machine/{domains['current']}:me-10.0")
    assert ok.returncode == 0, ok.stdout[-4000:]
    report = json.loads((reports / "migration.json").read_text())
    move = report["observed"][f"this-machine/{domains['current']} -> me-10.0"]
    assert move["ok"] is True and move["observed"] is True and not move["words"]
    assert move["source_stack"].startswith("QEMU 7.2") and move["target_stack"].startswith("QEMU 10.0")
    assert "pc-i440fx-7.2" in move["target_stack"], "the target starts it under the machine type the source runs"
    assert report["stacks"]["me-10.0"]["qemu"].startswith("10.0") and report["stacks"]["this-machine"]["kernel"]

    # The definitions admit the move (same CPU, this machine's features); the target's QEMU cannot start its machine.
    blocked = gate(f"this-machine/{domains['old']}:me-10.0")
    assert blocked.returncode != 0
    report = json.loads((reports / "migration.json").read_text())
    assert report["matrix"][f"this-machine/{domains['old']}"]["me-10.0"]["ok"] is True
    move = report["observed"][f"this-machine/{domains['old']} -> me-10.0"]
    assert move["ok"] is False and "pc-i440fx-2.0" in move["why"]
    assert f"this-machine/{domains['old']} -> me-10.0:" in " ".join(blocked.stdout.split())
