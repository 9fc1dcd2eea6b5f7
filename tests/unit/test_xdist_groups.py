# Copyright (c) 2026 cpucompat.cluster contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The suite's ``--dist loadgroup`` really keeps a group on one worker (tests/utils/xdist_groups.py)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

TESTS = Path(__file__).resolve().parents[1]

CONFTEST = f'''
import sys
sys.path.insert(0, {str(TESTS)!r})
import pytest
from utils import xdist_groups

@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(config, items):
    for item in items:
        if item.path.name.startswith("test_grouped"):
            item.add_marker(pytest.mark.xdist_group("libvirt"))
        if getattr(config.option, "loadgroup", False):
            xdist_groups.in_group(item)
'''
BODY = "import time\n" + "".join(f"def test_{i}():\n    time.sleep(0.2)\n" for i in range(3))


def test_a_group_runs_on_one_worker_and_the_rest_on_both(tmp_path: Path) -> None:
    (tmp_path / "conftest.py").write_text(CONFTEST)
    for name in ("test_grouped_a", "test_grouped_b", "test_free_a", "test_free_b"):
        (tmp_path / f"{name}.py").write_text(BODY)
    run = subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-n", "2", "--dist", "loadgroup", "-v",
                          str(tmp_path)], capture_output=True, text=True, timeout=120, cwd=tmp_path,
                         env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}, check=False)
    assert run.returncode == 0, run.stdout + run.stderr
    ran = re.findall(r"\[(gw\d)\] \[ *\d+%\] PASSED (\S+)", run.stdout)
    assert len(ran) == 12, run.stdout
    grouped = {worker for worker, test in ran if "test_grouped" in test}
    assert len(grouped) == 1, f"the group ran on {sorted(grouped)}:\n{run.stdout}"
    assert all(test.endswith("@libvirt") for _worker, test in ran if "test_grouped" in test)
    assert not any("@" in test for _worker, test in ran if "test_free" in test)
