# Copyright (c) 2026 cpucompat.cluster contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The migration matrix over recorded real hosts."""

from __future__ import annotations

import pytest

from ansible_collections.cpucompat.cluster.plugins.module_utils.engine._baseline import baseline_of
from ansible_collections.cpucompat.cluster.plugins.module_utils.cpu._libvirt_map import MapRegistry
from ansible_collections.cpucompat.cluster.plugins.module_utils.probe._libvirt import load_cpu_map
from ansible_collections.cpucompat.cluster.plugins.module_utils.render._libvirt import render
from ansible_collections.cpucompat.cluster.plugins.module_utils.reports._planning import domain_cpus, migration_matrix
from ansible_collections.cpucompat.cluster.plugins.module_utils.reports._markdown import report_markdown
from utils.recordings import facts_of


@pytest.fixture(scope="module")
def cpu_map():
    return load_cpu_map()


def test_matrix_names_blocking_features_and_disagreements(cpu_map) -> None:
    gold = facts_of("x86_64-xeon-gold-6130")
    broadwell = facts_of("x86_64-xeon-e5-2650-v4")
    skylake_cpu = render(baseline_of({"gold": gold}).guest).xml
    common_cpu = render(baseline_of({"gold": gold, "bdw": broadwell}).guest).xml
    domains = {"gold": [{"name": "big", "cpu_xml": skylake_cpu, "live_cpu_xml": None},
                        {"name": "small", "cpu_xml": "<cpu mode='host-model'/>", "live_cpu_xml": common_cpu},
                        {"name": "pt", "cpu_xml": "<cpu mode='host-passthrough'/>", "live_cpu_xml": None}]}
    assert domain_cpus(domains) == [skylake_cpu, common_cpu, "<cpu mode='host-passthrough'/>"]
    libvirt = {"bdw": {skylake_cpu: "superset", common_cpu: "superset"}}
    report = migration_matrix(domains, {"gold": gold, "bdw": broadwell}, MapRegistry(), libvirt,
                              [{"domain": "gold/big", "target": "bdw"}, {"domain": "gold/small", "target": "bdw"}])
    big = report["matrix"]["gold/big"]
    assert big["gold"] == {"ok": None, "own_host": True, "why": "its own host: no migration"}, "no move to its own host"
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
    report = migration_matrix({}, {"t": facts_of("x86_64-core-i7-8700"), "broken": None}, MapRegistry(), {},
                              [{"domain": "h/nope", "target": "t"}])
    assert report["target_problems"] == {"broken": "no cpucompat facts"}
    assert report["verdict"]["reasons"] == ["h/nope -> t: unknown domain or target"]


def test_beyond_cpuid_hyperv_and_tsc(cpu_map) -> None:
    """Hyper-V enlightenments a target lacks, hv-passthrough, and a TSC the target cannot give: the cell says no."""
    genoa = facts_of("x86_64-epyc-9654-qemu-10.0.0")
    cpu = render(baseline_of({"genoa": genoa}).guest).xml
    fast = dict(genoa, tsc={"frequency": 2400000000, "scaling": True})
    slow = dict(genoa, tsc={"frequency": 2000000000, "scaling": False})
    domains = {"fast": [
        {"name": "windows", "cpu_xml": cpu, "hyperv": {"mode": "custom", "features": ["relaxed", "evmcs"]}},
        {"name": "passthrough", "cpu_xml": cpu, "hyperv": {"mode": "passthrough", "features": []}},
        {"name": "fixed-tsc", "cpu_xml": cpu, "tsc_frequency": 2400000000},
        {"name": "plain", "cpu_xml": cpu},
    ]}
    report = migration_matrix(domains, {"fast": fast, "slow": slow}, MapRegistry(), {},
                              [{"domain": "fast/fixed-tsc", "target": "slow"}])
    windows = report["matrix"]["fast/windows"]["slow"]
    assert windows["ok"] is False and "hv-evmcs" in windows["beyond_cpuid"][0] and "hv-relaxed" not in windows["beyond_cpuid"][0]
    assert "not migrate" in report["matrix"]["fast/passthrough"]["slow"]["beyond_cpuid"][0]
    assert report["matrix"]["fast/fixed-tsc"]["fast"]["own_host"] is True, "no move to its own host"
    assert "cannot scale" in report["matrix"]["fast/fixed-tsc"]["slow"]["beyond_cpuid"][0]
    assert report["matrix"]["fast/plain"]["slow"]["ok"] is True
    assert report["verdict"]["reasons"] == [f"fast/fixed-tsc -> slow: {report['matrix']['fast/fixed-tsc']['slow']['beyond_cpuid'][0]}"]
