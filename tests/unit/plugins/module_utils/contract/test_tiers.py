# Copyright (c) 2026 cpucompat.cluster contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Tiers over recorded real hosts: parsing, two levels pinned in one group, admission, quarantine, raise and lower per tier,
the domains' choice, the stamps, the migration matrix."""

from __future__ import annotations

import copy
import json

import pytest

from ansible_collections.cpucompat.cluster.plugins.module_utils.contract import _change, _observed, _stamps, _tiers
from ansible_collections.cpucompat.cluster.plugins.module_utils.contract._file_store import FileStore
from ansible_collections.cpucompat.cluster.plugins.module_utils.cpu._libvirt_map import MapRegistry
from ansible_collections.cpucompat.cluster.plugins.module_utils.deploy import _stamp
from ansible_collections.cpucompat.cluster.plugins.module_utils.engine._baseline import BaselineOptions
from ansible_collections.cpucompat.cluster.plugins.module_utils.engine._group import group_facts
from ansible_collections.cpucompat.cluster.plugins.module_utils.render._cpuspec import CpuSpec
from ansible_collections.cpucompat.cluster.plugins.module_utils.verbs import _common, _contracting, _reading
from ansible_collections.cpucompat.cluster.plugins.module_utils.contract._domain import Domain, domains_of
from utils.recordings import facts_of

FACTS = {"gold": facts_of("x86_64-xeon-gold-6130"), "platinum": facts_of("x86_64-xeon-platinum-9242"),
         "bdw": facts_of("x86_64-xeon-e5-2650-v4")}
MEMBERS = ["bdw", "gold", "platinum"]
OPTS = BaselineOptions()
REGISTRY = MapRegistry()
AVX512 = {"base": "auto", "avx512": {"level": "Skylake-Server", "hosts": "avx512_hosts"}}
INVENTORY = {"avx512_hosts": ["gold", "platinum"], "g": MEMBERS}


class Reader:
    """The verbs' view of the inventory: recorded facts, and one domain per host named d-<host>."""

    def __init__(self, facts=None, domains=None):
        self.facts = facts or FACTS
        self.listed = domains if domains is not None else {h: [{"name": f"d-{h}", "persistent": True, "cpu_xml": None}]
                                                           for h in MEMBERS}

    def group(self, names):
        return group_facts({n: self.facts[n] for n in names})

    def domains(self, names, var):
        return {n: self.listed.get(n, []) for n in names}

    def verdicts(self, names, var):
        return {}


def _tiers_of(value=None, chosen=None, members=None) -> _tiers.Tiers:
    found = _tiers.parse_tiers("g", AVX512 if value is None else value, MEMBERS if members is None else members, INVENTORY, chosen)
    assert found is not None
    return found


def _run(tmp_path, tiers, reader=None, **common):
    store = FileStore(str(tmp_path / "store"))
    return _contracting.contract(_common.Common(OPTS, REGISTRY, store=store, **common), reader or Reader(), {"g": MEMBERS}, "found",
                                 tiers={"g": tiers} if tiers else None), store


def test_tiers_parse_hosts_by_group_pattern_and_name() -> None:
    tiers = _tiers_of()
    assert tiers.names == ["base", "avx512"] and tiers.tier("base").hosts == tuple(MEMBERS), "the base tier spans the group"
    assert tiers.tier("avx512").hosts == ("gold", "platinum") and tiers.tier("avx512").key == "g@avx512"
    assert _tiers_of({"x": {"hosts": "g*,platinum"}}).tier("x").hosts == ("gold", "platinum")
    assert _tiers_of({"x": {"hosts": ["bdw"]}}).tier("x").level is None, "no level: the best the tier's hosts run"
    assert _tiers.parse_tiers("g", None, MEMBERS, INVENTORY) is None and _tiers.parse_tiers("g", {}, MEMBERS, INVENTORY) is None


@pytest.mark.parametrize("value, chosen, message", [
    ({"x": {"hosts": "nowhere-*"}}, None, "tier x of group g: 'nowhere-*' matches no host of the group"),
    ({"x": {"hosts": "other"}}, None, "tier x of group g names hosts that are not in the group: other"),
    ({"x": {"level": "Skylake-Server"}}, None, "tier x of group g must be {level: "),
    ({"x y": {"hosts": "gold"}}, None, "tier name 'x y' of group g"),
    ({"base": {"hosts": "gold"}}, None, "tier base of group g spans the group"),
    ({"x": {"hosts": "gold", "level": 5}}, None, "tier x of group g: level must be a CPU level"),
    (AVX512, {"d-gold": "avx2"}, "cpucompat_domain_tiers names tiers group g does not define: d-gold -> avx2"),
    ({}, {"d-gold": "avx512"}, "cpucompat_domain_tiers chooses tiers, but group g defines none"),
])
def test_malformed_tiers_are_refused_by_name(value, chosen, message) -> None:
    with pytest.raises(_tiers.TierError) as err:
        _tiers.parse_tiers("g", value, MEMBERS, INVENTORY, chosen)
    assert message in str(err.value)


def test_a_domain_chooses_its_tier_by_the_operators_variable_else_its_metadata() -> None:
    tiers = _tiers_of(chosen={"gold/d1": "avx512", "d2": "base"})
    assert tiers.tier_of(Domain.of("gold", {"name": "d1"})) == "avx512"
    assert tiers.tier_of(Domain.of("gold", {"name": "d2", "tier": "avx512"})) == "base", "the operator's variable comes first"
    assert tiers.tier_of(Domain.of("gold", {"name": "d3", "stamp": {"group": "g", "tier": "avx512"}})) == "avx512"
    assert tiers.tier_of(Domain.of("gold", {"name": "d4", "tier": "avx512"})) == "avx512", "the operator's own <cpucompat:cpu tier=...>"
    assert tiers.tier_of(Domain.of("gold", {"name": "d5"})) == "base"


def test_two_levels_are_pinned_in_one_group_and_frozen(tmp_path) -> None:
    tiers = _tiers_of(chosen={"d-gold": "avx512", "d-platinum": "avx512"})
    outcome, store = _run(tmp_path, tiers)
    assert outcome.report["verdict"]["ok"], outcome.report["verdict"]["reasons"]
    assert outcome.report["verdict"]["admission"]["admitted"] == 3, "a host of a tier counts once"
    base, high = outcome.report["groups"]["g"], outcome.report["groups"]["g@avx512"]
    assert "avx512f" not in base["features"] and base["admitted"] == MEMBERS, "the base tier spans the group"
    assert high["model"] == "Skylake-Server" and "avx512f" in high["features"] and high["admitted"] == ["gold", "platinum"]
    assert set(high["domains"]) == {"gold/d-gold", "platinum/d-platinum"} and set(base["domains"]) == {"bdw/d-bdw"}
    assert outcome.extra["contracts"]["g"]["tiers"] == {"gold": {"d-gold": "g@avx512"}, "platinum": {"d-platinum": "g@avx512"}}
    assert CpuSpec.parse(outcome.extra["contracts"]["g@avx512"]["xml"]).model == "Skylake-Server"
    # Each tier is a contract of its own in the store; the base's document is today's single-level contract.
    doc = json.loads((tmp_path / "store" / "g.json").read_text())
    tier_doc = json.loads((tmp_path / "store" / "g@avx512.json").read_text())
    assert doc["group"] == "g" and "tiers" not in doc and tier_doc["group"] == "g@avx512"
    assert tier_doc["history"][0]["reason"] == "first pin at the level Skylake-Server" and tier_doc["generation"] == 1
    # Frozen: a second run over a group that could now run more writes nothing and admits against the pin.
    again, _store = _run(tmp_path, tiers)
    assert again.contract_files == [] and again.report["groups"]["g@avx512"]["features"] == high["features"]
    assert store.read("g@avx512").generation == 1


def test_without_tiers_the_contract_is_written_as_before(tmp_path) -> None:
    plain, _store = _run(tmp_path / "a", None)
    tiered, _store = _run(tmp_path / "b", _tiers_of())
    assert plain.report["groups"]["g"]["cpu"] == tiered.report["groups"]["g"]["cpu"]
    a = json.loads((tmp_path / "a" / "store" / "g.json").read_text())
    b = json.loads((tmp_path / "b" / "store" / "g.json").read_text())
    assert {k: v for k, v in a.items() if k not in ("written_at", "pinned_at", "history")} == \
        {k: v for k, v in b.items() if k not in ("written_at", "pinned_at", "history")}
    assert not (tmp_path / "a" / "store" / "g@avx512.json").exists()


def test_a_level_a_tier_host_cannot_run_is_refused_naming_host_and_features(tmp_path) -> None:
    tiers = _tiers_of({"avx512": {"level": "Skylake-Server", "hosts": "bdw,gold"}})
    outcome, store = _run(tmp_path, tiers)
    reasons = " ".join(outcome.report["verdict"]["reasons"])
    assert not outcome.report["verdict"]["ok"] and "tier avx512 of group g cannot be pinned at the chosen level" in reasons
    assert "Skylake-Server" in reasons and "bdw" in reasons, reasons
    assert store.read("g@avx512").contract is None, "nothing pinned for the refused tier"


def test_a_domain_whose_host_is_not_of_its_tier_is_named_never_lowered(tmp_path) -> None:
    tiers = _tiers_of(chosen={"d-bdw": "avx512"})
    outcome, _store = _run(tmp_path, tiers)
    reasons = outcome.report["groups"]["g"]["reasons"]
    assert not outcome.report["verdict"]["ok"]
    assert any(r.startswith("domain d-bdw on bdw is in tier avx512 of group g, but bdw is not a host of that tier") for r in reasons)
    assert "bdw/d-bdw" not in outcome.report["groups"]["g"]["domains"], "not judged (nor deployed) as a base domain"
    assert "d-bdw" in outcome.extra["contracts"]["g"]["tiers"]["bdw"] and "bdw" not in outcome.extra["contracts"]["g@avx512"]["admitted"]
    assert outcome.contract_files == [] and not (tmp_path / "store" / "g@avx512.json").exists(), "a refused group writes nothing"


def test_admission_and_quarantine_per_tier(tmp_path) -> None:
    pinned, _store = _run(tmp_path, _tiers_of())
    assert pinned.report["verdict"]["ok"]
    # bdw joins the tier later: the tier's frozen level refuses it by name, the base is untouched.
    wider = _tiers_of({"avx512": {"level": "Skylake-Server", "hosts": "avx512_hosts,bdw"}})
    refused, _store = _run(tmp_path, wider)
    high = refused.report["groups"]["g@avx512"]
    assert [r["host"] for r in high["admission"]["refused"]] == ["bdw"] and "avx512f" in high["admission"]["refused"][0]["missing_features"]
    assert any("bdw cannot run the contract CPU of tier avx512 of group g" in r for r in high["reasons"])
    assert refused.report["groups"]["g"]["admission"]["ok"] is True
    quarantined, _store = _run(tmp_path, wider, on_refusal="exclude")
    high = quarantined.report["groups"]["g@avx512"]
    assert quarantined.report["verdict"]["ok"] and list(high["quarantined"]) == ["bdw"] and high["admitted"] == ["gold", "platinum"]


def test_raise_and_lower_per_tier(tmp_path) -> None:
    _pinned, store = _run(tmp_path, _tiers_of())
    stored = store.read("g@avx512")
    tier_hosts = group_facts({n: FACTS[n] for n in ("gold", "platinum")})
    lower = _change.plan_change("g@avx512", tier_hosts, stored.contract, "p", _change.ChangeRequest(
        "lower", level="Skylake-Server,-avx512vl", allow_lower=True), OPTS, REGISTRY, {})
    assert lower.section["applicable"] and lower.to_write is not None and lower.to_write.group == "g@avx512"
    assert "avx512vl" in lower.section["change"]["lost"] and "avx512vl" not in lower.to_write.cpu.features
    raised = _change.plan_change("g@avx512", tier_hosts, lower.to_write, "p", _change.ChangeRequest("raise"), OPTS, REGISTRY, {})
    assert raised.section["applicable"] and "avx512vl" in raised.to_write.cpu.features
    assert {"pin", "lower", "raise"} == {h["action"] for h in raised.to_write.history}
    with_bdw = group_facts(FACTS)
    refused = _change.plan_change("g@avx512", with_bdw, stored.contract, "p", _change.ChangeRequest("raise"), OPTS, REGISTRY, {})
    assert not refused.section["applicable"], "a tier's level is at most what every host of the tier runs"


def test_tier_stamps_belong_to_the_tier_and_to_the_group() -> None:
    stamp = {"group": "g", "tier": "avx512", "generation": 1, "digest": "sha256:" + "0" * 64, "pinned_at": None,
             "level": {"model": "Skylake-Server"}}
    text = _stamp.stamp_xml(stamp)
    assert " tier='avx512'" in text or ' tier="avx512"' in text
    xml = f"<domain><name>d</name><metadata>{text}</metadata></domain>"
    read = _stamp.manager(xml)
    assert read["stamp"]["tier"] == "avx512" and read["tier"] == "avx512"
    assert _stamp.manager("<domain><metadata><cpucompat:cpu xmlns:cpucompat='https://github.com/cpucompat/cluster/xmlns/1' "
                          "tier='avx512'/></metadata></domain>")["tier"] == "avx512", "the operator's choice, no stamp yet"
    domains = domains_of({"gold": [{"name": "d", "stamp": read["stamp"]}]})
    assert [s.domain for s in _stamps.found("g@avx512", domains)] == ["d"] and _stamps.found("g", domains) == []
    assert _stamps.held_elsewhere("g", domains) == [] and _stamps.held_elsewhere("g@avx512", domains) == []
    assert _stamps.held_elsewhere("other", domains), "another group's tier holds the host like its base"
    with pytest.raises(ValueError):
        _stamp.stamp_xml({**stamp, "tier": "bad tier"})


def test_the_migration_matrix_keeps_a_tier_domain_within_its_tier(tmp_path) -> None:
    tiers = _tiers_of(chosen={"d-gold": "avx512"})
    pinned, _store = _run(tmp_path, tiers)
    xml = pinned.extra["contracts"]["g@avx512"]["xml"]
    base_xml = pinned.extra["contracts"]["g"]["xml"]
    reader = Reader(domains={"gold": [{"name": "d-gold", "persistent": True, "cpu_xml": xml},
                                      {"name": "d-base", "persistent": True, "cpu_xml": base_xml}]})
    moves = [{"domain": "gold/d-gold", "target": "platinum"}, {"domain": "gold/d-gold", "target": "bdw"},
             {"domain": "gold/d-base", "target": "bdw"}]
    common = _common.Common(OPTS, REGISTRY, store=FileStore(str(tmp_path / "store")))
    report = _reading.migration(common, reader, MEMBERS, ["gold"], "found", None, moves, "g", tiers=tiers).report
    cell = report["matrix"]["gold/d-gold"]["bdw"]
    assert cell["ok"] is False and cell["tier"] == "avx512" and "avx512f" in cell["cpu_blocking"]
    assert report["matrix"]["gold/d-gold"]["platinum"]["ok"] is True and report["matrix"]["gold/d-base"]["bdw"]["ok"] is True
    assert report["verdict"]["reasons"] == [
        "gold/d-gold -> bdw: bdw is not a host of tier avx512 of group g (its hosts: gold, platinum); a domain moves only "
        "within its tier"]
    # A domain the tier's hosts could all run, to a base host that could run it too: still refused, by the tier alone.
    lowered = Reader(domains={"gold": [{"name": "d-gold", "persistent": True, "cpu_xml": base_xml}]})
    report = _reading.migration(common, lowered, MEMBERS, ["gold"], "found", None, moves[1:2], "g", tiers=tiers).report
    cell = report["matrix"]["gold/d-gold"]["bdw"]
    assert cell["ok"] is False and cell["cpu_ok"] is True and not report["verdict"]["ok"]


def test_a_tiers_contract_is_rebuilt_from_its_domains_stamps(tmp_path) -> None:
    pinned, store = _run(tmp_path, _tiers_of(chosen={"d-gold": "avx512"}))
    high = pinned.extra["contracts"]["g@avx512"]
    stamp = {"group": "g", "tier": "avx512", "generation": high["generation"], "digest": high["digest"], "pinned_at": high["pinned_at"],
             "level": high["cpu"]}
    read = _stamp.manager(f"<domain><name>d-gold</name><metadata>{_stamp.stamp_xml(stamp)}</metadata></domain>")["stamp"]
    reader = Reader(domains={"gold": [{"name": "d-gold", "persistent": True, "cpu_xml": high["xml"], "stamp": read}]})
    (tmp_path / "store" / "g@avx512.json").unlink()  # the tier's contract lost
    lost, _store = _run(tmp_path, _tiers_of(chosen={"d-gold": "avx512"}), reader)
    reasons = " ".join(lost.report["groups"]["g@avx512"]["reasons"])
    assert "group g@avx512 has no contract in the store" in reasons
    assert "cpucompat.cluster.rebuild_contract -e cpucompat_group=g -e cpucompat_contract_tier=avx512" in reasons
    common = _common.Common(OPTS, REGISTRY, store=store)
    rebuilt = _contracting.rebuild(common, reader, "g@avx512", MEMBERS, "found")
    assert rebuilt.report["features"] == high["cpu"]["features"] and store.read("g@avx512").contract.cpu.level() == high["cpu"]


def test_the_expansion_plan_checks_a_candidate_joining_a_tier_against_the_tiers_contract(tmp_path) -> None:
    two = ["gold", "platinum"]
    store = FileStore(str(tmp_path / "store"))
    common = _common.Common(OPTS, REGISTRY, store=store)
    tiers = _tiers.parse_tiers("g", {"avx512": {"level": "Skylake-Server", "hosts": "gold"}}, two, {})
    pinned = _contracting.contract(common, Reader(), {"g": two}, None, tiers={"g": tiers})
    assert pinned.report["verdict"]["ok"] and store.read("g@avx512").contract is not None
    joining = _tiers.parse_tiers("g", {"avx512": {"level": "Skylake-Server", "hosts": "gold,bdw"}}, [*two, "bdw"], {})
    report = _reading.expansion(common, Reader(), two, ["bdw"], None, "incompatible", "g", joining).report
    tier = report["tiers"]["avx512"]["candidates"]["bdw"]
    assert tier["would_be_refused"] and "avx512f" in tier["missing_features"]
    assert "the contract of tier avx512 (g@avx512) would refuse bdw" in report["verdict"]["reasons"]
    outside = _tiers.parse_tiers("g", {"avx512": {"level": "Skylake-Server", "hosts": "gold"}}, [*two, "bdw"], {})
    report = _reading.expansion(common, Reader(), two, ["bdw"], None, "incompatible", "g", outside).report
    assert report["tiers"] == {} and not any("tier" in r for r in report["verdict"]["reasons"]), "bdw joins the base only"


def _seen(xml: str, words: dict) -> dict:
    """A host's observation of ``xml`` (the cpu_observe fact) with the CPUID words ``words``."""
    return {"schema": _observed.OBSERVATION_SCHEMA, "cpuid": words, "filtered": {}, "accel": "kvm", "machine": "pc-q35-7.2",
            "qemu": {"version": "7.2.0", "package": None}, "kernel": "6.1.0", "cpu_digest": _observed.cpu_digest(xml)}


def test_each_tier_is_admitted_by_its_hosts_observation_of_its_own_cpu(tmp_path) -> None:
    """The site's two contract steps with tiers: the tier's first pin waits for the observation step like the group's;
    a tier host whose QEMU gives the tier's <cpu> other words is refused from the tier (named as the tier), the base
    keeps it; quarantined, the tier is pinned with the words its other hosts observe, recorded in the tier's contract."""
    store = FileStore(str(tmp_path / "store"))
    tiers = {"g": _tiers_of()}
    first = _contracting.contract(_common.Common(OPTS, REGISTRY, store=store, defer_pin=True), Reader(), {"g": MEMBERS}, "found", tiers=tiers)
    sections = first.report["groups"]
    assert sections["g@avx512"]["pin_deferred"] and store.read("g@avx512").contract is None, "the tier waits for its observation"
    base_xml, high_xml = sections["g"]["xml"], sections["g@avx512"]["xml"]
    base_words, high_words = {"0x1.0x0.ECX": 1}, {"0x1.0x0.ECX": 1, "0x7.0x0.EBX": 0x10000}
    observed = {h: _seen(base_xml, base_words) for h in MEMBERS}
    by_tier = {"g@avx512": {"gold": _seen(high_xml, high_words), "platinum": _seen(high_xml, {**high_words, "0x7.0x0.EBX": 0})}}

    def second(**common):
        return _contracting.contract(_common.Common(OPTS, REGISTRY, store=store, defer_pin=True, **common), Reader(), {"g": MEMBERS}, "found",
                                     carried=copy.deepcopy(sections), observations=observed, tiers=tiers, tier_observations=by_tier)

    refused = second()
    high = refused.report["groups"]["g@avx512"]
    assert not refused.report["verdict"]["ok"] and [r["host"] for r in high["admission"]["refused"]] == ["platinum"]
    assert any(r.startswith("platinum does not give the contract CPU of tier avx512 of group g as the tier observes it") for r in high["reasons"])
    assert refused.report["groups"]["g"]["admitted"] == MEMBERS and not refused.report["groups"]["g"]["reasons"]
    assert store.read("g@avx512").contract is None, "a refused tier is not pinned"
    kept = second(on_refusal="exclude")
    high = kept.report["groups"]["g@avx512"]
    assert kept.report["verdict"]["ok"] and list(high["quarantined"]) == ["platinum"] and high["admitted"] == ["gold"]
    tier = store.read("g@avx512")
    assert tier.generation == 1 and tier.contract is not None
    assert [(v["hosts"], v["cpuid"]) for v in tier.contract.observed.values()] == [(["gold"], high_words)]
    assert [v["cpuid"] for v in store.read("g").contract.observed.values()] == [base_words], "the group's words are its own"
