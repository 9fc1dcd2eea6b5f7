# Copyright (c) 2026 cpucompat.cluster contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""playbooks/upgrade_check.yml with the backports QEMU 10.0 and libvirt 11.3 as the new stack, by path and as a
canary host, against a group of this machine with a real libvirt domain; then the site playbook with the new stack's
facts deploys a <cpu> that QEMU and libvirt of both stacks read as the pinned set."""

from __future__ import annotations

import json
import os
import sys

import pytest
import yaml

from ansible_collections.cpucompat.cluster.plugins.module_utils.render._cpuspec import CpuSpec
from conftest import KVM
from integration.helpers import ROOT, contract_file, run_playbook
from integration.libvirt_helpers import cpu_element, define, ensure_libvirtd, remove, virsh
from utils import judges, stacks

pytestmark = [pytest.mark.usefixtures("no_leftover_qemu"), KVM]
LOCAL = {"ansible_connection": "local", "ansible_python_interpreter": sys.executable}
BACKPORTS = stacks.by_name("backports")
SITE = open(os.path.join(ROOT, "playbooks", "site.yml"), encoding="utf-8").read()
CHECK = open(os.path.join(ROOT, "playbooks", "upgrade_check.yml"), encoding="utf-8").read()
NEW = {"cpucompat_upgrade_qemu_binary": BACKPORTS.qemu, "cpucompat_upgrade_cpu_map": BACKPORTS.cpu_map_dir,
       "cpucompat_upgrade_libvirt_version": BACKPORTS.libvirt_version}


@pytest.fixture(scope="module")
def pc_judges(qemu_judge):
    """QEMU 7.2 and 10.0 on the test domain's machine type (pc), from the session's judges."""
    return qemu_judge(stacks.by_name("system"), "pc"), qemu_judge(BACKPORTS, "pc")


@pytest.fixture
def domain(tmp_path):
    ensure_libvirtd()
    name = define(tmp_path, cpu="<cpu mode='custom' match='exact' check='none'><model fallback='forbid'>486</model></cpu>",
                  prefix="cpucompat-upgrade")
    yield name
    remove(name)


def _inventory(tmp_path, domain: str, canary: bool = False) -> str:
    hosts = {"this-machine": {**LOCAL, "cpucompat_domains": {"names": [domain]}}}
    inventory: dict = {"hypervisors": {"hosts": hosts}}
    if canary:  # a host already upgraded: this machine again, probed with the new QEMU and map
        inventory["canaries"] = {"hosts": {"canary": {**LOCAL, "cpucompat_probe_qemu_binary": BACKPORTS.qemu,
                                                      "cpucompat_cpu_map": BACKPORTS.cpu_map_dir,
                                                      "cpucompat_probe_libvirt_version": BACKPORTS.libvirt_version}}}
    path = tmp_path / "inventory.yml"
    path.write_text(yaml.safe_dump(inventory))
    return str(path)


def _run(tmp_path, play: str, inv: str, **extra):
    return run_playbook(play, tmp_path, inventory=inv, extra={"cpucompat_report_dir": str(tmp_path / "reports"), **extra})


def _report(tmp_path, kind: str) -> dict:
    return json.loads((tmp_path / "reports" / f"{kind}.json").read_text())


def _cpu(domain: str) -> CpuSpec:
    xml = virsh("dumpxml", "--inactive", domain, check=True).stdout
    return CpuSpec.parse(cpu_element(xml))


def test_upgrade_check_by_path_then_deploy_for_both_stacks(tmp_path, domain, pc_judges) -> None:
    inv = _inventory(tmp_path, domain)
    proc = _run(tmp_path, SITE, inv)
    assert proc.returncode == 0, proc.stdout[-4000:]
    pinned = json.loads((contract_file(tmp_path)).read_text())

    proc = _run(tmp_path, CHECK, inv, **NEW)
    report = _report(tmp_path, "upgrade")
    group = report["groups"]["hypervisors"]
    assert group["new_stack"] == ["this-machine@new-stack"] and group["level"]["source"] == "contract"
    assert group["level"]["features"] == pinned["cpu"]["features"]
    assert group["runs"]["this-machine@new-stack"]["runnable"] is True
    assert group["exact_on_both"] is True and group["xml_both"]
    assert group["domains"][f"this-machine/{domain}"]["status"] in ("unchanged", "changes")
    assert group["actions"] and proc.returncode == (0 if report["verdict"]["ok"] else 2), proc.stdout[-3000:]
    stack_file = tmp_path / "reports" / "new-stack.json"
    new_facts = json.loads(stack_file.read_text())["this-machine@new-stack"]
    assert new_facts["qemu"]["version"].startswith("10.0.") and new_facts["libvirt"]["version"] == BACKPORTS.libvirt_version
    assert (tmp_path / "reports" / "upgrade.html").exists() and "What to do" in (tmp_path / "reports" / "upgrade.md").read_text()

    # the site with the new stack's facts: the deployed <cpu> is the one exact on both stacks, by QEMU's and libvirt's word
    proc = _run(tmp_path, SITE, inv, cpucompat_extra_stacks=[str(stack_file)])
    assert proc.returncode == 0, proc.stdout[-4000:]
    deployed = _cpu(domain)
    assert deployed.key() == CpuSpec.parse(group["xml_both"]).key()
    wanted = frozenset(pinned["cpu"]["features"])
    problems = judges.verdict(deployed, wanted, pc_judges, (stacks.by_name("system").cpu_map, BACKPORTS.cpu_map))
    assert not problems, problems

    # checked again: nothing changes at the next power cycle on the new stack
    proc = _run(tmp_path, CHECK, inv, **NEW)
    assert proc.returncode == 0, proc.stdout[-3000:]
    again = _report(tmp_path, "upgrade")["groups"]["hypervisors"]
    assert again["domains"][f"this-machine/{domain}"]["status"] == "unchanged"
    assert again["actions"][0].startswith("nothing to do first")


def test_upgrade_check_with_a_canary(tmp_path, domain) -> None:
    inv = _inventory(tmp_path, domain, canary=True)
    proc = _run(tmp_path, SITE, inv)
    assert proc.returncode == 0, proc.stdout[-4000:]
    proc = _run(tmp_path, CHECK, inv, cpucompat_upgrade_canary="canary")
    report = _report(tmp_path, "upgrade")
    group = report["groups"]["hypervisors"]
    assert group["new_stack"] == ["canary"] and group["runs"]["canary"]["runnable"] is True and group["exact_on_both"] is True
    assert proc.returncode == (0 if report["verdict"]["ok"] else 2), proc.stdout[-3000:]


def test_a_new_stack_that_cannot_run_the_contract_holds_the_upgrade(tmp_path, domain) -> None:
    """A contract level the new stack's host lacks a feature of: the check fails, naming the host and the feature."""
    inv = _inventory(tmp_path, domain)
    assert _run(tmp_path, SITE, inv).returncode == 0
    stored = contract_file(tmp_path)
    doc = json.loads(stored.read_text())
    doc["cpu"]["features"] = sorted({*doc["cpu"]["features"], "avx512-fp16"})
    stored.write_text(json.dumps(doc))
    proc = _run(tmp_path, CHECK, inv, **NEW)
    assert proc.returncode != 0
    assert "the new stack (this-machine@new-stack) cannot run the CPU of group hypervisors: lacks avx512-fp16" in proc.stdout, proc.stdout[-3000:]
    assert "hold the upgrade" in _report(tmp_path, "upgrade")["groups"]["hypervisors"]["actions"][0]
