# Copyright (c) 2026 cpucompat.cluster contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The parts of module_utils import only the parts below them (docs/architecture.md); a renderer never the engine."""

from __future__ import annotations

import ast
import glob
import os

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
MODULE_UTILS = os.path.join(ROOT, "plugins", "module_utils")
BELOW = {
    "cpu": set(),
    "probe": {"cpu"},
    "engine": {"probe", "cpu"},
    "render": {"cpu"},
    "contract": {"engine", "render", "cpu"},
    "reports": {"contract", "engine", "render", "probe", "cpu"},
    "deploy": {"render"},
}
FILES = sorted(glob.glob(os.path.join(MODULE_UTILS, "*", "_*.py")))


def _parts_imported(path: str) -> set[str]:
    with open(path, encoding="utf-8") as fh:
        tree = ast.parse(fh.read())
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            if node.level == 2 and node.module and "." in node.module:
                found.add(node.module.split(".")[0])
            elif node.level == 2 and node.module in BELOW:
                found.add(node.module)
            elif node.level == 0 and node.module and ".module_utils." in node.module:
                found.add(node.module.split(".module_utils.")[1].split(".")[0])
        if isinstance(node, ast.Import) and any(a.name.startswith("ansible") for a in node.names):
            found.add("ansible")
    return found


@pytest.mark.parametrize("path", FILES, ids=lambda p: os.path.relpath(p, MODULE_UTILS))
def test_a_part_imports_only_the_parts_below_it(path: str) -> None:
    part = os.path.basename(os.path.dirname(path))
    assert part in BELOW, f"a new part {part}: add it to docs/architecture.md and this table"
    wrong = _parts_imported(path) - BELOW[part] - {part, "_errors", "_common_args"}
    assert not wrong, f"{os.path.relpath(path, ROOT)} imports {sorted(wrong)}, which are not below {part}"


def test_the_table_sees_the_files() -> None:
    assert len(FILES) >= 30 and _parts_imported(os.path.join(MODULE_UTILS, "contract", "_admission.py")) >= {"engine", "render"}
