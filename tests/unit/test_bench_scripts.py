# Copyright (c) 2026 cpucompat.cluster contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The benchmark scripts are not run by make test; at least every name they use from the collection must exist."""

from __future__ import annotations

import ast
import glob
import importlib
import os

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SCRIPTS = sorted(glob.glob(os.path.join(ROOT, "bench", "*.py")))


def _collection_uses(tree: ast.Module) -> set[tuple[str, str]]:
    """(module_utils module, attribute) pairs a script uses, as in ``probe._probe.find_binary``."""
    imported = {alias.asname or alias.name: f"{node.module.rpartition('plugins.module_utils')[2].lstrip('.')}.{alias.name}".lstrip(".")
                for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)
                and "plugins.module_utils" in (node.module or "") and not (node.module or "").split(".")[-1].startswith("_")
                for alias in node.names}
    return {(imported[node.value.id], node.attr) for node in ast.walk(tree)
            if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id in imported}


@pytest.mark.parametrize("path", SCRIPTS, ids=os.path.basename)
def test_bench_script_names_exist(path: str) -> None:
    with open(path, encoding="utf-8") as fh:
        tree = ast.parse(fh.read(), path)
    uses = _collection_uses(tree)
    for module, attr in sorted(uses):
        mod = importlib.import_module(f"ansible_collections.cpucompat.cluster.plugins.module_utils.{module}")
        assert hasattr(mod, attr), f"{os.path.basename(path)} uses {module}.{attr}, which does not exist"


def test_the_check_sees_the_scripts() -> None:
    assert len(SCRIPTS) >= 4
    with open(os.path.join(ROOT, "bench", "bench_probe.py"), encoding="utf-8") as fh:
        assert ("probe._fingerprint", "kvm_usable") in _collection_uses(ast.parse(fh.read()))
