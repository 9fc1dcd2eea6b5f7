# Copyright (c) 2026 cpucompat.cluster contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""cpucompat.cluster.domain_cpu against a real libvirtd: the check/real/again triple, diffs, faults."""

from __future__ import annotations

import difflib
import json
import os
import subprocess

import pytest

from ansible_collections.cpucompat.cluster.plugins.module_utils.engine import _baseline
from ansible_collections.cpucompat.cluster.plugins.module_utils.deploy import _domain
from ansible_collections.cpucompat.cluster.plugins.module_utils.render import _libvirt
from ansible_collections.cpucompat.cluster.plugins.module_utils.probe import _probe
from ansible_collections.cpucompat.cluster.plugins.module_utils.render._cpuspec import CpuSpec
from ansible_collections.cpucompat.cluster.plugins.module_utils._errors import LibvirtError
from integration.helpers import run_playbook
from integration.libvirt_helpers import APP_EXTRAS, NOVA_EXTRAS, OPTED_OUT, URI, cpu_element, define, ensure_libvirtd, remove, virsh

pytestmark = pytest.mark.usefixtures("no_leftover_qemu")


@pytest.fixture(scope="module")
def cluster_cpu() -> str:
    """The CPU of a real cluster: this machine (probed live) and a recorded host of its vendor."""
    from utils.recordings import facts_of  # pylint: disable=import-outside-toplevel

    me = _probe.probe(_probe.ProbeRequest(machine="q35"))
    other = "x86_64-epyc-7502" if me["vendor"] == "AuthenticAMD" else "x86_64-xeon-gold-6130"
    hosts = {"this": me} if me["accel"] == "tcg" else {"this": me, other: facts_of(other)}
    return _libvirt.render(_baseline.baseline_of(hosts).guest).xml


@pytest.fixture
def domain(tmp_path):
    ensure_libvirtd()
    # A CPU every KVM host here can start (this machine's KVM refuses host-model's MSR bits).
    name = define(tmp_path, cpu="<cpu mode='custom' match='exact' check='none'><model fallback='forbid'>486</model></cpu>")
    yield name
    ensure_libvirtd()
    remove(name)


PLAY = """
- hosts: localhost
  gather_facts: false
  tasks:
    - name: set the cpu
      cpucompat.cluster.domain_cpu:
        name: "{{ domain }}"
        cpu_xml: "{{ cpu }}"
        backup: "{{ backup | default(false) }}"
        backup_dir: "{{ backup_dir | default(omit) }}"
        convert_host_cpu: "{{ convert_host_cpu | default(false) }}"
      register: result
    - name: dump
      check_mode: false
      ansible.builtin.copy:
        content: "{{ result | to_json }}"
        dest: "{{ out }}"
"""


def _run(tmp_path, domain: str, cpu: str, check: bool = False, **extra) -> dict:
    out = tmp_path / "out.json"
    if out.exists():
        out.unlink()
    proc = run_playbook(PLAY, tmp_path, extra={"domain": domain, "cpu": cpu, "out": str(out), **extra}, check=check, diff=True)
    assert proc.returncode == 0, proc.stdout[-3000:]
    return {**json.loads(out.read_text()), "_stdout": proc.stdout}


def test_check_real_again_and_only_cpu_changes(tmp_path, domain: str, cluster_cpu: str) -> None:
    before = virsh("dumpxml", "--inactive", domain, check=True).stdout
    checked = _run(tmp_path, domain, cluster_cpu, check=True)
    assert checked["changed"] is True
    assert virsh("dumpxml", "--inactive", domain, check=True).stdout == before, "check mode must not modify"
    assert "486" in checked["_stdout"] and "+<cpu" in checked["_stdout"].replace(" ", ""), "diff shows before/after"
    real = _run(tmp_path, domain, cluster_cpu, backup=True, backup_dir=str(tmp_path / "backups"))
    assert real["changed"] is True and real["restart_required"] is False
    assert open(real["backup_file"], encoding="utf-8").read().strip() == before.strip()
    again = _run(tmp_path, domain, cluster_cpu)
    assert again["changed"] is False
    after = virsh("dumpxml", "--inactive", domain, check=True).stdout
    changed_lines = [line for line in difflib.unified_diff(before.splitlines(), after.splitlines(), lineterm="", n=0)
                     if line[:1] in "+-" and not line.startswith(("+++", "---"))]
    outside_cpu = [line for line in changed_lines if not any(t in line for t in ("<cpu", "</cpu>", "<model", "<vendor", "<feature"))]
    assert changed_lines and not outside_cpu, outside_cpu
    # the guest starts on the new CPU
    started = virsh("start", "--paused", domain)
    assert started.returncode == 0, started.stderr


def _without_cpu(domain_xml: str) -> str:
    """The definition with the bytes of its <cpu> element cut out."""
    return domain_xml.replace(cpu_element(domain_xml), "", 1)


def test_other_applications_metadata_stays_byte_for_byte(tmp_path, cluster_cpu: str) -> None:
    """Another application's metadata keeps its prefix and declaration, qemu:commandline stays: only <cpu> changes."""
    ensure_libvirtd()
    name = define(tmp_path, cpu="<cpu mode='custom' match='exact' check='none'><model fallback='forbid'>486</model></cpu>",
                  prefix="cpucompat-app", **APP_EXTRAS)
    try:
        before = virsh("dumpxml", "--inactive", name, check=True).stdout
        assert "<app:tags xmlns:app=" in before, "libvirt keeps the application's metadata as written"
        checked = _run(tmp_path, name, cluster_cpu, check=True)
        assert checked["changed"] is True and virsh("dumpxml", "--inactive", name, check=True).stdout == before
        real = _run(tmp_path, name, cluster_cpu)
        assert real["changed"] is True
        after = virsh("dumpxml", "--inactive", name, check=True).stdout
        assert _without_cpu(after) == _without_cpu(before), "every byte outside <cpu> as libvirt wrote it"
        assert "ns0:" not in after and "<qemu:commandline>" in after
        assert _cpu_meaning(after) == CpuSpec.parse(cluster_cpu).key()
        assert _run(tmp_path, name, cluster_cpu)["changed"] is False
    finally:
        remove(name)


@pytest.mark.parametrize("cpu, extras, convert, reason", [
    ("<cpu mode='custom' match='exact' check='none'><model fallback='forbid'>486</model></cpu>", NOVA_EXTRAS, False, "OpenStack Nova"),
    ("<cpu mode='custom' match='exact' check='none'><model fallback='forbid'>486</model></cpu>", NOVA_EXTRAS, True, "OpenStack Nova"),
    ("<cpu mode='custom' match='exact' check='none'><model fallback='forbid'>486</model></cpu>", OPTED_OUT, False, "opted out"),
    ("<cpu mode='host-passthrough' check='none'/>", {}, False, "mode host-passthrough"),
    ("<cpu mode='host-model' check='none'/>", {}, False, "mode host-model"),
], ids=["nova", "nova-even-with-convert", "opted-out", "host-passthrough", "host-model"])
def test_domains_the_deploy_must_spare_are_left_alone(tmp_path, cluster_cpu: str, cpu: str, extras: dict, convert: bool,
                                                      reason: str) -> None:
    ensure_libvirtd()
    name = define(tmp_path, cpu=cpu, prefix="cpucompat-spare", **extras)
    try:
        before = virsh("dumpxml", "--inactive", name, check=True).stdout
        result = _run(tmp_path, name, cluster_cpu, convert_host_cpu=convert)
        assert result["changed"] is False and reason in result["skipped_reason"], result
        assert virsh("dumpxml", "--inactive", name, check=True).stdout == before
    finally:
        remove(name)


def test_a_host_passthrough_domain_is_converted_only_when_asked(tmp_path, cluster_cpu: str) -> None:
    ensure_libvirtd()
    name = define(tmp_path, cpu="<cpu mode='host-passthrough' check='none'/>", prefix="cpucompat-convert")
    try:
        assert _run(tmp_path, name, cluster_cpu, check=True, convert_host_cpu=True)["changed"] is True
        assert _run(tmp_path, name, cluster_cpu, convert_host_cpu=True)["changed"] is True
        assert _cpu_meaning(virsh("dumpxml", "--inactive", name, check=True).stdout) == CpuSpec.parse(cluster_cpu).key()
        assert _run(tmp_path, name, cluster_cpu, convert_host_cpu=True)["changed"] is False
    finally:
        remove(name)


def _cpu_meaning(domain_xml: str) -> tuple | None:
    cpu = _domain.domain_cpu(domain_xml, "test domain")
    return cpu.key() if cpu is not None else None


def test_running_domain_gets_the_persistent_definition_only(tmp_path, domain: str, cluster_cpu: str) -> None:
    started = virsh("start", "--paused", domain)
    assert started.returncode == 0, started.stderr
    live_before = virsh("dumpxml", domain, check=True).stdout
    result = _run(tmp_path, domain, cluster_cpu)
    assert result["changed"] is True and result["restart_required"] is True
    live_cpu = _cpu_meaning(virsh("dumpxml", domain, check=True).stdout)
    assert live_cpu == _cpu_meaning(live_before), "nothing is hot-changed"
    inactive = virsh("dumpxml", "--inactive", domain, check=True).stdout
    assert _cpu_meaning(inactive) == CpuSpec.parse(cluster_cpu).key()


def test_libvirt_refusing_the_definition_leaves_the_domain_as_it_was(tmp_path, domain: str) -> None:
    before = virsh("dumpxml", "--inactive", domain, check=True).stdout
    out = tmp_path / "out.json"
    proc = run_playbook(PLAY, tmp_path, extra={"domain": domain, "cpu": "<cpu mode='no-such-mode'><model>qemu64</model></cpu>", "out": str(out)})
    assert proc.returncode == 2
    assert f"libvirt refused the new definition of domain {domain}" in proc.stdout
    assert virsh("dumpxml", "--inactive", domain, check=True).stdout == before


@pytest.mark.parametrize("cpu, message", [
    ("<cpu><feature policy='require' name='x\"/&gt;'/></cpu>", "not a valid CPU feature name"),
    ("<domain/>", "must be a <cpu> element"),
    ("<cpu>", "not well-formed"),
])
def test_bad_cpu_xml_is_refused_before_libvirt(tmp_path, domain: str, cpu: str, message: str) -> None:
    proc = run_playbook(PLAY, tmp_path, extra={"domain": domain, "cpu": cpu, "out": str(tmp_path / "o.json")})
    assert proc.returncode == 2 and message in proc.stdout, proc.stdout[-2000:]


def test_missing_domain_is_named(tmp_path) -> None:
    extra = {"domain": "cpucompat-no-such-domain", "cpu": "<cpu mode='host-model'/>", "out": str(tmp_path / "o.json")}
    proc = run_playbook(PLAY, tmp_path, extra=extra)
    assert proc.returncode == 2 and "reading domain cpucompat-no-such-domain" in proc.stdout


class _Interfering:
    """A real libvirt connection on which something else happens right before the write."""

    def __init__(self, conn, before_write) -> None:
        self._conn = conn
        self._before_write = before_write
        self._fired = False

    def __getattr__(self, name):
        return getattr(self._conn, name)

    def lookupByUUIDString(self, uuid):  # noqa: N802  (libvirt's name)
        if not self._fired:
            self._fired = True
            self._before_write()
        return self._conn.lookupByUUIDString(uuid)


def test_domain_that_vanishes_between_read_and_write_is_not_recreated(tmp_path, domain: str, cluster_cpu: str) -> None:
    backups = tmp_path / "backups"
    with _domain.connection(URI) as conn, pytest.raises(LibvirtError, match=f"domain {domain}"):
        _domain.apply_cpu(_Interfering(conn, lambda: virsh("undefine", domain, check=True)), domain, cluster_cpu, check_mode=False,
                          backup_dir=str(backups))
    assert virsh("dominfo", domain).returncode != 0, "the vanished domain must not come back"
    assert not backups.exists() or not list(backups.iterdir()), "no backup of a change that was never attempted"


@pytest.mark.libvirtd_exclusive
def test_libvirtd_stopped_mid_run_leaves_the_definition_whole(domain: str, cluster_cpu: str) -> None:
    before = virsh("dumpxml", "--inactive", domain, check=True).stdout

    def stop() -> None:
        subprocess.run(["pkill", "-x", "libvirtd"], check=True)
        for _attempt in range(50):
            if subprocess.run(["pgrep", "-x", "libvirtd"], capture_output=True, check=False).returncode != 0:
                break
            os.sched_yield()

    # closing the connection to the killed daemon may fail; connection() keeps the apply error instead
    with _domain.connection(URI) as conn, pytest.raises(LibvirtError, match=f"domain {domain}"):
        _domain.apply_cpu(_Interfering(conn, stop), domain, cluster_cpu, check_mode=False)
    ensure_libvirtd()
    assert virsh("dumpxml", "--inactive", domain, check=True).stdout == before
