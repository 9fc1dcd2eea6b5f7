# Copyright (c) 2026 cpucompat.cluster contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Markdown renderings of reports (schema cpucompat.report/1, docs/reports.md). Private to the collection."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from .._errors import CpuCompatError
from ..contract._tiers import title as section_title
from ..engine._arm_identity import describe
from ._header import expansion_options, guest_features, header_markdown, named, tier_words
from ._schema import CONTRACT_WORDS, PROBLEM_TITLES, REPORT_SCHEMA


def _c(text: object) -> str:
    """A Markdown table cell: a ``|`` in a host, domain or group name (or a reason) would end the cell."""
    return str(text).replace("\\", "\\\\").replace("|", "\\|").replace("\n", " ")


def _names(names: list[str], limit: int = 12) -> str:
    shown = ", ".join(names[:limit])
    return shown + (f" and {len(names) - limit} more" if len(names) > limit else "")


def contract_line(versus: Mapping[str, Any]) -> str:
    """One sentence: today's baseline against the group's pinned contract (what the deploy applies)."""
    text = (f"**Against the contract:** {CONTRACT_WORDS.get(str(versus.get('status')), versus.get('status'))} - model "
            f"`{versus.get('model')}`, pinned at {versus.get('pinned_at')} (`{versus.get('contract')}`)")
    if versus.get("gains"):
        text += f"; a raise would gain {', '.join(versus['gains'])}"
    if versus.get("loses"):
        text += f"; today's hosts lack {', '.join(versus['loses'])}"
    return text + ". The deploy applies the contract, not this baseline."


def baseline_markdown(view: Mapping[str, Any], host_rows: int | None = None) -> str:
    """The baseline report in Markdown; ``host_rows`` cuts the per-host table short (the console), None lists all."""
    if view.get("schema") != REPORT_SCHEMA:
        raise CpuCompatError(f"not a cpucompat report (schema {view.get('schema')!r})")
    out = ["# CPU baseline report", ""]
    hosts = view.get("hosts") or {}
    out.append(f"{len(hosts)} host(s) with facts; architectures: "
               + "; ".join(f"{a}: {_names(n)}" for a, n in (view.get("by_arch") or {}).items()))
    out.append("QEMU versions: " + "; ".join(f"{v}: {_names(n)}" for v, n in (view.get("qemu_versions") or {}).items()))
    # Failed probes are listed below with their errors, one line per host.
    for key, title in (t for t in PROBLEM_TITLES if t[0] != "probe_failed"):
        if view.get(key):
            out.append(f"**{title}:** {_names(view[key], 50)}")
    for key, title in (("probe_errors", "Probe failed on"), ("unreadable_errors", "Fact cache entry unreadable for")):
        errors = sorted((view.get(key) or {}).items())
        out += [f"**{title} {name}:** {error}" for name, error in errors[:host_rows]]
        if host_rows is not None and len(errors) > host_rows:
            out.append(f"... and {len(errors) - host_rows} more (the report files list them all)")
    if view.get("error"):
        out += ["", f"**Not computed:** {view['error']}"]
    if view.get("contract"):
        out += ["", contract_line(view["contract"])]
    base = view.get("baseline")
    if base:
        out += ["", "## Baseline", "",
                f"- model: `{base.get('model')}` ({base.get('arch')}, {base.get('vendor') or 'no vendor'})",
                f"- features the guest gets: {len(guest_features(base))}; in common: {len(base.get('features') or [])}; "
                f"required beyond the model: {len(base.get('require') or [])}"
                f"; disabled: {len(base.get('disable') or [])}"]
        if base.get("non_migratable_left_out"):
            out.append(f"- left out as not migratable: {', '.join(base['non_migratable_left_out'])}")
        if view.get("xml"):
            out += ["", "```xml", view["xml"].rstrip(), "```"]
        levels = view.get("levels") or {}
        out += ["", "## Hosts", "", "| host | CPU | QEMU | accel | best model | x86-64 level | verdict |",
                "|---|---|---|---|---|---|---|"]
        for name, summary in sorted(hosts.items())[:host_rows]:
            verdict = (view.get("verdicts") or {}).get(name, {})
            cpu = summary.get("model_id") or summary.get("base_model") or summary.get("arch")
            own = (levels.get("hosts") or {}).get(name) or {}
            out.append(f"| {_c(name)} | {cpu} | {summary.get('qemu_version') or '?'} | {summary.get('accel')} | "
                       f"{own.get('best_model') or '-'} | {own.get('psabi') or '-'} | "
                       f"{verdict.get('result', '?')}{'' if verdict.get('runnable', True) else ' (cannot run it!)'} |")
        if host_rows is not None and len(hosts) > host_rows:
            out.append(f"| ... and {len(hosts) - host_rows} more hosts (the report files list them all) | | | | | | |")
        out += _levels_markdown(levels, len(hosts))
        lost = base.get("lost") or {}
        if lost:
            out += ["", "## Features lost, and the hosts responsible", "", "| feature | lacking on |", "|---|---|"]
            out += [f"| {f} | {_c(_names(h))} |" for f, h in sorted(lost.items(), key=lambda kv: (len(kv[1]), kv[0]))]
        if view.get("axes"):
            out += _axes_markdown(view["axes"])
        if base.get("bottlenecks"):
            out += ["", "## Bottlenecks: what the baseline gains without one host", ""]
            for name, gain in sorted(base["bottlenecks"].items()):
                model = f"model {gain['model']}, " if gain.get("model") else ""
                out.append(f"- **{name}**: {model}{len(gain.get('features') or [])} features"
                           + (f" ({', '.join(gain['features'][:10])}{', ...' if len(gain['features']) > 10 else ''})" if gain.get("features") else ""))
    return "\n".join(out) + "\n"


def _levels_markdown(levels: Mapping[str, Any], total: int, rows: int = 15) -> list[str]:
    """The levels an operator may choose (cpucompat_contract_level): the best models, and the hosts each leaves out."""
    models = levels.get("models") or {}
    if not models:
        return []
    out = ["", "## Levels to choose from (cpucompat_contract_level)", ""]
    if (levels.get("group") or {}).get("psabi"):
        out.append(f"Today's baseline meets {levels['group']['psabi']}.")
        out.append("")
    out += ["| model | runs on | not on |", "|---|---|---|"]
    for name, m in list(models.items())[:rows]:
        more = m["not_on_count"] - len(m["not_on"])
        out.append(f"| {_c(name)} | {m['hosts']} of {total} | {_c(', '.join(m['not_on'])) or '-'}{f' and {more} more' if more > 0 else ''} |")
    if len(models) > rows:
        out.append(f"| ... {len(models) - rows} more models (the JSON report lists them) | | |")
    return out


def _axes_markdown(ax: Mapping[str, Any]) -> list[str]:
    """Beyond CPUID: security features, versions and drift, machine types, address bits, TSC, Hyper-V."""
    out: list[str] = []
    sec = ax.get("security") or {}
    out += ["", "## Security features", "", f"- kept: {', '.join(sec.get('kept') or []) or 'none'}"]
    for feature, lost in (sec.get("lost") or {}).items():
        micro = ", ".join(f"{h} (microcode {m or '?'})" for h, m in lost["microcode"].items())
        out.append(f"- **lost: {feature}**, lacking on {micro}")
    out += ["", "## Versions and drift", ""]
    out += [f"- {key}: " + "; ".join(f"{v}: {_names(h)}" for v, h in groups.items()) for key, groups in (ax.get("versions") or {}).items()]
    for d in ax.get("drift") or []:
        out.append(f"- **drift in {d['signature']}** ({_names(d['hosts'])}): microcode "
                   + "; ".join(f"{v}: {_names(h)}" for v, h in d["microcode"].items())
                   + "; kernel " + "; ".join(f"{v}: {_names(h)}" for v, h in d["kernel"].items())
                   + (f"; features that differ: {', '.join(d['features_differing'][:12])}" if d["features_differing"] else ""))
    bits = ax.get("address_bits") or {}
    tsc = ax.get("tsc") or {}
    hv = ax.get("hyperv") or {}
    out += ["", "## Migration beyond CPUID", "",
            "- machine types: " + "; ".join(f"{v}: {_names(h)}" for v, h in (ax.get("machines") or {}).items()),
            f"- physical address bits: fewest {bits.get('min') or '?'}"
            + (f", emulated in the XML (<maxphysaddr bits='{bits['maxphysaddr']}'>)" if bits.get("maxphysaddr") else f" ({bits.get('note')})"),
            "- TSC frequencies: " + ("; ".join(f"{v} Hz: {_names(h)}" for v, h in (tsc.get("frequencies") or {}).items()) or "unknown")
            + (f"; no TSC scaling on {_names(tsc['without_scaling'])}" if tsc.get("without_scaling") else ""),
            "- Hyper-V enlightenments every host supports: "
            + (", ".join(hv["common"]) if hv.get("common") else "unknown (QEMU before 8 does not say)")
            + (f" (not known for {_names(hv['unknown'])})" if hv.get("common") and hv.get("unknown") else "")]
    return out


def expansion_markdown(view: Mapping[str, Any]) -> str:
    verdict = view.get("verdict") or {}
    out = ["# Cluster expansion plan", "",
           f"Verdict: **{'OK' if verdict.get('ok') else 'NOT OK'}** (policy fail_on={view.get('fail_on')})"]
    out += [f"- {reason}" for reason in verdict.get("reasons", [])]
    current = view.get("current") or {}
    out += ["", "## Candidates", "", "| candidate | runs the current baseline | missing |", "|---|---|---|"]
    for name, cand in sorted((view.get("candidates") or {}).items()):
        out.append(f"| {_c(name)} | {'yes' if cand['runs_current_baseline'] else 'no'} | {', '.join(cand['missing_features']) or '-'} |")
    if view.get("error"):
        out += ["", f"**No common CPU with the candidates:** {view['error']}"]
    delta = view.get("delta")
    if delta:
        out += ["", "## If the candidates join", "",
                f"- model: `{delta['model_before']}` -> `{delta['model_after']}`" + (" (changes)" if delta["model_changes"] else " (same)"),
                f"- current baseline keeps {len(current.get('features') or [])} features; lost: {len(delta['features_lost'])}"]
        for feature, hosts in sorted(delta["lost_because_of"].items()):
            out.append(f"  - {feature}: lacking on {_names(hosts)}")
    domains = view.get("domains") or {}
    if domains:
        must = sorted(k for k, d in domains.items() if d["status"] == "must-change")
        out += ["", "## Domains", "", f"- must change: {len(must)}" + (f" ({_names(must)})" if must else ""),
                f"- unchanged: {sum(1 for d in domains.values() if d['status'] == 'unchanged')}",
                f"- follow their host (host-model/passthrough) or use libvirt's default: "
                f"{sum(1 for d in domains.values() if d['status'] in ('follows-host', 'unknown'))}"]
        for key in must:
            out.append(f"  - {key}: needs {', '.join(domains[key]['missing'])}")
    if view.get("domains_unjudged"):
        out += ["", "## Domains", "", f"- {view['domains_unjudged']}"]
    options = expansion_options(view)
    if options:
        out += ["", "## Options", ""] + [f"- **{o['option']}**: {o['effect']}. {o['first'][0].upper()}{o['first'][1:]}, then:  \n  `{o['command']}`"
                                         for o in options]
    return "\n".join(out) + "\n"


def migration_markdown(view: Mapping[str, Any]) -> str:
    verdict = view.get("verdict") or {}
    targets = view.get("targets") or []
    requested = view.get("requested") or []
    out = ["# Pre-migration check", "",
           "No migration requested: the matrix below answers for every move" if not requested else
           f"Requested migrations: **{'all possible' if verdict.get('ok') else 'NOT all possible'}**"]
    out += [f"- {reason}" for reason in verdict.get("reasons", [])]
    for target, problem in (view.get("target_problems") or {}).items():
        out.append(f"- target {target}: {problem}")
    about = view.get("domains") or {}
    statuses = (view.get("contract") or {}).get("domains") or {}
    out += ["", "| domain | CPU | contract | " + " | ".join(targets) + " |", "|---|---|---|" + "---|" * len(targets)]
    for domain, row in sorted((view.get("matrix") or {}).items()):
        d = about.get(domain) or {}
        cpu = " ".join(str(x) for x in (d.get("mode") or "no <cpu>", d.get("model") or "") if x).replace("<", "&lt;")
        if d.get("running_cpu"):
            cpu += " (running" + (f"; {d['next_power_cycle_model']} at its next power cycle)" if d.get("next_power_cycle_model") else ")")
        cells = [cpu,
                 (statuses.get(domain) or {}).get("status", "-")]
        for target in targets:
            cell = row.get(target, {})
            text = "—" if cell.get("own_host") else "yes" if cell.get("ok") else ("?" if cell.get("ok") is None else "no: " + "; ".join(
                [", ".join(cell.get("blocking", []))] * bool(cell.get("blocking")) + list(cell.get("beyond_cpuid") or [])))
            if "libvirt" in cell:
                text += f" (libvirt: {cell['libvirt']}{', DISAGREES' if cell.get('disagreement') else ''})"
            cells.append(text)
        out.append(f"| {_c(domain)} | " + " | ".join(_c(c) for c in cells) + " |")
    if view.get("disagreements"):
        out += ["", f"**{len(view['disagreements'])} disagreement(s) between our verdict and libvirt's**, e.g. "
                + "; ".join(f"{d['domain']} -> {d['target']}: ours {'yes' if d['ours'] else 'no'}, libvirt {d['libvirt']}"
                            for d in view["disagreements"][:5])]
    return "\n".join(out) + "\n"


def _power_cycle(domain: Mapping[str, Any]) -> str:
    change = domain.get("next_power_cycle")
    if not change:
        return str(domain.get("why") or "-").replace("|", "/")
    return f"gains {', '.join(change['gains']) or 'nothing'}; loses {', '.join(change['loses']) or 'nothing'}"


def platform_text(platform: str, rendering: Mapping[str, Any]) -> str:
    """The part of a platform's rendering an operator pastes: its configuration text, else the whole as JSON."""
    for key in {"libvirt": ("xml",), "qemu": ("value", "args"), "proxmox": ("cpu_models_conf",), "nova": ("ini",)}.get(platform, ()):
        if isinstance(rendering.get(key), str):
            return rendering[key]
    return json.dumps(rendering, indent=2, sort_keys=True)


def _identity_text(section: Mapping[str, Any]) -> str | None:
    """The pinned arm64 host identity of an aarch64 group, in one line (None elsewhere)."""
    cpu = section.get("cpu")
    identity = cpu.get("identity") if isinstance(cpu, Mapping) else None
    return describe(identity) if isinstance(identity, Mapping) else None


def _more(rows: int, host_rows: int | None, what: str, cells: int = 0) -> list[str]:
    """The line that says how many rows the console rendering left out (none when ``host_rows`` listed them all)."""
    if host_rows is None or rows <= host_rows:
        return []
    said = f"... and {rows - host_rows} more {what} (the report files list them all)"
    return [f"| {said} |" + " |" * (cells - 1)] if cells else [f"- {said}"]


def _contract_group(name: str, section: Mapping[str, Any], check_mode: bool = False, host_rows: int | None = None) -> list[str]:
    pinned = (" (check mode: a real run would pin it)" if check_mode else " (pinned in this run)") if section.get("pinned_now") \
        else f", pinned at {section['pinned_at']}" if section.get("pinned_at") else " (no contract pinned)"
    out = ["", f"## {section_title(name)}", "", *([f"- {tier_words(section)}"] if tier_words(section) else []),
           f"- contract: `{section.get('contract_file')}`" + pinned,
           f"- level: model `{section.get('model')}`, {len(section.get('features') or [])} features the guest gets" if section.get("model")
           else f"- level: host-passthrough, identical hosts only: {_identity_text(section)}" if _identity_text(section)
           else "- level: none"]
    for host, why in (section.get("hosts_without_facts") or {}).items():
        out.append(f"- **no usable facts from {host}:** {why}")
    admission = section.get("admission") or {}
    quarantined = section.get("quarantined") or {}
    for refused in admission.get("refused") or []:
        verb = "quarantined" if refused["host"] in quarantined else "refused"
        out.append(f"- **{refused['host']} {verb}:** " + (refused.get("why") or
                                                          f"lacks {', '.join(refused['missing_features']) or 'the model'}"))
        diagnosis = refused.get("diagnosis") or {}
        if diagnosis.get("likely"):
            out.append(f"  - likely: {diagnosis['likely']}")
        out += [f"  - `{command}`" for command in diagnosis.get("commands") or []]
    lower = admission.get("lower_contract")
    if lower:
        out.append(f"- a lower contract would admit them: model `{lower['to']['model']}`, losing {', '.join(lower['lost']) or 'nothing'}"
                   + (f" (security: {', '.join(lower['security_lost'])})" if lower.get("security_lost") else ""))
    raise_to = section.get("could_raise")
    if raise_to:
        out.append(f"- **could raise** to model `{raise_to['model']}`, gaining {', '.join(raise_to['features_gained']) or 'no feature'}")
    elif section.get("admission") and not (section.get("admission") or {}).get("refused"):
        out.append("- could raise: no (the contract is the best every host runs)")
    table = section.get("host_table") or {}
    if table:
        out += ["", "| host | runs the contract | best model | x86-64 level | microcode |", "|---|---|---|---|---|"]
        out += [f"| {_c(h)} | {'yes' if t['runs_contract'] else 'no'} | {t.get('best_model') or '-'} | {t.get('psabi') or '-'} | "
                f"{t.get('microcode') or '-'} |" for h, t in sorted(table.items())[:host_rows]]
        out += _more(len(table), host_rows, "hosts", 5)
    out += _observed_markdown(section.get("observation") or {}, host_rows)
    counts = {k: v for k, v in (section.get("status_counts") or {}).items() if v}
    if counts:
        out += ["", "| domain | status | persistent | live | at its next power cycle | what to do |", "|---|---|---|---|---|---|"]
        out += [f"| {_c(key)} | {d['status']} | {'yes' if d.get('persistent') else 'no'} | "
                f"{'-' if d.get('live') is None else ('yes' if d['live'] else 'no')} | {_power_cycle(d)} | {d.get('action') or '-'} |"
                for key, d in sorted((section.get("domains") or {}).items())[:host_rows]]
        out += _more(len(section.get("domains") or {}), host_rows, "domains", 6)
        out.append("")
        out.append("Domains by status: " + ", ".join(f"{k} {v}" for k, v in counts.items()))
    for platform, made in (section.get("platforms") or {}).items():
        if not made.get("ok"):
            out += ["", f"**{platform}:** cannot say the contract exactly: {made.get('refused')}"]
            continue
        every = f", every tier at once ({', '.join(made['tiers'])})" if made.get("tiers") else ""
        out += ["", f"### The contract for {platform}{every}", "", "```", platform_text(platform, made["rendering"]).rstrip(), "```"]
    if section.get("history"):
        out += ["", "| when | action | from | to | reason |", "|---|---|---|---|---|"]
        for h in section["history"]:
            out.append(f"| {h.get('at')} | {h.get('action')} | {(h.get('from') or {}).get('model', '-')} | "
                       f"{(h.get('to') or {}).get('model')} | {_c(h.get('reason'))} |")
    return out


def _observed_markdown(ob: Mapping[str, Any], host_rows: int | None = None) -> list[str]:
    """The contract as each host's QEMU gives it to a vCPU: the stacks, their hosts, the refused and the unobserved."""
    if ob.get("skipped"):
        return ["", f"Observed: not observed ({ob['skipped']})."]
    if not ob.get("stacks") and not ob.get("not_observed") and not ob.get("refused"):
        return []
    out = ["", "### Observed: what each host's QEMU gives the guest", ""]
    if ob.get("stacks"):
        out += [f"The group's CPUID words come from {ob.get('reference')}"
                + (f"; recorded in the contract in this run: {', '.join(ob['recorded'])}" if ob.get("recorded") else "") + ".",
                "", "| stack (QEMU \\| machine type \\| kernel \\| accelerator) | hosts | words |", "|---|---|---|"]
        out += [f"| {key.replace('|', '/')} | {_c(', '.join(st.get('hosts') or [])) or 'none in this run'} | {len(st.get('cpuid') or {})} |"
                for key, st in sorted(ob["stacks"].items())]
    for entry in ob.get("refused") or []:
        said = [*entry.get("describe", []), *entry.get("filtered", []), *([entry["failed"]] if entry.get("failed") else [])]
        out.append(f"- **{entry['host']}** differs: " + "; ".join(said))
    unobserved = sorted((ob.get("not_observed") or {}).items())
    out += [f"- {host}: not observed ({why})" for host, why in unobserved[:host_rows]]
    return out + _more(len(unobserved), host_rows, "hosts not observed")


def contract_markdown(view: Mapping[str, Any], host_rows: int | None = None) -> str:
    """The contract report in Markdown; ``host_rows`` cuts each per-host and per-domain list short (the console)."""
    verdict = view.get("verdict") or {}
    out = ["# Cluster CPU contract", "", f"Verdict: **{'OK' if verdict.get('ok') else 'NOT OK'}**"]
    out += [f"- {reason}" for reason in verdict.get("reasons", [])]
    admission, compliance = verdict.get("admission"), verdict.get("compliance")
    if admission is not None and compliance is not None:
        out += [f"- admission: {admission['admitted']} host(s) admitted"
                + (f", refused: {_names(admission['refused'])}" if admission["refused"] else ", none refused"),
                f"- compliance: {compliance['settled']} of {compliance['domains']} domains need nothing"
                + (f"; to act on: {_names([f'{k} ({s})' for k, s in compliance['pending'].items()])}"
                   if compliance["pending"] else "")]
    if compliance is not None and compliance["pending"]:
        out += ["", "The power-cycle plan: [power_cycle.md](power_cycle.md) (`ansible-playbook -i <inventory> "
                "cpucompat.cluster.power_cycle --check`)"]
    for name, section in sorted((view.get("groups") or {}).items()):
        out += _contract_group(name, section, bool(view.get("check_mode")), host_rows)
    return "\n".join(out) + "\n"


def plan_markdown(view: Mapping[str, Any]) -> str:
    verdict = view.get("verdict") or {}
    change = view.get("change") or {}
    out = [f"# Contract plan: {view.get('action')} {named(str(view.get('group')))}", "",
           *([f"- the tier's hosts: {', '.join(view.get('tier_hosts') or []) or 'none'}", ""] if view.get("tier") else []),
           f"Verdict: **{'OK' if verdict.get('ok') else 'REFUSED'}**" + (" (what-if: not applied)" if view.get("what_if") else "")
           + (" - applied" if view.get("applied") else "")]
    out += [f"- {reason}" for reason in verdict.get("reasons", [])]
    if change:
        out += ["", f"- model: `{change['from']['model']}` -> `{change['to']['model']}` ({change['direction']})",
                f"- gained: {', '.join(change['gained']) or 'nothing'}", f"- lost: {', '.join(change['lost']) or 'nothing'}"]
        for feature in change.get("security_lost") or []:
            hosts = (view.get("security") or {}).get(feature, {})
            out.append(f"- **security feature lost: {feature}**, because of "
                       + "; ".join(f"{h} ({', '.join(f'{k} {v}' for k, v in notes.items() if v)})" for h, notes in hosts.items()))
    domains = view.get("domains") or {}
    if domains:
        out += ["", "| domain | changes | restart required |", "|---|---|---|"]
        out += [f"| {_c(key)} | {'yes' if d.get('changes') else 'no'} | {'yes' if d.get('restart_required') else 'no'} |"
                for key, d in sorted(domains.items())]
    return "\n".join(out) + "\n"


def upgrade_markdown(view: Mapping[str, Any]) -> str:
    verdict = view.get("verdict") or {}
    out = ["# Before the upgrade", "", f"Verdict: **{'the upgrade keeps every group exact' if verdict.get('ok') else 'HOLD THE UPGRADE'}**"]
    out += [f"- {reason}" for reason in verdict.get("reasons", [])]
    for name, g in sorted((view.get("groups") or {}).items()):
        level = g.get("level") or {}
        out += ["", f"## Group {name}", "", f"- new stack: {', '.join(g.get('new_stack') or []) or 'none'}",
                f"- CPU judged: {level.get('source', '-')}, model `{level.get('model')}`, {len(level.get('features') or [])} features",
                f"- exact on the old and the new stack at once: {'yes' if g.get('exact_on_both') else 'no'}"
                + ("" if g.get("xml_both") == g.get("xml_now") else " (with a <cpu> that names more than the deployed one)")]
        for host, runs in (g.get("runs") or {}).items():
            out.append(f"- runs on {host}: " + ("yes" if runs["runnable"] else f"**no**, lacks {', '.join(runs['missing_features']) or 'its model'}"))
        changing = {k: d for k, d in (g.get("domains") or {}).items() if d["status"] in ("changes", "refused")}
        if changing:
            out += ["", "| domain | at its next power cycle on the new stack |", "|---|---|"]
            for key, d in sorted(changing.items()):
                what = "; ".join(f"{s}: " + (v["refused"] if "refused" in v else f"gains {', '.join(v['gains']) or '-'}, loses {', '.join(v['loses']) or '-'}")
                                 for s, v in d.get("on", {}).items())
                out.append(f"| {_c(key)} | {_c(what)} |")
        out += ["", "What to do:"] + [f"1. {a}" for a in g.get("actions") or []]
    return "\n".join(out) + "\n"


def rebuild_markdown(view: Mapping[str, Any]) -> str:
    stamps = view.get("stamps") or {}
    out = [f"# Contract of {named(str(view.get('group')))} rebuilt from the domains' stamps", "",
           f"Generation {view.get('generation')}, model `{view.get('model')}`, {len(view.get('features') or [])} features, "
           f"pinned at {view.get('pinned_at')}" + (" - check mode: not written" if view.get("check_mode") else ""),
           f"- store: `{view.get('contract_file')}`"]
    out += [f"- {n}" for n in view.get("notes") or []]
    out += ["", "| generation | domains |", "|---|---|"]
    out += [f"| {g} | {n} |" for g, n in (stamps.get("generations") or {}).items()]
    return "\n".join(out) + "\n"


def power_cycle_markdown(view: Mapping[str, Any]) -> str:
    out = [f"# Power cycle of group {view.get('group')} (mode {view.get('mode')})", ""]
    out += [f"- {reason}" for reason in (view.get("verdict") or {}).get("reasons", [])]
    rows = view.get("rows") or []
    if rows:
        out += ["| batch | guest | state | CPU before | CPU after | gains | loses | observed | down (s) |", "|---|---|---|---|---|---|---|---|---|"]
        for r in rows:
            seen = r.get("observed")
            observed = (f"gained {', '.join(seen['gains']) or 'nothing'}; lost {', '.join(seen['loses']) or 'nothing'}"
                        + (f"; not given by the host: {', '.join(seen['filtered'])}" if seen.get("filtered") else "")
                        if seen else "-")
            down = f"{r['down_s']:.1f}" + (" (forced)" if r.get("forced") else "") if isinstance(r.get("down_s"), (int, float)) else "-"
            out.append(f"| {r['batch']} | {_c(r['guest'])} | {_c(r['state'])} | {_c(r.get('before') or '-')} | {_c(r.get('after') or '-')} "
                       f"| {_c(', '.join(r['gains']) or '-')} | {_c(', '.join(r['loses']) or '-')} | {_c(observed)} | {down} |")
    else:
        out.append("No running guest waits for a power cycle.")
    earlier = view.get("earlier") or []
    if earlier:
        out += ["", "Earlier runs (for this contract; never cycled again):", ""]
        out += [f"- {_c(e['guest'])}: {e['state']}" + (f", down {e['down_s']:.1f} s" if isinstance(e.get("down_s"), (int, float)) else "")
                + (f"; now {e['now']}" if e.get("now") else "") for e in earlier]
    return "\n".join(out) + "\n"


_RENDERINGS = {"power_cycle": power_cycle_markdown,
               "baseline": baseline_markdown, "upgrade": upgrade_markdown, "expansion": expansion_markdown, "migration": migration_markdown,
               "contract": contract_markdown, "plan": plan_markdown, "rebuild": rebuild_markdown}
_ROWED = {"baseline": baseline_markdown, "contract": contract_markdown}  # the renderings that take host_rows


def report_markdown(view: Mapping[str, Any], host_rows: int | None = None) -> str:
    """Any report in Markdown; ``host_rows`` cuts the per-host lists of the baseline and the contract short (the
    console), None lists all."""
    kind = view.get("kind")
    if view.get("schema") != REPORT_SCHEMA:
        raise CpuCompatError(f"not a cpucompat report (schema {view.get('schema')!r})")
    if kind not in _RENDERINGS:
        raise CpuCompatError(f"no Markdown rendering for report kind {kind!r}")
    text = _ROWED[kind](view, host_rows) if kind in _ROWED else _RENDERINGS[kind](view)
    title, _sep, rest = text.partition("\n")
    return "\n".join([title, "", *header_markdown(view)]) + rest
