# Copyright (c) 2026 cpucompat.cluster contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Run real ansible-playbook processes against the collection in this source tree."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import Any

from utils.source_tree import SOURCE_COLLECTIONS

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def contract_file(tmp_path, group: str = "hypervisors"):
    """Where the default file store keeps a group's contract in a test run by :func:`run_playbook`."""
    return tmp_path / "data" / "cpucompat" / "contracts" / f"{group}.json"


def run_playbook(playbook: str, tmp_path, inventory: str = "localhost,", extra: dict[str, Any] | None = None,
                 check: bool = False, diff: bool = False, env: dict[str, str] | None = None,
                 limit: str | None = None) -> subprocess.CompletedProcess[str]:
    """``playbook``: the text of a playbook, or ``cpucompat.cluster.<name>`` for one of the collection's playbooks."""
    if playbook.startswith("cpucompat.cluster."):
        path = os.path.join(ROOT, "playbooks", playbook.rsplit(".", 1)[1] + ".yml")
    else:
        path = tmp_path / "play.yml"
        path.write_text(playbook)
    cmd = [os.path.join(os.path.dirname(sys.executable), "ansible-playbook"), "-i", inventory, "-c", "local", str(path),
           "-e", f"ansible_python_interpreter={sys.executable}"]
    if limit:
        cmd += ["--limit", limit]
    if extra:
        cmd += ["-e", json.dumps(extra)]
    if check:
        cmd.append("--check")
    if diff:
        cmd.append("--diff")
    full_env = {**os.environ, "ANSIBLE_CONFIG": os.path.join(ROOT, "ansible.cfg"),
                "ANSIBLE_COLLECTIONS_PATH": SOURCE_COLLECTIONS,
                "ANSIBLE_CACHE_PLUGIN_CONNECTION": str(tmp_path / "facts"), "ANSIBLE_NOCOLOR": "1",
                "ANSIBLE_LOCAL_TEMP": str(tmp_path / "tmp"),
                # The contract store's default folder is under XDG_DATA_HOME: each test its own.
                "XDG_DATA_HOME": str(tmp_path / "data"), **(env or {})}
    return subprocess.run(cmd, capture_output=True, text=True, env=full_env, cwd=ROOT, timeout=600, check=False)


def settled(proc: subprocess.CompletedProcess[str], tmp_path, host: str, domain: str,
            group: str = "hypervisors") -> tuple[dict[str, Any], dict[str, Any]]:
    """A second site run changed nothing: it passed, left ``host``'s one domain as it was ("ok") and reports it
    compliant in ``tmp_path/reports/contract.json``. The report and the group's section."""
    assert proc.returncode == 0, proc.stdout[-5000:]
    assert f"ok: [{host}] => (item={domain})" in proc.stdout, "a second run changes nothing"
    report = json.loads((tmp_path / "reports" / "contract.json").read_text())
    section = report["groups"][group]
    assert {k: v["status"] for k, v in section["domains"].items()} == {f"{host}/{domain}": "compliant"}
    return report, section
