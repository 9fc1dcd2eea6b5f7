# Copyright (c) 2026 cpucompat.cluster contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Aggregating a group's facts into a report of any kind (baseline, expansion, migration). Private to the collection.

Every kind starts from :func:`group_facts`, which sorts the hosts into those with usable facts and those without
(unreachable, probe failed, no facts, another schema), so every report names the hosts it could not use.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from typing import Any

from .._errors import CpuCompatError
from ..contract._domain import Domain
from ..cpu._libvirt_map import MapRegistry
from ..engine._axes import axes
from ..engine._level import levels_view
from ..engine._result import Baseline
from ..engine._cluster import BaselineOptions
from ..engine._compare import compare_each
from ..engine._baseline import compute_baseline, retire_what_if
from ..engine._group import PROBLEM_KEYS, GroupFacts, stack_axes
from ..engine._guest import stacks_summary
from ..render._libvirt import render
from ._planning import migration_matrix, plan_expansion
from ._schema import REPORT_SCHEMA


def host_overview(facts: Mapping[str, Any]) -> dict[str, Any]:
    """The counts and identity of one host that the report lists (``hosts`` in docs/reports.md)."""
    qemu = facts.get("qemu") or {}
    return {
        "arch": facts.get("arch"), "vendor": facts.get("vendor"), "model_id": facts.get("model_id"),
        "base_model": facts.get("base_model"), "accel": facts.get("accel"), "qemu_version": qemu.get("version"),
        "features": len(facts.get("features") or []), "runnable_models": len(facts.get("runnable_models") or []),
        "fingerprint": facts.get("fingerprint"), "probed_at": (facts.get("probe") or {}).get("probed_at"),
    }


def _group(summaries: dict[str, dict[str, Any]], key: str) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for name, summary in summaries.items():
        value = summary[key]
        out.setdefault("unknown" if value is None else str(value), []).append(name)
    return {k: sorted(v) for k, v in sorted(out.items())}


def cluster_view(group: GroupFacts, opts: BaselineOptions, registry: MapRegistry | None = None, allow_partial: bool = False,
                 baseline: Baseline | None = None, form: str = "minimal") -> dict[str, Any]:
    """The baseline report of a group. Hosts without usable facts are listed by name, never skipped silently.

    ``baseline``: the group's baseline when the caller has computed it already (the contract step does, once per run).
    """
    summaries = {name: host_overview(f) for name, f in group.usable.items()}
    incomplete = group.incomplete
    view: dict[str, Any] = {
        "schema": REPORT_SCHEMA,
        "kind": "baseline",
        "hosts": summaries,
        **group.problems(),
        "complete": not incomplete,
        "probe_errors": group.probe_errors,
        "unreadable_errors": group.unreadable,
        "by_arch": _group(summaries, "arch"),
        "by_vendor": _group(summaries, "vendor"),
        "qemu_versions": _group(summaries, "qemu_version"),
        "baseline": None,
        "xml": None,
        "verdicts": {},
        "error": None,
    }
    if incomplete and not allow_partial:
        view["error"] = (f"the baseline is not computed from a partial group: no usable facts from {', '.join(incomplete)} "
                         "(fix or remove those hosts, or allow a partial group)")
        return view
    if not group.usable:
        view["error"] = "no host has usable cpucompat facts"
        return view
    try:
        hosts = group.hosts()
        base = baseline or compute_baseline(hosts, opts, registry)
        view["baseline"] = base.to_dict()
        view["verdicts"] = {h.name: cmp.to_dict() for h, cmp in zip(hosts, compare_each(base, hosts))}
        view["axes"] = axes(hosts, base)
        view["levels"] = levels_view(hosts, base)
        view["stacks"] = stacks_summary(base.stacks) if base.stacks is not None else []
        view["retire"] = retire_what_if(hosts, base, opts, registry)  # the same what-if change_contract computes
        if base.guest is None:
            view["error"] = base.guest_error
            return view
        # Whatever keeps the XML from being rendered is the error the report states, in its own words.
        rendered = render(base.guest, form)
        view["xml"] = rendered.xml
        view["xml_details"] = rendered.details()
    except CpuCompatError as exc:
        view["error"] = str(exc)
    return view


CLUSTER_FACT_SCHEMA = "cpucompat.cluster/1"
FACT_ERROR_LIMIT = 300


def digest(data: Any) -> str:
    """``sha256:`` of the canonical JSON of ``data`` (sorted keys, no spaces): the same report, the same digest."""
    canonical = json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return "sha256:" + hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def cluster_fact(view: Mapping[str, Any], group: str | None, members: Sequence[str],
                 report_file: str | None = None) -> dict[str, Any]:
    """What every host of the group keeps of a baseline report: small, and the same size for 10 hosts or 10,000.

    The CPU to deploy (``xml``, ``model``), the group's identity (name, size, digest of the member names) and the
    report's digest; the per-host parts (summaries, verdicts, lost features, bottlenecks) stay in the report, whose file
    ``report_file`` names. A long error is cut (the report has all of it), so that it cannot grow with the group.
    """
    base = view.get("baseline") or {}
    error = view.get("error")
    if isinstance(error, str) and len(error) > FACT_ERROR_LIMIT:
        error = error[:FACT_ERROR_LIMIT].rstrip() + "... (the report has the whole message)"
    return {
        "schema": CLUSTER_FACT_SCHEMA,
        "group": group,
        "hosts": len(members),
        "members_digest": digest(sorted(members)),
        "complete": bool(view.get("complete")),
        "unusable_hosts": sum(len(view.get(key) or []) for key in PROBLEM_KEYS),
        "arch": base.get("arch"),
        "vendor": base.get("vendor"),
        "model": (view.get("xml_details") or {}).get("model") or base.get("model"),
        "xml": view.get("xml"),
        "error": error,
        "report_digest": digest(view),
        "report_file": report_file,
    }


def _unusable_report(kind: str, groups: Mapping[str, GroupFacts], extra: Mapping[str, Any]) -> dict[str, Any] | None:
    """The report of a planning check that cannot be made because some hosts have no usable facts."""
    lacking = {name: why for group in groups.values() for name in group.incomplete if (why := group.why(name))}
    if not lacking:
        return None
    error = "no usable facts from " + "; ".join(f"{n} ({w})" for n, w in sorted(lacking.items()))
    return {"schema": REPORT_SCHEMA, "kind": kind, **extra, "hosts_without_facts": dict(sorted(lacking.items())),
            "error": error, "verdict": {"ok": False, "reasons": [error]}}


def expansion_report(cluster: GroupFacts, candidates: GroupFacts, domains: Mapping[str, list[Mapping[str, Any]]],
                     opts: BaselineOptions, registry: MapRegistry | None = None, fail_on: str = "incompatible") -> dict[str, Any]:
    """The expansion plan of a cluster and its candidates; hosts without usable facts are named and nothing is planned."""
    refused = _unusable_report("expansion", {"cluster": cluster, "candidates": candidates}, {"fail_on": fail_on})
    if refused is not None:
        return refused
    report = plan_expansion(cluster.hosts(), candidates.hosts(), domains, opts, registry or MapRegistry(), fail_on)
    report["hosts_without_facts"] = {}
    return report


def migration_report(targets: GroupFacts, domains: Mapping[str, Sequence[Mapping[str, Any]]] | Sequence[Domain],
                     libvirt_verdicts: Mapping[str, Mapping[str, str]], requested: list[Mapping[str, str]],
                     registry: MapRegistry | None = None, sources: GroupFacts | None = None) -> dict[str, Any]:
    """The migration matrix; a target without usable facts is named in ``target_problems`` with the reason."""
    facts = {**dict.fromkeys(targets.incomplete), **targets.usable}
    report = migration_matrix(domains, facts, registry or MapRegistry(), libvirt_verdicts, requested,
                              dict(sources.usable) if sources is not None else None)
    for name in targets.incomplete:
        report["target_problems"][name] = targets.why(name) or "no cpucompat facts"
    # Per host, what decides a guest's CPU besides its <cpu>: QEMU point release and package, kernel, microcode.
    hosts = {**(dict(sources.usable) if sources is not None else {}), **targets.usable}
    report["stacks"] = {name: stack_axes(f) for name, f in sorted(hosts.items())}
    return report
