# Copyright (c) 2026 cpucompat.cluster contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The engine as the filters see it: facts in, report dicts out, through the typed values in between."""

from __future__ import annotations

from typing import Any

from ansible_collections.cpucompat.cluster.plugins.module_utils._baseline import Baseline, BaselineOptions, baseline_of
from ansible_collections.cpucompat.cluster.plugins.module_utils._baseline import compare as _compare
from ansible_collections.cpucompat.cluster.plugins.module_utils._hostcpu import HostCpu


def baseline(hosts: Any, opts: BaselineOptions | None = None) -> dict[str, Any]:
    """``cpu_baseline``: the baseline of {name: facts} as its report dict."""
    return baseline_of(hosts, opts).to_dict()


def compare(cpu: Any, name: str, facts: Any) -> dict[str, Any]:
    """``cpu_compare``: one host (by its facts) against a CPU definition dict."""
    return _compare(Baseline.from_dict(cpu), HostCpu.from_facts(name, facts)).to_dict()
