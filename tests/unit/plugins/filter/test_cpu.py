# Copyright (c) 2026 cpucompat.cluster contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The filters as Ansible calls them: native data in, native data out, AnsibleFilterError naming what is wrong."""

from __future__ import annotations

import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.cpucompat.cluster.plugins.filter import cpu
from utils.recordings import facts_of

GOLD, BROADWELL = facts_of("x86_64-xeon-gold-6130"), facts_of("x86_64-xeon-e5-2650-v4")
ARM = facts_of("aarch64-unidentified-nosve-qemu-8.2.0")


def test_every_filter_is_registered() -> None:
    assert set(cpu.FilterModule().filters()) == {
        "cpu_summary", "cpu_baseline", "cpu_compare", "libvirt_cpu_xml", "cpu_report_markdown", "cpu_expansion_plan",
        "cpu_migration_matrix", "cpu_domain_cpus", "cpu_report_html", "cpu_moves", "cpu_observation_plan", "cpu_run_groups"}


def test_the_observation_plan_gives_each_target_the_domains_cpu_as_its_source_runs_it() -> None:
    """A bare domain name found on its source, a group target expanded to its hosts (the source itself left out)."""
    results = {"hv1": [{"item": {"name": "web1", "cpu_xml": "<cpu>persistent</cpu>", "live_cpu_xml": "<cpu>live</cpu>"},
                        "observation": {"machine": "pc-q35-7.2"}},
                       {"item": {"name": "db"}, "msg": "failed", "skipped": False}]}
    plan = cpu.cpu_observation_plan(results, [{"domain": "web1", "target": "rack"}], {"rack": ["hv1", "hv2", "hv3"]})
    assert plan == [{"key": "hv1/web1", "target": t, "cpu_xml": "<cpu>live</cpu>", "machine": "pc-q35-7.2"} for t in ("hv2", "hv3")]
    assert cpu.cpu_observation_plan(results, [{"domain": "db", "target": "hv2"}], {}) == [], "no observation on its source"


@pytest.mark.parametrize("text, moves", [
    ("web1:hv2", [{"domain": "web1", "target": "hv2"}]),
    (" hv1/web1:hv2 , db:rack-3 ", [{"domain": "hv1/web1", "target": "hv2"}, {"domain": "db", "target": "rack-3"}]),
])
def test_the_gate_moves_parse(text: str, moves: list) -> None:
    assert cpu.cpu_moves(text) == moves


@pytest.mark.parametrize("text", ["web1", "web1:", ":hv2", "a/b/c:hv2", "web 1:hv2", "", "web1:hv2;rm"])
def test_malformed_moves_are_refused_naming_them(text: str) -> None:
    with pytest.raises(AnsibleFilterError, match="cpu_moves: cpucompat_migrate"):
        cpu.cpu_moves(text)


def test_baseline_compare_and_xml_round_trip() -> None:
    base = cpu.cpu_baseline({"gold": GOLD, "bdw": BROADWELL}, exclude_features=["avx2"])
    assert isinstance(base, dict) and base["excluded"] == ["avx2"] and "avx2" not in base["features"]
    verdict = cpu.cpu_compare(base, GOLD, "gold")
    assert verdict["host"] == "gold" and verdict["runnable"] is True and verdict["result"] == "superset"
    xml = cpu.libvirt_cpu_xml(base)
    assert xml.startswith("<cpu mode='custom' match='exact' check='full'>") and "name='avx2'" in xml
    assert cpu.cpu_summary(GOLD, "gold")[0].startswith("gold: x86_64 GenuineIntel")


def test_an_aarch64_target_without_its_identity_is_named_in_the_matrix() -> None:
    out = cpu.cpu_migration_matrix({}, {"arm": ARM})
    assert "arm" in out["target_problems"] and "do not show the host's arm64 identity" in out["target_problems"]["arm"]


@pytest.mark.parametrize("call, message", [
    (lambda: cpu.cpu_baseline({"gold": GOLD, "new": None}), "cpu_baseline: host new has no cpucompat facts"),
    (lambda: cpu.cpu_baseline({"gold": GOLD}, require_features="avx512f"), "require_features must be a list of feature names"),
    (lambda: cpu.cpu_compare({"features": ["sse2", "<x/>"]}, GOLD, "gold"), "'<x/>' is not a valid CPU feature name"),
    (lambda: cpu.cpu_compare({"model": None, "features": []}, {"schema_version": 9}, "hv9"), "host hv9: facts have schema_version 9"),
    (lambda: cpu.libvirt_cpu_xml("not a baseline"), "libvirt_cpu_xml: libvirt_cpu_xml input: expected a guest CPU"),
    (lambda: cpu.libvirt_cpu_xml(cpu.cpu_baseline({"arm": ARM})), "QEMU does not report which named aarch64 CPU models run"),
    (lambda: cpu.cpu_expansion_plan({"gold": GOLD}, {"gold": GOLD}), "both in the cluster and as candidates: gold"),
    (lambda: cpu.cpu_expansion_plan([], {}), "current and candidates must be mappings"),
    (lambda: cpu.cpu_report_markdown({"schema": "other"}), "not a cpucompat report"),
    (lambda: cpu.cpu_summary({}, "hv1"), "hv1: not cpucompat facts"),
    (lambda: cpu.cpu_domain_cpus([]), "expected a mapping of host name"),
], ids=["baseline-missing", "baseline-option", "compare-name", "compare-schema", "xml-input", "xml-aarch64",
        "plan-overlap", "plan-type", "markdown", "summary", "domain-cpus"])
def test_bad_input_is_named(call, message: str) -> None:
    with pytest.raises(AnsibleFilterError, match=message):
        call()


def test_expansion_plan_and_matrix() -> None:
    plan = cpu.cpu_expansion_plan({"gold": GOLD}, {"bdw": BROADWELL}, fail_on="lowers_baseline")
    assert plan["kind"] == "expansion" and plan["verdict"]["ok"] is False and "avx512f" in plan["delta"]["features_lost"]
    xml = cpu.libvirt_cpu_xml(cpu.cpu_baseline({"gold": GOLD}))
    domains = {"gold": [{"name": "vm", "cpu_xml": xml, "live_cpu_xml": None}]}
    assert cpu.cpu_domain_cpus(domains) == [xml]
    matrix = cpu.cpu_migration_matrix(domains, {"gold": GOLD, "bdw": BROADWELL})
    assert matrix["matrix"]["gold/vm"]["gold"]["own_host"] is True and matrix["matrix"]["gold/vm"]["bdw"]["ok"] is False
    assert "| gold/vm |" in cpu.cpu_report_markdown(matrix)


@pytest.mark.parametrize("given, moves", [
    ("hv1/db\\:1:hv3", [{"domain": "hv1/db:1", "target": "hv3"}]),
    ("a\\,b:hv4,web1:hv2", [{"domain": "a,b", "target": "hv4"}, {"domain": "web1", "target": "hv2"}]),
    (["web1:hv2", {"domain": "hv1/a:b", "target": "hv3"}], [{"domain": "web1", "target": "hv2"}, {"domain": "hv1/a:b", "target": "hv3"}]),
])
def test_a_colon_or_comma_in_a_domain_name_is_quoted_or_given_as_a_list(given, moves) -> None:
    """issue 29: a domain with ':' in its name could not be named in cpucompat_migrate."""
    assert cpu.cpu_moves(given) == moves


@pytest.mark.parametrize("bad", ["db:1:hv3", "hv1/a/b:hv2", "$(x):hv", [{"domain": "a", "target": "b c"}], []])
def test_ambiguous_or_bad_moves_are_refused(bad) -> None:
    with pytest.raises(Exception, match="cpucompat_migrate"):
        cpu.cpu_moves(bad)


def _facts(probed_at: float, schema: int = 5, mode: str = "spawn") -> dict:
    return {"schema_version": schema, "probe": {"probed_at": probed_at, "mode": mode}}


def test_run_groups_decide_each_hosts_work_once_for_the_group() -> None:
    """Fresh facts skip the probe; stale, older-schema, future-dated or forced ones are due; a socket-probed host is not
    observed unless probed now; hosts with nothing to do are left out; settings come as inventory strings."""
    now = 10_000.0
    hostvars = {
        "fresh": {"ansible_facts": {"cpucompat": _facts(now - 10)}, "cpucompat_probe_max_age": "60"},
        "stale": {"ansible_facts": {"cpucompat": _facts(now - 600)}, "cpucompat_probe_max_age": 60},
        "old-schema": {"ansible_facts": {"cpucompat": _facts(now - 10, schema=4)}, "cpucompat_probe_max_age": 60},
        "future": {"ansible_facts": {"cpucompat": _facts(now + 5)}, "cpucompat_probe_max_age": 60},
        "forced": {"ansible_facts": {"cpucompat": _facts(now - 10)}, "cpucompat_probe_max_age": 60, "cpucompat_probe_force": "yes"},
        "socket": {"ansible_facts": {"cpucompat": _facts(now - 10, mode="socket")}, "cpucompat_probe_max_age": 60},
        "no-facts": {},
        "idle": {"ansible_facts": {"cpucompat": _facts(now - 10, mode="socket")}, "cpucompat_probe_max_age": 60,
                 "cpucompat_deploy_enabled": "false"},
        "no-age": {"ansible_facts": {"cpucompat": _facts(now - 10)}},
    }
    due, deploy, observe = "cpucompat_probe_due", "cpucompat_deploy_hosts", "cpucompat_observe_hosts"
    assert cpu.cpu_run_groups(list(hostvars), hostvars, now) == [
        ["fresh", [deploy, observe]], ["stale", [due, deploy, observe]], ["old-schema", [due, deploy, observe]],
        ["future", [due, deploy, observe]], ["forced", [due, deploy, observe]], ["socket", [deploy]],
        ["no-facts", [due, deploy, observe]], ["no-age", [due, deploy, observe]]]


def test_run_groups_name_the_host_whose_setting_is_wrong() -> None:
    with pytest.raises(AnsibleFilterError, match="cpu_run_groups: host hv2: .*maybe"):
        cpu.cpu_run_groups(["hv1", "hv2"], {"hv1": {}, "hv2": {"cpucompat_probe_force": "maybe"}}, 1.0)
    with pytest.raises(AnsibleFilterError, match="expected a list of host names"):
        cpu.cpu_run_groups("hv1", {}, 1.0)
