# Copyright (c) 2026 cpucompat.cluster contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""One contract per domain (issue 29): a host in two groups, its domains deployed and stamped by group hypervisors; a
run for the other group, on its own, never restamps them: it is refused, naming both groups and the command that
moves the host on purpose; with that command the host moves."""

from __future__ import annotations

import sys

import pytest
import yaml

from ansible_collections.cpucompat.cluster.plugins.module_utils.deploy._stamp import manager
from integration.helpers import run_playbook
from integration.libvirt_helpers import define, ensure_libvirtd, remove, virsh

pytestmark = pytest.mark.usefixtures("no_leftover_qemu")
LOCAL = {"ansible_connection": "local", "ansible_python_interpreter": sys.executable}
CPU = "<cpu mode='custom' match='exact' check='none'><model fallback='forbid'>486</model></cpu>"


def _stamp(name: str) -> dict:
    return manager(virsh("dumpxml", "--inactive", name, check=True).stdout)["stamp"]


def test_a_run_for_another_group_never_restamps_a_domain(tmp_path) -> None:
    ensure_libvirtd()
    name = define(tmp_path, cpu=CPU, prefix="cpucompat-onecontract")
    try:
        host = {**LOCAL, "cpucompat_domains": {"names": [name]}}
        inv = tmp_path / "inventory.yml"
        inv.write_text(yaml.safe_dump({"hypervisors": {"hosts": {"live": host}}, "labb": {"hosts": {"live": host}}}))
        extra = {"cpucompat_report_dir": str(tmp_path / "reports")}
        assert run_playbook("cpucompat.cluster.site", tmp_path, inventory=str(inv), extra=extra).returncode == 0
        assert _stamp(name)["group"] == "hypervisors"
        before = virsh("dumpxml", "--inactive", name, check=True).stdout

        other = run_playbook("cpucompat.cluster.site", tmp_path, inventory=str(inv),
                             extra={**extra, "cpucompat_group": "labb", "cpucompat_contract_level": "pentium2"})
        text = " ".join(other.stdout.split())
        assert other.returncode != 0, text[-2000:]
        assert f"live is held by the contract of group hypervisors: its domains {name} carry that contract's stamp" in text
        assert "cpucompat_contract_adopt" in text and "cpucompat_group=labb" in text
        assert virsh("dumpxml", "--inactive", name, check=True).stdout == before, "nothing restamped, nothing changed"

        moved = run_playbook("cpucompat.cluster.site", tmp_path, inventory=str(inv),
                             extra={**extra, "cpucompat_group": "labb", "cpucompat_contract_level": "pentium2",
                                    "cpucompat_contract_adopt": ["live"]})
        assert moved.returncode == 0, moved.stdout[-3000:]
        assert _stamp(name)["group"] == "labb"
    finally:
        remove(name)
