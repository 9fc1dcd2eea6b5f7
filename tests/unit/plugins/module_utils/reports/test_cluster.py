# Copyright (c) 2026 cpucompat.cluster contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The cluster view and its reports, over recorded hosts."""

from __future__ import annotations

import json
import os

import pytest

from ansible_collections.cpucompat.cluster.plugins.module_utils.engine._baseline import BaselineOptions
from ansible_collections.cpucompat.cluster.plugins.module_utils.reports._cluster import cluster_fact, cluster_view, digest
from ansible_collections.cpucompat.cluster.plugins.module_utils.engine._group import group_facts
from ansible_collections.cpucompat.cluster.plugins.module_utils._errors import CpuCompatError
from ansible_collections.cpucompat.cluster.plugins.module_utils.cpu._libvirt_map import DEFAULT_CPU_MAP, MapRegistry
from ansible_collections.cpucompat.cluster.plugins.module_utils.reports._files import write_reports
from ansible_collections.cpucompat.cluster.plugins.module_utils.reports._markdown import report_markdown
from utils.recordings import facts_of

INTEL = ["x86_64-xeon-gold-6130", "x86_64-xeon-e5-2650-v4", "x86_64-core-i7-8700"]


@pytest.fixture(scope="module")
def cpu_map():
    return DEFAULT_CPU_MAP


def test_complete_group(cpu_map) -> None:
    view = cluster_view(group_facts({n: facts_of(n) for n in INTEL}), BaselineOptions(), MapRegistry())
    assert view["complete"] and view["error"] is None
    assert view["by_vendor"] == {"GenuineIntel": sorted(INTEL)}
    assert view["qemu_versions"] == {"unknown": sorted(INTEL)}
    assert view["xml"].startswith("<cpu mode='custom'") and view["xml_details"]["model"]
    assert all(v["runnable"] for v in view["verdicts"].values())
    md = report_markdown(view)
    assert "## Baseline" in md and "## Features lost, and the hosts responsible" in md and "| avx512f |" in md


@pytest.mark.parametrize("facts, unreachable, probe_errors, key", [
    (None, [], {}, "missing_facts"),
    ({"schema_version": 0}, [], {}, "other_schema"),
    ("ok", ["h-extra"], {}, "unreachable"),
    ("ok", [], {"h-extra": "cannot connect to QMP socket /x.sock"}, "probe_failed"),
])
def test_incomplete_group_is_named_and_not_baselined(cpu_map, facts, unreachable, probe_errors, key) -> None:
    hosts = {n: facts_of(n) for n in INTEL}
    hosts["h-extra"] = facts_of("x86_64-core-i7-2600") if facts == "ok" else facts
    view = cluster_view(group_facts(hosts, unreachable, probe_errors), BaselineOptions(), MapRegistry())
    assert view[key] == ["h-extra"] and view["complete"] is False
    assert view["baseline"] is None and "h-extra" in view["error"]
    partial = cluster_view(group_facts(hosts, unreachable, probe_errors), BaselineOptions(), MapRegistry(), allow_partial=True)
    assert partial["baseline"] is not None and "h-extra" not in partial["baseline"]["hosts"]
    assert "h-extra" in report_markdown(partial)


def test_engine_errors_land_in_the_view(cpu_map) -> None:
    view = cluster_view(group_facts({"amd": facts_of("x86_64-epyc-7502"), "intel": facts_of("x86_64-xeon-gold-6130")}), BaselineOptions(), MapRegistry())
    assert view["baseline"] is None and "different CPU vendors" in view["error"]
    assert "**Not computed:** hosts of different CPU vendors" in report_markdown(view)


def test_reports_are_written_atomically_and_left_alone_when_unchanged(tmp_path, cpu_map) -> None:
    view = cluster_view(group_facts({n: facts_of(n) for n in INTEL}), BaselineOptions(), MapRegistry())
    paths = write_reports(view, str(tmp_path), "baseline")
    assert [os.path.basename(p) for p in paths] == ["baseline.json", "baseline.md", "baseline.html"]
    assert json.loads((tmp_path / "baseline.json").read_text())["schema"] == "cpucompat.report/1"
    stamps = [os.stat(p).st_mtime_ns for p in paths]
    write_reports(view, str(tmp_path), "baseline")
    assert [os.stat(p).st_mtime_ns for p in paths] == stamps
    assert not [p for p in os.listdir(tmp_path) if p.startswith(".")], "no temporary files left"


def test_unknown_report_kind() -> None:
    with pytest.raises(CpuCompatError, match="not a cpucompat report"):
        report_markdown({"kind": "baseline", "schema": "x"})


@pytest.mark.parametrize("missing", [0, 1000], ids=["complete", "1000-hosts-missing"])
def test_cluster_fact_does_not_grow_with_the_group(cpu_map, missing: int) -> None:
    """What every host keeps is the same size for 3 hosts or 3,000: per-host parts stay in the report."""
    sizes = []
    for copies in (1, 1000):
        facts = {f"{n}-{i}": facts_of(n) for n in INTEL for i in range(copies)}
        facts.update({f"gone-{i:04d}": None for i in range(missing * copies // 1000)})
        view = cluster_view(group_facts(facts), BaselineOptions(), MapRegistry())
        fact = cluster_fact(view, "hypervisors", sorted(facts), "/srv/reports/baseline.json")
        assert fact["hosts"] == len(facts) and fact["report_digest"] == digest(view)
        assert (fact["xml"] is None) == bool(missing) and fact["complete"] == (not missing)
        sizes.append(len(json.dumps(fact)))
    # Complete: only the host count's digits differ. Missing hosts: named in the report, the fact's error is cut short.
    assert abs(sizes[1] - sizes[0]) <= 8 if not missing else sizes[1] <= sizes[0] + 400, sizes
    assert max(sizes) < 2048


def test_digest_is_canonical() -> None:
    assert digest({"b": [1, 2], "a": "x"}) == digest({"a": "x", "b": [1, 2]}) != digest({"a": "x", "b": [2, 1]})


def test_unreadable_hosts_are_named(cpu_map) -> None:
    group = group_facts({n: facts_of(n) for n in INTEL} | {"broken": None},
                        unreadable={"broken": "ConnectionError: Error 111 connecting to 127.0.0.1:6379"})
    view = cluster_view(group, BaselineOptions(), MapRegistry())
    assert view["unreadable"] == ["broken"] and view["missing_facts"] == [] and view["baseline"] is None
    assert view["unreadable_errors"] == {"broken": "ConnectionError: Error 111 connecting to 127.0.0.1:6379"}
    assert "broken" in view["error"] and "cannot be read" in group.why("broken")
    assert cluster_view(group, BaselineOptions(), MapRegistry(), allow_partial=True)["baseline"] is not None
