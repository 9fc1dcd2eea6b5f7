# Copyright (c) 2026 cpucompat.cluster contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Every command of the README's runbook ("What do I run?"), run against the demo inventory in check mode: this machine
as hv1 with a real domain web1, recorded hosts of its vendor as hv2, hv3 and the candidate new1."""

from __future__ import annotations

import os
import re
import shlex
import sys

import pytest
import yaml

from integration.helpers import ROOT, run_playbook
from integration.libvirt_helpers import define, ensure_libvirtd, remove

pytestmark = pytest.mark.usefixtures("no_leftover_qemu")
VENDOR = "AuthenticAMD" if "AuthenticAMD" in open("/proc/cpuinfo", encoding="utf-8").read() else "GenuineIntel"
# new1 is another host like hv2: a candidate that joins without cost (the runbook's commands all succeed).
HOSTS = ({"hv2": "x86_64-epyc-7502", "hv3": "x86_64-epyc-9654-qemu-10.0.0", "new1": "x86_64-epyc-7502"} if VENDOR == "AuthenticAMD"
         else {"hv2": "x86_64-xeon-gold-6130", "hv3": "x86_64-core-i7-8700", "new1": "x86_64-xeon-gold-6130"})
LOCAL = {"ansible_connection": "local", "ansible_python_interpreter": sys.executable}


def runbook() -> list[str]:
    """The commands of the README's runbook block, in order."""
    text = open(os.path.join(ROOT, "README.md"), encoding="utf-8").read()
    section = text[text.index("The six jobs"):]
    block = section[section.index("```sh") + 5:section.index("```", section.index("```sh") + 5)]
    return [line.strip() for line in block.splitlines() if line.strip().startswith("ansible-playbook")]


def test_the_runbook_lists_the_six_jobs() -> None:
    names = [re.search(r"cpucompat\.cluster\.(\w+)", c).group(1) for c in runbook()]
    assert names == ["site", "site", "plan_expansion", "premigration_check", "change_contract", "change_contract", "upgrade_check",
                     "power_cycle"]


def test_every_runbook_command_runs_against_the_demo_inventory(tmp_path, replay) -> None:
    ensure_libvirtd()
    web1 = define(tmp_path, cpu="<cpu mode='custom' match='exact' check='none'><model fallback='forbid'>486</model></cpu>",
                  prefix="cpucompat-runbook-web1")
    try:
        replayed = {name: {**LOCAL, "cpucompat_probe_qmp_socket": replay(rec).path, "cpucompat_deploy_enabled": False,
                           "cpucompat_migration_libvirt": False} for name, rec in HOSTS.items()}
        inventory = {"hypervisors": {"hosts": {"hv1": {**LOCAL, "cpucompat_domains": {"names": [web1]}},
                                               "hv2": replayed["hv2"], "hv3": replayed["hv3"]}},
                     "candidates": {"hosts": {"new1": replayed["new1"]}}}
        path = tmp_path / "inventory.yml"
        path.write_text(yaml.safe_dump(inventory))
        extra = {"cpucompat_report_dir": str(tmp_path / "reports")}
        # The day-2 jobs need the contract the first real run pins.
        first = run_playbook("cpucompat.cluster.site", tmp_path, inventory=str(path), extra=extra)
        assert first.returncode == 0, first.stdout[-3000:]
        for command in runbook():
            words = shlex.split(command.replace("web1", web1))
            playbook = next(w for w in words if w.startswith("cpucompat.cluster."))
            variables = dict(words[i + 1].split("=", 1) for i, w in enumerate(words) if w == "-e")
            proc = run_playbook(playbook, tmp_path, inventory=str(path), extra={**extra, **variables}, check=True,
                                diff="--diff" in words)
            assert proc.returncode == 0, f"{command}\n{proc.stdout[-3000:]}"
    finally:
        remove(web1)
