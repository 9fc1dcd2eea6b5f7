# Copyright (c) 2026 cpucompat.cluster contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The engine as the filters see it: facts in, report dicts out, through the typed values in between."""

from __future__ import annotations

from typing import Any

from ansible_collections.cpucompat.cluster.plugins.module_utils.engine._baseline import Baseline, BaselineOptions, baseline_of
from ansible_collections.cpucompat.cluster.plugins.module_utils.engine._baseline import compare as _compare
from ansible_collections.cpucompat.cluster.plugins.module_utils.engine._hostcpu import HostCpu
from ansible_collections.cpucompat.cluster.plugins.module_utils.probe._facts import read_aliases, read_models


def baseline(hosts: Any, opts: BaselineOptions | None = None) -> dict[str, Any]:
    """``cpu_baseline``: the baseline of {name: facts} as its report dict."""
    return baseline_of(hosts, opts).to_dict()


def compare(cpu: Any, name: str, facts: Any) -> dict[str, Any]:
    """``cpu_compare``: one host (by its facts) against a CPU definition dict."""
    return _compare(Baseline.from_dict(cpu), HostCpu.from_facts(name, facts)).to_dict()


def model_view(facts: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """One record per named model (aliases included) from the facts' flat model table, for tests to read."""
    aliases = read_aliases(facts, "model_view")
    models = read_models(facts, "model_view") or {}
    unnamed = facts.get("unnamed_blockers") or {}
    expanded = facts.get("model_features") or {}
    out = {}
    for name in [*models, *aliases]:
        blockers = models.get(aliases.get(name, name))
        runs = None if blockers is None else (blockers == [] and not unnamed.get(aliases.get(name, name)))
        out[name] = {"runnable": runs, "unavailable_features": None if name in aliases else blockers,
                     "alias_of": aliases.get(name), "unnamed_blockers": unnamed.get(name),
                     "features": expanded.get(name)}
    return out
