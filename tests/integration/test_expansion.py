# Copyright (c) 2026 cpucompat.cluster contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""playbooks/plan_expansion.yml: this machine (probed live) and replayed hosts, a real libvirt domain, real probes."""

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
from integration.libvirt_helpers import define, ensure_libvirtd, remove, virsh
from utils.recordings import facts_of

pytestmark = [pytest.mark.usefixtures("no_leftover_qemu"),
              pytest.mark.skipif(not _fingerprint.kvm_usable(), reason="recorded hosts are KVM probes; this machine needs KVM to join them")]
AMD = "AuthenticAMD" in open("/proc/cpuinfo", encoding="utf-8").read()
CLUSTER_REC = "x86_64-epyc-7502" if AMD else "x86_64-xeon-gold-6130"
LOWERS = "x86_64-epyc-7601-ibpb" if AMD else "x86_64-xeon-e5-2650-v4"
NEUTRAL = "x86_64-epyc-9654-qemu-10.0.0" if AMD else "x86_64-xeon-platinum-9242"
PLAYBOOK = open(os.path.join(ROOT, "playbooks", "plan_expansion.yml"), encoding="utf-8").read()


@pytest.fixture(scope="module")
def current_xml() -> str:
    me = _probe.probe(_probe.ProbeRequest(machine="q35"))
    return _libvirt.render(_baseline.baseline_of({"this-machine": me, "rec-cluster": facts_of(CLUSTER_REC)}).guest).xml


@pytest.fixture
def domain(tmp_path, current_xml):
    ensure_libvirtd()
    name = define(tmp_path, cpu=current_xml)
    yield name
    remove(name)


def _plan(tmp_path, replay, candidate: str, fail_on: str):
    local = {"ansible_connection": "local", "ansible_python_interpreter": sys.executable}
    inv = {"hypervisors": {"hosts": {"this-machine": dict(local),
                                     "rec-cluster": {**local, "cpucompat_probe_qmp_socket": replay(CLUSTER_REC).path,
                                                     "cpucompat_expansion_list_domains": False}}},
           "candidates": {"hosts": {"new-host": {**local, "cpucompat_probe_qmp_socket": replay(candidate).path}}}}
    (tmp_path / "inv.yml").write_text(yaml.safe_dump(inv))
    reports = tmp_path / "reports"
    proc = run_playbook(PLAYBOOK, tmp_path, inventory=str(tmp_path / "inv.yml"),
                        extra={"cpucompat_expansion_fail_on": fail_on, "cpucompat_report_dir": str(reports)})
    return proc, json.loads((reports / "expansion.json").read_text()), (reports / "expansion.md").read_text()


def test_candidate_that_lowers_the_baseline(tmp_path, replay, domain: str) -> None:
    before = virsh("dumpxml", "--inactive", domain, check=True).stdout
    proc, plan, md = _plan(tmp_path, replay, LOWERS, "incompatible")
    assert proc.returncode != 0 and "fails its policy" in proc.stdout
    cand = plan["candidates"]["new-host"]
    assert cand["runs_current_baseline"] is False and cand["missing_features"]
    assert plan["delta"]["features_lost"]
    assert all(hosts == ["new-host"] for hosts in plan["delta"]["lost_because_of"].values())
    assert plan["domains"][f"this-machine/{domain}"]["status"] == "must-change"
    assert domain in md and "NOT OK" in md
    assert virsh("dumpxml", "--inactive", domain, check=True).stdout == before, "planning changes nothing"


def test_candidate_that_changes_nothing(tmp_path, replay, domain: str) -> None:
    proc, plan, md = _plan(tmp_path, replay, NEUTRAL, "lowers_baseline")
    assert proc.returncode == 0, proc.stdout[-3000:]
    assert plan["candidates"]["new-host"]["runs_current_baseline"] is True
    assert plan["delta"]["features_lost"] == [] and plan["delta"]["model_changes"] is False
    assert plan["domains"][f"this-machine/{domain}"]["status"] == "unchanged"
    assert "**OK**" in md
