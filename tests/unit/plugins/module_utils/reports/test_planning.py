# Copyright (c) 2026 cpucompat.cluster contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Expansion planning over recorded real hosts."""

from __future__ import annotations

import pytest

from ansible_collections.cpucompat.cluster.plugins.module_utils.engine._baseline import BaselineOptions, baseline_of
from ansible_collections.cpucompat.cluster.plugins.module_utils._errors import InputError
from ansible_collections.cpucompat.cluster.plugins.module_utils.cpu._libvirt_map import MapRegistry
from ansible_collections.cpucompat.cluster.plugins.module_utils.probe._libvirt import load_cpu_map
from ansible_collections.cpucompat.cluster.plugins.module_utils.render._libvirt import render
from ansible_collections.cpucompat.cluster.plugins.module_utils.engine._hostcpu import host_cpus
from ansible_collections.cpucompat.cluster.plugins.module_utils.reports._planning import plan_expansion as _plan_expansion
from ansible_collections.cpucompat.cluster.plugins.module_utils.reports._markdown import report_markdown
from utils.recordings import facts_of

SKYLAKE = {"gold": facts_of("x86_64-xeon-gold-6130"), "platinum": facts_of("x86_64-xeon-platinum-9242")}


def plan_expansion(current: dict, candidates: dict, *args, **kwargs) -> dict:
    """The planner on facts, as the filter calls it."""
    return _plan_expansion(host_cpus(current), host_cpus(candidates), *args, **kwargs)


@pytest.fixture(scope="module")
def cpu_map():
    return load_cpu_map()


def test_candidate_that_lowers_the_baseline_names_features_and_domains(cpu_map) -> None:
    current_xml = render(baseline_of(SKYLAKE).guest).xml
    domains = {"gold": [{"name": "db1", "cpu_xml": current_xml},
                        {"name": "old", "cpu_xml": "<cpu mode='custom' match='exact'><model>Nehalem</model></cpu>"},
                        {"name": "pt", "cpu_xml": "<cpu mode='host-passthrough'/>"}]}
    plan = plan_expansion(SKYLAKE, {"broadwell": facts_of("x86_64-xeon-e5-2650-v4")}, domains, BaselineOptions(), MapRegistry(),
                          fail_on="lowers_baseline")
    cand = plan["candidates"]["broadwell"]
    assert cand["runs_current_baseline"] is False and "avx512f" in cand["missing_features"]
    assert "avx512f" in plan["delta"]["features_lost"]
    assert plan["delta"]["lost_because_of"]["avx512f"] == ["broadwell"]
    assert plan["domains"]["gold/db1"]["status"] == "must-change" and "avx512f" in plan["domains"]["gold/db1"]["lost_by_expansion"]
    assert plan["domains"]["gold/old"]["status"] == "unchanged"
    assert plan["domains"]["gold/pt"]["status"] == "follows-host"
    assert plan["verdict"]["ok"] is False and any("cannot run the current baseline" in r for r in plan["verdict"]["reasons"])
    md = report_markdown(plan)
    assert "broadwell" in md and "must change" in md and "avx512f" in md


def test_candidate_that_changes_nothing(cpu_map) -> None:
    current = {"gold": facts_of("x86_64-xeon-gold-6130"), "broadwell": facts_of("x86_64-xeon-e5-2650-v4")}
    plan = plan_expansion(current, {"platinum": facts_of("x86_64-xeon-platinum-9242")}, {}, BaselineOptions(), MapRegistry(),
                          fail_on="lowers_baseline")
    assert plan["candidates"]["platinum"]["runs_current_baseline"] is True
    assert plan["delta"]["features_lost"] == [] and plan["delta"]["model_changes"] is False
    assert plan["verdict"] == {"ok": True, "reasons": []}


def test_policy_never_and_vendor_mismatch(cpu_map) -> None:
    plan = plan_expansion(SKYLAKE, {"amd": facts_of("x86_64-epyc-7502")}, {}, BaselineOptions(), MapRegistry(), fail_on="never")
    assert "different CPU vendors" in plan["error"] and plan["verdict"]["ok"] is True
    strict = plan_expansion(SKYLAKE, {"amd": facts_of("x86_64-epyc-7502")}, {}, BaselineOptions(), MapRegistry())
    assert strict["verdict"]["ok"] is False


def test_bad_input(cpu_map) -> None:
    with pytest.raises(InputError, match="both in the cluster and as candidates: gold"):
        plan_expansion(SKYLAKE, {"gold": SKYLAKE["gold"]}, {}, BaselineOptions(), MapRegistry())
    with pytest.raises(InputError, match="fail_on must be one of"):
        plan_expansion(SKYLAKE, {}, {}, BaselineOptions(), MapRegistry(), fail_on="sometimes")


def test_options_say_what_each_way_costs_with_its_command(cpu_map) -> None:
    """Two candidates: an old Sandy Bridge that costs the cluster most, a Broadwell that costs less. The plan offers
    admitting all, admitting all but the costliest, a group of their own, each with the command that does it."""
    candidates = {"sandy": facts_of("x86_64-xeon-e5-2650"), "broadwell": facts_of("x86_64-xeon-e5-2650-v4")}
    plan = plan_expansion(SKYLAKE, candidates, {}, BaselineOptions(), MapRegistry(), fail_on="lowers_baseline")
    lost_all = set(plan["delta"]["features_lost"])
    without = plan["options"]["without"]
    assert "sandy" in without and without["sandy"]["error"] is None
    # leaving out sandy keeps what only sandy took away: strictly less lost, and nothing lost that joining all keeps
    assert set(without["sandy"]["features_lost"]) < lost_all
    assert "avx2" in lost_all and "avx2" not in without["sandy"]["features_lost"]
    own = plan["options"]["own_group"]
    assert own["error"] is None and own["model"].startswith("SandyBridge")
    md = report_markdown(plan)
    section = md.split("## Options", 1)[1]
    assert "**admit all 2 candidate(s)**" in section and "cpucompat_contract_action=lower" in section
    assert "**admit all but sandy**" in section and "**a group of their own**" in section
    assert "--limit broadwell,sandy" in section


def test_options_for_candidates_of_another_vendor(cpu_map) -> None:
    plan = plan_expansion(SKYLAKE, {"amd": facts_of("x86_64-epyc-7502")}, {}, BaselineOptions(), MapRegistry(), fail_on="never")
    assert plan["options"]["without"] == {}
    assert plan["options"]["own_group"]["model"].startswith("EPYC")
    section = report_markdown(plan).split("## Options", 1)[1]
    assert "admit all" not in section and "**a group of their own**: they share EPYC" in section


S390X = {"z14.2": facts_of("s390x-z14.2-qemu-4.0.0"), "gen15a": facts_of("s390x-gen15a-qemu-8.2.0")}


def test_s390x_domains_are_judged_by_qemus_comparison() -> None:
    """An s390x domain on the group's CPU stays runnable when an older candidate joins only if QEMU's comparison of its
    CPU with the joined CPU says identical or subset; otherwise it must change, naming QEMU's responsible properties."""
    current = {"gen15a": S390X["gen15a"]}
    own_xml = render(baseline_of(current).guest).xml
    z14_xml = render(baseline_of({"z14": facts_of("s390x-z14-qemu-3.0.0")}).guest).xml
    old_xml = "<cpu mode='custom' match='exact'><model>z13-base</model></cpu>"
    domains = {"gen15a": [{"name": "new", "cpu_xml": own_xml}, {"name": "old", "cpu_xml": old_xml},
                          {"name": "z14", "cpu_xml": z14_xml}, {"name": "pt", "cpu_xml": "<cpu mode='host-passthrough'/>"}]}
    plan = plan_expansion(current, {"z14.2": S390X["z14.2"]}, domains, BaselineOptions(), None)
    assert plan["joined"]["model"] == "z14.2-base"
    new = plan["domains"]["gen15a/new"]
    assert new["status"] == "must-change" and new["comparison"] in ("superset", "incompatible")
    assert "type" in new["missing"], "the generation is one of QEMU's responsible properties"
    assert plan["domains"]["gen15a/old"] == {"status": "unchanged", "comparison": "subset"}
    assert plan["domains"]["gen15a/pt"]["status"] == "follows-host"


def test_s390x_domain_with_a_model_nobody_defines_is_refused_naming_it() -> None:
    domains = {"gen15a": [{"name": "odd", "cpu_xml": "<cpu mode='custom' match='exact'><model>z99-base</model></cpu>"}]}
    with pytest.raises(InputError, match="s390x CPU model 'z99-base'"):
        plan_expansion({"gen15a": S390X["gen15a"]}, {"z14.2": S390X["z14.2"]}, domains, BaselineOptions(), None)


def test_aarch64_domains_are_said_to_be_unjudged() -> None:
    arm = {"a": facts_of("aarch64-unidentified-nosve-qemu-8.2.0")}
    plan = plan_expansion(arm, {"b": facts_of("aarch64-unidentified-nosve-qemu-6.0.0")},
                          {"a": [{"name": "vm", "cpu_xml": "<cpu mode='host-passthrough'/>"}]}, BaselineOptions(), None)
    assert "not judged for aarch64" in plan["domains_unjudged"] and plan["domains"] == {}
