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
    "contract": {"engine", "render", "deploy", "cpu"},
    "reports": {"contract", "engine", "render", "probe", "cpu"},
    "deploy": {"render"},
    "verbs": {"reports", "contract", "engine", "render", "probe", "deploy", "cpu"},  # the verbs, above what they build on
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


ALL_FILES = sorted(glob.glob(os.path.join(MODULE_UTILS, "**", "*.py"), recursive=True))
# The renderers of reports read a report dict; they never import a verb (a verb writes contracts).
RENDERERS = ("reports._markdown", "reports._html", "reports._html_templates", "reports._header", "reports._schema")


def _name(path: str) -> str:
    """``reports/_html.py`` -> ``reports._html``; a package's ``__init__.py`` -> the package."""
    name = os.path.relpath(path, MODULE_UTILS)[:-3].replace(os.sep, ".")
    return name[:-len(".__init__")] if name.endswith(".__init__") else name


MODULES = {_name(p): p for p in ALL_FILES}


def _imports(path: str) -> set[str]:
    """The module_utils modules ``path`` imports, at its top or inside a function (a late import still closes a circle)."""
    package = _name(path).split(".")[:-1] if not path.endswith("__init__.py") else _name(path).split(".")
    with open(path, encoding="utf-8") as fh:
        tree = ast.parse(fh.read())
    found = set()
    for node in ast.walk(tree):
        if not isinstance(node, ast.ImportFrom):
            continue
        if node.level:
            base = package[:len(package) - node.level + 1] + (node.module.split(".") if node.module else [])
        elif node.module and ".plugins.module_utils." in node.module:
            base = node.module.split(".plugins.module_utils.")[1].split(".")
        else:
            continue
        for alias in node.names:
            candidate = ".".join(base + [alias.name])
            found.add(candidate if candidate in MODULES else ".".join(base))
    return found & set(MODULES) - {_name(path)}


GRAPH = {name: _imports(path) for name, path in MODULES.items()}


def _circle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import circle of ``graph`` as a path (its first module again at its end), or None."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return path[path.index(nxt):] + [nxt]
            if nxt not in state:
                found = visit(nxt)
                if found:
                    return found
        path.pop()
        state[node] = 2
        return None

    for start in sorted(graph):
        if start not in state:
            found = visit(start)
            if found:
                return found
    return None


def test_no_import_circle_among_module_utils() -> None:
    circle = _circle(GRAPH)
    assert circle is None, "module_utils import circle: " + " -> ".join(circle or [])


def test_the_circle_finder_finds_a_circle() -> None:
    assert _circle({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == ["a", "b", "c", "a"]
    assert _circle({"a": {"b"}, "b": set()}) is None
    assert GRAPH["reports._files"] >= {"reports._html", "reports._markdown", "_atomic"}
    assert GRAPH["reports._html"] >= {"reports._schema", "reports._markdown"} and "reports._cluster" in GRAPH["verbs._reading"]


def _reached(start: str) -> set[str]:
    seen, todo = set(), [start]
    while todo:
        for nxt in GRAPH.get(todo.pop(), ()):
            if nxt not in seen:
                seen.add(nxt)
                todo.append(nxt)
    return seen


@pytest.mark.parametrize("renderer", RENDERERS)
def test_a_renderer_does_not_import_the_verbs(renderer: str) -> None:
    assert renderer in MODULES, f"{renderer} moved: update RENDERERS and docs/architecture.md"
    verbs = {m for m in MODULES if m.startswith("verbs.")}
    assert verbs, "the verbs moved: update this test"
    assert not verbs & _reached(renderer), f"{renderer} imports a verb (directly or through another module)"


def test_the_atomic_writer_imports_the_standard_library_only() -> None:
    """The atomic writer runs on the managed host too: it imports the standard library only."""
    assert GRAPH["_atomic"] == set() and _parts_imported(MODULES["_atomic"]) == set()


# Errors named by layer: each part raises the errors of what it does, never the catch-all of another part. Adapters
# catch CpuCompatError and turn any of them into a message; the layer of the error says where to look.
RAISES = {
    "render": {"RenderError", "InexactError", "InputError", "CpuXmlError"},
    "contract": {"ContractError", "StoreError", "ObservationError", "_conflict", "TierError", "PowerCycleError"},
    "deploy": {"LibvirtError", "SectionConfigError", "ValueError", "_libvirt_error"},
}
BASELINE_ERROR_PARTS = {"engine", "reports", "cpu"}


def _raised(path: str) -> set[str]:
    names = set()
    with open(path, encoding="utf-8") as handle:
        tree = ast.parse(handle.read(), path)
    for node in ast.walk(tree):
        if isinstance(node, ast.Raise) and node.exc is not None:
            exc = node.exc.func if isinstance(node.exc, ast.Call) else node.exc
            names.add(exc.id if isinstance(exc, ast.Name) else getattr(exc, "attr", type(exc).__name__))
    return names


@pytest.mark.parametrize("part", sorted(RAISES))
def test_a_part_raises_the_errors_of_its_layer(part: str) -> None:
    for path in sorted(glob.glob(os.path.join(MODULE_UTILS, part, "*.py"))):
        assert _raised(path) <= RAISES[part], f"{path} raises {sorted(_raised(path) - RAISES[part])}"


def test_baseline_error_means_no_baseline() -> None:
    """BaselineError says the hosts admit no baseline; input, facts, maps and renderings have errors of their own."""
    for path in sorted(glob.glob(os.path.join(MODULE_UTILS, "*", "*.py"))):
        part = os.path.basename(os.path.dirname(path))
        if part not in BASELINE_ERROR_PARTS:
            assert "BaselineError" not in _raised(path), path
    assert "BaselineError" not in _raised(os.path.join(MODULE_UTILS, "cpu", "_libvirt_map.py"))
    assert "BaselineError" not in _raised(os.path.join(MODULE_UTILS, "engine", "_hostcpu.py"))
    assert "BaselineError" in _raised(os.path.join(MODULE_UTILS, "engine", "_cluster.py"))  # the rule sees raises at all


def test_no_function_over_sixty_lines() -> None:
    """The algorithms stay readable: no function of module_utils is longer than 60 lines (docstring included)."""
    long = []
    for path in sorted(glob.glob(os.path.join(MODULE_UTILS, "**", "*.py"), recursive=True)):
        with open(path, encoding="utf-8") as handle:
            tree = ast.parse(handle.read(), path)
        long += [f"{os.path.relpath(path, MODULE_UTILS)}:{node.name} ({node.end_lineno - node.lineno + 1} lines)"
                 for node in ast.walk(tree) if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))
                 and (node.end_lineno or node.lineno) - node.lineno + 1 > 60]
    assert not long, ", ".join(long)
