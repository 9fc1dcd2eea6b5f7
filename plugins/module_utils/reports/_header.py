# Copyright (c) 2026 cpucompat.cluster contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The header every report page starts with, in Markdown and HTML alike: the verdict in words, the numbers that matter
for the kind, the next commands (variables filled in) and the context. Private.

One function per kind computes it from the report's JSON; both renderings show exactly that, so a page can never say
OK where its JSON says otherwise.
"""

from __future__ import annotations

import datetime
from collections.abc import Callable, Mapping
from typing import Any

from ..contract._domains import SETTLED
from ..contract._tiers import SEPARATOR, base_group, contract_args, named
from ..cpu._features import SECURITY_FEATURES

PLAYBOOK = "ansible-playbook -i <inventory> cpucompat.cluster.{name}"


def _cmd(name: str, *extra: str) -> str:
    return " ".join([PLAYBOOK.format(name=name), *(e for e in extra if e)])


def _when(stamp: Any) -> str | None:
    if isinstance(stamp, (int, float)) and not isinstance(stamp, bool) and stamp > 0:
        return datetime.datetime.fromtimestamp(stamp, datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    return None


def _group_arg(report: Mapping[str, Any], group: str | None) -> str:
    return f"-e cpucompat_group={group}" if group and group != "hypervisors" else ""


def said(key: str) -> str:
    """A contract key where a page shows a group by its bare name: that name, or ``tier t of group g`` for a tier (a
    group without tiers reads as before)."""
    return named(key) if SEPARATOR in key else key


def tier_words(section: Mapping[str, Any]) -> str | None:
    """A tier's section beside its title: its hosts and its level (None for a group's own section)."""
    tier = section.get("tier")
    if not isinstance(tier, Mapping):
        return None
    level = tier.get("level") or "the best every host of the tier runs"
    return f"The tier's hosts: {', '.join(tier.get('hosts') or []) or 'none'}; its level: {level}"


def guest_features(base: Mapping[str, Any]) -> list[str]:
    """The one count every page gives of a CPU: the features the guest gets (the exact set a contract pins); the
    features all hosts have in common are said as such, beside it."""
    guest = base.get("guest") if isinstance(base.get("guest"), Mapping) else None
    return list((guest or {}).get("features") or base.get("features") or [])


def _baseline(report: Mapping[str, Any]) -> dict[str, Any]:
    base = report.get("baseline") or {}
    hosts = report.get("hosts") or {}
    axes = report.get("axes") or {}
    security = axes.get("security") or {}
    versus = report.get("contract") or {}
    group = report.get("group")
    nxt: list[str] = []
    if report.get("error") or not base:
        words, tone = f"No baseline: {report.get('error') or 'not computed'}", "bad"
        nxt.append(_cmd("probe", "--limit", "<the hosts named above>") + "   # probe the hosts without usable facts")
    else:
        words, tone = (f"Every host runs model {base.get('model')}; the guest CPU has {len(guest_features(base))} features "
                       f"({len(base.get('features') or [])} in common)"), "ok"
        if not versus:
            nxt += [_cmd("site", _group_arg(report, group), "--check --diff") + "   # pin this as the group's contract: dry run",
                    _cmd("site", _group_arg(report, group))]
        elif versus.get("status") == "above":
            nxt.append(_cmd("change_contract", _group_arg(report, group), "-e cpucompat_contract_action=raise --check")
                       + f"   # the group could gain {len(versus.get('gains') or [])} features")
        elif versus.get("status") in ("below", "different"):
            tone = "warn"
            nxt.append(_cmd("site", _group_arg(report, group), "--check") + "   # which hosts the contract refuses, and why")
        retire = report.get("retire") or {}
        if retire.get("gained"):  # the what-if change_contract computes (engine._baseline.without), not an estimate
            nxt.append(_cmd("change_contract", _group_arg(report, group), "-e cpucompat_contract_action=raise",
                            f"-e '{{\"cpucompat_contract_without\": [\"{retire['host']}\"]}}'")
                       + f"   # what retiring {retire['host']} would give: model {retire['model']}, {retire['features']} "
                         f"features (+{len(retire['gained'])})")
    probed = [(h.get("probed_at") or 0) for h in hosts.values()]
    numbers = [("hosts", len(hosts)), ("features the guest gets", len(guest_features(base))),
               ("features in common", len(base.get("features") or [])),
               ("features lost", len(base.get("lost") or {})),
               ("security features kept", len(security.get("kept") or [])),
               ("security features lost", len(security.get("lost") or {}))]
    context = [("group", group or "-"), ("facts as of", _when(max(probed)) if probed else None),
               ("contract", versus.get("contract") or "none pinned"),
               ("pinned level against today's baseline", versus.get("status") or "-")]
    return {"tone": tone, "words": words, "numbers": numbers, "next": nxt[:3], "context": context}


def _contract(report: Mapping[str, Any]) -> dict[str, Any]:
    groups = report.get("groups") or {}
    check = bool(report.get("check_mode"))
    admitted = sum(len(g.get("admitted") or []) for g in groups.values())
    refused = sum(len((g.get("admission") or {}).get("refused") or []) for g in groups.values())
    quarantined = sum(len(g.get("quarantined") or {}) for g in groups.values())
    domains = sum(len(g.get("domains") or {}) for g in groups.values())
    compliant = sum((g.get("status_counts") or {}).get("compliant", 0) for g in groups.values())
    reasons = (report.get("verdict") or {}).get("reasons") or []
    nxt: list[str] = []
    bases = {base_group(n) for n in groups}  # a group and its tiers are one group's sections
    one = next(iter(bases)) if len(bases) == 1 else None
    garg = _group_arg(report, one)
    if reasons:
        tone = "bad"
        words = f"Refused: {reasons[0]}" + (f" (and {len(reasons) - 1} more)" if len(reasons) > 1 else "")
        lost = [n for n, g in groups.items() if any("rebuild_contract" in r for r in g.get("reasons") or [])]
        if any("rebuild_contract" in r for r in reasons):
            nxt.append(_cmd("rebuild_contract", contract_args(lost[0]) if lost else f"-e cpucompat_group={one or '<group>'}"))
        if refused:
            nxt.append(_cmd("site", garg, "-e cpucompat_contract_on_refusal=exclude") + "   # deploy the rest, quarantine the refused")
            refusing = [n for n, g in groups.items() if (g.get("admission") or {}).get("refused")]
            nxt.append(_cmd("change_contract", contract_args(refusing[0]) if len(refusing) == 1 else f"-e cpucompat_group={one or '<group>'}",
                            "-e cpucompat_contract_action=lower -e cpucompat_contract_allow_lower=true --check"))
    else:
        compliance = (report.get("verdict") or {}).get("compliance")
        pending = (len(compliance["pending"]) if compliance is not None else  # a report written before the verdict said
                   domains - sum((g.get("status_counts") or {}).get(s, 0) for g in groups.values() for s in SETTLED))
        # In check mode the pending domains are the plan (nothing was deployed): no warning over an OK verdict.
        tone = "warn" if (quarantined or (pending > 0 and not check)) else "ok"
        pinned = [said(n) for n, g in groups.items() if g.get("pinned_now")]
        if pinned:
            words = (f"Would pin the contract of {', '.join(pinned)} (check mode: nothing written)" if check
                     else f"Pinned the contract of {', '.join(pinned)} in this run")
        else:
            words = f"Every host admitted to its group's contract ({admitted} hosts)"
        if quarantined:
            words += f"; {quarantined} host(s) quarantined"
        if domains:
            words += f"; {compliant} of {domains} domains compliant"
        if check:
            nxt.append(_cmd("site", garg) + "   # the same without --check")
        elif pending > 0:
            nxt.append(_cmd("power_cycle", garg, "--check") + "   # plan the power cycle of the domains marked restart-required"
                       " (power_cycle.md)")
        raising = [n for n, g in groups.items() if g.get("could_raise")]
        if raising:
            nxt.append(_cmd("change_contract", contract_args(raising[0]), "-e cpucompat_contract_action=raise --check"))
    numbers = [("hosts admitted", admitted), ("hosts refused", refused - quarantined), ("hosts quarantined", quarantined),
               ("domains compliant", f"{compliant} of {domains}")]
    first: Mapping[str, Any] = next(iter(groups.values()), {})
    could = first.get("could_raise")
    context = [("groups", ", ".join(said(n) for n in groups) or "-"), ("facts as of", _when(report.get("facts_as_of"))),
               ("check mode", "yes" if check else "no"), ("contract", first.get("contract_file") or "-"),
               ("pinned level", f"{first.get('model')} ({len(first.get('features') or [])} features the guest gets)"
                if first.get("model") else "host-passthrough (identical hosts only)"
                if isinstance(first.get("cpu"), Mapping) and first["cpu"].get("identity") else "-"),
               ("could raise", f"yes, to {could['model']}" if could else "no")]
    return {"tone": tone, "words": words, "numbers": numbers, "next": nxt[:3], "context": context}


def _plan(report: Mapping[str, Any]) -> dict[str, Any]:
    change = report.get("change") or {}
    verdict = report.get("verdict") or {}
    domains = report.get("domains") or {}
    cycle = sum(1 for d in domains.values() if d.get("restart_required"))
    action, group = report.get("action"), report.get("group")
    base = _cmd("change_contract", contract_args(str(group)), f"-e cpucompat_contract_action={action}")
    nxt: list[str] = []
    if not verdict.get("ok"):
        tone, words = "bad", f"{str(action).capitalize()} refused: {'; '.join(verdict.get('reasons') or [])}"
        reasons = " ".join(verdict.get("reasons") or [])
        flags = [f for f, key in (("-e cpucompat_contract_allow_lower=true", "allow_lower"),
                                  ("-e cpucompat_contract_allow_security_loss=true", "allow_security_loss")) if key in reasons]
        if flags:
            nxt.append(" ".join([base, *flags]) + "   # only if the loss is acceptable")
    elif report.get("what_if"):
        tone, words = "warn", f"What-if: a {action} without {', '.join(report.get('without') or [])} (never applied)"
    elif report.get("applied"):
        tone, words = "ok", f"{str(action).capitalize()} applied: model {(change.get('to') or {}).get('model')}"
        if cycle:
            nxt.append(f"shut down and start the {cycle} running domain(s) marked restart-required")
    elif report.get("applicable"):
        tone, words = "ok", f"{str(action).capitalize()} planned: model {(change.get('to') or {}).get('model')} (check mode: not applied)"
        nxt.append(base + "   # apply it")
    else:
        tone, words = "ok", "Nothing to change: the contract is already at this level"
    numbers = [("features gained", len(change.get("gained") or [])), ("features lost", len(change.get("lost") or [])),
               ("security features lost", len(change.get("security_lost") or [])), ("domains to power-cycle", cycle)]
    context = [("group", said(str(group))), ("check mode", "yes" if report.get("check_mode") else "no"),
               ("contract", report.get("contract_file")), ("from", (change.get("from") or {}).get("model") or "-"),
               ("to", (change.get("to") or {}).get("model") or "-")]
    return {"tone": tone, "words": words, "numbers": numbers, "next": nxt[:3], "context": context}


def _migration(report: Mapping[str, Any]) -> dict[str, Any]:
    matrix = report.get("matrix") or {}
    cells = [(d, t, c) for d, row in matrix.items() for t, c in row.items() if c is not None and not c.get("own_host")]
    blocked = sum(1 for _d, _t, c in cells if c.get("ok") is False)
    unknown = sum(1 for _d, _t, c in cells if c.get("ok") is None)
    requested = report.get("requested") or []
    verdict = report.get("verdict") or {}
    nxt: list[str] = []
    if not requested:
        tone = "warn" if blocked else "ok"
        words = f"No migration requested · {blocked} of {len(cells)} moves blocked"
        nxt.append(_cmd("premigration_check", "-e cpucompat_migrate=<domain>:<target host>") + "   # gate one move")
    elif verdict.get("ok"):
        tone, words = "ok", f"Every requested migration is possible ({len(requested)})"
    else:
        tone, words = "bad", f"Requested migrations blocked: {'; '.join(verdict.get('reasons') or [])}"
    if blocked:
        nxt.append(_cmd("site", "--check") + "   # the group's contract: a domain on it moves to every admitted host")
    numbers = [("domains", len(matrix)), ("targets", len(report.get("targets") or [])), ("moves blocked", blocked),
               ("moves unknown", unknown), ("libvirt disagrees", len(report.get("disagreements") or []))]
    observed = report.get("observed") or {}
    if observed:
        numbers.append(("moves observed alike", sum(1 for m in observed.values() if m.get("ok") and m.get("observed"))))
    pinned = report.get("contract") or {}
    context = [("group", report.get("group") or "-"), ("facts as of", _when(report.get("facts_as_of"))),
               ("contract", f"{pinned.get('contract_model')} ({pinned.get('contract_file') or 'pinned'})"
                if pinned.get("contract_model") else "none pinned")]
    return {"tone": tone, "words": words, "numbers": numbers, "next": nxt[:3], "context": context}


def _expansion(report: Mapping[str, Any]) -> dict[str, Any]:
    verdict = report.get("verdict") or {}
    candidates = report.get("candidates") or {}
    delta = report.get("delta") or {}
    lost = delta.get("features_lost") or []
    joining = [n for n, c in candidates.items() if c.get("runs_current_baseline")]
    nxt: list[str] = []
    if report.get("hosts_without_facts"):
        tone, words = "bad", "No plan: some hosts have no usable facts"
        nxt.append(_cmd("probe", "--limit", ",".join(report["hosts_without_facts"])))
    elif verdict.get("ok") and not lost:
        tone, words = "ok", f"The candidates can join without costing the cluster anything ({len(candidates)})"
        nxt.append("add the candidates to the cluster's group, then: " + _cmd("site", "--check --diff"))
    else:
        tone = "bad" if not verdict.get("ok") else "warn"
        words = (f"Joining costs the cluster {len(lost)} feature(s)" if lost else "The candidates cannot join as they are")
        if verdict.get("reasons"):
            words += f": {'; '.join(verdict['reasons'])}"
        # The next steps are the options the page lists (expansion_options), the possible ones, cheapest first.
        for option in [o for o in expansion_options(report) if not o["effect"].startswith("not possible")][:3]:
            nxt.append(f"{option['option']}: {option['command']}   # {option['first']}; {option['effect']}")
    numbers = [("candidates", len(candidates)), ("run the current baseline", len(joining)), ("features lost", len(lost)),
               ("security features lost", len([f for f in lost if f in SECURITY_FEATURES]))]
    context = [("fail_on", report.get("fail_on")), ("facts as of", _when(report.get("facts_as_of"))),
               ("model", " -> ".join(str(m) for m in (delta.get("model_before"), delta.get("model_after")) if m) or "-"
                if delta else "-")]
    return {"tone": tone, "words": words, "numbers": numbers, "next": nxt[:3], "context": context}


def _few(names: list[str], most: int = 8) -> str:
    return ", ".join(names[:most]) + (f" and {len(names) - most} more" if len(names) > most else "")


def expansion_options(report: Mapping[str, Any]) -> list[dict[str, str]]:
    """The ways to go on from an expansion plan, each with what it costs and the command that does it (both renderings)."""
    candidates = report.get("candidates") or {}
    delta = report.get("delta") or {}
    options = report.get("options") or {}
    names = ",".join(sorted(candidates)) or "<candidates>"
    out: list[dict[str, str]] = []
    lower = _cmd("change_contract", "-e cpucompat_contract_action=lower -e cpucompat_contract_allow_lower=true --check")
    if delta:
        lost = delta.get("features_lost") or []
        cost = (f"the cluster loses {len(lost)} feature(s): {_few(lost)}" if lost else "costs the cluster nothing")
        if delta.get("model_changes"):
            cost += (f"; the model changes {delta.get('model_before')} -> {delta.get('model_after')}" if delta.get("model_after")
                     else f"; no named model runs on every host after it ({delta.get('model_before')} now)")
        out.append({"option": f"admit all {len(candidates)} candidate(s)", "effect": cost,
                    "first": "add them to the group",
                    "command": lower if lost or delta.get("model_changes") else _cmd("site", "--check --diff")})
    without = [(n, a) for n, a in (options.get("without") or {}).items() if not a.get("error")]
    for name, alt in sorted(without, key=lambda item: (len(item[1].get("features_lost") or []), item[0])):
        lost = alt.get("features_lost") or []
        out.append({"option": f"admit all but {name}",
                    "effect": (f"the cluster loses {len(lost)} feature(s): {_few(lost)}" if lost else "costs the cluster nothing")
                    + (f"; the model changes to {alt['model_after']}" if alt.get("model_after") != delta.get("model_before") else ""),
                    "first": "add the others to the group", "command": lower if lost else _cmd("site", "--check --diff")})
    own = options.get("own_group") or {}
    if candidates:
        out.append({"option": "a group of their own",
                    "effect": (f"they share {own['model']} ({own['features']} features); guests cannot move between the groups"
                               if own.get("model") else f"not possible: {own.get('error') or 'no common CPU'}"),
                    "first": "put them in an inventory group of their own",
                    "command": _cmd("site", f"--limit {names}", "-e cpucompat_group=<their group> --check --diff")})
    stale = sorted(n for n, c in candidates.items() if set(c.get("missing_features") or []) & SECURITY_FEATURES)
    if stale:
        out.append({"option": "update microcode and BIOS first",
                    "effect": f"{_few(stale)} lack security features the cluster has; usually firmware, not silicon",
                    "first": "update their firmware and microcode",
                    "command": _cmd("probe", "--limit", ",".join(stale))})
    return out


def _upgrade(report: Mapping[str, Any]) -> dict[str, Any]:
    verdict = report.get("verdict") or {}
    groups = report.get("groups") or {}
    changing = sum(1 for g in groups.values() for d in (g.get("domains") or {}).values() if d.get("status") == "changes")
    ok = bool(verdict.get("ok"))
    words = "The upgrade keeps every group exact and runnable" if ok else f"Hold the upgrade: {'; '.join(verdict.get('reasons') or [])}"
    nxt = [a for g in groups.values() for a in g.get("actions") or []][:3]
    numbers = [("groups", len(groups)), ("exact on both stacks", sum(1 for g in groups.values() if g.get("exact_on_both"))),
               ("domains whose CPU would change", changing)]
    context = [("new stack", report.get("new_stack_file") or "-")]
    return {"tone": "ok" if ok else "bad", "words": words, "numbers": numbers, "next": nxt, "context": context}


def _rebuild(report: Mapping[str, Any]) -> dict[str, Any]:
    words = (f"Would rebuild generation {report.get('generation')} (check mode: nothing written)" if report.get("check_mode")
             else f"Rebuilt generation {report.get('generation')} of {named(str(report.get('group')))}'s contract")
    return {"tone": "ok", "words": words,
            "numbers": [("stamped domains", (report.get("stamps") or {}).get("domains", 0)),
                        ("features", len(report.get("features") or []))],
            "next": [_cmd("site", _group_arg(report, base_group(str(report.get("group")))), "--check --diff")],
            "context": [("group", said(str(report.get("group")))), ("store", report.get("contract_file")),
                        ("check mode", "yes" if report.get("check_mode") else "no")]}


def _power_cycle(report: Mapping[str, Any]) -> dict[str, Any]:
    rows = report.get("rows") or []
    group, mode = report.get("group"), report.get("mode")
    garg = _group_arg(report, group)
    done = sum(1 for r in rows if r.get("state") == "done")
    batches = len({r.get("batch") for r in rows})
    nxt: list[str] = []
    if report.get("stopped"):
        tone, words = "bad", f"Stopped: {report['stopped'].get('why')}"
        nxt.append(_cmd("power_cycle", garg, f"-e cpucompat_cycle_mode={mode}") + "   # after fixing it: continues where it stopped")
    elif not rows:
        tone, words = "ok", "No running guest waits for a power cycle"
    elif report.get("check_mode"):
        tone, words = "ok", f"Planned: {len(rows)} guest(s) in {batches} batch(es), mode {mode} (check mode: nothing changed)"
        nxt.append(_cmd("power_cycle", garg, f"-e cpucompat_cycle_mode={mode}") + "   # the same without --check")
    elif mode == "now":
        left = [r for r in rows if r.get("state") != "done"]
        tone = "ok" if not left else "warn"
        words = f"{done} of {len(rows)} guest(s) shut down and started on the contract CPU"
        if left:
            nxt.append(_cmd("power_cycle", garg, "-e cpucompat_cycle_mode=now") + "   # continues with the guests left")
    else:
        tone, words = "ok", f"{len(rows)} guest(s) wait for their next shutdown; a reboot inside each now ends it"
        nxt.append(_cmd("power_cycle", garg, "-e cpucompat_cycle_mode=now --check") + "   # or plan cycling them now")
    downs = [r["down_s"] for r in rows if isinstance(r.get("down_s"), (int, float))]
    numbers = [("guests", len(rows)), ("batches", batches), ("done", done),
               ("longest down", f"{max(downs):.1f} s" if downs else "-"), ("earlier runs' guests", len(report.get("earlier") or []))]
    context = [("group", group), ("mode", mode), ("check mode", "yes" if report.get("check_mode") else "no"),
               ("progress", report.get("progress_file")), ("contract model", report.get("contract_model"))]
    return {"tone": tone, "words": words, "numbers": numbers, "next": nxt[:3], "context": context}


_KINDS: dict[str, Callable[[Mapping[str, Any]], dict[str, Any]]] = {
    "baseline": _baseline, "contract": _contract, "plan": _plan, "migration": _migration, "expansion": _expansion,
    "upgrade": _upgrade, "rebuild": _rebuild, "power_cycle": _power_cycle}


def header(report: Mapping[str, Any]) -> dict[str, Any]:
    """The page header of any report: ``tone`` (ok, warn, bad), ``words``, ``numbers``, ``next``, ``context``."""
    made = _KINDS[str(report.get("kind"))](report)
    stamp = report.get("written")
    written: Mapping[str, Any] = stamp if isinstance(stamp, Mapping) else {}
    made["context"].append(("written", " by ".join(str(v) for v in (written.get("at"), written.get("play")) if v) or None))
    made["context"] = [(k, v) for k, v in made["context"] if v not in (None, "")]
    return made


def header_markdown(report: Mapping[str, Any]) -> list[str]:
    h = header(report)
    mark = {"ok": "OK", "warn": "ATTENTION", "bad": "NOT OK"}[h["tone"]]
    out = [f"**{mark}: {h['words']}**", "", " · ".join(f"{k}: **{v}**" for k, v in h["numbers"])]
    if h["next"]:
        out += ["", "Next:"] + [f"- `{n}`" for n in h["next"]]
    out += ["", "Context: " + " · ".join(f"{k}: {v}" for k, v in h["context"]), ""]
    return out
