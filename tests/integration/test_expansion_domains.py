# Copyright (c) 2026 cpucompat.cluster contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The expansion plan judges the domains the collection looks after (cpucompat_domains), as the deploy and the
contract do: a domain outside the pattern is not listed as must-change (issue 29)."""

from __future__ import annotations

import json
import os
import sys

import pytest
import yaml

from ansible_collections.cpucompat.cluster.plugins.module_utils.probe import _fingerprint
from integration.helpers import ROOT, run_playbook
from integration.libvirt_helpers import define, ensure_libvirtd, remove

pytestmark = [pytest.mark.usefixtures("no_leftover_qemu"),
              pytest.mark.skipif(not _fingerprint.kvm_usable(), reason="recorded hosts are KVM probes; this machine needs KVM to join them")]
AMD = "AuthenticAMD" in open("/proc/cpuinfo", encoding="utf-8").read()
LOWERS = "x86_64-epyc-7601-ibpb" if AMD else "x86_64-xeon-e5-2650-v4"
PLAYBOOK = open(os.path.join(ROOT, "playbooks", "plan_expansion.yml"), encoding="utf-8").read()
CPU = "<cpu mode='custom' match='exact' check='none'><model fallback='forbid'>486</model></cpu>"


def test_the_plan_lists_only_the_domains_the_collection_looks_after(tmp_path, replay) -> None:
    ensure_libvirtd()
    mine, other = define(tmp_path, cpu=CPU, prefix="cpucompat-expmine"), define(tmp_path, cpu=CPU, prefix="cpucompat-expother")
    try:
        local = {"ansible_connection": "local", "ansible_python_interpreter": sys.executable}
        inv = {"hypervisors": {"hosts": {"this-machine": dict(local)},
                               "vars": {"cpucompat_domains": {"pattern": "^cpucompat-expmine-", "names": [], "exclude": []}}},
               "candidates": {"hosts": {"new-host": {**local, "cpucompat_probe_qmp_socket": replay(LOWERS).path}}}}
        (tmp_path / "inv.yml").write_text(yaml.safe_dump(inv))
        reports = tmp_path / "reports"
        run_playbook(PLAYBOOK, tmp_path, inventory=str(tmp_path / "inv.yml"),
                     extra={"cpucompat_expansion_fail_on": "never", "cpucompat_report_dir": str(reports)})
        plan = json.loads((reports / "expansion.json").read_text())
        assert f"this-machine/{mine}" in plan["domains"]
        assert not [k for k in plan["domains"] if not k.startswith("this-machine/cpucompat-expmine-")], sorted(plan["domains"])
        assert other not in json.dumps(plan)
    finally:
        remove(mine)
        remove(other)
