# Copyright (c) 2026 cpucompat.cluster contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""An aarch64 group of identical hosts end to end: the site playbook over recorded arm64 hosts (QEMU's side served over
QMP, the host's /sys and /proc from recorded trees through ``cpucompat_probe_host_root``) pins host-passthrough over the
group's identity, deploys it to a real aarch64 domain on this machine's libvirt (defined, TCG; it cannot start
host-passthrough here), stays idempotent, reports compliance; hosts that are not identical are refused naming the
fields that differ, or quarantined; the pre-migration gate allows a move only to a host of the same identity."""

from __future__ import annotations

import json
import os
import sys
import uuid

import pytest
import yaml

from integration.helpers import ROOT, contract_file, run_playbook, settled
from integration.libvirt_helpers import domain_xml, ensure_libvirtd, remove, virsh
from ansible_collections.cpucompat.cluster.plugins.module_utils.probe import _probe
from utils.arm_hosts import recording, tree
from utils.qmp_replay import ReplayServer

pytestmark = pytest.mark.usefixtures("no_leftover_qemu")
GROUP = ["neoverse-n1-altra-a", "neoverse-n1-altra-b"]
OTHERS = ["thunderx2", "neoverse-n1-altra-kernel-6.16"]
SITE = os.path.join(ROOT, "playbooks", "site.yml")


@pytest.fixture
def serve(tmp_path):
    servers: dict[str, ReplayServer] = {}

    def path(name: str) -> str:
        if name not in servers:
            servers[name] = ReplayServer(recording(name), str(tmp_path / f"{len(servers)}.sock")).start()
        return servers[name].path

    yield path
    for server in servers.values():
        server.stop()


@pytest.fixture
def arm_domain(tmp_path):
    ensure_libvirtd()
    name = f"cpucompat-test-aarch64-{uuid.uuid4().hex[:8]}"
    path = tmp_path / f"{name}.xml"
    path.write_text(domain_xml(name, "", arch="aarch64", machine="virt", emulator=_probe.find_binary("qemu-system-aarch64"),
                               virttype="qemu"))
    virsh("define", str(path), check=True)
    yield name
    remove(name)


def _inventory(tmp_path, serve, members: list[str], domain: str, **extra) -> str:
    hosts = {}
    for i, name in enumerate(members):
        host = {"ansible_connection": "local", "ansible_python_interpreter": sys.executable,
                "cpucompat_probe_qmp_socket": serve(name), "cpucompat_probe_host_root": tree(name)}
        if i == 0:  # the one host whose (this machine's) libvirt holds the group's domain
            host["cpucompat_domains"] = {"names": [domain]}
        else:
            host.update(extra or {"cpucompat_deploy_enabled": False})
        hosts[f"a-{name}"] = host
    path = tmp_path / f"inventory-{len(members)}.yml"
    path.write_text(yaml.safe_dump({"hypervisors": {"hosts": hosts}}))
    return str(path)


def _site(tmp_path, inv: str, **extra):
    return run_playbook(open(SITE, encoding="utf-8").read(), tmp_path, inventory=inv, diff=True,
                        extra={"cpucompat_report_dir": str(tmp_path / "reports"), **extra})


def _cpu(domain: str) -> str:
    xml = virsh("dumpxml", "--inactive", domain, check=True).stdout
    start = xml.index("<cpu ")
    return xml[start:xml.index(">", start) + 1]


def test_an_aarch64_group_of_identical_hosts_end_to_end(tmp_path, serve, arm_domain: str) -> None:
    inv = _inventory(tmp_path, serve, GROUP, arm_domain)
    proc = _site(tmp_path, inv)
    assert proc.returncode == 0, proc.stdout[-5000:]
    level = json.loads(contract_file(tmp_path).read_text())["cpu"]
    assert level["arch"] == "aarch64" and level["model"] is None and level["identity"]["midr"] == ["0x413fd0c1"], level
    assert _cpu(arm_domain) == "<cpu mode='host-passthrough' check='none'/>"
    report, group = settled(_site(tmp_path, inv), tmp_path, f"a-{GROUP[0]}", arm_domain)
    assert report["verdict"]["admission"] == {"admitted": 2, "refused": []} and group["qemu_args"] == "host"

    # Hosts that are not identical: refused, naming what differs; nothing deployed. Then quarantined on request.
    inv = _inventory(tmp_path, serve, [*GROUP, *OTHERS], arm_domain)
    proc = _site(tmp_path, inv)
    assert proc.returncode != 0
    assert "a-thunderx2 is not identical to the hosts of group hypervisors" in proc.stdout
    assert "MIDR part [0x431f0af1] instead of [0x413fd0c1]" in proc.stdout
    assert "a-neoverse-n1-altra-kernel-6.16 is not identical" in proc.stdout and "cpreg_vmstate_array_len" in proc.stdout
    proc = _site(tmp_path, inv, cpucompat_contract_on_refusal="exclude")
    assert proc.returncode == 0, proc.stdout[-5000:]
    group = json.loads((tmp_path / "reports" / "contract.json").read_text())["groups"]["hypervisors"]
    assert sorted(group["quarantined"]) == sorted(f"a-{n}" for n in OTHERS)
    assert _cpu(arm_domain) == "<cpu mode='host-passthrough' check='none'/>"


def test_the_aarch64_premigration_gate(tmp_path, serve, arm_domain: str) -> None:
    """A move to an identical host passes; a move to a ThunderX2 fails naming the MIDR part."""
    proc = _site(tmp_path, _inventory(tmp_path, serve, GROUP[:1], arm_domain))
    assert proc.returncode == 0, proc.stdout[-5000:]
    inv = _inventory(tmp_path, serve, [GROUP[0], GROUP[1], "thunderx2"], arm_domain, cpucompat_migration_libvirt=False)
    reports = tmp_path / "premigration"
    source = f"a-{GROUP[0]}/{arm_domain}"
    ok = run_playbook("cpucompat.cluster.premigration_check", tmp_path, inventory=inv,
                      extra={"cpucompat_migrate": f"{arm_domain}:a-{GROUP[1]}", "cpucompat_report_dir": str(reports)})
    assert ok.returncode == 0, ok.stdout[-5000:]
    assert json.loads((reports / "migration.json").read_text())["matrix"][source][f"a-{GROUP[1]}"]["ok"] is True
    bad = run_playbook("cpucompat.cluster.premigration_check", tmp_path, inventory=inv,
                       extra={"cpucompat_migrate": f"{arm_domain}:a-thunderx2", "cpucompat_report_dir": str(reports)})
    assert bad.returncode != 0
    cell = json.loads((reports / "migration.json").read_text())["matrix"][source]["a-thunderx2"]
    assert cell["ok"] is False and cell["blocking"][0] == "MIDR part"
