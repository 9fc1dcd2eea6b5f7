# Copyright (c) 2026 cpucompat.cluster contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""A contract cannot change behind the tool's back (issue 29): a pinned contract edited by hand - a feature added, a
feature removed, with or without its digest updated - is refused by the site (check mode and for real) and by
change_contract, naming the file, the difference against the domains' stamps, and the two ways out."""

from __future__ import annotations

import json
import sys

import pytest
import yaml

from ansible_collections.cpucompat.cluster.plugins.module_utils.contract._contract import Contract
from integration.helpers import contract_file, run_playbook
from integration.libvirt_helpers import define, ensure_libvirtd, remove, virsh

pytestmark = pytest.mark.usefixtures("no_leftover_qemu")
LOCAL = {"ansible_connection": "local", "ansible_python_interpreter": sys.executable}
CPU = "<cpu mode='custom' match='exact' check='none'><model fallback='forbid'>486</model></cpu>"


@pytest.fixture
def pinned(tmp_path):
    ensure_libvirtd()
    name = define(tmp_path, cpu=CPU, prefix="cpucompat-edited")
    inv = tmp_path / "inventory.yml"
    inv.write_text(yaml.safe_dump({"hypervisors": {"hosts": {"this-machine": {**LOCAL, "cpucompat_domains": {"names": [name]}}}}}))
    proc = run_playbook("cpucompat.cluster.site", tmp_path, inventory=str(inv), extra={"cpucompat_report_dir": str(tmp_path / "r")})
    assert proc.returncode == 0, proc.stdout[-3000:]
    yield str(inv), name
    remove(name)


def _edit(tmp_path, change, keep_digest: bool = True) -> tuple[str, str]:
    path = contract_file(tmp_path)
    doc = json.loads(path.read_text())
    doc["cpu"]["features"] = sorted(change(set(doc["cpu"]["features"])))
    if not keep_digest:  # the editor also wrote the new level's digest: the domains' stamps still know better
        doc["digest"] = Contract.from_dict(doc, "edited").digest
    text = json.dumps(doc, indent=2)
    path.write_text(text)
    return str(path), text


@pytest.mark.parametrize("edit, word, keep_digest", [
    (lambda f: f - {"fpu"}, "removes fpu", True),
    (lambda f: f | {"avx512f"}, "adds avx512f", True),
    (lambda f: f - {"fpu"}, "removes fpu", False),
])
def test_an_edited_contract_is_refused(tmp_path, pinned, edit, word, keep_digest) -> None:
    inv, name = pinned
    before = virsh("dumpxml", "--inactive", name, check=True).stdout
    where, text = _edit(tmp_path, edit, keep_digest)
    for check in (True, False):
        proc = run_playbook("cpucompat.cluster.site", tmp_path, inventory=inv, check=check, extra={"cpucompat_report_dir": str(tmp_path / "r")})
        out = " ".join(proc.stdout.split())
        assert proc.returncode != 0, out[-2000:]
        assert f"the contract of group hypervisors ({where}) was changed outside cpucompat.cluster" in out
        assert f"Against the domains' stamps it {word}" in out and "rebuild_contract -e cpucompat_group=hypervisors" in out
        assert ("no longer matches the digest written with it" in out) == keep_digest
    proc = run_playbook("cpucompat.cluster.change_contract", tmp_path, inventory=inv,
                        extra={"cpucompat_contract_action": "lower", "cpucompat_contract_allow_lower": True})
    assert proc.returncode != 0 and "was changed outside cpucompat.cluster" in proc.stdout
    assert contract_file(tmp_path).read_text() == text, "the edited file is kept for the operator"
    assert virsh("dumpxml", "--inactive", name, check=True).stdout == before, "no domain changed"


def test_a_failed_run_marks_the_previous_report_stale(tmp_path, pinned) -> None:
    """issue 29: after a refused change_contract the plan page still showed the previous plan, unmarked."""
    inv, _name = pinned
    extra = {"cpucompat_report_dir": str(tmp_path / "r")}
    ok = run_playbook("cpucompat.cluster.change_contract", tmp_path, inventory=inv, check=True,
                      extra={**extra, "cpucompat_contract_action": "raise"})
    assert ok.returncode == 0, ok.stdout[-3000:]
    plan = json.loads((tmp_path / "r" / "plan.json").read_text())
    assert plan["written"]["at"] and "written:" in (tmp_path / "r" / "plan.md").read_text()
    bad = run_playbook("cpucompat.cluster.change_contract", tmp_path, inventory=inv, check=True,
                       extra={**extra, "cpucompat_contract_action": "raise", "cpucompat_contract_level": "NoSuchModel"})
    assert bad.returncode != 0
    stale = json.loads((tmp_path / "r" / "plan.json").read_text())["stale"]
    assert stale["note"].startswith(f"from the run of {plan['written']['at']}; the run of ") and "NoSuchModel" in stale["why"]
    assert (tmp_path / "r" / "plan.md").read_text().startswith("> **Stale:** from the run of")
    assert 'id="stale"' in (tmp_path / "r" / "plan.html").read_text()
