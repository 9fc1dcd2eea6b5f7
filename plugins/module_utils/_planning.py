# Copyright (c) 2026 cpucompat.cluster contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Planning questions: can these hosts join the cluster, and what would they cost? Private to the collection."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Mapping
from typing import Any

from ._baseline import BaselineOptions, compare, compute_baseline
from ._cluster import REPORT_SCHEMA
from ._errors import BaselineError, CpuCompatError
from ._libvirt_xml import CpuMap, libvirt_feature_name, render

FAIL_ON = ("incompatible", "lowers_baseline", "never")


def libvirt_cpu_features(cpu_xml: str, cpu_map: CpuMap) -> frozenset[str] | None:
    """The features a libvirt custom <cpu> gives a guest (libvirt names), None for host-model/passthrough."""
    try:
        cpu = ET.fromstring(cpu_xml)
    except ET.ParseError as exc:
        raise BaselineError(f"not a well-formed <cpu> element: {exc}") from exc
    if cpu.get("mode", "custom") != "custom":
        return None
    model = (cpu.findtext("model") or "").strip()
    feats = set(cpu_map.models.get(model, frozenset())) if model else set()
    if model and model not in cpu_map.models:
        raise BaselineError(f"CPU model {model!r} is not in libvirt's CPU map")
    for feature in cpu.findall("feature"):
        name = feature.get("name", "")
        if feature.get("policy", "require") in ("require", "force"):
            feats.add(name)
        elif feature.get("policy") in ("disable", "forbid"):
            feats.discard(name)
    return frozenset(feats)


def plan_expansion(current: Mapping[str, Any], candidates: Mapping[str, Any], domains: Mapping[str, list[Mapping[str, Any]]],
                   opts: BaselineOptions, cpu_map: CpuMap | None, fail_on: str = "incompatible") -> dict[str, Any]:
    """Report what adding ``candidates`` to the cluster ``current`` would do; changes nothing."""
    if fail_on not in FAIL_ON:
        raise BaselineError(f"fail_on must be one of {', '.join(FAIL_ON)}, got {fail_on!r}")
    overlap = sorted(set(current) & set(candidates))
    if overlap:
        raise BaselineError(f"hosts listed both in the cluster and as candidates: {', '.join(overlap)}")
    now = compute_baseline(current, opts)
    per_candidate = {}
    for name, facts in sorted(candidates.items()):
        verdict = compare(now, name, facts)
        per_candidate[name] = {"runs_current_baseline": verdict["runnable"], "missing_features": verdict["missing_features"],
                               "model_runnable": verdict["model_runnable"], "model_blocked_by": verdict["model_blocked_by"]}
    view: dict[str, Any] = {"schema": REPORT_SCHEMA, "kind": "expansion", "fail_on": fail_on, "current": now,
                            "candidates": per_candidate, "joined": None, "delta": None, "domains": {}, "error": None}
    try:
        joined = compute_baseline({**current, **candidates}, opts)
    except CpuCompatError as exc:
        view["error"] = f"no common CPU with the candidates: {exc}"
        view["verdict"] = {"ok": fail_on == "never", "reasons": [view["error"]]}
        return view
    view["joined"] = joined
    lost = sorted(set(now["features"]) - set(joined["features"]))
    view["delta"] = {
        "model_before": now["model"], "model_after": joined["model"], "model_changes": now["model"] != joined["model"],
        "features_lost": lost,
        "lost_because_of": {f: [h for h in joined["lost"].get(f, []) if h in candidates] for f in lost},
    }
    if cpu_map is not None and now["arch"] == "x86_64":
        new_cpu = libvirt_cpu_features(render(joined, cpu_map)["xml"], cpu_map) or frozenset()
        lost_lv = {libvirt_feature_name(f, cpu_map) for f in lost} - {None}
        for host, entries in sorted(domains.items()):
            for dom in entries:
                key = f"{host}/{dom['name']}"
                if not dom.get("cpu_xml"):
                    view["domains"][key] = {"status": "unknown", "why": "no <cpu> element: libvirt's default model"}
                    continue
                needs = libvirt_cpu_features(dom["cpu_xml"], cpu_map)
                if needs is None:
                    view["domains"][key] = {"status": "follows-host", "why": "host-model/host-passthrough CPU"}
                    continue
                missing = sorted(needs - new_cpu)
                view["domains"][key] = ({"status": "must-change", "missing": missing, "lost_by_expansion": sorted(set(missing) & lost_lv)}
                                        if missing else {"status": "unchanged"})
    reasons = []
    if fail_on in ("incompatible", "lowers_baseline"):
        reasons += [f"{n} cannot run the current baseline (lacks {', '.join(c['missing_features']) or 'its model'})"
                    for n, c in per_candidate.items() if not c["runs_current_baseline"]]
    if fail_on == "lowers_baseline" and (lost or view["delta"]["model_changes"]):
        reasons.append(f"the baseline would lose {len(lost)} feature(s)"
                       + (f" and change model {now['model']} -> {joined['model']}" if view["delta"]["model_changes"] else ""))
    view["verdict"] = {"ok": not reasons, "reasons": reasons}
    return view


def domain_cpus(domains: Mapping[str, list[Mapping[str, Any]]]) -> list[str]:
    """The distinct CPUs the domains run (live <cpu> of running ones, else persistent), in a stable order."""
    seen: dict[str, None] = {}
    for _host, entries in sorted(domains.items()):
        for dom in entries:
            cpu = dom.get("live_cpu_xml") or dom.get("cpu_xml")
            if cpu:
                seen.setdefault(cpu, None)
    return list(seen)


def migration_matrix(domains: Mapping[str, list[Mapping[str, Any]]], targets: Mapping[str, Any], cpu_map: CpuMap,
                     libvirt_verdicts: Mapping[str, Mapping[str, str]] | None = None,
                     requested: list[Mapping[str, str]] | None = None) -> dict[str, Any]:
    """Can each domain's current CPU run on each target? Our verdict, libvirt's where it was asked, and every disagreement.

    ``domains``: source host -> domain_cpu_info entries. ``targets``: host ->
    cpucompat facts. ``libvirt_verdicts``: target -> {cpu_xml: libvirt's
    compareHypervisorCPU result}. ``requested``: [{domain: "host/name", target: t}]
    migrations the user intends; an impossible one makes ``ok`` false.
    """
    target_sets: dict[str, frozenset[str]] = {}
    problems: dict[str, str] = {}
    for name, facts in sorted(targets.items()):
        if not isinstance(facts, Mapping) or not isinstance(facts.get("features"), list):
            problems[name] = "no cpucompat facts"
            continue
        target_sets[name] = frozenset(n for n in (libvirt_feature_name(f, cpu_map) for f in facts["features"]) if n)
    needs_of: dict[str, frozenset[str] | None | str] = {}
    matrix: dict[str, dict[str, Any]] = {}
    disagreements = []
    for host, entries in sorted(domains.items()):
        for dom in entries:
            key = f"{host}/{dom['name']}"
            cpu_xml = dom.get("live_cpu_xml") or dom.get("cpu_xml")  # as domain_cpus() picks it
            if not cpu_xml:
                matrix[key] = {t: {"ok": None, "why": "no <cpu>: libvirt's default model"} for t in target_sets}
                continue
            if cpu_xml not in needs_of:
                try:
                    needs_of[cpu_xml] = libvirt_cpu_features(cpu_xml, cpu_map)
                except BaselineError as exc:
                    needs_of[cpu_xml] = str(exc)
            needs = needs_of[cpu_xml]
            row: dict[str, Any] = {}
            for target, have in target_sets.items():
                if isinstance(needs, str):
                    cell: dict[str, Any] = {"ok": None, "why": needs}
                elif needs is None:
                    cell = {"ok": None, "why": "host-model/host-passthrough CPU not expanded (domain not running)"}
                else:
                    blocking = sorted(needs - have)
                    cell = {"ok": not blocking, "blocking": blocking}
                verdict = (libvirt_verdicts or {}).get(target, {}).get(cpu_xml)
                if verdict is not None:
                    cell["libvirt"] = verdict
                    libvirt_ok = verdict in ("identical", "superset")
                    if cell["ok"] is not None and cell["ok"] != libvirt_ok:
                        cell["disagreement"] = True
                        disagreements.append({"domain": key, "target": target, "ours": cell["ok"], "libvirt": verdict})
                row[target] = cell
            matrix[key] = row
    failures = []
    for pair in requested or []:
        cell = matrix.get(pair.get("domain", ""), {}).get(pair.get("target", ""))
        if cell is None:
            failures.append(f"{pair.get('domain')} -> {pair.get('target')}: unknown domain or target")
        elif cell["ok"] is not True:
            failures.append(f"{pair['domain']} -> {pair['target']}: "
                            + (f"target lacks {', '.join(cell['blocking'])}" if cell.get("blocking") else cell.get("why", "cannot tell")))
    return {"schema": REPORT_SCHEMA, "kind": "migration", "targets": sorted(target_sets), "target_problems": problems,
            "matrix": matrix, "disagreements": disagreements, "requested": list(requested or []),
            "verdict": {"ok": not failures, "reasons": failures}}
