# Copyright (c) 2026 cpucompat.cluster contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The migration matrix over recorded real hosts."""

from __future__ import annotations

import pytest

from ansible_collections.cpucompat.cluster.plugins.module_utils._baseline import baseline_of
from ansible_collections.cpucompat.cluster.plugins.module_utils._libvirt_map import load_cpu_map
from ansible_collections.cpucompat.cluster.plugins.module_utils._libvirt_xml import render
from ansible_collections.cpucompat.cluster.plugins.module_utils._planning import domain_cpus, migration_matrix
from ansible_collections.cpucompat.cluster.plugins.module_utils._report import report_markdown
from utils.recordings import facts_of


@pytest.fixture(scope="module")
def cpu_map():
    return load_cpu_map()


def test_matrix_names_blocking_features_and_disagreements(cpu_map) -> None:
    gold = facts_of("x86_64-xeon-gold-6130")
    broadwell = facts_of("x86_64-xeon-e5-2650-v4")
    skylake_cpu = render(baseline_of({"gold": gold}), cpu_map).xml
    common_cpu = render(baseline_of({"gold": gold, "bdw": broadwell}), cpu_map).xml
    domains = {"gold": [{"name": "big", "cpu_xml": skylake_cpu, "live_cpu_xml": None},
                        {"name": "small", "cpu_xml": "<cpu mode='host-model'/>", "live_cpu_xml": common_cpu},
                        {"name": "pt", "cpu_xml": "<cpu mode='host-passthrough'/>", "live_cpu_xml": None}]}
    assert domain_cpus(domains) == [skylake_cpu, common_cpu, "<cpu mode='host-passthrough'/>"]
    libvirt = {"bdw": {skylake_cpu: "superset", common_cpu: "superset"}}
    report = migration_matrix(domains, {"gold": gold, "bdw": broadwell}, cpu_map, libvirt,
                              [{"domain": "gold/big", "target": "bdw"}, {"domain": "gold/small", "target": "bdw"}])
    big = report["matrix"]["gold/big"]
    assert big["gold"]["ok"] is True
    assert big["bdw"]["ok"] is False and "avx512f" in big["bdw"]["blocking"]
    assert big["bdw"]["disagreement"] is True, "libvirt says superset, we say no: reported, never hidden"
    assert report["disagreements"] == [{"domain": "gold/big", "target": "bdw", "ours": False, "libvirt": "superset"}]
    assert report["matrix"]["gold/small"]["bdw"]["ok"] is True, "a running host-model domain is judged by its live CPU"
    assert report["matrix"]["gold/pt"]["bdw"]["ok"] is None
    assert report["verdict"]["ok"] is False
    assert report["verdict"]["reasons"][0].startswith("gold/big -> bdw: target lacks") and "avx512f" in report["verdict"]["reasons"][0]
    md = report_markdown(report)
    assert "| gold/big |" in md and "DISAGREES" in md and "NOT all possible" in md


def test_requested_pairs_that_do_not_exist(cpu_map) -> None:
    report = migration_matrix({}, {"t": facts_of("x86_64-core-i7-8700"), "broken": None}, cpu_map, {},
                              [{"domain": "h/nope", "target": "t"}])
    assert report["target_problems"] == {"broken": "no cpucompat facts"}
    assert report["verdict"]["reasons"] == ["h/nope -> t: unknown domain or target"]
