# Copyright (c) 2026 cpucompat.cluster contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The verbs that only read: ``baseline``, ``expansion`` (can these hosts join?) and ``migration`` (can these domains
move?). Private."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from .._errors import InputError
from ..contract import _admission, _contract, _observed, _planning_checks, _tiers
from ..contract._domain import domains_of
from ..cpu._guest import level_of
from ..engine._hostcpu import HostCpu
from ..reports._cluster import cluster_view, expansion_report, migration_report
from ..reports._planning import within_tiers
from ._common import Common, Outcome, Reader, group_stacks, stored_contract


def baseline(common: Common, reader: Reader, names: list[str], group: str | None = None) -> Outcome:
    """The baseline report; with the group's contract pinned, how today's baseline compares with it."""
    view = cluster_view(reader.group(names), common.policy, common.registry, common.allow_partial, form=common.form)
    view["group"] = group
    path, pinned = stored_contract(common, group)
    if pinned is not None:
        view["contract"] = _contract.versus(pinned, _today(view), str(path))
    return Outcome(view, members=names)


def _today(view: Mapping[str, Any]) -> Any:
    """The guest CPU of a baseline report (None when none was computed)."""
    guest = (view.get("baseline") or {}).get("guest")
    return level_of(guest, "today's guest CPU") if guest else None


def expansion(common: Common, reader: Reader, names: list[str], candidates: list[str], domains_var: str | None,
              fail_on: str, group: str | None, tiers: _tiers.Tiers | None = None) -> Outcome:
    """The expansion plan; with the group's contract, which candidates it would refuse; ``tiers`` (the group's, its hosts
    and the candidates): a candidate that joins a tier is checked against the tier's contract too."""
    overlap = sorted(set(names) & set(candidates))
    if overlap:
        raise InputError(f"hosts both in the cluster and among the candidates: {', '.join(overlap)}")
    cluster, new = reader.group(names), reader.group(candidates)
    report = expansion_report(cluster, new, reader.domains(names, domains_var), common.policy, common.registry, fail_on)
    report["facts_as_of"] = max((n for n in (cluster.facts_as_of, new.facts_as_of) if n), default=None)
    _path, contract = stored_contract(common, group)
    if contract is not None and not report["hosts_without_facts"]:
        joining = new.hosts()
        report["contract"] = _planning_checks.expansion_against(contract, joining, [*cluster.hosts(), *joining], common.policy,
                                                                common.registry)
        refused = [n for n, c in report["contract"]["candidates"].items() if c["would_be_refused"]]
        if refused and fail_on != "never":
            report["verdict"]["ok"] = False
            report["verdict"]["reasons"].append(f"the group's contract would refuse {', '.join(refused)}")
    if tiers is not None and not report["hosts_without_facts"]:
        _tier_expansion(common, report, tiers, cluster.hosts(), new.hosts(), fail_on)
    return Outcome(report)


def _tier_expansion(common: Common, report: dict[str, Any], tiers: _tiers.Tiers, current: Sequence[HostCpu],
                    joining: Sequence[HostCpu], fail_on: str) -> None:
    """Each tier beyond the base that candidates join: what its contract says of them (``report["tiers"]``)."""
    report["tiers"] = {}
    for tier in tiers.extra:
        entering = [h for h in joining if h.name in tier.hosts]
        pinned = common.store.read(tier.key).contract
        if not entering or pinned is None:
            continue
        staying = [h for h in current if h.name in tier.hosts]
        view = _planning_checks.expansion_against(pinned, entering, [*staying, *entering], common.policy, common.registry)
        report["tiers"][tier.name] = view
        refused = [n for n, c in view["candidates"].items() if c["would_be_refused"]]
        if refused and fail_on != "never":
            report["verdict"]["ok"] = False
            report["verdict"]["reasons"].append(f"the contract of tier {tier.name} ({tier.key}) would refuse {', '.join(refused)}")


def migration(common: Common, reader: Reader, names: list[str], sources: list[str], domains_var: str | None,
              verdicts_var: str | None, requested: list[Mapping[str, str]], group: str | None,
              observed: tuple[Mapping[str, Any], Mapping[Any, Any]] | None = None, tiers: _tiers.Tiers | None = None) -> Outcome:
    """The migration matrix; ``tiers`` (the group's): a domain in a tier beyond the base moves only to its tier's hosts."""
    domains = domains_of(reader.domains(sources, domains_var))
    targets, origin = reader.group(names), reader.group(sources)
    report = migration_report(targets, domains, reader.verdicts(names, verdicts_var), requested, common.registry, origin)
    if tiers is not None:
        allowed = {dom.key: (tiers.group, found[0], found[1]) for dom in domains
                   if (found := tiers.allowed_targets(dom)) is not None}
        report = within_tiers(report, allowed)
    report["facts_as_of"] = max((n for n in (targets.facts_as_of, origin.facts_as_of) if n), default=None)
    report["group"] = group
    path, contract = stored_contract(common, group)
    if contract is not None:
        stacks = group_stacks(common, origin)
        report["contract"] = _planning_checks.migration_against(contract, stacks, domains, _admission.host_maps(origin, common.registry))
        report["contract"].update(contract_file=path, pinned_at=contract.pinned_at)
    if observed is not None:
        _observed_moves(report, *observed)
    return Outcome(report)


def _observed_moves(report: dict[str, Any], at_source: Mapping[str, Any], at_target: Mapping[Any, Any]) -> None:
    """Each requested move: the domain's CPU as its source observes it against the same CPU as the target observes it.
    A difference in any word blocks the move, named. ``at_source``: "host/domain" -> observation fact or why none;
    ``at_target``: ("host/domain", target) -> the same."""
    moves = report["observed"] = {}
    keys = {str(pair.get("domain")) for pair in report.get("requested") or [] if "/" in str(pair.get("domain"))}
    for (domain, host), there in sorted(at_target.items(), key=lambda kv: (str(kv[0][0]), str(kv[0][1]))):
        if domain not in keys:  # the plan observes only requested moves (a group target: each of its hosts)
            continue
        here = at_source.get(domain, "not observed on its source")
        entry = moves[f"{domain} -> {host}"] = _observed.compare_move(domain, here, host, there)
        if not entry["ok"]:
            report["verdict"]["ok"] = False
            report["verdict"]["reasons"].append(entry["why"])
