# Copyright (c) 2026 cpucompat.cluster contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""playbooks/premigration_check.yml: real domains on this machine, a replayed target, libvirt's second opinion."""

from __future__ import annotations

import json
import os
import sys

import pytest
import yaml

from ansible_collections.cpucompat.cluster.plugins.module_utils.engine import _baseline
from ansible_collections.cpucompat.cluster.plugins.module_utils.probe import _fingerprint, _probe
from ansible_collections.cpucompat.cluster.plugins.module_utils.render import _libvirt
from integration.helpers import ROOT, run_playbook
from integration.libvirt_helpers import define, ensure_libvirtd, remove
from utils.recordings import facts_of

pytestmark = [pytest.mark.usefixtures("no_leftover_qemu"),
              pytest.mark.skipif(not _fingerprint.kvm_usable(), reason="recorded targets are KVM probes; this machine needs KVM")]
AMD = "AuthenticAMD" in open("/proc/cpuinfo", encoding="utf-8").read()
TARGET = "x86_64-epyc-7601-ibpb" if AMD else "x86_64-xeon-e5-2650-v4"
PLAYBOOK = open(os.path.join(ROOT, "playbooks", "premigration_check.yml"), encoding="utf-8").read()


@pytest.fixture
def domains(tmp_path):
    ensure_libvirtd()
    me = _probe.probe(_probe.ProbeRequest(machine="q35"))
    portable = _libvirt.render(_baseline.baseline_of({"me": me, "target": facts_of(TARGET)}).guest).xml
    local_only = _libvirt.render(_baseline.baseline_of({"me": me}).guest).xml
    names = {"portable": define(tmp_path, cpu=portable, prefix="cpucompat-mig-portable"),
             "local_only": define(tmp_path, cpu=local_only, prefix="cpucompat-mig-local")}
    yield names
    for name in names.values():
        remove(name)


def test_matrix_agrees_with_libvirt_and_names_blocking_features(tmp_path, replay, domains) -> None:
    local = {"ansible_connection": "local", "ansible_python_interpreter": sys.executable}
    inv = {"hypervisors": {"hosts": {"this-machine": {**local, "cpucompat_domains": {"names": list(domains.values())}},
                                     "target": {**local, "cpucompat_probe_qmp_socket": replay(TARGET).path,
                                                "cpucompat_migration_libvirt": False}}}}
    (tmp_path / "inv.yml").write_text(yaml.safe_dump(inv))
    reports = tmp_path / "reports"
    requested = [{"domain": f"this-machine/{domains['portable']}", "target": "target"}]
    proc = run_playbook(PLAYBOOK, tmp_path, inventory=str(tmp_path / "inv.yml"),
                        extra={"cpucompat_migration_requested": requested, "cpucompat_report_dir": str(reports)})
    assert proc.returncode == 0, proc.stdout[-4000:]
    report = json.loads((reports / "migration.json").read_text())
    portable = report["matrix"][f"this-machine/{domains['portable']}"]
    local_only = report["matrix"][f"this-machine/{domains['local_only']}"]
    assert portable["target"]["ok"] is True and portable["this-machine"]["own_host"] is True
    assert local_only["this-machine"]["own_host"] is True
    assert local_only["target"]["ok"] is False and local_only["target"]["blocking"]
    # libvirt on this machine was asked, and agrees with us for both domains
    assert portable["this-machine"]["libvirt"] in ("identical", "superset")
    assert local_only["this-machine"]["libvirt"] in ("identical", "superset")
    assert report["disagreements"] == []
    assert "| domain | CPU | contract | target | this-machine |" in (reports / "migration.md").read_text()

    requested = [{"domain": f"this-machine/{domains['local_only']}", "target": "target"}]
    proc = run_playbook(PLAYBOOK, tmp_path, inventory=str(tmp_path / "inv.yml"),
                        extra={"cpucompat_migration_requested": requested, "cpucompat_report_dir": str(reports)})
    assert proc.returncode != 0
    assert f"this-machine/{domains['local_only']} -> target: target lacks" in proc.stdout


def test_the_one_line_gate(tmp_path, replay, domains) -> None:
    """-e cpucompat_migrate=domain:target finds the domain's host, asks only the target, fails naming what blocks."""
    local = {"ansible_connection": "local", "ansible_python_interpreter": sys.executable}
    inv = tmp_path / "inv.yml"
    inv.write_text(yaml.safe_dump({"hypervisors": {"hosts": {
        "this-machine": local, "target": {**local, "cpucompat_probe_qmp_socket": replay(TARGET).path,
                                          "cpucompat_migration_libvirt": False}}}}))
    reports = tmp_path / "reports"

    def gate(moves: str):
        return run_playbook(PLAYBOOK, tmp_path, inventory=str(inv), extra={"cpucompat_migrate": moves, "cpucompat_report_dir": str(reports)})

    ok = gate(f"{domains['portable']}:target")
    assert ok.returncode == 0, ok.stdout[-4000:]
    report = json.loads((reports / "migration.json").read_text())
    assert report["requested"] == [{"domain": f"this-machine/{domains['portable']}", "target": "target"}]
    assert list(report["matrix"]) == [f"this-machine/{domains['portable']}"], "only the domain it moves"
    blocked = gate(f"this-machine/{domains['local_only']}:target,{domains['portable']}:target")
    probing = blocked.stdout.split("PLAY [Check the migrations]")[0].split("PLAY [Probe the sources")[1]
    assert "ok: [target]" in probing and "ok: [this-machine]" not in probing, "with the source's facts cached, only the target is probed"
    text = " ".join(blocked.stdout.split())
    assert blocked.returncode != 0 and f"this-machine/{domains['local_only']} -> target: target lacks" in text, text[-3000:]
    assert f"{domains['portable']} -> target" not in text.rsplit("Requested migrations not possible", maxsplit=1)[-1]

    missing = gate("no-such-domain:target")
    assert missing.returncode != 0 and "no-such-domain -> target: no domain no-such-domain on the source hosts" in missing.stdout
    unknown = gate(f"{domains['portable']}:nowhere")
    assert unknown.returncode != 0 and "neither a host nor a group of the inventory: nowhere" in unknown.stdout
    malformed = gate("web1")
    assert malformed.returncode != 0 and "'web1' is not domain:target or host/domain:target" in malformed.stdout
