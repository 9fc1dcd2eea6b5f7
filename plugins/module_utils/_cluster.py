# Copyright (c) 2026 cpucompat.cluster contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The cluster view: every host's facts side by side, the baseline and its XML. Private to the collection."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ._baseline import BaselineOptions, compare, compute_baseline
from ._errors import CpuCompatError
from ._facts import SCHEMA_VERSION
from ._hostcpu import HostCpu
from ._libvirt_map import DEFAULT_CPU_MAP, cached_cpu_map
from ._libvirt_xml import render
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


def cluster_view(facts_by_host: Mapping[str, Any], unreachable: list[str], opts: BaselineOptions,
                 cpu_map_path: str = DEFAULT_CPU_MAP, allow_partial: bool = False,
                 probe_errors: Mapping[str, str] | None = None) -> dict[str, Any]:
    """Aggregate a group. Hosts without usable facts are listed by name, never skipped silently.

    A host whose latest probe failed (``probe_errors``) is not used even when
    older facts of it are cached: they may no longer describe it.
    """
    probe_errors = {k: v for k, v in (probe_errors or {}).items() if v}
    usable: dict[str, Mapping[str, Any]] = {}
    missing: list[str] = []
    stale_schema: list[str] = []
    for name in sorted(facts_by_host):
        facts = facts_by_host[name]
        if name in unreachable or name in probe_errors:
            continue
        if not isinstance(facts, Mapping):
            missing.append(name)
        elif facts.get("schema_version") != SCHEMA_VERSION:
            stale_schema.append(name)
        else:
            usable[name] = facts
    summaries = {name: host_overview(f) for name, f in usable.items()}
    problems = {"unreachable": sorted(unreachable), "probe_failed": sorted(probe_errors), "missing_facts": missing,
                "other_schema": stale_schema}
    incomplete = [n for names in problems.values() for n in names]
    view: dict[str, Any] = {
        "schema": REPORT_SCHEMA,
        "kind": "baseline",
        "hosts": summaries,
        **problems,
        "complete": not incomplete,
        "probe_errors": dict(sorted(probe_errors.items())),
        "by_arch": _group(summaries, "arch"),
        "by_vendor": _group(summaries, "vendor"),
        "qemu_versions": _group(summaries, "qemu_version"),
        "baseline": None,
        "xml": None,
        "verdicts": {},
        "error": None,
    }
    if incomplete and not allow_partial:
        view["error"] = (f"the baseline is not computed from a partial group: no usable facts from {', '.join(sorted(incomplete))} "
                         "(fix or remove those hosts, or allow a partial group)")
        return view
    if not usable:
        view["error"] = "no host has usable cpucompat facts"
        return view
    try:
        hosts = [HostCpu.from_facts(name, facts) for name, facts in usable.items()]
        base = compute_baseline(hosts, opts)
        view["baseline"] = base.to_dict()
        view["verdicts"] = {h.name: compare(base, h).to_dict() for h in hosts}
        # Whatever keeps the XML from being rendered (no common model libvirt knows, a missing or malformed CPU map)
        # is the error the report states, in its own words.
        rendered = render(base, cached_cpu_map(cpu_map_path) if base.arch == "x86_64" else None)
        view["xml"] = rendered.xml
        view["xml_details"] = rendered.details()
    except CpuCompatError as exc:
        view["error"] = str(exc)
    return view
