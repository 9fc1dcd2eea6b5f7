# Copyright (c) 2026 cpucompat.cluster contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The aggregating actions (cluster_cpu_facts, cpu_contract): every report kind from host variables as Ansible hands them in."""

from __future__ import annotations

import json

import pytest
from ansible.errors import AnsibleActionFail

from utils.engine import baseline
from utils.recordings import facts_of

GOLD, PLATINUM, BROADWELL = "x86_64-xeon-gold-6130", "x86_64-xeon-platinum-9242", "x86_64-xeon-e5-2650-v4"


def _vars(hosts: dict[str, dict], play: list[str] | None = None, reachable: list[str] | None = None) -> dict:
    """task_vars of a run_once task: every host's variables, the play's hosts and those still standing."""
    play = list(hosts) if play is None else play
    return {"hostvars": hosts, "ansible_play_hosts_all": play, "ansible_play_hosts": play if reachable is None else reachable}


def _host(recording: str | None, **more) -> dict:
    return {"ansible_facts": {"cpucompat": facts_of(recording)} if recording else {}, **more}


def test_baseline_report_and_fact(action_plugin, tmp_path) -> None:
    hosts = {"gold": _host(GOLD), "platinum": _host(PLATINUM)}
    result = action_plugin("cluster_cpu_facts", {"report_dir": str(tmp_path)}).run(task_vars=_vars(hosts))
    report = result["report"]
    assert report["kind"] == "baseline" and result["cluster_fact"] == "written"
    fact = result["ansible_facts"]["cpucompat_cluster"]
    assert fact == result["cluster"] and fact["xml"] == report["xml"] and fact["hosts"] == 2 and fact["complete"]
    assert fact["report_file"] == str(tmp_path / "baseline.json") and fact["report_digest"].startswith("sha256:")
    assert report["baseline"]["features"] == baseline({"gold": facts_of(GOLD), "platinum": facts_of(PLATINUM)})["features"]
    assert report["xml"].startswith("<cpu mode='custom' match='exact' check='full'>")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["baseline.html", "baseline.json", "baseline.md"]
    on_disk = json.loads((tmp_path / "baseline.json").read_text())
    assert on_disk.pop("written")["at"], "every page says when it was written (issue 29)"
    assert on_disk == report


@pytest.mark.parametrize("hosts, reachable, key, why", [
    ({"gold": _host(GOLD), "new": _host(None)}, None, "missing_facts", "new"),
    ({"gold": _host(GOLD), "old": {"ansible_facts": {"cpucompat": {"schema_version": 0}}}}, None, "other_schema", "old"),
    ({"gold": _host(GOLD), "down": _host(BROADWELL)}, ["gold"], "unreachable", "down"),
    ({"gold": _host(GOLD), "bad": _host(BROADWELL, cpucompat_probe_result={"failed": True, "msg": "QEMU died"})}, None,
     "probe_failed", "bad"),
], ids=["missing", "schema", "unreachable", "probe-failed"])
def test_hosts_without_usable_facts_are_named(action_plugin, hosts, reachable, key, why) -> None:
    report = action_plugin("cluster_cpu_facts", {}).run(task_vars=_vars(hosts, reachable=reachable))["report"]
    assert report[key] == [why] and report["baseline"] is None and why in report["error"]


@pytest.mark.parametrize("files, message", [
    ({"x86_features.xml": "<cpus/>"}, "defines no x86 model"),
    ({"x86_models.xml": "<cpus><model name='x'>"}, "x86_models.xml is not well-formed"),
    (None, "libvirt's CPU map not found at"),
], ids=["empty", "malformed", "absent"])
def test_xml_errors_are_stated_in_their_own_words(action_plugin, tmp_path, files, message) -> None:
    """Hosts whose facts say nothing about libvirt are read with the map the task names; a bad one is named as such."""
    cpu_map = tmp_path / "cpu_map"
    if files is not None:
        cpu_map.mkdir()
        for name, text in files.items():
            (cpu_map / name).write_text(text)
    facts = {k: v for k, v in facts_of(GOLD).items() if k != "libvirt"}
    hosts = {"gold": {"ansible_facts": {"cpucompat": facts}}}
    report = action_plugin("cluster_cpu_facts", {"cpu_map": str(cpu_map)}).run(task_vars=_vars(hosts))["report"]
    assert report["xml"] is None and message in report["error"], report["error"]


def test_a_host_map_in_the_facts_that_is_malformed_names_the_host(action_plugin) -> None:
    facts = facts_of(GOLD)
    facts["libvirt"] = {**facts["libvirt"], "cpu_map": {**facts["libvirt"]["cpu_map"], "data": "not base64!"}}
    report = action_plugin("cluster_cpu_facts", {}).run(task_vars=_vars({"gold": {"ansible_facts": {"cpucompat": facts}}}))["report"]
    assert report["xml"] is None and "host gold: libvirt.cpu_map is malformed" in report["error"], report["error"]


def test_expansion_report(action_plugin, tmp_path) -> None:
    from ansible_collections.cpucompat.cluster.plugins.module_utils.engine._baseline import baseline_of  # pylint: disable=import-outside-toplevel
    from ansible_collections.cpucompat.cluster.plugins.module_utils.render._libvirt import render  # pylint: disable=import-outside-toplevel

    current_xml = render(baseline_of({"gold": facts_of(GOLD), "platinum": facts_of(PLATINUM)}).guest).xml
    hosts = {"gold": _host(GOLD, found={"domains": [{"name": "db1", "cpu_xml": current_xml}]}),
             "platinum": _host(PLATINUM, found={"skipped": True}), "broadwell": _host(BROADWELL)}
    args = {"report": "expansion", "hosts": ["gold", "platinum"], "candidates": ["broadwell"], "domains_var": "found",
            "fail_on": "lowers_baseline", "report_dir": str(tmp_path)}
    result = action_plugin("cluster_cpu_facts", args).run(task_vars=_vars(hosts))
    report = result["report"]
    assert "ansible_facts" not in result and report["kind"] == "expansion"
    assert report["candidates"]["broadwell"]["runs_current_baseline"] is False
    assert report["domains"]["gold/db1"]["status"] == "must-change" and report["verdict"]["ok"] is False
    assert report["hosts_without_facts"] == {}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["expansion.html", "expansion.json", "expansion.md"]


def test_expansion_names_candidates_without_facts(action_plugin) -> None:
    hosts = {"gold": _host(GOLD), "new": _host(None)}
    args = {"report": "expansion", "hosts": ["gold"], "candidates": ["new"]}
    report = action_plugin("cluster_cpu_facts", args).run(task_vars=_vars(hosts))["report"]
    assert report["hosts_without_facts"] == {"new": "no cpucompat facts"}
    assert report["verdict"]["ok"] is False and "new (no cpucompat facts)" in report["error"]


def test_migration_report(action_plugin) -> None:
    from ansible_collections.cpucompat.cluster.plugins.module_utils.engine._baseline import baseline_of  # pylint: disable=import-outside-toplevel
    from ansible_collections.cpucompat.cluster.plugins.module_utils.render._libvirt import render  # pylint: disable=import-outside-toplevel

    skylake = render(baseline_of({"gold": facts_of(GOLD)}).guest).xml
    hosts = {"gold": _host(GOLD, found={"domains": [{"name": "big", "cpu_xml": skylake, "live_cpu_xml": None}]}),
             "bdw": _host(BROADWELL, says={"verdicts": {skylake: "incompatible"}}), "gone": _host(None)}
    args = {"report": "migration", "hosts": ["gold", "bdw", "gone"], "sources": ["gold"], "domains_var": "found",
            "verdicts_var": "says", "requested": [{"domain": "gold/big", "target": "bdw"}]}
    report = action_plugin("cluster_cpu_facts", args).run(task_vars=_vars(hosts))["report"]
    cell = report["matrix"]["gold/big"]["bdw"]
    assert cell["ok"] is False and "avx512f" in cell["blocking"] and cell["libvirt"] == "incompatible"
    assert report["target_problems"] == {"gone": "no cpucompat facts"}
    assert report["verdict"]["ok"] is False and report["verdict"]["reasons"][0].startswith("gold/big -> bdw: target lacks")


@pytest.mark.parametrize("args, message", [
    ({"hosts": ["gold", "nowhere"]}, "not in the inventory: nowhere"),
    ({"report": "expansion", "hosts": ["gold"], "candidates": ["gold"]}, "both in the cluster and among the candidates: gold"),
    ({"hosts": []}, "no hosts to aggregate"),
])
def test_bad_arguments_name_the_host(action_plugin, args, message) -> None:
    with pytest.raises(AnsibleActionFail, match=message):
        action_plugin("cluster_cpu_facts", args).run(task_vars=_vars({"gold": _host(GOLD)}, play=[]))


def _contract_vars(hosts: dict[str, dict], groups: dict[str, list[str]]) -> dict:
    return {**_vars(hosts), "groups": {"all": list(hosts), **groups}}


def test_contract_pin_admission_and_check_mode(action_plugin, tmp_path) -> None:
    hosts = {"gold": _host(GOLD), "platinum": _host(PLATINUM), "bdw": _host(BROADWELL)}
    task_vars = _contract_vars(hosts, {"pool": ["gold", "platinum"], "bigger": ["gold", "platinum", "bdw"]})
    args = {"report": "contract", "group": "pool", "contract_dir": str(tmp_path / "c"), "report_dir": str(tmp_path / "r")}
    checked = action_plugin("cpu_contract", args)
    checked._task.check_mode = True  # pylint: disable=protected-access
    result = checked.run(task_vars=task_vars)
    assert result["changed"] is True and not (tmp_path / "c").exists(), "check mode predicts the pin and writes no contract"
    assert (tmp_path / "r" / "contract.json").exists() and result["contracts"]["pool"]["xml"]
    result = action_plugin("cpu_contract", args).run(task_vars=task_vars)
    assert result["changed"] is True and result["contract_files"] == [str(tmp_path / "c" / "pool.json")]
    again = action_plugin("cpu_contract", args).run(task_vars=task_vars)
    assert again["changed"] is False and again["report"]["groups"]["pool"]["admission"]["ok"] is True
    # the contract of "pool" is not the contract of "bigger": copied over, it is refused as foreign
    (tmp_path / "c" / "bigger.json").write_text((tmp_path / "c" / "pool.json").read_text())
    with pytest.raises(AnsibleActionFail, match="is the contract of group 'pool', not of 'bigger'"):
        action_plugin("cpu_contract", {**args, "group": "bigger"}).run(task_vars=task_vars)


def test_contract_groups_sharing_a_host_are_refused(action_plugin, tmp_path) -> None:
    task_vars = _contract_vars({"gold": _host(GOLD)}, {"a": ["gold"], "b": ["gold"]})
    with pytest.raises(AnsibleActionFail, match="host gold is in two of the groups, a and b"):
        action_plugin("cpu_contract", {"report": "contract", "groups": ["a", "b"], "contract_dir": str(tmp_path)}).run(task_vars=task_vars)


def test_plan_and_the_planning_checks_read_the_contract(action_plugin, tmp_path) -> None:
    hosts = {"gold": _host(GOLD), "platinum": _host(PLATINUM), "bdw": _host(BROADWELL)}
    task_vars = _contract_vars(hosts, {"pool": ["gold", "platinum"], "candidates": ["bdw"]})
    common = {"contract_dir": str(tmp_path / "c")}
    pinned = action_plugin("cpu_contract", {**common, "report": "contract", "group": "pool"}).run(task_vars=task_vars)
    plan = action_plugin("cpu_contract", {**common, "report": "plan", "group": "pool", "change": {"action": "raise"}}).run(
        task_vars=task_vars)["report"]
    assert plan["change"]["direction"] == "same" and plan["applied"] is False and plan["verdict"]["ok"] is True
    args = {**common, "report": "expansion", "group": "pool", "hosts": ["gold", "platinum"], "candidates": ["bdw"], "fail_on": "lowers_baseline"}
    expansion = action_plugin("cluster_cpu_facts", args).run(task_vars=task_vars)["report"]
    assert expansion["contract"]["candidates"]["bdw"]["would_be_refused"] is True
    assert "avx512f" in expansion["contract"]["lower_needed"]["lost"]
    assert "the group's contract would refuse bdw" in expansion["verdict"]["reasons"]
    xml = pinned["contracts"]["pool"]["xml"]
    assert "xml" not in json.loads((tmp_path / "c" / "pool.json").read_text()), "the contract keeps the CPU, not XML"
    hosts["gold"]["found"] = {"domains": [{"name": "vm", "active": False, "cpu_xml": xml}]}
    args = {**common, "report": "migration", "group": "pool", "hosts": ["gold", "bdw"], "sources": ["gold"], "domains_var": "found"}
    migration = action_plugin("cluster_cpu_facts", args).run(task_vars=task_vars)["report"]
    assert migration["contract"]["domains"]["gold/vm"]["status"] == "compliant"
    assert migration["matrix"]["gold/vm"]["bdw"]["ok"] is False


def test_the_fact_is_not_rewritten_when_every_host_holds_it(action_plugin, tmp_path) -> None:
    hosts = {"gold": _host(GOLD), "platinum": _host(PLATINUM)}
    task_vars = {**_vars(hosts), "ansible_play_batch": ["gold", "platinum"], "inventory_hostname": "gold"}
    first = action_plugin("cluster_cpu_facts", {"report_dir": str(tmp_path)}, run_once=True).run(task_vars=task_vars)
    assert first["cluster_fact"] == "written"
    for host in hosts.values():  # what the fact cache holds after the first run
        host["ansible_facts"]["cpucompat_cluster"] = first["ansible_facts"]["cpucompat_cluster"]
    again = action_plugin("cluster_cpu_facts", {"report_dir": str(tmp_path)}, run_once=True).run(task_vars=task_vars)
    assert again["cluster_fact"] == "unchanged" and "ansible_facts" not in again and again["cluster"] == first["cluster"]
    hosts["platinum"]["ansible_facts"].pop("cpucompat_cluster")  # one host lacks it: every host gets it again
    third = action_plugin("cluster_cpu_facts", {"report_dir": str(tmp_path)}, run_once=True).run(task_vars=task_vars)
    assert third["cluster_fact"] == "written" and third["ansible_facts"]["cpucompat_cluster"] == first["cluster"]


class _FailingHostvars(dict):
    """hostvars whose fact cache fails for one host, as a corrupt jsonfile entry or a Redis gone away does."""

    def __getitem__(self, name):
        if name == "broken":
            raise ConnectionError("Error 111 connecting to 127.0.0.1:6379. Connection refused.")
        return super().__getitem__(name)


@pytest.mark.parametrize("partial", [False, True])
def test_unreadable_hosts_are_named_and_the_cache_left_alone(action_plugin, partial: bool) -> None:
    hosts = _FailingHostvars(gold=_host(GOLD), platinum=_host(PLATINUM), broken={})
    result = action_plugin("cluster_cpu_facts", {"allow_partial": partial}).run(task_vars=_vars(hosts))
    report = result["report"]
    assert report["unreadable"] == ["broken"] and "Connection refused" in report["unreadable_errors"]["broken"]
    assert (report["baseline"] is not None) == partial and result["cluster_fact"] == "withheld"
    assert "ansible_facts" not in result, "no host's cache entry is written while the cache fails"


def test_contract_verdict_covers_compliance_as_well_as_admission(action_plugin, tmp_path) -> None:
    """Every host admitted, but one domain still on another CPU: the verdict's ok (the run's gate) holds, and the
    verdict says the group is not yet compliant and names the domain, in the JSON and on both pages."""
    args = {"report": "contract", "group": "pool", "contract_dir": str(tmp_path / "c"), "report_dir": str(tmp_path / "r")}
    plain = {"gold": _host(GOLD), "platinum": _host(PLATINUM)}
    pinned = action_plugin("cpu_contract", args).run(task_vars=_contract_vars(plain, {"pool": ["gold", "platinum"]}))
    xml = pinned["contracts"]["pool"]["xml"]
    nehalem = "<cpu mode='custom' match='exact'><model>Nehalem</model></cpu>"
    domains = {"domains": [{"name": "db1", "cpu_xml": xml, "live_cpu_xml": xml},
                           {"name": "web1", "cpu_xml": nehalem, "live_cpu_xml": nehalem},
                           {"name": "pt", "cpu_xml": "<cpu mode='host-passthrough'/>"}]}
    hosts = {"gold": _host(GOLD, found=domains), "platinum": _host(PLATINUM, found={"domains": []})}
    report = action_plugin("cpu_contract", {**args, "domains_var": "found"}).run(
        task_vars=_contract_vars(hosts, {"pool": ["gold", "platinum"]}))["report"]
    verdict = report["verdict"]
    assert verdict["ok"] is True and verdict["admission"] == {"admitted": 2, "refused": []}
    assert verdict["compliant"] is False and list(verdict["compliance"]["pending"]) == ["gold/web1"]
    assert verdict["compliance"]["domains"] == 3 and verdict["compliance"]["settled"] == 2
    md = (tmp_path / "r" / "contract.md").read_text()
    assert "**ATTENTION:" in md and "compliance: 2 of 3 domains need nothing; to act on: gold/web1" in md
    assert "Compliance: 2 of 3 domains" in (tmp_path / "r" / "contract.html").read_text()
