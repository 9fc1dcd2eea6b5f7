# Copyright (c) 2026 cpucompat.cluster contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The cluster CPU contract over recorded real hosts: pin, admission, raise/lower plans, compliance, files, /1 upgrade."""

from __future__ import annotations

import copy
import json
import os

import pytest

from ansible_collections.cpucompat.cluster.plugins.module_utils.contract import _admission, _change, _contract, _domains, _store
from ansible_collections.cpucompat.cluster.plugins.module_utils.cpu._libvirt_map import MapRegistry
from ansible_collections.cpucompat.cluster.plugins.module_utils.engine._baseline import BaselineOptions, baseline_of
from ansible_collections.cpucompat.cluster.plugins.module_utils.engine._group import group_facts
from ansible_collections.cpucompat.cluster.plugins.module_utils.render._cpuspec import CpuSpec
from ansible_collections.cpucompat.cluster.plugins.module_utils.render._libvirt import render
from ansible_collections.cpucompat.cluster.plugins.module_utils.contract._domain import domains_of
from utils import stacks
from utils.recordings import facts_of

GOLD, PLATINUM, BROADWELL = (facts_of(n) for n in ("x86_64-xeon-gold-6130", "x86_64-xeon-platinum-9242", "x86_64-xeon-e5-2650-v4"))
OPTS = BaselineOptions()
REGISTRY = MapRegistry()


def _pin(hosts: dict, path: str = "/nowhere/g.json") -> _contract.Contract:
    run = _admission.group_contract("g", group_facts(hosts), None, path, OPTS, REGISTRY, None)
    assert run.section["pinned_now"] and not run.section["reasons"], run.section["reasons"]
    return run.to_write


def _xml(contract: _contract.Contract, hosts: dict) -> str:
    return render(contract.guest(baseline_of(hosts).stacks)).xml


def test_first_run_pins_the_exact_guest_cpu_not_xml() -> None:
    hosts = {"gold": GOLD, "platinum": PLATINUM}
    run = _admission.group_contract("g", group_facts(hosts), None, "/nowhere/g.json", OPTS, REGISTRY, None)
    contract, base = run.to_write, baseline_of(hosts)
    assert contract.cpu.features == base.guest.features and contract.cpu.model == base.guest.model
    assert contract.cpu.machine == base.guest.machine and run.baseline is not None, "today's baseline is handed on, computed once"
    assert run.section["xml"] == render(base.guest).xml and contract.arch == "x86_64" and contract.vendor == "GenuineIntel"
    doc = json.loads(_contract.render_text(contract))
    assert doc["schema"] == "cpucompat.contract/2" and "xml" not in doc and doc["cpu"]["features"] == sorted(base.guest.features)
    assert [h["action"] for h in contract.history] == ["pin"] and contract.history[0]["hosts"] == ["gold", "platinum"]
    assert _contract.Contract.from_dict(doc, "t").to_dict() == contract.to_dict()


def test_a_weaker_host_is_refused_and_the_lower_contract_named() -> None:
    contract = _pin({"gold": GOLD, "platinum": PLATINUM})
    run = _admission.group_contract("g", group_facts({"gold": GOLD, "platinum": PLATINUM, "bdw": BROADWELL}), contract,
                                    "/c/g.json", OPTS, REGISTRY, None)
    assert run.to_write is None
    refused = run.section["admission"]["refused"]
    assert [r["host"] for r in refused] == ["bdw"] and "avx512f" in refused[0]["missing_features"]
    lower = run.section["admission"]["lower_contract"]
    assert lower["direction"] == "lower" and "avx512f" in lower["lost"] and lower["lost_because_of"]["avx512f"] == ["bdw"]
    assert run.section["reasons"] and "bdw cannot run the contract CPU of group g" in run.section["reasons"][0]
    assert run.section["features"] == sorted(contract.cpu.features), "the report shows the pinned CPU, unchanged"


def test_a_host_whose_stack_cannot_say_the_contract_is_refused_by_name() -> None:
    """A host whose libvirt has no name for a feature the contract must name: refused, naming host and feature."""
    contract = _pin({"gold": GOLD, "platinum": PLATINUM})
    doc = contract.to_dict()
    doc["cpu"]["features"].append("fancy-new-feature")  # every host has it, no libvirt map knows it
    pinned = _contract.Contract.from_dict(doc, "c")
    hosts = {n: dict(f, features=[*f["features"], "fancy-new-feature"]) for n, f in (("gold", GOLD), ("platinum", PLATINUM))}
    run = _admission.group_contract("g", group_facts(hosts), pinned, "c", OPTS, REGISTRY, None)
    assert run.section["xml"] is None and run.to_write is None
    assert {r["host"] for r in run.section["admission"]["refused"]} == {"gold", "platinum"}
    assert any("fancy-new-feature" in r and "gold" in r for r in run.section["reasons"])


def test_removing_the_weak_host_says_could_raise() -> None:
    contract = _pin({"gold": GOLD, "bdw": BROADWELL})
    run = _admission.group_contract("g", group_facts({"gold": GOLD}), contract, "/c/g.json", OPTS, REGISTRY, None)
    assert run.section["admission"]["ok"] is True and run.to_write is None
    assert "avx512f" in run.section["could_raise"]["features_gained"]


def test_raise_and_lower_plans() -> None:
    contract = _pin({"gold": GOLD, "bdw": BROADWELL})
    up = _change.plan_change("g", group_facts({"gold": GOLD}), contract, "p", _change.ChangeRequest("raise"), OPTS, REGISTRY, {})
    assert up.section["change"]["direction"] == "raise" and up.section["applicable"] and not up.section["reasons"]
    assert [h["action"] for h in up.to_write.history] == ["pin", "raise"]
    raised = up.to_write
    hosts = group_facts({"gold": GOLD, "bdw": BROADWELL})
    refused = _change.plan_change("g", hosts, raised, "p", _change.ChangeRequest("lower"), OPTS, REGISTRY, {})
    assert refused.to_write is None and any("cpucompat_contract_allow_lower=true" in r for r in refused.section["reasons"])
    down = _change.plan_change("g", hosts, raised, "p",
                               _change.ChangeRequest("lower", allow_lower=True, allow_security_loss=True), OPTS, REGISTRY, {})
    assert down.to_write is not None and down.section["change"]["direction"] == "lower"
    assert down.to_write.cpu.features == contract.cpu.features
    wrong_way = _change.plan_change("g", hosts, raised, "p", _change.ChangeRequest("raise"), OPTS, REGISTRY, {})
    assert any("that is a lower" in r for r in wrong_way.section["reasons"]) and wrong_way.to_write is None


def test_losing_a_security_feature_needs_its_own_consent() -> None:
    contract = _pin({"gold": GOLD})
    weak = dict(GOLD, features=[f for f in GOLD["features"] if f not in ("md-clear", "spec-ctrl")])
    hosts = group_facts({"gold": GOLD, "old-microcode": weak})
    plan = _change.plan_change("g", hosts, contract, "p", _change.ChangeRequest("lower", allow_lower=True), OPTS, REGISTRY, {})
    assert set(plan.section["change"]["security_lost"]) >= {"md-clear", "spec-ctrl"} and plan.to_write is None
    assert plan.section["security"]["md-clear"]["old-microcode"]["model_id"] == GOLD["model_id"]
    assert any("security features would be lost" in r and "old-microcode" in r for r in plan.section["reasons"])


def test_what_if_without_hosts_is_planned_never_applied() -> None:
    contract = _pin({"gold": GOLD, "bdw": BROADWELL})
    plan = _change.plan_change("g", group_facts({"gold": GOLD, "bdw": BROADWELL}), contract, "p",
                               _change.ChangeRequest("raise", without=("bdw",)), OPTS, REGISTRY, {})
    assert plan.section["what_if"] and "avx512f" in plan.section["change"]["gained"] and plan.to_write is None
    with pytest.raises(_contract.ContractError, match="not in group g: nope"):
        _change.plan_change("g", group_facts({"gold": GOLD}), contract, "p",
                            _change.ChangeRequest("raise", without=("nope",)), OPTS, REGISTRY, {})


def test_compliance_statuses() -> None:
    hosts = {"gold": GOLD, "bdw": BROADWELL}
    contract = _pin(hosts)
    xml = _xml(contract, hosts)
    above = render(baseline_of({"gold": GOLD}).guest).xml
    old = "<cpu mode='custom' match='exact'><model>Nehalem</model></cpu>"
    domains = {"hv": [
        {"name": "ok", "active": False, "cpu_xml": xml},
        {"name": "ok-running", "active": True, "cpu_xml": xml, "live_cpu_xml": xml},
        {"name": "restart", "active": True, "cpu_xml": xml, "live_cpu_xml": old},
        {"name": "above", "active": True, "cpu_xml": xml, "live_cpu_xml": above},
        {"name": "pt", "active": True, "cpu_xml": "<cpu mode='host-passthrough'/>", "live_cpu_xml": "<cpu mode='host-passthrough'/>"},
        {"name": "none", "active": False, "cpu_xml": None},
        {"name": "stale", "active": False, "cpu_xml": old},
    ]}
    statuses = {k: v["status"] for k, v in _domains.compliance(CpuSpec.parse(xml), domains_of(domains), {"hv": stacks.by_name("system").cpu_map}).items()}
    assert statuses == {"hv/ok": "compliant", "hv/ok-running": "compliant", "hv/restart": "restart-required",
                        "hv/above": "above-contract", "hv/pt": "follows-host", "hv/none": "no-cpu", "hv/stale": "not-deployed"}
    spec = render(contract.guest(baseline_of(hosts).stacks)).spec
    changes = _domains.domain_changes(spec, domains_of(domains))
    assert changes["hv/stale"]["changes"] and not changes["hv/ok"]["changes"] and not changes["hv/pt"]["changes"]
    # One restart rule (issue 29): the contract page calls it restart-required (it runs its old CPU), and so does a
    # plan, although its definition already carries the target.
    assert changes["hv/restart"]["restart_required"] is True and not changes["hv/restart"]["changes"]
    assert changes["hv/ok-running"]["restart_required"] is False


def test_compliance_says_what_each_guest_gains_and_loses_at_its_next_power_cycle() -> None:
    hosts = {"gold": GOLD, "bdw": BROADWELL}
    xml = _xml(_pin(hosts), hosts)
    cpu_map = stacks.by_name("system").cpu_map
    old = "<cpu mode='custom' match='exact'><model>Nehalem</model></cpu>"
    want = CpuSpec.parse(xml).guest_features(cpu_map)
    nehalem = CpuSpec.parse(old).guest_features(cpu_map)
    domains = {"hv": [
        {"name": "stale", "active": False, "cpu_xml": old},
        {"name": "running-old", "active": True, "cpu_xml": xml, "live_cpu_xml": old},
        {"name": "ok", "active": False, "cpu_xml": xml},
    ]}
    out = _domains.compliance(CpuSpec.parse(xml), domains_of(domains), {"hv": cpu_map})
    for key in ("hv/stale", "hv/running-old"):
        change = out[key]["next_power_cycle"]
        assert change == {"gains": sorted(want - nehalem), "loses": sorted(nehalem - want)}
        assert "avx2" in change["gains"] and not change["loses"], "Nehalem is below any Broadwell contract"
    assert "next_power_cycle" not in out["hv/ok"], "a compliant guest changes nothing"
    assert "next_power_cycle" not in _domains.compliance(CpuSpec.parse(xml), domains_of(domains), {"hv": None})["hv/stale"], "no map: no claim"


@pytest.mark.parametrize("marks, why", [({"nova": True}, "OpenStack Nova"), ({"opted_out": True}, "opted out")])
def test_domains_managed_elsewhere_are_left_alone(marks: dict, why: str) -> None:
    hosts = {"gold": GOLD, "bdw": BROADWELL}
    xml = _xml(_pin(hosts), hosts)
    domains = {"hv": [{"name": "d", "active": False, "cpu_xml": "<cpu mode='custom'><model>Nehalem</model></cpu>", **marks}]}
    out = _domains.compliance(CpuSpec.parse(xml), domains_of(domains), {"hv": stacks.by_name("system").cpu_map})["hv/d"]
    assert out["status"] == "left-alone" and why in out["why"]
    assert _domains.status_counts({"hv/d": out})["left-alone"] == 1


@pytest.mark.parametrize("text, message", [
    ("not json", "is not JSON"),
    ('{"schema": "other/1"}', "not a cpucompat contract"),
    ('{"schema": "cpucompat.contract/2", "group": "g"}', "lacks 'arch'"),
    ('{"schema": "cpucompat.contract/2", "group": "g", "arch": "x86_64", "cpu": {"arch": "x86_64", "features": ["ok", "x\'/>"]},'
     ' "pinned_at": "t", "history": []}', "not a valid CPU feature name"),
    ('{"schema": "cpucompat.contract/1", "group": "g", "arch": "x86_64", "baseline": {"model": "a b", "features": ["ok"]},'
     ' "xml": "<cpu/>", "pinned_at": "t", "history": []}', "not a valid CPU model name"),
])
def test_malformed_contract_is_refused_and_kept(tmp_path, text: str, message: str) -> None:
    path = tmp_path / "g.json"
    path.write_text(text)
    with pytest.raises(_contract.ContractError, match=message) as raised:
        _store.FileStore(str(tmp_path)).read("g")
    assert "restore it from a copy" in str(raised.value) and "rebuild_contract" in str(raised.value), "issue 29: what to do"
    assert path.read_text() == text


def test_a_schema_1_contract_is_upgraded_on_the_next_write_and_says_so(tmp_path) -> None:
    hosts = {"gold": GOLD, "platinum": PLATINUM}
    base = baseline_of(hosts)
    old = {"schema": "cpucompat.contract/1", "group": "g", "arch": "x86_64", "vendor": "GenuineIntel",
           "baseline": {**base.to_dict(), "features": sorted(base.features)}, "xml": "<cpu mode='custom'/>",
           "pinned_at": "2026-01-01T00:00:00Z", "history": [{"action": "pin", "at": "2026-01-01T00:00:00Z"}]}
    path = tmp_path / "g.json"
    path.write_text(json.dumps(old))
    loaded = _store.FileStore(str(tmp_path)).read("g").contract
    assert loaded.upgraded_from == "cpucompat.contract/1" and not any(f.startswith("kvm") for f in loaded.cpu.features)
    run = _admission.group_contract("g", group_facts(hosts), loaded, str(path), OPTS, REGISTRY, None)
    assert run.to_write is not None and "upgraded from cpucompat.contract/1" in run.section["upgraded"]
    assert "lmce" in run.section["upgraded"], "what no guest can get exactly is named"
    assert run.to_write.to_dict()["schema"] == "cpucompat.contract/2" and run.to_write.pinned_at == old["pinned_at"]
    assert [h["action"] for h in run.to_write.history] == ["pin", "upgrade"] and run.section["xml"]
    assert run.to_write.cpu.features == base.guest.features and run.to_write.cpu.machine == base.guest.machine


def test_foreign_contract_is_refused() -> None:
    contract = _pin({"gold": GOLD})
    with pytest.raises(_contract.ContractError, match="contract of group 'g', not of 'other'"):
        _admission.group_contract("other", group_facts({"gold": GOLD}), contract, "c", OPTS, REGISTRY, None)
    amd = facts_of("x86_64-epyc-7502")
    with pytest.raises(_contract.ContractError, match="CPU vendor GenuineIntel; hosts of another CPU vendor: amd"):
        _admission.group_contract("g", group_facts({"amd": amd}), contract, "c", OPTS, REGISTRY, None)


def test_the_file_store_writes_atomically_once_per_change(tmp_path) -> None:
    contract = _pin({"gold": GOLD})
    store = _store.FileStore(str(tmp_path / "dir"))
    assert store.read("g") == _store.Stored(None, 0)
    assert store.write("g", contract, 0) == 1
    path = store.where("g")
    mtime = os.stat(path).st_mtime_ns
    assert store.write("g", contract, 1) == 1 and os.stat(path).st_mtime_ns == mtime, "an identical contract is left alone"
    stored = store.read("g")
    assert stored.contract.to_dict() == contract.to_dict() and stored.generation == 1 and "@" in stored.written_by
    assert sorted(os.listdir(tmp_path / "dir")) == [".g.lock", "g.json"], "no temporary file is left"


def test_incomplete_group_is_neither_pinned_nor_admitted() -> None:
    run = _admission.group_contract("g", group_facts({"gold": GOLD, "new": None}), None, "c", OPTS, REGISTRY, None)
    assert run.to_write is None and run.section["hosts_without_facts"] == {"new": "no cpucompat facts"}


def test_a_raise_with_an_unreachable_host_is_refused_by_name() -> None:
    contract = _pin({"gold": GOLD, "bdw": BROADWELL})
    group = group_facts({"gold": GOLD, "bdw": BROADWELL}, unreachable=["bdw"])
    plan = _change.plan_change("g", group, contract, "p", _change.ChangeRequest("raise"), OPTS, REGISTRY, {})
    assert plan.to_write is None and plan.section["hosts_without_facts"] == {"bdw": "unreachable or failed in this run"}
    assert plan.section["reasons"] == ["no usable facts from bdw (unreachable or failed in this run)" + _admission.PARTIAL_HINT]
    assert "--limit" in _admission.PARTIAL_HINT and "cpucompat_allow_partial=true" in _admission.PARTIAL_HINT
    with pytest.raises(_contract.ContractError, match="group g has no contract at p: run cpucompat.cluster.site first"):
        _change.plan_change("g", group, None, "p", _change.ChangeRequest("raise"), OPTS, REGISTRY, {})


def test_a_contract_whose_model_no_host_runs_is_refused() -> None:
    contract = _pin({"gold": GOLD})
    doc = contract.to_dict()
    doc["cpu"]["model"] = "NoSuchModel"
    broken = _contract.Contract.from_dict(doc, "c")
    run = _admission.group_contract("g", group_facts({"gold": GOLD}), broken, "c", OPTS, REGISTRY, None)
    assert run.section["reasons"] and run.to_write is None
    assert "gold cannot run the contract CPU of group g (lacks its model NoSuchModel)" in run.section["reasons"][0]


def test_a_refusal_says_what_to_check_and_what_to_run() -> None:
    """A host of the same CPU signature as admitted ones, lacking a feature they have: microcode or BIOS drift."""
    contract = _pin({"gold": GOLD})
    drifted = copy.deepcopy(GOLD)
    drifted["features"] = [f for f in drifted["features"] if f != "pku"]
    drifted["versions"] = {**(drifted.get("versions") or {}), "microcode": "0x2000050"}
    run = _admission.group_contract("g", group_facts({"gold": GOLD, "drifted": drifted}), contract, "c", OPTS, REGISTRY, None)
    refused = run.section["admission"]["refused"]
    assert [r["host"] for r in refused] == ["drifted"] and refused[0]["missing_features"] == ["pku"]
    diagnosis = refused[0]["diagnosis"]
    assert diagnosis["signature"] == "GenuineIntel family 6 model 85 stepping 4"
    assert diagnosis["likely"].startswith("microcode or BIOS drift: 1 host(s) of the same CPU signature have pku")
    assert "drifted runs 0x2000050" in diagnosis["likely"]
    assert any("--limit drifted -e cpucompat_probe_force=true" in c for c in diagnosis["commands"])
    assert any("-e cpucompat_group=g -e cpucompat_contract_action=lower -e cpucompat_contract_allow_lower=true" in c
               for c in diagnosis["commands"])
    assert "drifted cannot run the contract CPU of group g (lacks pku) - microcode or BIOS drift" in run.section["reasons"][0]
    assert run.to_write is None and run.section["quarantined"] == {}

    excluded = _admission.group_contract("g", group_facts({"gold": GOLD, "drifted": drifted}), contract, "c", OPTS, REGISTRY,
                                         None, on_refusal="exclude")
    assert list(excluded.section["quarantined"]) == ["drifted"] and excluded.section["admitted"] == ["gold"]
    assert excluded.section["reasons"] == [] and excluded.section["xml"], "the rest proceeds with the contract CPU"


def test_the_contract_report_shows_each_configured_platform() -> None:
    from ansible_collections.cpucompat.cluster.plugins.module_utils.verbs import _common, _contracting  # pylint: disable=import-outside-toplevel
    from ansible_collections.cpucompat.cluster.plugins.module_utils.reports._markdown import report_markdown  # pylint: disable=import-outside-toplevel
    from ansible_collections.cpucompat.cluster.plugins.module_utils.reports._html import report_html  # pylint: disable=import-outside-toplevel

    class Reader:
        def group(self, names):
            return group_facts({"gold": GOLD, "platinum": PLATINUM})

        def domains(self, names, var):
            return {}

        def verdicts(self, names, var):
            return {}

    common = _common.Common(OPTS, REGISTRY, check_mode=True, platforms=("qemu", "nova"))
    outcome = _contracting.contract(common, Reader(), {"g": ["gold", "platinum"]}, None)
    section = outcome.report["groups"]["g"]
    assert section["platforms"]["qemu"]["ok"] and section["platforms"]["nova"]["ok"]
    assert outcome.extra["contracts"]["g"]["guest"]["features"] == section["cpu"]["features"]
    markdown = report_markdown(outcome.report)
    assert "### The contract for nova" in markdown and "[libvirt]" in markdown and "enforce" in markdown
    assert "The contract for qemu</h3>" in report_html(outcome.report)
