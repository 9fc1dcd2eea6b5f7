# Copyright (c) 2026 cpucompat.cluster contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Jinja2 templates of the HTML reports (self-contained: inline CSS and SVG, no script, no external URL). Private to the collection.

Kept as Python strings so that they ship with the collection wherever its module_utils go. ``_html`` renders them
with autoescaping; every value is data from a JSON report.
"""

from __future__ import annotations

CSS = """
:root { --fg: #1b1f24; --bg: #ffffff; --muted: #59636e; --line: #d0d7de; --ok: #1a7f37; --ok-bg: #dafbe1;
        --bad: #cf222e; --bad-bg: #ffebe9; --warn: #9a6700; --warn-bg: #fff8c5; --accent: #0969da; --head: #f6f8fa; }
@media (prefers-color-scheme: dark) {
  :root { --fg: #e6edf3; --bg: #0d1117; --muted: #9198a1; --line: #3d444d; --ok: #3fb950; --ok-bg: #12261e;
          --bad: #f85149; --bad-bg: #2d1215; --warn: #d29922; --warn-bg: #2e2208; --accent: #4493f8; --head: #161b22; }
}
* { box-sizing: border-box; }
body { font: 15px/1.45 system-ui, -apple-system, "Segoe UI", "DejaVu Sans", sans-serif; color: var(--fg);
       background: var(--bg); margin: 0 auto; padding: 1rem; max-width: 80rem; }
h1 { font-size: 1.5rem; margin: 0 0 .25rem; } h2 { font-size: 1.2rem; margin: 1.6rem 0 .5rem; border-bottom: 1px solid var(--line); }
.muted { color: var(--muted); } .mono, pre, code { font-family: ui-monospace, "DejaVu Sans Mono", monospace; font-size: .85rem; }
.verdict { display: inline-block; padding: .2rem .6rem; border-radius: .4rem; font-weight: 600; }
.ok { color: var(--ok); background: var(--ok-bg); } .bad { color: var(--bad); background: var(--bad-bg); }
.warn { color: var(--warn); background: var(--warn-bg); }
.cards { display: flex; flex-wrap: wrap; gap: .6rem; margin: .8rem 0; }
.card { border: 1px solid var(--line); border-radius: .5rem; padding: .5rem .8rem; min-width: 9rem; }
.card b { display: block; font-size: 1.3rem; }
.scroll { overflow-x: auto; max-width: 100%; }
table { border-collapse: collapse; margin: .4rem 0; }
th, td { border: 1px solid var(--line); padding: .2rem .45rem; text-align: left; vertical-align: top; }
thead th { background: var(--head); position: sticky; top: 0; }
th.rot { writing-mode: vertical-rl; transform: rotate(180deg); white-space: nowrap; font-weight: 500; padding: .4rem .15rem; }
td.cell { text-align: center; min-width: 1.6rem; }
td.has { color: var(--ok); background: var(--ok-bg); } td.lacks { color: var(--bad); background: var(--bad-bg); }
td.unknown { color: var(--muted); }
.sr { position: absolute; width: 1px; height: 1px; overflow: hidden; clip: rect(0 0 0 0); white-space: nowrap; }
pre { background: var(--head); border: 1px solid var(--line); padding: .6rem; overflow-x: auto; }
svg text { fill: var(--fg); font-size: 12px; } svg .bar { fill: var(--accent); }
table.bars td { min-width: 14rem; } .barfill { display: inline-block; height: .8rem; max-width: 60%; background: var(--accent); }
ul.reasons li { margin: .15rem 0; }
section.head { border: 1px solid var(--line); border-radius: .6rem; padding: .6rem .9rem; margin: .5rem 0 1rem; }
section.head .words { font-size: 1.05rem; margin: .2rem 0; } .next ol { margin: .3rem 0; padding-left: 1.4rem; }
.next code { white-space: pre-wrap; overflow-wrap: anywhere; } th[scope=row] { overflow-wrap: anywhere; max-width: 22rem; }
footer { margin-top: 2rem; font-size: .8rem; }
@media (max-width: 40rem) { body { padding: .5rem; font-size: 14px; } .card { min-width: 7rem; } }
@media print {
  @page { size: A4; margin: 12mm; }
  body { max-width: none; padding: 0; font-size: 10pt; color: #000; background: #fff; }
  .scroll { overflow: visible; } thead th { position: static; }
  h2 { break-after: avoid; } tr { break-inside: avoid; }
  td.has { background: #dafbe1 !important; } td.lacks { background: #ffebe9 !important; }
  * { -webkit-print-color-adjust: exact; print-color-adjust: exact; }
}
"""

BASE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="color-scheme" content="light dark">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'; img-src data:">
<title>{{ title }}</title>
<style>{{ css }}</style>
</head>
<body>
<header>
<h1>{{ title }}</h1>
<section class="head" aria-label="verdict">
<p class="words"><span class="verdict {{ head.tone }}">{{ {'ok': 'OK', 'warn': 'Attention', 'bad': 'Not OK'}[head.tone] }}</span>
{{ head.words }}</p>
<div class="cards">{% for label, value in head.numbers %}<div class="card"><span class="muted">{{ label }}</span><b>{{ value }}</b></div>{% endfor %}</div>
{% if head.next %}<div class="next"><b>Next:</b><ol>{% for n in head.next %}<li><code>{{ n }}</code></li>{% endfor %}</ol></div>{% endif %}
<p class="context muted">{% for k, v in head.context %}{{ k }}: <b>{{ v }}</b>{{ ' · ' if not loop.last }}{% endfor %}</p>
{% if verdict is not none and verdict.reasons | length > 1 %}<ul class="reasons">{% for r in verdict.reasons %}<li>{{ r }}</li>{% endfor %}</ul>{% endif %}
<p class="muted">cpucompat.cluster report, schema {{ report.schema }}, kind {{ report.kind }}</p>
</section>
</header>
<main>
{% block body %}{% endblock %}
</main>
<footer class="muted">Colours always come with text: "has", "yes" and ✓ for what works, "lacks", "no" and ✗ for what blocks.
The JSON report beside this file is the source of truth.</footer>
</body>
</html>
"""

MACROS = """
{% macro cards(items) %}<div class="cards">{% for label, value in items %}<div class="card">
<span class="muted">{{ label }}</span><b>{{ value }}</b></div>{% endfor %}</div>{% endmacro %}
{% macro names(list, limit=12) %}{{ list[:limit] | join(', ') }}{% if list | length > limit %} and {{ list | length - limit }} more
{% endif %}{% endmacro %}
{% macro marked(features, security) %}{% for f in features %}{% if f in security %}⚑<span class="sr">security: </span>{% endif %}
{{- f }}{{ ', ' if not loop.last }}{% else %}-{% endfor %}{% endmacro %}
{% macro collapsed(shown, total, what) %}{% if total > shown %}
<p class="muted">Showing {{ shown }} of {{ total }} {{ what }}; the JSON report has all of them.</p>{% endif %}{% endmacro %}
"""

BASELINE = """{% extends "base" %}{% import "macros" as m %}
{% block body %}
{% if report.error %}<p><span class="verdict bad">Not computed</span> {{ report.error }}</p>{% endif %}
{% set b = report.baseline %}
{{ m.cards([("hosts", report.hosts | length), ("model", (b.model if b else none) or "none"), ("features the guest gets",
            ((b.guest.features if b.guest else b.features) | length) if b else 0), ("features in common", (b.features | length) if b else 0),
            ("features lost", (b.lost | length) if b else 0), ("architecture", (b.arch if b else none) or "?"),
            ("vendor", (b.vendor if b else none) or "none")]) }}
{% for key, title in problem_titles %}
{% if report[key] %}<p><span class="verdict bad">{{ title }}</span> {{ m.names(report[key], 50) }}</p>{% endif %}{% endfor %}
{% if report.contract %}{% set c = report.contract %}<p id="contract">
<span class="verdict {{ 'ok' if c.status == 'equal' else 'warn' if c.status == 'above' else 'bad' }}">Contract: {{ c.status }}</span>
{{ contract_words[c.status] | default(c.status) }} - model {{ c.model }}, pinned at {{ c.pinned_at }}
<span class="muted">({{ c.contract }})</span>{% if c.gains %}; a raise would gain {{ c.gains | join(', ') }}{% endif %}
{% if c.loses %}; today's hosts lack <span class="lacks">{{ c.loses | join(', ') }}</span>{% endif %}.
The deploy applies the contract, not this baseline.</p>{% endif %}
{% if matrix.features %}
<h2 id="matrix">Which hosts lack which features</h2>
<p class="muted">The features some host lacks (the baseline loses them); rows are hosts, those whose retirement would give the
group the most first; ⚑ marks a security feature (on an otherwise equal host, usually older microcode or a BIOS setting);
vmx-* and kvm-* stand for the whole family.</p>
<div class="scroll"><table>
<caption class="sr">Host by feature: has or lacks</caption>
<thead><tr><th scope="col">host</th><th scope="col">gain without it</th><th scope="col">lacks</th>{% for f in matrix.features %}
<th scope="col" class="rot">{% if f.security %}⚑<span class="sr">security: </span>{% endif %}{{ f.label }}</th>
{% endfor %}</tr></thead>
<tbody>
{{ matrix.body }}</tbody></table></div>
{{ m.collapsed(matrix.rows | length, matrix.total_hosts, "hosts") }}{{ m.collapsed(matrix.features | length, matrix.total_features, "lost features") }}
{% endif %}
{% if bars.entries %}
<h2 id="bottlenecks">Bottlenecks: what the group gains without one host</h2>
<div class="scroll"><table class="bars"><caption class="sr">Features the baseline gains without each host</caption>
<thead><tr><th scope="col">without</th><th scope="col">the group gains</th></tr></thead><tbody>
{% for bar in bars.entries %}<tr><th scope="row">{{ bar.host }}</th>
<td><span class="barfill" style="width:{{ bar.width }}%"></span> {{ bar.label }}</td></tr>{% endfor %}</tbody></table></div>
{% if report.retire %}<p>Retiring {{ report.retire.host }} would give the group model {{ report.retire.model }} with
{{ report.retire.features }} features the guest gets ({{ report.retire.gained | join(', ') or 'nothing more' }}): the same what-if
<code>ansible-playbook -i &lt;inventory&gt; cpucompat.cluster.change_contract -e cpucompat_contract_action=raise
-e '{"cpucompat_contract_without": ["{{ report.retire.host }}"]}'</code> computes (never applied).</p>{% endif %}
{{ m.collapsed(bars.entries | length, bars.total, "hosts") }}
{% endif %}
{% if report.xml %}<h2 id="xml">The libvirt &lt;cpu&gt;</h2><pre>{{ report.xml }}</pre>{% endif %}
{% if report.hosts %}
<h2 id="hosts">Hosts</h2>
<div class="scroll"><table><thead><tr><th scope="col">host</th><th scope="col">CPU</th><th scope="col">QEMU</th><th scope="col">accel</th>
<th scope="col">best model</th><th scope="col">x86-64 level</th><th scope="col">against the baseline</th></tr></thead><tbody>
{% for h in hosts %}{% set own = (report.levels.hosts or {})[h.name] | default({}) %}
<tr><th scope="row">{{ h.name }}</th><td>{{ h.cpu }}</td><td>{{ h.qemu or "?" }}</td><td>{{ h.accel }}</td>
<td>{{ own.best_model or '-' }}</td><td>{{ own.psabi or '-' }}</td>
<td class="{{ 'has' if h.runnable else 'lacks' }}">{{ h.result }}{% if not h.runnable %} (cannot run it){% endif %}</td></tr>
{% endfor %}</tbody></table></div>{{ m.collapsed(hosts | length, report.hosts | length, "hosts") }}
{% if report.levels and report.levels.models %}<h2 id="levels">Levels to choose from</h2>
<p class="muted">cpucompat_contract_level takes any of these models (with +feature/-feature changes) or an x86-64 level
{%- if report.levels.group.psabi %}; today's baseline meets {{ report.levels.group.psabi }}{% endif %}.</p>
<div class="scroll"><table><thead><tr><th scope="col">model</th><th scope="col">runs on</th><th scope="col">not on</th></tr></thead><tbody>
{% for name, lv in report.levels.models.items() %}{% if loop.index <= 15 %}
<tr><th scope="row">{{ name }}</th><td>{{ lv.hosts }} of {{ report.hosts | length }}</td>
<td>{{ lv.not_on | join(', ') or '-' }}{% if lv.not_on_count > lv.not_on | length %}
 and {{ lv.not_on_count - lv.not_on | length }} more{% endif %}</td></tr>{% endif %}
{% endfor %}</tbody></table></div>{% endif %}
{% endif %}
{% set ax = report.axes %}
{% if ax %}
<h2 id="security">Security features</h2>
<p>Kept: {{ ax.security.kept | join(', ') or 'none' }}</p>
{% if ax.security.lost %}<div class="scroll"><table><thead><tr><th scope="col">lost</th>
<th scope="col">lacking on (microcode)</th></tr></thead><tbody>
{% for f, lost in ax.security.lost.items() %}<tr><th scope="row" class="lacks">{{ f }}</th><td>
{{ security_lost[f] }}</td></tr>
{% endfor %}</tbody></table></div>{% endif %}
<h2 id="versions">Versions and drift</h2>
<div class="scroll"><table><thead><tr><th scope="col">what</th><th scope="col">value: hosts</th></tr></thead><tbody>
{% for key, groups in ax.versions.items() %}<tr><th scope="row">{{ key }}</th><td>
{% for v, hs in groups.items() %}<b>{{ v }}</b>: {{ m.names(hs) }}{{ '; ' if not loop.last }}{% endfor %}</td></tr>{% endfor %}
<tr><th scope="row">machine type</th><td>{% for v, hs in ax.machines.items() %}<b>{{ v }}</b>: {{ m.names(hs) }}{{ '; ' if not loop.last }}
{% endfor %}</td></tr>
<tr><th scope="row">address bits</th><td>fewest {{ ax.address_bits.min or '?' }}
{% if ax.address_bits.maxphysaddr %}, emulated in the &lt;cpu&gt;{% else %} ({{ ax.address_bits.note }}){% endif %}</td></tr>
<tr><th scope="row">TSC</th><td>{% for v, hs in ax.tsc.frequencies.items() %}<b>{{ v }} Hz</b>: {{ m.names(hs) }}{{ '; ' if not loop.last }}
{% endfor %}{% if ax.tsc.without_scaling %}; no scaling on {{ m.names(ax.tsc.without_scaling) }}{% endif %}</td></tr>
<tr><th scope="row">Hyper-V (common)</th><td>{{ (ax.hyperv.common or []) | join(', ') or 'unknown' }}</td></tr>
</tbody></table></div>
{% for d in ax.drift %}<p><span class="verdict warn">Drift</span> {{ d.signature }} ({{ m.names(d.hosts) }}): microcode
{% for v, hs in d.microcode.items() %}{{ v }}: {{ m.names(hs) }}{{ '; ' if not loop.last }}{% endfor %}
{% if d.features_differing %}; features that differ: {{ d.features_differing | join(', ') }}{% endif %}</p>{% endfor %}
{% endif %}
{% endblock %}
"""

EXPANSION = """{% extends "base" %}{% import "macros" as m %}
{% block body %}
{% set c = report.current %}{% set j = report.joined %}
{{ m.cards([("policy", report.fail_on), ("candidates", report.candidates | length), ("model now", c.model or "none"),
            ("model if they join", (j.model if j else none) or "none"), ("features lost", (report.delta.features_lost | length) if report.delta else "-"),
            ("domains that must change", must | length)]) }}
{% if report.error %}<p><span class="verdict bad">No common CPU</span> {{ report.error }}</p>{% endif %}
<h2 id="baselines">Current and joined baseline</h2>
<div class="scroll"><table><thead><tr><th scope="col"></th><th scope="col">now</th><th scope="col">if the candidates join</th></tr></thead><tbody>
<tr><th scope="row">model</th><td>{{ c.model }}</td><td>{{ j.model if j else '-' }}</td></tr>
<tr><th scope="row">features</th><td>{{ c.features | length }}</td><td>{{ (j.features | length) if j else '-' }}</td></tr>
</tbody></table></div>
<h2 id="candidates">Candidates and what each costs</h2>
<div class="scroll"><table><thead><tr><th scope="col">candidate</th><th scope="col">runs the current baseline</th>
<th scope="col">missing</th><th scope="col">features the cluster loses because of it</th></tr></thead><tbody>
{% for name, cand in report.candidates.items() %}<tr><th scope="row">{{ name }}</th>
<td class="{{ 'has' if cand.runs_current_baseline else 'lacks' }}">{{ 'yes' if cand.runs_current_baseline else 'no' }}</td>
<td>{{ m.marked(cand.missing_features, security) }}</td><td>{{ m.marked(costs.get(name) or [], security) }}</td></tr>
{% endfor %}</tbody></table></div>
<p class="muted">⚑ marks a security feature: on a candidate otherwise like the cluster's hosts, its absence usually means older
microcode or a BIOS setting, not older silicon - update it and probe it again before paying for it.</p>
{% if report.contract %}
<p>The group's contract ({{ report.contract.contract_model }}) would refuse:
{{ (report.contract.candidates | dictsort | selectattr('1.would_be_refused') | map('first') | list) | join(', ') or 'none' }}</p>
{% endif %}
{% if options %}<h2 id="options">Options</h2>
<div class="scroll"><table><thead><tr><th scope="col">option</th><th scope="col">what it costs</th><th scope="col">how</th></tr></thead><tbody>
{% for o in options %}<tr><th scope="row">{{ o.option }}</th><td>{{ o.effect }}</td>
<td>{{ o.first | capitalize }}, then:<div class="mono">{{ o.command }}</div></td></tr>
{% endfor %}</tbody></table></div>{% endif %}
{% if report.domains %}<h2 id="domains">Domains</h2>
<div class="scroll"><table><thead><tr><th scope="col">domain</th><th scope="col">status</th><th scope="col">needs</th></tr></thead><tbody>
{% for key, d in domains %}<tr><th scope="row">{{ key }}</th>
<td class="{{ 'lacks' if d.status == 'must-change' else 'has' }}">{{ d.status }}</td>
<td>{{ (d.missing or []) | join(', ') or '-' }}</td></tr>
{% endfor %}</tbody></table></div>{{ m.collapsed(domains | length, report.domains | length, "domains") }}{% endif %}
{% endblock %}
"""

MIGRATION = """{% extends "base" %}{% import "macros" as m %}
{% block body %}
{{ m.cards([("domains", report.matrix | length), ("targets", report.targets | length), ("cells that say no", counts.no),
            ("cells that cannot tell", counts.unknown), ("disagreements with libvirt", report.disagreements | length)]) }}
{% for t, p in report.target_problems.items() %}<p><span class="verdict bad">Target {{ t }}</span> {{ p }}</p>{% endfor %}
<h2 id="matrix">Can each domain move to each target?</h2>
<div class="scroll"><table>
<caption class="sr">Domain by target: yes, no with the blocking features, or cannot tell</caption>
<thead><tr><th scope="col">domain</th>{% for t in targets %}<th scope="col" class="rot">{{ t }}</th>{% endfor %}</tr></thead>
<tbody>
{% for key, row in rows %}{% set d = (report.domains or {}).get(key, {}) %}{% set cs = ((report.contract or {}).domains or {}).get(key) %}
<tr><th scope="row">{{ key }}<div class="muted">{{ d.mode or 'no &lt;cpu&gt;' }}{% if d.model %} {{ d.model }}{% endif %}
{%- if d.running_cpu %} (running{% if d.next_power_cycle_model %};
{{ d.next_power_cycle_model }} at its next power cycle{% endif %}){% endif %}
{% if cs %} · contract: {{ cs.status }}{% endif %}</div></th>{% for t in targets %}{% set cell = row.get(t, {}) %}{% if cell.own_host %}
<td class="cell unknown">—<span class="sr"> its own host</span>{% elif cell.ok %}
<td class="cell has">✓<span class="sr"> yes</span>{% elif cell.ok is none %}
<td class="cell unknown">?<div class="muted">{{ cell.why }}</div>{% else %}
<td class="cell lacks">✗<span class="sr"> no:</span>
<div class="mono">{{ ((cell.blocking or []) + (cell.beyond_cpuid or [])) | join(', ') }}</div>{% endif %}
{% if cell.libvirt %}<br><span class="muted">libvirt: {{ cell.libvirt }}</span>{% endif %}
{% if cell.disagreement %} <span class="verdict warn">disagrees</span>{% endif %}</td>{% endfor %}</tr>
{% endfor %}</tbody></table></div>
{{ m.collapsed(rows | length, report.matrix | length, "domains (those that cannot go everywhere first)") }}
{{ m.collapsed(targets | length, report.targets | length, "targets") }}
{% if blocked %}<h2 id="blocked">Blocked moves, with everything that blocks them</h2><ul>
{% for key, t, why in blocked %}<li>{{ key }} → {{ t }}: <span class="mono">{{ why | join(', ') }}</span></li>{% endfor %}</ul>
{{ m.collapsed(blocked | length, counts.no, "blocked moves") }}{% endif %}
{% if report.disagreements %}<h2 id="disagreements">Where libvirt disagrees</h2><ul>{% for d in report.disagreements[:50] %}
<li>{{ d.domain }} → {{ d.target }}: ours {{ 'yes' if d.ours else 'no' }}, libvirt {{ d.libvirt }}</li>{% endfor %}</ul>{% endif %}
{% if report.contract %}<h2 id="contract">Compliance with the contract of {{ report.contract.group }}</h2>
<p>{% for s, n in report.contract.status_counts.items() if n %}{{ s }}: {{ n }}{{ '; ' if not loop.last }}{% endfor %}</p>{% endif %}
{% endblock %}
"""

CONTRACT = """{% extends "base" %}{% import "macros" as m %}
{% block body %}
{% set v = report.verdict or {} %}{% if v.compliance %}
<p><span class="verdict {{ 'ok' if v.ok else 'bad' }}">Admission: {{ 'every host admitted' if v.ok else 'refused' }}</span>
{{ v.admission.admitted }} host(s) admitted{% if v.admission.refused %}, refused: {{ m.names(v.admission.refused) }}{% endif %}
<span class="verdict {{ 'ok' if v.compliant else 'warn' }}">Compliance: {{ v.compliance.settled }} of {{ v.compliance.domains }} domains</span>
{% if v.compliance.pending %}still to act on: {{ m.names(v.compliance.pending | list) }}{% endif %}</p>
{% if v.compliance.pending %}<p>The power-cycle plan: <a href="power_cycle.html">power_cycle.html</a>
(<code>ansible-playbook -i &lt;inventory&gt; cpucompat.cluster.power_cycle --check</code>)</p>{% endif %}{% endif %}
{% for name, g in report.groups.items() %}
<h2 id="group-{{ loop.index }}">{{ section_title(name) }}</h2>
{% if tier_words(g) %}<p>{{ tier_words(g) }}</p>{% endif %}
{{ m.cards([("model", g.model or "none"), ("features", g.features | length), ("pinned at", g.pinned_at or "not yet"),
            ("admitted hosts", g.admitted | length), ("domains", g.domains | length)]) }}
<p class="muted">{{ g.contract_file }}{% if g.pinned_now %}{% if report.check_mode %} (check mode: a real run would pin it)
{% else %} (pinned in this run){% endif %}{% endif %}</p>
{% for host, why in g.hosts_without_facts.items() %}<p><span class="verdict bad">No usable facts</span> {{ host }}: {{ why }}</p>{% endfor %}
{% if g.admission and g.admission.refused %}<h3>Admission failures</h3>
<div class="scroll"><table><thead><tr><th scope="col">host</th><th scope="col">lacks</th><th scope="col">likely cause</th>
<th scope="col">what to run</th></tr></thead><tbody>
{% for r in g.admission.refused %}<tr><th scope="row">{{ r.host }}{% if r.host in (g.quarantined or {}) %}
<span class="verdict warn">quarantined</span>{% endif %}</th>
<td class="lacks">{{ r.why or (r.missing_features | join(', ')) or 'the model' }}</td>
<td>{{ (r.diagnosis or {}).likely or '-' }}</td>
<td>{% for c in (r.diagnosis or {}).commands or [] %}<div class="mono">{{ c }}</div>{% endfor %}</td></tr>{% endfor %}
</tbody></table></div>
{% if g.admission.lower_contract %}
<p>A lower contract would admit them: model {{ g.admission.lower_contract.to.model }}, losing {{ g.admission.lower_contract.lost | join(', ') or 'nothing' }}
{% if g.admission.lower_contract.security_lost %} (security: {{ g.admission.lower_contract.security_lost | join(', ') }}){% endif %}.</p>
{% endif %}{% endif %}
{% if g.could_raise %}<p>
<span class="verdict ok">Could raise</span> to {{ g.could_raise.model }}, gaining {{ g.could_raise.features_gained | join(', ') or 'no feature' }}.</p>
{% elif g.admission and not g.admission.refused %}<p>Could raise: <b>no</b> (the contract is the best every host runs).</p>{% endif %}
{% if g.host_table %}<h3>Hosts</h3>
<div class="scroll"><table><thead><tr><th scope="col">host</th><th scope="col">runs the contract</th><th scope="col">best model</th>
<th scope="col">x86-64 level</th><th scope="col">microcode</th></tr></thead><tbody>
{% for h, t in (g.host_table | dictsort)[:limit] %}<tr><th scope="row">{{ h }}</th>
<td class="{{ 'has' if t.runs_contract else 'lacks' }}">{{ 'yes' if t.runs_contract else 'no' }}</td><td>{{ t.best_model or '-' }}</td>
<td>{{ t.psabi or '-' }}</td><td>{{ t.microcode or '-' }}</td></tr>{% endfor %}</tbody></table></div>{% endif %}
{% set ob = g.observation or {} %}{% if ob.stacks or ob.not_observed or ob.skipped %}
<h3 id="observed-{{ name }}">Observed: what each host's QEMU gives the guest</h3>
{% if ob.skipped %}<p class="muted">Not observed: {{ ob.skipped }}.</p>{% endif %}
{% if ob.stacks %}<p>The contract's <code>&lt;cpu&gt;</code> started on each host (paused, <code>check='full'</code>)
and its vCPU's CPUID read back. The group's words come from {{ ob.reference }}{% if ob.recorded %};
recorded in the contract in this run: {{ ob.recorded | join(', ') }}{% endif %}.</p>
<div class="scroll"><table><thead><tr><th scope="col">stack (QEMU | machine type | kernel | accelerator)</th>
<th scope="col">hosts</th><th scope="col">CPUID words</th></tr></thead><tbody>
{% for key, st in ob.stacks | dictsort %}<tr><th scope="row">{{ key }}</th>
<td>{{ st.hosts | join(', ') or ('none in this run; recorded for ' ~ (st.pinned_hosts | default([]) | join(', '))) }}</td>
<td><details><summary>{{ st.cpuid | length }} words</summary>
<code>{% for w, v in st.cpuid | dictsort %}{{ w }}={{ v }} {% endfor %}</code></details></td></tr>{% endfor %}
</tbody></table></div>{% endif %}
{% for r in ob.refused or [] %}<p><span class="verdict bad">{{ r.host }}</span> differs:
{{ (r.describe + r.filtered + ([r.failed] if r.failed else [])) | join('; ') }}</p>{% endfor %}
{% if ob.not_observed %}<p class="muted">Not observed:
{% for h, why in ob.not_observed | dictsort %}{{ h }} ({{ why }}){{ '; ' if not loop.last }}{% endfor %}</p>{% endif %}
{% endif %}
{% if g.status_counts %}<h3>Domain compliance</h3>
<p>{% for s, n in g.status_counts.items() if n %}
<span class="verdict {{ 'ok' if s in ('compliant', 'follows-host') else 'warn' if s in ('restart-required', 'no-cpu', 'not-deployed') else 'bad' }}">
{{ s }}: {{ n }}</span>
{% endfor %}</p>
<div class="scroll"><table><thead><tr><th scope="col">domain</th><th scope="col">status</th>
<th scope="col">definition carries the contract</th><th scope="col">running guest on it</th>
<th scope="col">at its next power cycle</th><th scope="col">what to do</th></tr></thead><tbody>
{% for key, d in (g.domains | dictsort)[:limit] %}<tr><th scope="row">{{ key }}</th><td>{{ d.status }}</td>
<td>{{ 'yes' if d.persistent else 'no' }}</td><td>{{ '-' if d.live is none else ('yes' if d.live else 'no') }}</td>
<td>{% if d.next_power_cycle %}{% set n = d.next_power_cycle %}gains {{ n.gains | join(', ') or 'nothing' }};
<span class="{{ 'lacks' if n.loses else '' }}">loses {{ n.loses | join(', ') or 'nothing' }}</span>{% else %}{{ d.why | default('-') }}{% endif %}</td>
<td>{{ d.action or '-' }}</td></tr>{% endfor %}
</tbody></table></div>{{ m.collapsed([g.domains | length, limit] | min, g.domains | length, "domains") }}{% endif %}
{% for platform, made in (g.platforms or {}).items() %}<h3>The contract for {{ platform }}{% if made.tiers %}, every tier at once
({{ made.tiers | join(', ') }}){% endif %}</h3>
{% if made.ok %}<pre>{{ platform_text(platform, made.rendering) }}</pre>{% else %}
<p><span class="verdict bad">Cannot say it exactly</span> {{ made.refused }}</p>{% endif %}{% endfor %}
{% if g.history %}<h3>History</h3>
<div class="scroll"><table><thead><tr><th scope="col">when</th><th scope="col">action</th><th scope="col">from</th><th scope="col">to</th>
<th scope="col">reason</th></tr></thead><tbody>
{% for h in g.history %}<tr><td>{{ h.at }}</td><td>{{ h.action }}</td><td>{{ (h['from'] or {}).get('model', '-') }}</td>
<td>{{ (h.to or {}).get('model') }}</td><td>{{ h.reason }}</td></tr>{% endfor %}
</tbody></table></div>{% endif %}
{% if g.xml %}<pre>{{ g.xml }}</pre>{% endif %}
{% endfor %}
{% endblock %}
"""

PLAN = """{% extends "base" %}{% import "macros" as m %}
{% block body %}
{% set c = report.change %}
{{ m.cards([("action", report.action), ("group", said(report.group | string)),
            ("from", (c['from'].model if c else none) or "-"), ("to", (c.to.model if c else none) or "-"),
            ("features gained", (c.gained | length) if c else 0), ("features lost", (c.lost | length) if c else 0),
            ("applied", "yes" if report.applied else "no")]) }}
{% if report.what_if %}<p><span class="verdict warn">What-if</span> without {{ report.without | join(', ') }}: planned, never applied.</p>{% endif %}
{% if c %}<p>Gained: {{ c.gained | join(', ') or 'nothing' }}. Lost: {{ c.lost | join(', ') or 'nothing' }}.</p>
{% for f in c.security_lost %}<p><span class="verdict bad">Security feature lost: {{ f }}</span> because of
{% for h, notes in report.security[f].items() %}{{ h }}{{ ', ' if not loop.last }}{% endfor %}</p>{% endfor %}{% endif %}
{% if report.domains %}<h2 id="domains">Domains</h2>
<div class="scroll"><table><thead><tr><th scope="col">domain</th><th scope="col">changes</th><th scope="col">restart required</th></tr></thead><tbody>
{% for key, d in (report.domains | dictsort)[:limit] %}<tr><th scope="row">{{ key }}</th><td>{{ 'yes' if d.changes else 'no' }}</td>
<td class="{{ 'lacks' if d.restart_required else '' }}">{{ 'yes' if d.restart_required else 'no' }}</td></tr>{% endfor %}
</tbody></table></div>{% endif %}
{% if report.xml %}<h2 id="xml">The new &lt;cpu&gt;</h2><pre>{{ report.xml }}</pre>{% endif %}
{% endblock %}
"""

UPGRADE = """{% extends "base" %}{% import "macros" as m %}
{% block body %}
{% for name, g in report.groups.items() %}
<h2 id="group-{{ loop.index }}">{{ section_title(name) }}</h2>
{% if tier_words(g) %}<p>{{ tier_words(g) }}</p>{% endif %}
{% set changing = g.domains | dictsort | selectattr('1.status', 'in', ['changes', 'refused']) | list %}
{{ m.cards([("CPU judged", (g.level or {}).get('source', '-')), ("model", (g.level or {}).get('model') or "none"),
            ("exact on both stacks", "yes" if g.exact_on_both else "no"), ("domains that would change", changing | length),
            ("new stack", g.new_stack | join(', ') or "none")]) }}
{% for host, r in g.runs.items() %}<p>{% if r.runnable %}<span class="verdict ok">Runs</span>{% else %}<span class="verdict bad">Does not run</span>{% endif %}
on {{ host }}{% if not r.runnable %}: lacks {{ r.missing_features | join(', ') or 'its model' }}{% endif %}</p>{% endfor %}
{% if changing %}<h3>Domains whose CPU would change at their next power cycle</h3>
<div class="scroll"><table><thead><tr><th scope="col">domain</th><th scope="col">on the new stack</th></tr></thead><tbody>
{% for key, d in changing[:limit] %}<tr><th scope="row">{{ key }}</th><td>{% for s, v in d.on.items() %}{{ s }}:
{% if v.refused %}{{ v.refused }}{% else %}gains {{ v.gains | join(', ') or '-' }}, loses {{ v.loses | join(', ') or '-' }}{% endif %}
{% endfor %}</td></tr>{% endfor %}</tbody></table></div>{% endif %}
<h3>What to do</h3><ol>{% for a in g.actions %}<li class="mono">{{ a }}</li>{% endfor %}</ol>
{% if g.xml_both %}<h3>The &lt;cpu&gt; exact on both stacks</h3><pre>{{ g.xml_both }}</pre>{% endif %}
{% endfor %}
{% endblock %}
"""

REBUILD = """{% extends "base" %}{% import "macros" as m %}
{% block body %}
{{ m.cards([("group", said(report.group | string)), ("model", report.model or "none"), ("features", report.features | length),
            ("generation", report.generation), ("stamped domains", report.stamps.domains),
            ("written", "no (check mode)" if report.check_mode else "yes")]) }}
<p class="muted">{{ report.contract_file }}</p>
<ul>{% for n in report.notes %}<li>{{ n }}</li>{% endfor %}</ul>
<h2 id="generations">Stamps by generation</h2>
<div class="scroll"><table><thead><tr><th scope="col">generation</th><th scope="col">domains</th></tr></thead><tbody>
{% for g, n in report.stamps.generations.items() %}<tr><th scope="row">{{ g }}</th><td>{{ n }}</td></tr>{% endfor %}
</tbody></table></div>
{% endblock %}
"""

POWER_CYCLE = """{% extends "base" %}{% import "macros" as m %}
{% block body %}
{{ m.cards([("group", report.group), ("mode", report.mode), ("guests", report.rows | length),
            ("check mode", "yes" if report.check_mode else "no"), ("resumed", "yes" if report.resumed else "no")]) }}
<p class="muted">{{ report.progress_file }}</p>
{% if report.rows %}<h2 id="batches">Batches</h2>
<div class="scroll"><table><thead><tr><th scope="col">batch</th><th scope="col">guest</th><th scope="col">state</th>
<th scope="col">CPU before</th><th scope="col">CPU after</th><th scope="col">gains</th><th scope="col">loses</th>
<th scope="col">observed</th><th scope="col">down (s)</th></tr></thead><tbody>
{% for r in report.rows[:limit] %}<tr><td>{{ r.batch }}</td><th scope="row">{{ r.guest }}</th>
<td class="{{ 'lacks' if r.state in ('gate-failed', 'timeout', 'error') else '' }}" title="{{ r.why or '' }}">{{ r.state }}</td>
<td>{{ r.before or '-' }}</td><td>{{ r.after or '-' }}</td><td>{{ r.gains | join(', ') or '-' }}</td><td>{{ r.loses | join(', ') or '-' }}</td>
<td>{% if r.observed %}gained {{ r.observed.gains | join(', ') or 'nothing' }}; lost {{ r.observed.loses | join(', ') or 'nothing' }}
{%- if r.observed.filtered %}; not given by the host: {{ r.observed.filtered | join(', ') }}{% endif %}{% else %}-{% endif %}</td>
<td>{{ '%.1f' | format(r.down_s) if r.down_s is number else '-' }}{{ ' (forced)' if r.forced }}</td></tr>{% endfor %}
</tbody></table></div>{% else %}<p>No running guest waits for a power cycle.</p>{% endif %}
{% if report.earlier %}<h2 id="earlier">Earlier runs</h2>
<ul>{% for e in report.earlier %}<li>{{ e.guest }}: {{ e.state }}{% if e.now %}; now {{ e.now }}{% endif %}</li>{% endfor %}</ul>{% endif %}
{% endblock %}
"""

TEMPLATES = {"power_cycle": POWER_CYCLE,
             "base": BASE, "macros": MACROS, "baseline": BASELINE, "expansion": EXPANSION, "migration": MIGRATION,
             "contract": CONTRACT, "plan": PLAN, "upgrade": UPGRADE, "rebuild": REBUILD}
