# Copyright (c) 2026 cpucompat.cluster contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The rolling power cycle, planned: pending guests, selection, batches, anti-affinity, progress and its store."""

from __future__ import annotations

import os

import pytest

from ansible_collections.cpucompat.cluster.plugins.module_utils.contract import _power_cycle as pc
from ansible_collections.cpucompat.cluster.plugins.module_utils.contract import _progress_store, _store
from ansible_collections.cpucompat.cluster.plugins.module_utils.verbs import _power_cycle
from ansible_collections.cpucompat.cluster.plugins.module_utils.reports._html import report_html
from ansible_collections.cpucompat.cluster.plugins.module_utils.reports._markdown import report_markdown

RESTART = {"status": "restart-required", "active": True, "persistent": True, "next_power_cycle": {"gains": ["avx2"], "loses": []}}
DOMAINS = {
    "hv1/web1": RESTART, "hv1/web2": RESTART, "hv1/db1": RESTART,
    "hv2/web3": RESTART, "hv2/db2": RESTART,
    "hv2/off": {**RESTART, "active": False},  # not running: its next start applies it
    "hv2/old": {"status": "not-deployed", "active": True, "persistent": False},  # the deploy's, not a power cycle's
    "hv2/high": {"status": "above-contract", "active": True, "persistent": True, "beyond_contract": ["avx512f"]},
    "hv2/fine": {"status": "compliant", "active": True, "persistent": True},
}
SECTION = {"model": "Skylake-Server", "features": ["avx2", "sse4.2"], "domains": DOMAINS}


def test_pending_takes_running_guests_whose_definition_carries_the_contract() -> None:
    keys = [g.key for g in pc.pending(DOMAINS)]
    assert keys == ["hv1/db1", "hv1/web1", "hv1/web2", "hv2/db2", "hv2/high", "hv2/web3"]
    assert pc.pending(DOMAINS)[0].gains == ("avx2",)
    assert pc.pending(DOMAINS)[4].loses == ("avx512f",)  # above the contract: what it runs beyond it


@pytest.mark.parametrize(("selection", "expected"), [
    (None, 6), ("hv1", 3), ("hv2/db2", 1), ("web1,web3", 2), (["db*"], 2), ("~^web[12]$", 2), ("nothing", 0), ("hv1/web*", 2),
])
def test_selection_names_hosts_domains_and_patterns(selection: object, expected: int) -> None:
    assert len(pc.select(pc.pending(DOMAINS), selection, ["hv1", "hv2"])) == expected


def test_a_bad_selection_is_named() -> None:
    with pytest.raises(pc.PowerCycleError, match=r"cpucompat_cycle_select: '~\(' is not a regular expression"):
        pc.select(pc.pending(DOMAINS), "~(", ["hv1"])
    with pytest.raises(pc.PowerCycleError, match="neither a comma-separated string nor a list"):
        pc.select(pc.pending(DOMAINS), 5, ["hv1"])


@pytest.mark.parametrize(("value", "bounds"), [(1, pc.Bounds(1, 1)), ("3", pc.Bounds(3, 3)), ({"overall": 4}, pc.Bounds(4, 4)),
                                               ({"per_host": 1, "overall": 2}, pc.Bounds(1, 2))])
def test_batch_bounds(value: object, bounds: pc.Bounds) -> None:
    assert pc.Bounds.of(value) == bounds


@pytest.mark.parametrize("value", [0, -1, "x", 1.5, True, {"per_hosts": 1}])
def test_bad_batch_bounds_are_named(value: object) -> None:
    with pytest.raises(pc.PowerCycleError, match="cpucompat_cycle_batch"):
        pc.Bounds.of(value)


def test_batches_keep_the_bounds_and_never_put_an_anti_affinity_group_down_together() -> None:
    guests = pc.pending(DOMAINS)
    groups = pc.anti_affinity([["db1", "hv2/db2"], "web1,web3"])
    batches = pc.plan_batches(guests, pc.Bounds(per_host=2, overall=3), groups)
    assert [[g.key for g in b] for b in batches] == [["hv1/db1", "hv1/web1", "hv2/high"], ["hv1/web2", "hv2/db2", "hv2/web3"]]
    for batch in batches:
        assert len(batch) <= 3
        for host in ("hv1", "hv2"):
            assert sum(g.host == host for g in batch) <= 2
        for group in groups:
            assert sum(g.name in group or g.key in group for g in batch) <= 1
    assert sorted(g.key for b in batches for g in b) == sorted(g.key for g in guests)


def test_one_at_a_time_by_default_and_cycled_guests_are_skipped() -> None:
    batches = pc.plan_batches(pc.pending(DOMAINS), pc.Bounds.of(1), skip=["hv1/db1", "hv2/high"])
    assert [[g.key for g in b] for b in batches] == [["hv1/web1"], ["hv1/web2"], ["hv2/db2"], ["hv2/web3"]]


def test_a_bad_anti_affinity_group_is_named() -> None:
    with pytest.raises(pc.PowerCycleError, match=r"cpucompat_cycle_anti_affinity\[0\]: \['db1'\] names fewer than two"):
        pc.anti_affinity([["db1"]])


def test_progress_resumes_for_the_same_contract_and_starts_anew_for_another() -> None:
    key = pc.contract_key("Skylake-Server", ["sse4.2", "avx2"])
    assert key == pc.contract_key("Skylake-Server", ["avx2", "sse4.2"]) != pc.contract_key("Skylake-Server", ["avx2"])
    progress = pc.current(None, "g", key)
    failed = pc.record(progress, "hv1", 0, [{"name": "web1", "state": "done"}, {"name": "db1", "state": "gate-failed", "why": "agent"},
                                            {"name": "web2", "state": "timeout"}], "now")
    assert failed == ["hv1/db1"] and progress.stopped["guests"] == ["hv1/db1"] and "agent" in progress.stopped["why"]
    again = pc.Progress.from_dict(progress.to_dict(), "here")
    assert pc.cycled(pc.current(again, "g", key)) == {"hv1/web1", "hv1/db1"}  # the timed-out one may be tried again
    assert pc.cycled(pc.current(again, "g", "another")) == set()
    with pytest.raises(pc.PowerCycleError, match="host hv1: domain 'x' came back in state 'odd'"):
        pc.record(progress, "hv1", 0, [{"name": "x", "state": "odd"}], "now")


def test_progress_store_compare_and_swap(store) -> None:  # type: ignore[no-untyped-def]
    assert _progress_store.read(store, "g") == (None, 0)
    progress = pc.Progress("g", "k")
    assert _progress_store.write(store, "g", progress, 0) == 1
    progress.guests["hv1/a"] = {"state": "done"}
    assert _progress_store.write(store, "g", progress, 1) == 2
    read, generation = _progress_store.read(store, "g")
    assert generation == 2 and read is not None and read.guests == {"hv1/a": {"state": "done"}}
    with pytest.raises(_store.ConflictError, match="progress of group g changed while this run worked .* generation 2 was written, "
                                                   "this run read generation 1; nothing was written"):
        _progress_store.write(store, "g", progress, 1)
    assert _progress_store.read(store, "g")[1] == 2
    if isinstance(store, _store.FileStore):
        assert os.path.exists(os.path.join(store.directory, "power_cycle", "g.json"))
        assert store.read("g").contract is None  # beside the contract, never in its place


def test_plan_then_record_resumes_and_reports(tmp_path) -> None:
    store = _store.FileStore(str(tmp_path))
    options = {"mode": "now", "select": "hv1", "batch": 2, "anti_affinity": [["web1", "db1"]]}
    report, extra = _power_cycle.plan(store, "g", SECTION, ["hv1", "hv2"], options, check_mode=True)
    assert _progress_store.read(store, "g") == (None, 0)  # check mode writes nothing
    assert [b["hosts"] for b in extra["batches"]] == [{"hv1": ["db1", "web2"]}, {"hv1": ["web1"]}]
    assert report["rows"][0]["state"] == "planned" and report["rows"][0]["gains"] == ["avx2"]
    report, extra = _power_cycle.plan(store, "g", SECTION, ["hv1", "hv2"], options, check_mode=False)
    assert extra["generation"] == 1
    words = {"0x1.0x0.ECX": 0x1, "0x7.0x0.EBX": 0x0}
    ran = [{"item": {"key": "hv1"}, "domains": [
        {"name": "db1", "state": "done", "cpu_before": "<cpu><model>Broadwell</model></cpu>",
         "cpu_after": "<cpu><model>Skylake-Server</model></cpu>", "down_s": 1.5, "observed_before": {"cpuid": words},
         "observed_after": {"cpuid": {**words, "0x7.0x0.EBX": 0x20}, "filtered": {"0x1.0x0.ECX": 0x100000}}},
        {"name": "web2", "state": "gate-failed", "why": "domain web2: the health command /bin/false exited 1"}]}]
    report, out = _power_cycle.record(store, "g", SECTION, options, 0, ran, 1, extra["batches"])
    assert out["stop"] and out["gate_failed"] == ["hv1/web2"] and out["generation"] == 2
    row = report["rows"][0]
    assert (row["before"], row["after"], row["down_s"], row["observed"]["gains"]) == ("Broadwell", "Skylake-Server", 1.5, ["avx2"])
    markdown, html = report_markdown(report), report_html(report)
    assert "Stopped: hv1/web2: domain web2: the health command /bin/false exited 1" in markdown
    assert ("| 1 | hv1/db1 | done | Broadwell | Skylake-Server | avx2 | - | gained avx2; lost nothing; not given by the host: sse4.2 "
            "| 1.5 |") in markdown
    assert "Power cycle onto the contract" in html and "hv1/web2" in html and "not given by the host: sse4.2" in html
    # A rerun continues: db1 and web2 were shut down and started, only web1 is left.
    report, extra = _power_cycle.plan(store, "g", SECTION, ["hv1", "hv2"], options, check_mode=False)
    assert [b["hosts"] for b in extra["batches"]] == [{"hv1": ["web1"]}] and extra["skipped"] == ["hv1/db1", "hv1/web2"]
    assert report["resumed"] and {e["guest"] for e in report["earlier"]} == {"hv1/db1", "hv1/web2"}
    with pytest.raises(_store.ConflictError):
        _power_cycle.record(store, "g", SECTION, options, 0, ran, 1, extra["batches"])


def test_a_run_under_way_keeps_the_group_until_it_ends_or_its_lease_runs_out(tmp_path) -> None:
    store = _store.FileStore(str(tmp_path))
    options = {"mode": "now", "batch": 1}
    _report, first = _power_cycle.plan(store, "g", SECTION, ["hv1", "hv2"], options, check_mode=False, clock=lambda: 1000.0)
    assert len(first["batches"]) == 6
    with pytest.raises(pc.PowerCycleError, match=r"the power cycle of group g is under way: started by .* last recorded 60 s ago; "
                                                 r"let it finish \(or, if that run is gone, -e cpucompat_cycle_takeover=true\)"):
        _power_cycle.plan(store, "g", SECTION, ["hv1", "hv2"], options, check_mode=False, clock=lambda: 1060.0)
    # Check mode only plans: never refused, never writes.
    _power_cycle.plan(store, "g", SECTION, ["hv1", "hv2"], options, check_mode=True, clock=lambda: 1060.0)
    ran = [{"item": {"key": "hv1"}, "domains": [{"name": "db1", "state": "done"}]}]
    _report, out = _power_cycle.record(store, "g", SECTION, options, 0, ran, first["generation"], first["batches"], clock=lambda: 5000.0)
    with pytest.raises(pc.PowerCycleError, match="last recorded 100 s ago"):  # each record renews the lease
        _power_cycle.plan(store, "g", SECTION, ["hv1", "hv2"], options, check_mode=False, clock=lambda: 5100.0)
    # Gone for longer than the lease (or taken over): the next run continues without db1.
    _report, again = _power_cycle.plan(store, "g", SECTION, ["hv1", "hv2"], {**options, "takeover": True}, check_mode=False,
                                       clock=lambda: 5200.0)
    assert "hv1/db1" in again["skipped"] and len(again["batches"]) == 5
    last = len(again["batches"]) - 1
    ran = [{"item": {"key": h}, "domains": [{"name": n, "state": "done"}]} for b in again["batches"] for h, ns in b["hosts"].items() for n in ns]
    generation = again["generation"]
    for i, r in enumerate(ran):
        _report, out = _power_cycle.record(store, "g", SECTION, options, i, [r], generation, again["batches"], clock=lambda: 5300.0)
        generation = out["generation"]
    assert i == last
    # The last batch ended the run: the next one starts at once, and finds nothing left.
    report, nothing = _power_cycle.plan(store, "g", SECTION, ["hv1", "hv2"], options, check_mode=False, clock=lambda: 5301.0)
    assert nothing["batches"] == [] and report["rows"] == [] and len(report["earlier"]) == 6
    assert "No running guest waits" in report_markdown(report)


def test_next_shutdown_takes_every_guest_in_one_batch(tmp_path) -> None:
    store = _store.FileStore(str(tmp_path))
    options = {"mode": "next_shutdown", "batch": 1, "anti_affinity": [["db1", "db2"]]}
    _report, plan = _power_cycle.plan(store, "g", SECTION, ["hv1", "hv2"], options, check_mode=True)
    assert [sorted(b["hosts"]) for b in plan["batches"]] == [["hv1", "hv2"]] and sum(map(len, plan["batches"][0]["hosts"].values())) == 6


def test_a_group_without_a_contract_is_refused_and_a_record_needs_a_plan(tmp_path) -> None:
    store = _store.FileStore(str(tmp_path))
    with pytest.raises(pc.PowerCycleError, match="group g has no contract yet: run cpucompat.cluster.site first"):
        _power_cycle.plan(store, "g", {**SECTION, "pinned_now": True}, ["hv1"], {"mode": "now"}, check_mode=True)
    with pytest.raises(pc.PowerCycleError, match="group g: no power-cycle progress to record batch 1 in: plan first"):
        _power_cycle.record(store, "g", SECTION, {"mode": "now"}, 0, [], 0, [])


def test_one_host_part_at_a_time_ends_the_run_only_when_told(tmp_path) -> None:
    store = _store.FileStore(str(tmp_path))
    options = {"mode": "now", "batch": {"per_host": 1, "overall": 2}}
    _report, plan = _power_cycle.plan(store, "g", SECTION, ["hv1", "hv2"], options, check_mode=False, clock=lambda: 0.0)
    part = [{"host": "hv1", "domains": [{"name": "db1", "state": "done"}]}]
    _report, out = _power_cycle.record(store, "g", SECTION, options, len(plan["batches"]) - 1, part, plan["generation"],
                                       plan["batches"], clock=lambda: 1.0, last=False)
    with pytest.raises(pc.PowerCycleError, match="is under way"):  # the last batch's other host is still to come
        _power_cycle.plan(store, "g", SECTION, ["hv1", "hv2"], options, check_mode=False, clock=lambda: 2.0)
    part = [{"host": "hv2", "domains": [{"name": "db2", "state": "done"}]}]
    _power_cycle.record(store, "g", SECTION, options, len(plan["batches"]) - 1, part, out["generation"], plan["batches"],
                        clock=lambda: 3.0, last=True)
    _report, again = _power_cycle.plan(store, "g", SECTION, ["hv1", "hv2"], options, check_mode=False, clock=lambda: 4.0)
    assert {"hv1/db1", "hv2/db2"} <= set(again["skipped"])
