# Copyright (c) 2026 cpucompat.cluster contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Readable one-host summaries of ``cpucompat`` facts. Private to the collection."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .._errors import FactsError
from ..probe._facts import read_models


def summary_lines(facts: Mapping[str, Any], host: str = "this host", max_blocked: int = 12) -> list[str]:
    """Lines a person reads: what this hypervisor is and which models run here, and why not."""
    if not isinstance(facts, Mapping) or "schema_version" not in facts:
        raise FactsError(f"{host}: not cpucompat facts (no schema_version)")
    ident = " ".join(str(facts[k]) for k in ("vendor", "model_id") if facts.get(k)) or facts.get("base_model") or "unidentified CPU"
    fms = ""
    if facts.get("family") is not None:
        fms = f" (family {facts['family']} model {facts['model']} stepping {facts['stepping']})"
    qemu = facts["qemu"]
    lines = [
        f"{host}: {facts['arch']} {ident}{fms}",
        f"  QEMU {qemu.get('version') or 'version unknown'} ({qemu.get('package') or 'no package string'}), "
        f"accel {facts['accel']}{' - a TCG probe describes the emulated CPU, not the host' if facts['accel'] == 'tcg' else ''}",
        f"  host CPU model: {len(facts['features'])} features"
        + (f", not migratable: {', '.join(facts['non_migratable_features'])}" if facts.get("non_migratable_features") else ""),
    ]
    models = read_models(facts, host)
    if models is None:
        lines.append("  named models: QEMU did not list them")
        return lines
    unnamed = facts.get("unnamed_blockers") or {}
    named = {n: b for n, b in models.items() if n not in ("host", "max", "base")}
    runnable = sorted(n for n, b in named.items() if b == [] and not unnamed.get(n))
    blocked = {n: b for n, b in named.items() if b or (b is not None and unnamed.get(n))}
    unknown = sorted(n for n, b in named.items() if b is None)
    lines.append(f"  named models: {len(runnable)} of {len(named)} run here, {len(blocked)} do not"
                 + (f", {len(unknown)} unknown (QEMU does not report runnability)" if unknown else ""))
    if runnable:
        lines.append(f"  run here: {', '.join(runnable)}")
    # The models closest to running first: they are the ones a person asks about.
    for name in sorted(blocked, key=lambda n: (len(blocked[n] or []), n))[:max_blocked]:
        missing = blocked[name] or []
        shown = ", ".join(missing[:8]) + (f", ... ({len(missing)} in all)" if len(missing) > 8 else "")
        lines.append(f"  does not run: {name}: lacks {shown}")
    if len(blocked) > max_blocked:
        lines.append(f"  ... and {len(blocked) - max_blocked} more models that lack more features")
    return lines
