# Copyright (c) 2026 cpucompat.cluster contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""A pinned group's contract in the planning checks: the expansion plan and the pre-migration check. Private."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from ..cpu._guest import GuestCpu
from ..cpu._libvirt_map import MapRegistry
from ..engine._baseline import compute_baseline
from ..engine._cluster import BaselineOptions
from ..engine._hostcpu import HostCpu
from ._admission import admission, level_change, rendered
from ._contract import Contract
from ._domain import Domain
from ._domains import compliance, status_counts

__all__ = ["expansion_against", "migration_against"]


def expansion_against(contract: Contract, candidates: Sequence[HostCpu], joined: Sequence[HostCpu],
                      opts: BaselineOptions, registry: MapRegistry) -> dict[str, Any]:
    """The expansion plan's view of a pinned group: which candidates would be refused, and what ``lower`` would cost."""
    refused = {r.host: r.to_dict() for r in admission(contract, candidates)}
    out: dict[str, Any] = {"contract_model": contract.cpu.model, "pinned_at": contract.pinned_at,
                           "candidates": {h.name: {"would_be_refused": h.name in refused,
                                                   "missing_features": refused.get(h.name, {}).get("missing_features", [])}
                                          for h in candidates},
                           "lower_needed": None}
    if refused:
        out["lower_needed"] = level_change(contract, compute_baseline(joined, opts, registry)).to_dict()
    return out


def migration_against(contract: Contract, stacks: GuestCpu | None, domains: Sequence[Domain],
                      maps: Mapping[str, Any]) -> dict[str, Any]:
    """The pre-migration check's view of a pinned group: every source domain's compliance with the contract."""
    cpu, refused = rendered(contract, stacks)
    if cpu is None:
        return {"group": contract.group, "contract_model": contract.cpu.model, "domains": {}, "status_counts": {},
                "error": "; ".join(r.why or r.host for r in refused) or "the group's stacks are not known"}
    statuses = compliance(cpu.spec, domains, maps)
    return {"group": contract.group, "contract_model": contract.cpu.model, "domains": statuses,
            "status_counts": status_counts(statuses)}
