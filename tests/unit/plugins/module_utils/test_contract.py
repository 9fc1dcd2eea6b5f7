# Copyright (c) 2026 cpucompat.cluster contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The cluster CPU contract over recorded real hosts: pin, admission, raise/lower plans, compliance, files."""

from __future__ import annotations

import json
import os

import pytest

from ansible_collections.cpucompat.cluster.plugins.module_utils.contract import _contract
from ansible_collections.cpucompat.cluster.plugins.module_utils.engine._baseline import BaselineOptions, baseline_of
from ansible_collections.cpucompat.cluster.plugins.module_utils.reports._cluster import group_facts
from ansible_collections.cpucompat.cluster.plugins.module_utils.cpu._libvirt_map import load_cpu_map
from ansible_collections.cpucompat.cluster.plugins.module_utils.render._libvirt_xml import render
from utils.recordings import facts_of

GOLD, PLATINUM, BROADWELL = (facts_of(n) for n in ("x86_64-xeon-gold-6130", "x86_64-xeon-platinum-9242", "x86_64-xeon-e5-2650-v4"))
OPTS = BaselineOptions()


@pytest.fixture(scope="module")
def cpu_map():
    return load_cpu_map()


def _pin(cpu_map, hosts: dict, path: str = "/nowhere/g.json") -> _contract.Contract:
    run = _contract.group_contract("g", group_facts(hosts), None, path, OPTS, cpu_map, None)
    assert run.section["pinned_now"] and not run.section["reasons"]
    return run.to_write


def test_first_run_pins_the_baseline(cpu_map) -> None:
    contract = _pin(cpu_map, {"gold": GOLD, "platinum": PLATINUM})
    base = baseline_of({"gold": GOLD, "platinum": PLATINUM})
    assert contract.baseline.features == base.features and contract.baseline.model == base.model
    assert contract.xml == render(base, cpu_map).xml and contract.arch == "x86_64" and contract.vendor == "GenuineIntel"
    assert [h["action"] for h in contract.history] == ["pin"] and contract.history[0]["hosts"] == ["gold", "platinum"]
    again = _contract.Contract.from_dict(json.loads(_contract.render_text(contract)), "t")
    assert again.to_dict() == contract.to_dict()


def test_a_weaker_host_is_refused_and_the_lower_contract_named(cpu_map) -> None:
    contract = _pin(cpu_map, {"gold": GOLD, "platinum": PLATINUM})
    run = _contract.group_contract("g", group_facts({"gold": GOLD, "platinum": PLATINUM, "bdw": BROADWELL}), contract,
                                   "/c/g.json", OPTS, cpu_map, None)
    assert run.to_write is None
    refused = run.section["admission"]["refused"]
    assert [r["host"] for r in refused] == ["bdw"] and "avx512f" in refused[0]["missing_features"]
    lower = run.section["admission"]["lower_contract"]
    assert lower["direction"] == "lower" and "avx512f" in lower["lost"] and lower["lost_because_of"]["avx512f"] == ["bdw"]
    assert run.section["reasons"] and "bdw cannot run the contract CPU of group g" in run.section["reasons"][0]
    assert run.section["xml"] == contract.xml, "the report shows the pinned CPU, unchanged"


def test_removing_the_weak_host_says_could_raise(cpu_map) -> None:
    contract = _pin(cpu_map, {"gold": GOLD, "bdw": BROADWELL})
    run = _contract.group_contract("g", group_facts({"gold": GOLD}), contract, "/c/g.json", OPTS, cpu_map, None)
    assert run.section["admission"]["ok"] is True and run.to_write is None
    assert "avx512f" in run.section["could_raise"]["features_gained"]


def test_raise_and_lower_plans(cpu_map) -> None:
    contract = _pin(cpu_map, {"gold": GOLD, "bdw": BROADWELL})
    up = _contract.plan_change("g", group_facts({"gold": GOLD}), contract, "p", _contract.ChangeRequest("raise"), OPTS, cpu_map, {})
    assert up.section["change"]["direction"] == "raise" and up.section["applicable"] and not up.section["reasons"]
    assert [h["action"] for h in up.to_write.history] == ["pin", "raise"]
    raised = up.to_write
    hosts = group_facts({"gold": GOLD, "bdw": BROADWELL})
    refused = _contract.plan_change("g", hosts, raised, "p", _contract.ChangeRequest("lower"), OPTS, cpu_map, {})
    assert refused.to_write is None and any("cpucompat_contract_allow_lower=true" in r for r in refused.section["reasons"])
    down = _contract.plan_change("g", hosts, raised, "p", _contract.ChangeRequest("lower", allow_lower=True, allow_security_loss=True),
                                 OPTS, cpu_map, {})
    assert down.to_write is not None and down.section["change"]["direction"] == "lower"
    assert down.to_write.baseline.features == contract.baseline.features
    wrong_way = _contract.plan_change("g", hosts, raised, "p", _contract.ChangeRequest("raise"), OPTS, cpu_map, {})
    assert any("that is a lower" in r for r in wrong_way.section["reasons"]) and wrong_way.to_write is None


def test_losing_a_security_feature_needs_its_own_consent(cpu_map) -> None:
    contract = _pin(cpu_map, {"gold": GOLD})
    weak = dict(GOLD, features=[f for f in GOLD["features"] if f not in ("md-clear", "spec-ctrl")])
    hosts = group_facts({"gold": GOLD, "old-microcode": weak})
    plan = _contract.plan_change("g", hosts, contract, "p", _contract.ChangeRequest("lower", allow_lower=True), OPTS, cpu_map, {})
    assert set(plan.section["change"]["security_lost"]) >= {"md-clear", "spec-ctrl"} and plan.to_write is None
    assert plan.section["security"]["md-clear"]["old-microcode"]["model_id"] == GOLD["model_id"]
    assert any("security features would be lost" in r and "old-microcode" in r for r in plan.section["reasons"])


def test_what_if_without_hosts_is_planned_never_applied(cpu_map) -> None:
    contract = _pin(cpu_map, {"gold": GOLD, "bdw": BROADWELL})
    plan = _contract.plan_change("g", group_facts({"gold": GOLD, "bdw": BROADWELL}), contract, "p",
                                 _contract.ChangeRequest("raise", without=("bdw",)), OPTS, cpu_map, {})
    assert plan.section["what_if"] and "avx512f" in plan.section["change"]["gained"] and plan.to_write is None
    with pytest.raises(_contract.ContractError, match="not in group g: nope"):
        _contract.plan_change("g", group_facts({"gold": GOLD}), contract, "p", _contract.ChangeRequest("raise", without=("nope",)),
                              OPTS, cpu_map, {})


def test_compliance_statuses(cpu_map) -> None:
    contract = _pin(cpu_map, {"gold": GOLD, "bdw": BROADWELL})
    above = render(baseline_of({"gold": GOLD}), cpu_map).xml
    old = "<cpu mode='custom' match='exact'><model>Nehalem</model></cpu>"
    domains = {"hv": [
        {"name": "ok", "active": False, "cpu_xml": contract.xml},
        {"name": "ok-running", "active": True, "cpu_xml": contract.xml, "live_cpu_xml": contract.xml},
        {"name": "restart", "active": True, "cpu_xml": contract.xml, "live_cpu_xml": old},
        {"name": "above", "active": True, "cpu_xml": contract.xml, "live_cpu_xml": above},
        {"name": "pt", "active": True, "cpu_xml": "<cpu mode='host-passthrough'/>", "live_cpu_xml": "<cpu mode='host-passthrough'/>"},
        {"name": "none", "active": False, "cpu_xml": None},
        {"name": "stale", "active": False, "cpu_xml": old},
    ]}
    statuses = {k: v["status"] for k, v in _contract.compliance(contract, domains, cpu_map).items()}
    assert statuses == {"hv/ok": "compliant", "hv/ok-running": "compliant", "hv/restart": "restart-required",
                        "hv/above": "above-contract", "hv/pt": "follows-host", "hv/none": "no-cpu", "hv/stale": "not-deployed"}
    changes = _contract.domain_changes(contract.spec, domains)
    assert changes["hv/stale"]["changes"] and not changes["hv/ok"]["changes"] and not changes["hv/pt"]["changes"]
    assert changes["hv/restart"]["restart_required"] is False, "its definition already carries the contract"


@pytest.mark.parametrize("text, message", [
    ("not json", "is not JSON"),
    ('{"schema": "other/1"}', "not a cpucompat contract"),
    ('{"schema": "cpucompat.contract/1", "group": "g"}', "lacks 'arch'"),
    ('{"schema": "cpucompat.contract/1", "group": "g", "arch": "x86_64", "baseline": {"features": ["ok"]}, "xml": "<cpu>",'
     ' "pinned_at": "t", "history": []}', "not well-formed"),
])
def test_malformed_contract_is_refused_and_kept(tmp_path, text: str, message: str) -> None:
    path = tmp_path / "g.json"
    path.write_text(text)
    with pytest.raises(_contract.ContractError, match=message):
        _contract.load(str(path))
    assert path.read_text() == text


def test_foreign_contract_is_refused(cpu_map) -> None:
    contract = _pin(cpu_map, {"gold": GOLD})
    with pytest.raises(_contract.ContractError, match="contract of group 'g', not of 'other'"):
        _contract.group_contract("other", group_facts({"gold": GOLD}), contract, "c", OPTS, cpu_map, None)
    amd = facts_of("x86_64-epyc-7502")
    with pytest.raises(_contract.ContractError, match="CPU vendor GenuineIntel; hosts of another CPU vendor: amd"):
        _contract.group_contract("g", group_facts({"amd": amd}), contract, "c", OPTS, cpu_map, None)


def test_save_is_atomic_and_idempotent(tmp_path, cpu_map) -> None:
    contract = _pin(cpu_map, {"gold": GOLD})
    path = str(tmp_path / "dir" / "g.json")
    assert _contract.save(path, contract) is True
    stamp = os.stat(path).st_mtime_ns
    assert _contract.save(path, contract) is False and os.stat(path).st_mtime_ns == stamp
    assert _contract.load(path).to_dict() == contract.to_dict()
    assert os.listdir(tmp_path / "dir") == ["g.json"]


def test_incomplete_group_is_neither_pinned_nor_admitted(cpu_map) -> None:
    run = _contract.group_contract("g", group_facts({"gold": GOLD, "new": None}), None, "c", OPTS, cpu_map, None)
    assert run.to_write is None and run.section["hosts_without_facts"] == {"new": "no cpucompat facts"}


def test_a_raise_with_an_unreachable_host_is_refused_by_name(cpu_map) -> None:
    contract = _pin(cpu_map, {"gold": GOLD, "bdw": BROADWELL})
    group = group_facts({"gold": GOLD, "bdw": BROADWELL}, unreachable=["bdw"])
    plan = _contract.plan_change("g", group, contract, "p", _contract.ChangeRequest("raise"), OPTS, cpu_map, {})
    assert plan.to_write is None and plan.section["hosts_without_facts"] == {"bdw": "unreachable or failed in this run"}
    assert plan.section["reasons"] == ["no usable facts from bdw (unreachable or failed in this run)"]
    with pytest.raises(_contract.ContractError, match="group g has no contract at p: run cpucompat.cluster.site first"):
        _contract.plan_change("g", group, None, "p", _contract.ChangeRequest("raise"), OPTS, cpu_map, {})


def test_a_contract_whose_xml_libvirt_cannot_read_is_refused(cpu_map) -> None:
    contract = _pin(cpu_map, {"gold": GOLD})
    doc = contract.to_dict()
    doc["xml"] = doc["xml"].replace(f">{contract.spec.model}<", ">NoSuchModel<")
    broken = _contract.Contract.from_dict(doc, "c")
    with pytest.raises(_contract.ContractError, match="contract c: its xml cannot be deployed: CPU model 'NoSuchModel' is not in libvirt's CPU map"):
        _contract.group_contract("g", group_facts({"gold": GOLD}), broken, "c", OPTS, cpu_map, None)
