# Copyright (c) 2026 cpucompat.cluster contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Self-contained HTML renderings of reports (schema cpucompat.report/1). Private to the collection.

The JSON report stays the source of truth: this module only shapes it for the eye (the host x feature matrix sorted
so the hosts that cost the most stand out, bars for the bottlenecks, the domain x target matrix) and renders the
templates of ``_html_templates``. Large inputs are collapsed beyond a limit, with counts, so a browser opens the file
in seconds. Rendering happens on the controller (filters, the aggregation action), where Jinja2 is always present.
"""

from __future__ import annotations

import traceback
from collections.abc import Mapping
from typing import Any

from .._errors import CpuCompatError
from ._html_templates import CSS, TEMPLATES
from ..cpu._features import SECURITY_FEATURES
from ..contract._tiers import SEPARATOR, title as tier_title
from ._header import expansion_options, header, said, tier_words
from ._markdown import platform_text
from ._schema import CONTRACT_WORDS, PROBLEM_TITLES, REPORT_SCHEMA

try:
    import jinja2
    import markupsafe
except ImportError:  # pragma: no cover - jinja2 comes with ansible-core on every controller
    jinja2 = markupsafe = None  # type: ignore[assignment]
    JINJA2_IMPORT_ERROR: str | None = traceback.format_exc()
else:
    JINJA2_IMPORT_ERROR = None

MAX_ROWS = 200  # hosts or domains shown in a matrix
MAX_COLUMNS = 60  # features or targets shown in a matrix
BLOCKED_LIMIT = MAX_ROWS  # blocked moves written out under the migration matrix
MAX_BARS = 40
TITLES = {"baseline": "CPU baseline", "expansion": "Cluster expansion plan", "migration": "Pre-migration check",
          "contract": "Cluster CPU contract", "plan": "Contract plan", "upgrade": "Before the upgrade",
          "rebuild": "Contract rebuilt from the domains' stamps", "power_cycle": "Power cycle onto the contract"}
_ENV: Any = None


def _env() -> Any:
    global _ENV  # pylint: disable=global-statement  # one environment per process: templates compile once
    if _ENV is None:
        if jinja2 is None:
            raise CpuCompatError(f"rendering HTML needs the jinja2 Python library: {JINJA2_IMPORT_ERROR}")
        _ENV = jinja2.Environment(loader=jinja2.DictLoader(TEMPLATES), autoescape=True, undefined=jinja2.ChainableUndefined,
                                  trim_blocks=True, lstrip_blocks=True)
    return _ENV


def precompile() -> None:
    """Compile every page's template now, once per process. An action plugin's module is imported by ansible-core's
    controller process before it forks the task's worker, so an action that calls this at import gives every worker
    of the run the templates compiled (each aggregating task wrote its pages after compiling them anew: 0.07-0.12 s)."""
    if jinja2 is None:
        return  # the pages say why when one is written
    env = _env()
    for name in TEMPLATES:
        env.get_template(name)


COLLAPSED = ("vmx-", "kvm-")  # families of features one column stands for (VMX controls, KVM's paravirtual features)


def feature_matrix(report: Mapping[str, Any]) -> dict[str, Any]:
    """Hosts x the features some host lacks: the hosts whose loss would give the group the most first (their bottleneck
    gain), the features lacking most widely first, security features marked, each of the vmx-*/kvm-* families in one
    column (a host has it when it lacks none of them)."""
    base = report.get("baseline") or {}
    lost: Mapping[str, list[str]] = base.get("lost") or {}
    gains = base.get("bottlenecks") or {}
    columns: dict[str, set[str]] = {}
    for feature in lost:
        family = next((p for p in COLLAPSED if feature.startswith(p)), None)
        columns.setdefault(f"{family}*" if family else feature, set()).add(feature)
    # Each column's hosts once (a family's members lack on mostly the same hosts), then each host's columns.
    lacking_on = {c: set().union(*(lost[f] for f in m)) for c, m in columns.items()}
    lacking: dict[str, set[str]] = {}
    for column, on in lacking_on.items():
        for host in on:
            lacking.setdefault(host, set()).add(column)
    width = {c: len(on) for c, on in lacking_on.items()}
    features = sorted(columns, key=lambda c: (-width[c], c))
    everyone = set(base.get("hosts") or []) | set(lacking)
    hosts = sorted(everyone, key=lambda h: (-len((gains.get(h) or {}).get("features") or []), -len(lacking.get(h, ())), h))
    lacking = {h: lacking.get(h, set()) for h in hosts}
    shown = [{"name": c, "label": f"{c} ({len(columns[c])})" if c.endswith("*") else c,
              "security": bool(columns[c] & SECURITY_FEATURES)} for c in features[:MAX_COLUMNS]]
    rows = [{"host": h, "lacks": len(lacking[h]), "gain": len((gains.get(h) or {}).get("features") or []),
             "cells": [c["name"] not in lacking[h] for c in shown]} for h in hosts[:MAX_ROWS]]
    return {"features": shown, "rows": rows, "total_hosts": len(hosts), "total_features": len(features)}


def bottleneck_bars(report: Mapping[str, Any]) -> dict[str, Any]:
    """One bar per host: how many features the group gains without it."""
    gains = (report.get("baseline") or {}).get("bottlenecks") or {}
    ranked = sorted(gains.items(), key=lambda kv: (-len(kv[1].get("features") or []), kv[0]))
    widest = max((len(g.get("features") or []) for _h, g in ranked), default=0) or 1
    items = []
    for i, (host, gain) in enumerate(ranked[:MAX_BARS]):
        count = len(gain.get("features") or [])
        label = f"{count} features" + (f", model {gain['model']}" if gain.get("model") else "")
        items.append({"host": host, "y": i * 22, "width": max(2, round(100 * count / widest)), "label": label})
    return {"entries": items, "height": max(22, len(items) * 22), "total": len(ranked)}


def _hosts(report: Mapping[str, Any]) -> list[dict[str, Any]]:
    verdicts = report.get("verdicts") or {}
    out = []
    for name, summary in sorted((report.get("hosts") or {}).items())[:MAX_ROWS]:
        verdict = verdicts.get(name) or {}
        out.append({"name": name, "cpu": summary.get("model_id") or summary.get("base_model") or summary.get("arch"),
                    "qemu": summary.get("qemu_version"), "accel": summary.get("accel"),
                    "result": verdict.get("result", "?"), "runnable": verdict.get("runnable", True)})
    return out


def _migration(report: Mapping[str, Any]) -> dict[str, Any]:
    matrix: Mapping[str, Mapping[str, Any]] = report.get("matrix") or {}
    counts = {"no": 0, "unknown": 0}
    trouble: dict[str, int] = {}
    for key, row in matrix.items():
        for cell in row.values():
            if cell.get("own_host"):
                continue
            if cell.get("ok") is False:
                counts["no"] += 1
                trouble[key] = trouble.get(key, 0) + 1
            elif cell.get("ok") is None:
                counts["unknown"] += 1
    ordered = sorted(matrix, key=lambda k: (-trouble.get(k, 0), k))[:MAX_ROWS]
    blocked: list[Any] = []  # every blocking list written out (no hover-only text), the first BLOCKED_LIMIT moves in matrix order
    for key, row in matrix.items():
        if len(blocked) >= BLOCKED_LIMIT or not trouble.get(key):
            continue
        for target, cell in row.items():
            if cell.get("ok") is False and not cell.get("own_host") and len(blocked) < BLOCKED_LIMIT:
                blocked.append((key, target, [*(cell.get("blocking") or []), *(cell.get("beyond_cpuid") or [])]))
    return {"rows": [(k, matrix[k]) for k in ordered], "targets": list(report.get("targets") or [])[:MAX_COLUMNS], "counts": counts,
            "blocked": blocked}


def _expansion(report: Mapping[str, Any]) -> dict[str, Any]:
    domains = report.get("domains") or {}
    must = sorted(k for k, d in domains.items() if d.get("status") == "must-change")
    delta = report.get("delta") or {}
    costs: dict[str, list[str]] = {}
    for feature, hosts in (delta.get("lost_because_of") or {}).items():
        for host in hosts:
            costs.setdefault(host, []).append(feature)
    ordered = must + sorted(k for k in domains if k not in set(must))
    return {"must": must, "costs": costs, "domains": [(k, domains[k]) for k in ordered[:MAX_ROWS]],
            "options": expansion_options(report)}


def matrix_body(matrix: Mapping[str, Any]) -> Any:
    """The matrix's rows as HTML (up to MAX_ROWS x MAX_COLUMNS cells): built here, not by a template loop, which took
    a fifth of a second per page for its 12,000 cells."""
    escape = markupsafe.escape
    has = '<td class="cell has">✓<span class="sr"> has</span></td>'
    lacks = [f'<td class="cell lacks">✗<span class="sr"> lacks {escape(f["name"])}</span></td>' for f in matrix["features"]]
    rows = [f'<tr><th scope="row">{escape(row["host"])}</th><td>{escape(row["gain"])}</td><td>{escape(row["lacks"])}</td>\n'
            + "".join(has if cell else lacks[i] for i, cell in enumerate(row["cells"])) + "</tr>\n" for row in matrix["rows"]]
    return markupsafe.Markup("".join(rows))


def security_lost(report: Mapping[str, Any]) -> dict[str, Any]:
    """Each lost security feature's hosts with their microcode, as HTML: one line per feature that lists every host
    lacking it (thousands of template iterations on a large group), built here."""
    escape = markupsafe.escape
    lost = (((report.get("axes") or {}).get("security") or {}).get("lost")) or {}
    return {f: markupsafe.Markup(", ".join(f"{escape(h)} ({escape(mc or '?')})" for h, mc in ((entry or {}).get("microcode") or {}).items()))
            for f, entry in lost.items()}


def report_html(report: Any) -> str:
    """The report as one self-contained HTML page."""
    if not isinstance(report, Mapping) or report.get("schema") != REPORT_SCHEMA:
        raise CpuCompatError(f"not a cpucompat report (schema {report.get('schema') if isinstance(report, Mapping) else None!r})")
    kind = report.get("kind")
    if kind not in TITLES:
        raise CpuCompatError(f"no HTML rendering for report kind {kind!r}")
    context: dict[str, Any] = {"report": report, "css": CSS, "title": TITLES[kind], "limit": MAX_ROWS,
                               "verdict": report.get("verdict"), "problem_titles": PROBLEM_TITLES,
                               "contract_words": CONTRACT_WORDS, "head": header(report), "platform_text": platform_text,
                               "section_title": tier_title, "said": said, "tier_words": tier_words}
    if kind == "baseline":
        matrix = feature_matrix(report)
        if markupsafe is not None:
            context.update(matrix={**matrix, "body": matrix_body(matrix)}, security_lost=security_lost(report))
        else:
            context.update(matrix=matrix)
        context.update(bars=bottleneck_bars(report), hosts=_hosts(report))
        context["title"] += f": {(report.get('baseline') or {}).get('model') or 'not computed'}"
    elif kind in ("plan", "rebuild") and SEPARATOR in str(report.get("group")):
        context["title"] += f": {said(str(report['group']))}"  # a tier's page says which
    elif kind == "migration":
        context.update(_migration(report))
    elif kind == "expansion":
        context.update(_expansion(report), security=SECURITY_FEATURES)
    return str(_env().get_template(kind).render(**context))
