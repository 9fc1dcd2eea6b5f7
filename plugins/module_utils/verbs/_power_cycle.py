# Copyright (c) 2026 cpucompat.cluster contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The ``power_cycle`` verb (the cpu_power_cycle action): plan a group's rolling power cycle from the contract step's
domain statuses and the stored progress, or record a batch's results into the progress; and its report. Private.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from ..contract import _power_cycle as pc
from ..contract import _progress_store
from ..contract._contract import now_iso
from ..contract._stored import writer
from ..cpu._cpuid import bit_names, diff_words
from ..reports._schema import REPORT_SCHEMA


def _observed_change(result: Mapping[str, Any]) -> dict[str, list[str]] | None:
    """What the guest's vCPU gained and lost, from its CPUID words before and after (None when not observed both)."""
    before, after = result.get("observed_before") or {}, result.get("observed_after") or {}
    if not isinstance(before.get("cpuid"), Mapping) or not isinstance(after.get("cpuid"), Mapping):
        return None
    diffs = diff_words(before["cpuid"], after["cpuid"])
    filtered: Mapping[str, int] = after["filtered"] if isinstance(after.get("filtered"), Mapping) else {}
    return {"gains": sorted({n for d in diffs for n in d.only_b}), "loses": sorted({n for d in diffs for n in d.only_a}),
            "words": [d.describe("before", "after") for d in diffs],
            # asked for by the new <cpu> and not given by this host's QEMU and kernel (check='full' refuses to start then)
            "filtered": sorted({n for key, mask in filtered.items() for n in bit_names(key, mask)})}


def _host_results(results: Sequence[Any]) -> list[tuple[str, list[dict[str, Any]]]]:
    """The registered loop of domain_power_cycle over the batch's hosts: (host, its domains' results)."""
    out = []
    for r in results:
        if not isinstance(r, Mapping):
            raise pc.PowerCycleError(f"a batch result {r!r:.100} is not a task result")
        item = r.get("item")
        host = r.get("host") or (item.get("key") if isinstance(item, Mapping) else None)
        if not isinstance(host, str):
            raise pc.PowerCycleError(f"a batch result names no host: {sorted(r)}")
        if r.get("failed") or r.get("unreachable"):
            raise pc.PowerCycleError(f"host {host}: the batch did not run: {r.get('msg') or 'failed'}")
        out.append((host, [dict(d) for d in r.get("domains") or []]))
    return out


def plan(store: Any, group: str, section: Mapping[str, Any], hosts: Sequence[str], options: Mapping[str, Any],
         check_mode: bool, clock: Callable[[], float] = time.time) -> tuple[dict[str, Any], dict[str, Any]]:
    """The batches of this run (without the guests a run already cycled for this contract) and the progress it starts."""
    if section.get("pinned_now") or not section.get("model"):
        raise pc.PowerCycleError(f"group {group} has no contract yet: run cpucompat.cluster.site first (it pins the contract and "
                                 "deploys it); the power cycle only applies a deployed contract")
    guests = pc.select(pc.pending(section.get("domains") or {}), options.get("select"), hosts)
    groups = pc.anti_affinity(options.get("anti_affinity"))
    bounds = pc.Bounds.of(options.get("batch", 1))
    if options.get("mode") != "now":
        # next_shutdown takes no guest down: every guest in one batch (a reboot inside each is its own, whenever it comes)
        bounds, groups = pc.Bounds(max(len(guests), 1), max(len(guests), 1)), []
    key = pc.contract_key(section.get("model"), section.get("features") or [])
    stored, generation = _progress_store.read(store, group)
    progress = pc.current(stored, group, key)
    done = pc.cycled(progress)
    batches = pc.plan_batches(guests, bounds, groups, done)
    resumed = bool(progress.guests)
    if not check_mode:
        if any(batches):
            pc.claim(progress, writer(), now_iso(), clock(), float(options.get("lease") or pc.LEASE), bool(options.get("takeover")))
        else:
            progress.running = None
        progress.stopped = None
        progress.runs.append({"started_at": now_iso(), "by": writer(), "mode": options.get("mode"),
                              "batches": len(batches), "guests": sum(len(b) for b in batches)})
        generation = _progress_store.write(store, group, progress, generation)
    report = view(group, section, progress, batches, options, _progress_store.where(store, group), check_mode, resumed)
    extra = {"batches": [{"index": i, "hosts": _by_host(b)} for i, b in enumerate(batches)], "generation": generation,
             "skipped": sorted(done)}
    return report, extra


def _by_host(batch: Sequence[pc.Guest]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for g in batch:
        out.setdefault(g.host, []).append(g.name)
    return out


def record(store: Any, group: str, section: Mapping[str, Any], options: Mapping[str, Any], batch: int,
           results: Sequence[Any], generation: int, planned: Sequence[Mapping[str, Any]],
           clock: Callable[[], float] = time.time, last: bool | None = None) -> tuple[dict[str, Any], dict[str, Any]]:
    """A batch's results (or one host's part of it) into the stored progress (compare-and-swap on ``generation``);
    stop when a gate failed. ``last``: the run's last part (default: the plan's last batch), which ends the run."""
    stored, _found = _progress_store.read(store, group)
    if stored is None:
        raise pc.PowerCycleError(f"group {group}: no power-cycle progress to record batch {batch + 1} in: plan first")
    key = pc.contract_key(section.get("model"), section.get("features") or [])
    progress = pc.current(stored, group, key)
    at = now_iso()
    failed: list[str] = []
    for host, domains in _host_results(results):
        for d in domains:
            change = _observed_change(d)
            if change is not None:
                d["observed_change"] = change
        failed += pc.record(progress, host, batch, domains, at)
    if failed or (last if last is not None else batch >= len(planned) - 1):
        progress.running = None  # the run ends here: the next one may start
    elif progress.running is not None:
        progress.running["seen_at"] = clock()
    generation = _progress_store.write(store, group, progress, generation)
    batches = [[pc.Guest(h, n, "restart-required") for h, names in (b.get("hosts") or {}).items() for n in names] for b in planned]
    report = view(group, section, progress, batches, options, _progress_store.where(store, group), False, True)
    return report, {"generation": generation, "stop": bool(failed), "gate_failed": failed,
                    "why": (progress.stopped or {}).get("why") if failed else None}


def _model(cpu_xml: Any) -> str | None:
    if not isinstance(cpu_xml, str):
        return None
    start = cpu_xml.find("<model")
    if start < 0:
        return None
    end = cpu_xml.find("</model>", start)
    text = cpu_xml[cpu_xml.find(">", start) + 1:end] if end > 0 else ""
    return text.strip() or None


def _now(status: Mapping[str, Any] | None) -> str:
    """What became of a guest an earlier run handled, by this run's contract step."""
    if status is None:
        return "not listed in this run"
    if status.get("status") == "compliant":
        return "runs the contract CPU" if status.get("active") else "shut off (ended): its next start runs the contract CPU (virsh start)"
    return str(status.get("status"))


def view(group: str, section: Mapping[str, Any], progress: pc.Progress, batches: Sequence[Sequence[pc.Guest]],
         options: Mapping[str, Any], where: str, check_mode: bool, resumed: bool) -> dict[str, Any]:
    """The power_cycle report: the batches, each guest's CPU before and after, gained and lost, and downtime."""
    statuses = section.get("domains") or {}
    rows = []
    for i, batch in enumerate(batches):
        for g in batch:
            rec = progress.guests.get(g.key) or {}
            status = statuses.get(g.key) or {}
            nxt = status.get("next_power_cycle") or {"loses": status.get("beyond_contract")}
            rows.append({"batch": i + 1, "guest": g.key, "state": rec.get("state") or ("planned" if check_mode else "waiting"),
                         "why": rec.get("why"), "before": _model(rec.get("cpu_before")), "after": _model(rec.get("cpu_after")),
                         "gains": list(nxt.get("gains") or g.gains), "loses": list(nxt.get("loses") or g.loses),
                         "observed": rec.get("observed_change"), "down_s": rec.get("down_s"),
                         "unavailable_s": rec.get("unavailable_s"), "forced": bool(rec.get("forced")),
                         "stopped_at": rec.get("stopped_at"), "started_at": rec.get("started_at")})
    in_plan = {r["guest"] for r in rows}
    earlier = [{"guest": k, "state": v.get("state"), "batch": v.get("batch"), "down_s": v.get("down_s"), "why": v.get("why"),
                "now": _now(statuses.get(k))} for k, v in sorted(progress.guests.items()) if k not in in_plan]
    reasons = [progress.stopped["why"]] if progress.stopped else []
    reasons += [f"{r['guest']}: {r['why']}" for r in rows if r["state"] in ("timeout", "error")]
    return {"schema": REPORT_SCHEMA, "kind": "power_cycle", "group": group, "mode": options.get("mode"),
            "check_mode": check_mode, "resumed": resumed, "progress_file": where, "contract_model": section.get("model"),
            "contract_key": progress.contract, "batch": options.get("batch"), "anti_affinity": options.get("anti_affinity") or [],
            "select": options.get("select"), "rows": rows, "earlier": earlier, "stopped": progress.stopped,
            "verdict": {"ok": not reasons, "reasons": reasons}}
