# Copyright (c) 2026 cpucompat.cluster contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""An s390x group end to end: the site playbook over recorded IBM Z hosts (served over QMP by the replay server) pins
the group's contract, deploys its ``<cpu>`` to a real s390x domain on this machine's libvirt (TCG), stays idempotent,
reports compliance, and refuses a host that cannot run the contract, naming it."""

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

pytestmark = pytest.mark.usefixtures("no_leftover_qemu")
GROUP = ["s390x-z14.2-qemu-4.0.0", "s390x-gen15a-qemu-8.2.0"]
OLDER = "s390x-z14-qemu-3.0.0"  # cannot run the z14.2 group's contract
SITE = os.path.join(ROOT, "playbooks", "site.yml")


def _inventory(tmp_path, replay, members: list[str], domain: str) -> str:
    hosts: dict = {}
    for i, name in enumerate(members):
        host = {"ansible_connection": "local", "ansible_python_interpreter": sys.executable,
                "cpucompat_probe_qmp_socket": replay(name).path}
        if i == 0:  # the one host whose (this machine's) libvirt holds the group's domain
            host["cpucompat_domains"] = {"names": [domain]}
        else:
            host["cpucompat_deploy_enabled"] = False
        hosts[f"z-{name}"] = host
    path = tmp_path / "inventory.yml"
    path.write_text(yaml.safe_dump({"hypervisors": {"hosts": hosts}}))
    return str(path)


def _site(tmp_path, inv: str, check: bool = False):
    return run_playbook(open(SITE, encoding="utf-8").read(), tmp_path, inventory=inv, check=check, diff=True,
                        extra={"cpucompat_report_dir": str(tmp_path / "reports")})


@pytest.fixture
def s390x_domain(tmp_path):
    ensure_libvirtd()
    name = f"cpucompat-test-s390x-{uuid.uuid4().hex[:8]}"
    path = tmp_path / f"{name}.xml"
    path.write_text(domain_xml(name, "<cpu mode='custom' match='exact' check='none'><model fallback='forbid'>z900-base</model></cpu>",
                               arch="s390x", machine="s390-ccw-virtio", emulator=_probe.find_binary("qemu-system-s390x"),
                               virttype="qemu"))
    virsh("define", str(path), check=True)
    yield name
    remove(name)


def _cpu(domain: str) -> str:
    xml = virsh("dumpxml", "--inactive", domain, check=True).stdout
    return xml[xml.index("<cpu"):xml.index("</cpu>") + len("</cpu>")]


def test_an_s390x_group_is_pinned_deployed_and_compliant(tmp_path, replay, s390x_domain: str) -> None:
    inv = _inventory(tmp_path, replay, GROUP, s390x_domain)
    before = _cpu(s390x_domain)
    proc = _site(tmp_path, inv, check=True)
    assert proc.returncode == 0, proc.stdout[-5000:]
    assert _cpu(s390x_domain) == before, "check mode changed the domain"

    proc = _site(tmp_path, inv)
    assert proc.returncode == 0, proc.stdout[-5000:]
    contract = json.loads(contract_file(tmp_path).read_text())
    level = contract["cpu"]
    assert level["arch"] == "s390x" and level["model"] == "z14.2-base", level
    cpu = _cpu(s390x_domain)
    assert "<model fallback='forbid'>z14.2-base</model>" in cpu and "check='full'" in cpu and "maxphysaddr" not in cpu

    report, group = settled(_site(tmp_path, inv), tmp_path, f"z-{GROUP[0]}", s390x_domain)
    assert report["verdict"]["ok"] is True and report["verdict"]["admission"] == {"admitted": 2, "refused": []}
    assert group["qemu_args"].startswith("z14.2-base,") and "enforce" not in group["qemu_args"]


def test_an_s390x_host_that_cannot_run_the_contract_is_refused_naming_it(tmp_path, replay, s390x_domain: str) -> None:
    proc = _site(tmp_path, _inventory(tmp_path, replay, GROUP, s390x_domain))
    assert proc.returncode == 0, proc.stdout[-5000:]
    pinned = _cpu(s390x_domain)
    inv = _inventory(tmp_path, replay, [*GROUP, OLDER], s390x_domain)
    proc = _site(tmp_path, inv)
    assert proc.returncode != 0
    assert f"CPU contract refused: z-{OLDER} cannot run the contract CPU of group hypervisors (lacks ap, apft, apqci)" in proc.stdout
    assert _cpu(s390x_domain) == pinned, "a refused run deploys nothing"

    # Quarantine: the rest is admitted and deployed, the older host named in the report.
    proc = run_playbook(open(SITE, encoding="utf-8").read(), tmp_path, inventory=inv, diff=True,
                        extra={"cpucompat_report_dir": str(tmp_path / "reports"), "cpucompat_contract_on_refusal": "exclude"})
    assert proc.returncode == 0, proc.stdout[-5000:]
    group = json.loads((tmp_path / "reports" / "contract.json").read_text())["groups"]["hypervisors"]
    assert list(group["quarantined"]) == [f"z-{OLDER}"], group["quarantined"]
    assert _cpu(s390x_domain) == pinned

    # Lowering the contract to what every host runs admits it.
    proc = run_playbook("cpucompat.cluster.change_contract", tmp_path, inventory=inv,
                        extra={"cpucompat_report_dir": str(tmp_path / "reports"), "cpucompat_contract_action": "lower",
                               "cpucompat_contract_allow_lower": True, "cpucompat_contract_allow_security_loss": True})
    assert proc.returncode == 0, proc.stdout[-5000:]
    level = json.loads(contract_file(tmp_path).read_text())["cpu"]
    assert level["arch"] == "s390x" and level["model"] == "z14-base", level


def test_the_s390x_premigration_gate(tmp_path, replay, s390x_domain: str) -> None:
    """A move to a newer IBM Z passes; a move to an older one fails naming what QEMU's comparison holds responsible."""
    members = ["s390x-z14.2-qemu-4.0.0", "s390x-gen16a-qemu-9.2.0", OLDER]
    proc = _site(tmp_path, _inventory(tmp_path, replay, members[:1], s390x_domain))  # the domain gets the z14.2's CPU
    assert proc.returncode == 0, proc.stdout[-5000:]
    hosts = {}
    for i, name in enumerate(members):
        hosts[f"z-{name}"] = {"ansible_connection": "local", "ansible_python_interpreter": sys.executable,
                              "cpucompat_probe_qmp_socket": replay(name).path,
                              # the source lists its domains on this machine's libvirt; the targets share it, so
                              # they list none and libvirt is not asked for them
                              **({"cpucompat_domains": {"names": [s390x_domain]}} if i == 0 else
                                 {"cpucompat_migration_libvirt": False})}
    inv = tmp_path / "premigration.yml"
    inv.write_text(yaml.safe_dump({"hypervisors": {"hosts": hosts}}))
    reports = tmp_path / "premigration"
    source = f"z-{members[0]}"
    ok = run_playbook("cpucompat.cluster.premigration_check", tmp_path, inventory=str(inv),
                      extra={"cpucompat_migrate": f"{s390x_domain}:z-{members[1]}", "cpucompat_report_dir": str(reports)})
    assert ok.returncode == 0, ok.stdout[-5000:]
    row = json.loads((reports / "migration.json").read_text())["matrix"][f"{source}/{s390x_domain}"]
    assert row[f"z-{members[1]}"] == {"ok": True, "blocking": [], "comparison": "subset"}  # the one target asked

    refused = run_playbook("cpucompat.cluster.premigration_check", tmp_path, inventory=str(inv),
                           extra={"cpucompat_migrate": f"{s390x_domain}:z-{OLDER}", "cpucompat_report_dir": str(reports)})
    assert refused.returncode != 0
    assert f"{source}/{s390x_domain} -> z-{OLDER}: target lacks type" in refused.stdout, refused.stdout[-3000:]
