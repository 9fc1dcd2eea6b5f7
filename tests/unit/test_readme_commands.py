# Copyright (c) 2026 cpucompat.cluster contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The README's two commands are what CI runs, in the README's order, on a fresh clone.

CI (``.ci/run``) runs the main job and then the tests exactly as the README lists them, so a suite that depends on what
the main job leaves behind (its demo domain, its contract store, its reports) fails there. These tests keep the three
files in step; the run itself is CI's.
"""

from __future__ import annotations

import os
import re

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _read(*parts: str) -> str:
    with open(os.path.join(ROOT, *parts), encoding="utf-8") as fh:
        return fh.read()


def _readme_make_commands() -> list[str]:
    """The ``make`` commands of the README's fenced ``sh`` blocks, in order, comments stripped."""
    blocks = re.findall(r"```sh\n(.*?)```", _read("README.md"), re.S)
    return [line.split("#", 1)[0].strip() for block in blocks for line in block.splitlines()
            if line.strip().startswith("make ")]


def test_ci_runs_the_readme_main_job_then_the_tests_in_the_readme_order() -> None:
    readme = _readme_make_commands()
    assert readme.index("make run") < readme.index("make test"), readme
    ci = [line.strip() for line in _read(".ci", "run").splitlines() if line.strip().startswith("make ")]
    assert ci == ["make run", "make test"], ci


def test_both_commands_do_the_whole_set_up_first() -> None:
    makefile = _read("Makefile")
    for target in ("run", "test"):
        deps = re.search(rf"^{target}:(.*)$", makefile, re.M)
        assert deps is not None, f"Makefile has no {target} target"
        assert "setup" in deps.group(1).split(), f"make {target} does not depend on setup"


def test_the_main_job_keeps_its_own_contract_store_and_cache() -> None:
    """The demo never reads or writes the operator's store (~/.local/share/cpucompat) or fact cache (.cache/facts)."""
    demo = _read("tools", "demo.sh")
    assert re.search(r"^export XDG_DATA_HOME=\$DEMO/", demo, re.M), "the demo's contract store is not its own"
    assert "DEMO=$ROOT/.cache/demo" in demo
    assert re.search(r"^export ANSIBLE_CACHE_PLUGIN_CONNECTION=\$DEMO/", demo, re.M), "the demo's fact cache is not its own"
