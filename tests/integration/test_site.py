# Copyright (c) 2026 cpucompat.cluster contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The site playbook (probe -> baseline -> deploy) on this machine plus replayed hosts, with a real libvirtd."""

from __future__ import annotations

import json
import os
import re
import sys

import pytest
import yaml

from integration.helpers import ROOT, run_playbook
from integration.libvirt_helpers import (NOVA_EXTRAS, OPTED_OUT, cpu_element, define, ensure_libvirtd, remove, virsh,
                                         without_cpu_and_stamp)
from utils.recordings import load

pytestmark = pytest.mark.usefixtures("no_leftover_qemu")
VENDOR = "AuthenticAMD" if "AuthenticAMD" in open("/proc/cpuinfo", encoding="utf-8").read() else "GenuineIntel"
RECORDED = ["x86_64-epyc-7502", "x86_64-epyc-9654-qemu-10.0.0"] if VENDOR == "AuthenticAMD" else ["x86_64-xeon-gold-6130", "x86_64-core-i7-8700"]
SITE = os.path.join(ROOT, "playbooks", "site.yml")


def inventory(tmp_path, replay, domains: list[str], broken: bool = False) -> str:
    hosts: dict = {"this-machine": {"ansible_connection": "local", "ansible_python_interpreter": sys.executable,
                                    "cpucompat_domains": {"names": domains}}}
    for name in RECORDED:
        hosts[f"rec-{name}"] = {"ansible_connection": "local", "ansible_python_interpreter": sys.executable,
                                "cpucompat_probe_qmp_socket": replay(name).path, "cpucompat_deploy_enabled": False}
    if broken:
        hosts["broken"] = {"ansible_connection": "local", "ansible_python_interpreter": sys.executable,
                           "cpucompat_probe_qmp_socket": str(tmp_path / "nothing-listens-here.sock"), "cpucompat_deploy_enabled": False}
    path = tmp_path / "inventory.yml"
    path.write_text(yaml.safe_dump({"hypervisors": {"hosts": hosts}}))
    return str(path)


def site(tmp_path, inv: str, check: bool = False, extra: dict | None = None):
    reports = tmp_path / "reports"
    play = open(SITE, encoding="utf-8").read()
    return run_playbook(play, tmp_path, inventory=inv, check=check, diff=True,
                        extra={"cpucompat_report_dir": str(reports), **(extra or {})}), reports


@pytest.fixture
def domain(tmp_path):
    ensure_libvirtd()
    name = define(tmp_path, cpu="<cpu mode='custom' match='exact' check='none'><model fallback='forbid'>486</model></cpu>")
    yield name
    remove(name)


def _cpu_of(domain: str) -> str:
    xml = virsh("dumpxml", "--inactive", domain, check=True).stdout
    return cpu_element(xml)


def _without_cpu(xml: str) -> str:
    return without_cpu_and_stamp(xml)


def test_site_check_real_again(tmp_path, replay, domain: str) -> None:
    inv = inventory(tmp_path, replay, [domain])
    before = virsh("dumpxml", "--inactive", domain, check=True).stdout

    proc, reports = site(tmp_path, inv, check=True)
    assert proc.returncode == 0, proc.stdout[-4000:]
    assert f"changed: [this-machine] => (item={domain})" in proc.stdout
    assert virsh("dumpxml", "--inactive", domain, check=True).stdout == before, "check mode changed the domain"
    report = json.loads((reports / "baseline.json").read_text())
    assert report["schema"] == "cpucompat.report/1" and report["complete"] is True
    assert sorted(report["hosts"]) == sorted(["this-machine"] + [f"rec-{n}" for n in RECORDED])
    assert all(v["runnable"] for v in report["verdicts"].values())
    markdown = (reports / "baseline.md").read_text()
    assert "## Features lost, and the hosts responsible" in markdown and report["baseline"]["model"] in markdown

    proc, _reports = site(tmp_path, inv)
    assert proc.returncode == 0, proc.stdout[-4000:]
    assert f"changed: [this-machine] => (item={domain})" in proc.stdout
    assert "<cpu mode='custom' match='exact' check='full'>" in _cpu_of(domain)
    proc, _reports = site(tmp_path, inv)
    assert proc.returncode == 0
    assert f"ok: [this-machine] => (item={domain})" in proc.stdout, "a second run changes nothing"
    # only <cpu> changed, and the guest starts on it
    after = virsh("dumpxml", "--inactive", domain, check=True).stdout
    assert _without_cpu(after) == _without_cpu(before)
    started = virsh("start", "--paused", domain)
    assert started.returncode == 0, started.stderr


def test_failed_probe_is_named_and_no_partial_baseline(tmp_path, replay, domain: str) -> None:
    inv = inventory(tmp_path, replay, [domain], broken=True)
    before = virsh("dumpxml", "--inactive", domain, check=True).stdout
    proc, reports = site(tmp_path, inv)
    assert proc.returncode != 0
    assert "CPU contract refused: no usable facts from broken (probe failed: " in proc.stdout, proc.stdout[-3000:]
    report = json.loads((reports / "baseline.json").read_text())
    assert report["probe_failed"] == ["broken"] and report["baseline"] is None
    assert "cannot connect to QMP socket" in report["probe_errors"]["broken"]
    assert "**Probe failed on broken:**" in (reports / "baseline.md").read_text()
    assert virsh("dumpxml", "--inactive", domain, check=True).stdout == before, "nothing deployed from a partial group"
    # the user may allow a partial group
    proc, reports = site(tmp_path, inv, extra={"cpucompat_allow_partial": True})
    assert proc.returncode == 0, proc.stdout[-3000:]
    report = json.loads((reports / "baseline.json").read_text())
    assert report["baseline"] is not None and report["probe_failed"] == ["broken"]


def test_warm_run_uses_the_fact_cache(tmp_path, replay) -> None:
    inv = inventory(tmp_path, replay, [])
    play = """
- hosts: this-machine
  gather_facts: false
  roles: [cpucompat.cluster.probe]
  post_tasks:
    - ansible.builtin.copy:
        content: "{{ cpucompat_probe_result | to_json }}"
        dest: "{{ out }}"
"""
    out = tmp_path / "probe.json"
    cold = run_playbook(play, tmp_path, inventory=inv, extra={"out": str(out)})
    assert cold.returncode == 0, cold.stdout[-2000:]
    assert json.loads(out.read_text())["probed"] is True
    warm = run_playbook(play, tmp_path, inventory=inv, extra={"out": str(out)})
    assert warm.returncode == 0
    result = json.loads(out.read_text())
    assert result["probed"] is False, "cached facts whose fingerprint matches: QEMU not started"
    assert result["freshness"] == "fingerprint"
    young = run_playbook(play, tmp_path, inventory=inv, extra={"out": str(out), "cpucompat_probe_max_age": 3600})
    assert young.returncode == 0 and json.loads(out.read_text())["freshness"] == "max_age", "max age first: nothing runs on the host"
    forced = run_playbook(play, tmp_path, inventory=inv, extra={"out": str(out), "cpucompat_probe_force": True, "cpucompat_probe_max_age": 3600})
    result = json.loads(out.read_text())
    assert result["probed"] is True and result["freshness"] == "probed" and forced.returncode == 0
    assert load(RECORDED[0])["host"] == RECORDED[0]  # the replays served the other hosts' recordings


def test_site_spares_what_it_must_and_says_what_each_guest_gets(tmp_path, replay) -> None:
    """A host-passthrough guest, a Nova guest, an excluded and an opted-out one are left alone, byte for byte; before the
    deploy (check mode) the contract report says what the one it changes gains and loses at its next power cycle."""
    ensure_libvirtd()
    old = "<cpu mode='custom' match='exact' check='none'><model fallback='forbid'>486</model></cpu>"
    names = {"stale": define(tmp_path, cpu=old, prefix="cpucompat-stale"),
             "pt": define(tmp_path, cpu="<cpu mode='host-passthrough' check='none'/>", prefix="cpucompat-pt"),
             "nova": define(tmp_path, cpu=old, prefix="cpucompat-nova", **NOVA_EXTRAS),
             "opted": define(tmp_path, cpu=old, prefix="cpucompat-opted", **OPTED_OUT),
             "excluded": define(tmp_path, cpu=old, prefix="cpucompat-excluded")}
    try:
        inv = inventory(tmp_path, replay, list(names.values()))
        before = {k: virsh("dumpxml", "--inactive", n, check=True).stdout for k, n in names.items()}
        extra = {"cpucompat_domains": {"names": list(names.values()), "exclude": [names["excluded"]]}}
        proc, reports = site(tmp_path, inv, check=True, extra=extra)
        assert proc.returncode == 0, proc.stdout[-4000:]
        domains = json.loads((reports / "contract.json").read_text())["groups"]["hypervisors"]["domains"]
        stale = domains[f"this-machine/{names['stale']}"]
        assert stale["status"] == "not-deployed" and stale["next_power_cycle"]["gains"], stale
        assert stale["next_power_cycle"]["loses"] == [], "486 has nothing a contract lacks"
        assert domains[f"this-machine/{names['pt']}"]["status"] == "follows-host"
        for key in ("nova", "opted", "excluded"):
            assert domains[f"this-machine/{names[key]}"]["status"] == "left-alone", (key, domains)
        assert "at its next power cycle" in (reports / "contract.md").read_text()

        proc, reports = site(tmp_path, inv, extra=extra)
        assert proc.returncode == 0, proc.stdout[-4000:]
        assert f"changed: [this-machine] => (item={names['stale']})" in proc.stdout
        for key in ("pt", "nova", "opted", "excluded"):
            assert virsh("dumpxml", "--inactive", names[key], check=True).stdout == before[key], f"{key} was changed"
        summary = proc.stdout[proc.stdout.index("Summarise the changes on this host"):]
        for key, why in (("pt", "mode host-passthrough"), ("nova", "OpenStack Nova"), ("opted", "opted out"),
                         ("excluded", "excluded by cpucompat_domains.exclude")):
            assert re.search(f'"{names[key]}": "[^"]*{why}', summary), (key, summary[:3000])
        domains = json.loads((reports / "contract.json").read_text())["groups"]["hypervisors"]["domains"]
        assert domains[f"this-machine/{names['stale']}"]["status"] == "compliant"
    finally:
        for name in names.values():
            remove(name)
