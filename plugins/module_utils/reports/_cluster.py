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
from dataclasses import dataclass, field
from typing import Any

from ..engine._axes import axes
from ..engine._baseline import BaselineOptions, compare, compute_baseline
from .._errors import CpuCompatError
from ..probe._facts import SCHEMA_VERSION
from ..engine._hostcpu import HostCpu
from ..cpu._libvirt_map import DEFAULT_CPU_MAP, cached_cpu_map
from ..render._libvirt_xml import render
from ._planning import migration_matrix, plan_expansion
from ._report import REPORT_SCHEMA


def host_overview(facts: Mapping[str, Any]) -> dict[str, Any]:
    """The counts and identity of one host that the report lists (``hosts`` in docs/reports.md)."""
    qemu = facts.get("qemu") or {}
    return {
        "arch": facts.get("arch"), "vendor": facts.get("vendor"), "model_id": facts.get("model_id"),
        "base_model": facts.get("base_model"), "accel": facts.get("accel"), "qemu_version": qemu.get("version"),
        "features": len(facts.get("features") or []), "runnable_models": len(facts.get("runnable_models") or []),
        "fingerprint": facts.get("fingerprint"),
    }


def _group(summaries: dict[str, dict[str, Any]], key: str) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for name, summary in summaries.items():
        value = summary[key]
        out.setdefault("unknown" if value is None else str(value), []).append(name)
    return {k: sorted(v) for k, v in sorted(out.items())}


# The report keys that list hosts without usable facts, in the order the reports show them.
PROBLEM_KEYS = ("unreachable", "probe_failed", "missing_facts", "other_schema", "unreadable")


@dataclass
class GroupFacts:
    """A group's hosts: those with usable facts, and the others by reason."""

    usable: dict[str, Mapping[str, Any]] = field(default_factory=dict)
    unreachable: list[str] = field(default_factory=list)
    probe_errors: dict[str, str] = field(default_factory=dict)
    missing_facts: list[str] = field(default_factory=list)
    other_schema: list[str] = field(default_factory=list)
    unreadable: dict[str, str] = field(default_factory=dict)

    def problems(self) -> dict[str, list[str]]:
        """The hosts without usable facts, under the report keys of PROBLEM_KEYS."""
        return dict(zip(PROBLEM_KEYS, (self.unreachable, sorted(self.probe_errors), self.missing_facts, self.other_schema,
                                       sorted(self.unreadable))))

    @property
    def incomplete(self) -> list[str]:
        return sorted(n for names in self.problems().values() for n in names)

    def why(self, name: str) -> str | None:
        """Why a host's facts cannot be used, or None when they can."""
        if name in self.unreachable:
            return "unreachable or failed in this run"
        if name in self.probe_errors:
            return f"probe failed: {self.probe_errors[name]}"
        if name in self.unreadable:
            return f"its fact cache entry cannot be read: {self.unreadable[name]}"
        if name in self.missing_facts:
            return "no cpucompat facts"
        if name in self.other_schema:
            return f"facts of another schema version (this collection reads {SCHEMA_VERSION}); re-probe it"
        return None

    def hosts(self) -> list[HostCpu]:
        return [HostCpu.from_facts(name, facts) for name, facts in self.usable.items()]


def group_facts(facts_by_host: Mapping[str, Any], unreachable: Sequence[str] = (),
                probe_errors: Mapping[str, str] | None = None, unreadable: Mapping[str, str] | None = None) -> GroupFacts:
    """Sort a group's hosts by whether their facts can be used.

    A host whose latest probe failed (``probe_errors``) is not used even when older facts of it are cached: they may no
    longer describe it. ``unreadable``: hosts whose variables could not be read (a fact cache entry that is not JSON, a
    cache server gone), with the reason.
    """
    group = GroupFacts(unreachable=sorted(n for n in unreachable if n in facts_by_host),
                       probe_errors={k: v for k, v in sorted((probe_errors or {}).items()) if v and k in facts_by_host},
                       unreadable={k: v for k, v in sorted((unreadable or {}).items()) if k in facts_by_host})
    for name in sorted(facts_by_host):
        facts = facts_by_host[name]
        if name in group.unreachable or name in group.probe_errors or name in group.unreadable:
            continue
        if not isinstance(facts, Mapping):
            group.missing_facts.append(name)
        elif facts.get("schema_version") != SCHEMA_VERSION:
            group.other_schema.append(name)
        else:
            group.usable[name] = facts
    return group


def cluster_view(group: GroupFacts, opts: BaselineOptions, cpu_map_path: str = DEFAULT_CPU_MAP,
                 allow_partial: bool = False) -> dict[str, Any]:
    """The baseline report of a group. Hosts without usable facts are listed by name, never skipped silently."""
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
        base = compute_baseline(hosts, opts)
        view["baseline"] = base.to_dict()
        view["verdicts"] = {h.name: compare(base, h).to_dict() for h in hosts}
        view["axes"] = axes(hosts, base)
        # Whatever keeps the XML from being rendered (no common model libvirt knows, a missing or malformed CPU map)
        # is the error the report states, in its own words.
        rendered = render(base, cached_cpu_map(cpu_map_path) if base.arch == "x86_64" else None)
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
                     opts: BaselineOptions, cpu_map_path: str = DEFAULT_CPU_MAP, fail_on: str = "incompatible") -> dict[str, Any]:
    """The expansion plan of a cluster and its candidates; hosts without usable facts are named and nothing is planned."""
    refused = _unusable_report("expansion", {"cluster": cluster, "candidates": candidates}, {"fail_on": fail_on})
    if refused is not None:
        return refused
    now, new = cluster.hosts(), candidates.hosts()
    cpu_map = cached_cpu_map(cpu_map_path) if domains and now and now[0].arch == "x86_64" else None
    report = plan_expansion(now, new, domains, opts, cpu_map, fail_on)
    report["hosts_without_facts"] = {}
    return report


def migration_report(targets: GroupFacts, domains: Mapping[str, list[Mapping[str, Any]]],
                     libvirt_verdicts: Mapping[str, Mapping[str, str]], requested: list[Mapping[str, str]],
                     cpu_map_path: str = DEFAULT_CPU_MAP) -> dict[str, Any]:
    """The migration matrix; a target without usable facts is named in ``target_problems`` with the reason."""
    facts = {**dict.fromkeys(targets.incomplete), **targets.usable}
    report = migration_matrix(domains, facts, cached_cpu_map(cpu_map_path), libvirt_verdicts, requested)
    for name in targets.incomplete:
        report["target_problems"][name] = targets.why(name) or "no cpucompat facts"
    return report
