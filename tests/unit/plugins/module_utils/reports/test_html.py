# Copyright (c) 2026 cpucompat.cluster contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The HTML reports: well-formed, self-contained, and saying what the JSON says."""

from __future__ import annotations

import re
from html.parser import HTMLParser

import pytest

from ansible_collections.cpucompat.cluster.plugins.module_utils.contract import _admission, _change
from ansible_collections.cpucompat.cluster.plugins.module_utils.reports import _html
from ansible_collections.cpucompat.cluster.plugins.module_utils.engine._baseline import BaselineOptions, baseline_of
from ansible_collections.cpucompat.cluster.plugins.module_utils.reports._cluster import cluster_view
from ansible_collections.cpucompat.cluster.plugins.module_utils.engine._group import group_facts
from ansible_collections.cpucompat.cluster.plugins.module_utils._errors import CpuCompatError
from ansible_collections.cpucompat.cluster.plugins.module_utils.engine._hostcpu import host_cpus
from ansible_collections.cpucompat.cluster.plugins.module_utils.cpu._libvirt_map import MapRegistry
from ansible_collections.cpucompat.cluster.plugins.module_utils.render._libvirt import render
from ansible_collections.cpucompat.cluster.plugins.module_utils.reports._planning import migration_matrix, plan_expansion
from ansible_collections.cpucompat.cluster.plugins.module_utils.reports._schema import REPORT_SCHEMA
from ansible_collections.cpucompat.cluster.plugins.module_utils.contract._domain import domains_of
from utils.recordings import facts_of

INTEL = ["x86_64-xeon-gold-6130", "x86_64-xeon-platinum-9242", "x86_64-xeon-e5-2650-v4", "x86_64-core-i7-8700"]
VOID = {"meta", "br", "input", "img", "link", "hr", "wbr", "col", "area", "base", "source"}


class Checker(HTMLParser):
    """Every element closed in order, tables well formed (rows inside tables, cells inside rows), no external URL."""

    def __init__(self) -> None:
        super().__init__()
        self.stack: list[str] = []
        self.problems: list[str] = []
        self.headings: list[str] = []
        self.text: list[str] = []
        self._in_heading = False

    def handle_starttag(self, tag, attrs):  # noqa: D401
        for name, value in attrs:
            if name in ("src", "href", "action", "srcset") or (value and re.search(r"(https?:)?//[a-z]", value or "") and name != "content"):
                self.problems.append(f"<{tag} {name}={value!r}>: a reference out of the page")
        if tag == "script":
            self.problems.append("a script")
        if tag == "tr" and not {"table", "thead", "tbody"} & set(self.stack[-1:]):
            self.problems.append(f"<tr> inside <{self.stack[-1] if self.stack else None}>")
        if tag in ("td", "th") and self.stack[-1:] != ["tr"]:
            self.problems.append(f"<{tag}> inside <{self.stack[-1] if self.stack else None}>")
        if tag in ("h1", "h2", "h3"):
            self._in_heading = True
            self.headings.append("")
        if tag not in VOID:
            self.stack.append(tag)

    def handle_endtag(self, tag):
        if tag in VOID:
            return
        if not self.stack or self.stack[-1] != tag:
            self.problems.append(f"</{tag}> closes <{self.stack[-1] if self.stack else None}>")
            return
        self.stack.pop()
        if tag in ("h1", "h2", "h3"):
            self._in_heading = False

    def handle_data(self, data):
        self.text.append(data)
        if self._in_heading:
            self.headings[-1] += data


def check(page: str) -> Checker:
    checker = Checker()
    checker.feed(page)
    checker.close()
    assert not checker.problems, checker.problems[:5]
    assert checker.stack == [], f"unclosed: {checker.stack}"
    assert page.startswith("<!DOCTYPE html>") and "@media print" in page and "prefers-color-scheme" in page
    return checker


@pytest.fixture(scope="module")
def baseline_report() -> dict:
    return cluster_view(group_facts({n: facts_of(n) for n in INTEL}), BaselineOptions())


def test_baseline_page(baseline_report: dict) -> None:
    page = _html.report_html(baseline_report)
    checker = check(page)
    assert "Which hosts lack which features" in checker.headings and "Security features" in checker.headings
    lost = baseline_report["baseline"]["lost"]
    matrix = _html.feature_matrix(baseline_report)
    families = {f.split("-")[0] + "-*" if f.startswith(_html.COLLAPSED) else f for f in lost}
    assert matrix["total_features"] == len(families) and matrix["total_hosts"] == len(INTEL)
    assert not any(f["name"].startswith(_html.COLLAPSED) and not f["name"].endswith("*") for f in matrix["features"]), \
        "vmx-*/kvm-* in one column each"
    assert {f["name"] for f in matrix["features"] if f["security"]} >= {"md-clear", "spec-ctrl"} & set(lost)
    # every ✗ is a (host, feature column) pair of the JSON's lost lists, and every pair shown is there
    rows = {row["host"]: row for row in matrix["rows"]}
    for column in matrix["features"]:
        members = [f for f in lost if f == column["name"] or (column["name"].endswith("*") and f.startswith(column["name"][:-1]))]
        lacking = {h for f in members for h in lost[f]}
        for host, row in rows.items():
            assert row["cells"][matrix["features"].index(column)] is (host not in lacking), (host, column)
    gains = [row["gain"] for row in matrix["rows"]]
    assert gains == sorted(gains, reverse=True), "the hosts whose retirement gives the group the most come first"
    assert "⚑" in page and "Retiring " in page
    assert baseline_report["xml"].rstrip("\n") in "".join(checker.text), "the <cpu> XML is shown as text"


def test_large_inputs_are_collapsed_with_counts() -> None:
    hosts = {f"hv{i:04d}": facts_of(INTEL[i % len(INTEL)]) for i in range(1000)}
    report = cluster_view(group_facts(hosts), BaselineOptions())
    page = _html.report_html(report)
    check(page)
    assert "Showing 200 of 1000 hosts" in page and len(page) < 2_000_000


def test_every_kind_renders(baseline_report: dict) -> None:
    gold, bdw = facts_of(INTEL[0]), facts_of(INTEL[2])
    cpu = render(baseline_of({"gold": gold}).guest).xml
    migration = migration_matrix({"gold": [{"name": "vm", "cpu_xml": cpu}]}, {"gold": gold, "bdw": bdw}, MapRegistry())
    expansion = plan_expansion(host_cpus({"gold": gold}), host_cpus({"bdw": bdw}), {"gold": [{"name": "vm", "cpu_xml": cpu}]},
                               BaselineOptions(), MapRegistry(), "lowers_baseline")
    run = _admission.group_contract("g", group_facts({"gold": gold}), None, "/c/g.json", BaselineOptions(), MapRegistry(), None)
    contract = {"schema": REPORT_SCHEMA, "kind": "contract", "groups": {"g": run.section}, "verdict": {"ok": True, "reasons": []}}
    plan = _change.plan_change("g", group_facts({"gold": gold, "bdw": bdw}), run.to_write, "/c/g.json",
                               _change.ChangeRequest("lower", allow_lower=True), BaselineOptions(), MapRegistry(),
                               domains_of({"gold": [{"name": "vm", "cpu_xml": cpu, "active": True}]}))
    plan_report = {"schema": REPORT_SCHEMA, "kind": "plan", **plan.section, "applied": False, "verdict": {"ok": True, "reasons": []}}
    for report, heading in ((migration, "Can each domain move to each target?"), (expansion, "Candidates and what each costs"),
                            (contract, "Group g"), (plan_report, "Domains")):
        checker = check(_html.report_html(report))
        assert heading in checker.headings, (report["kind"], checker.headings)
    page = _html.report_html(migration)
    assert page.count('class="cell lacks"') == sum(1 for row in migration["matrix"].values() for c in row.values() if c["ok"] is False)


def test_values_are_escaped(baseline_report: dict) -> None:
    hostile = dict(baseline_report, error="<script>alert(1)</script>")
    page = _html.report_html(hostile)
    assert "<script>" not in page and "&lt;script&gt;" in page


@pytest.mark.parametrize("report, message", [({"schema": "x"}, "not a cpucompat report"),
                                             ({"schema": REPORT_SCHEMA, "kind": "other"}, "no HTML rendering for report kind 'other'")])
def test_bad_input(report: dict, message: str) -> None:
    with pytest.raises(CpuCompatError, match=message):
        _html.report_html(report)


def _tiered_contract() -> dict:
    """A contract report of group g with a tier avx512 over one of its hosts, as the contract step writes it."""
    from ansible_collections.cpucompat.cluster.plugins.module_utils.contract._tiers import parse_tiers  # pylint: disable=import-outside-toplevel
    gold, plat = facts_of(INTEL[0]), facts_of(INTEL[1])
    tiers = parse_tiers("g", {"base": "auto", "avx512": {"level": "Cascadelake-Server", "hosts": "plat"}}, ["gold", "plat"], {})
    base = _admission.group_contract("g", group_facts({"gold": gold, "plat": plat}), None, "/c/g.json", BaselineOptions(), MapRegistry(), None)
    tier = _admission.group_contract("g@avx512", group_facts({"plat": plat}), None, "/c/g@avx512.json", BaselineOptions(), MapRegistry(),
                                     None, level="Cascadelake-Server")
    raise_to = {"model": "Cooperlake", "features_gained": ["avx512-bf16"]}
    sections = {"g": base.section, "g@avx512": {**tier.section, "tier": tiers.tier("avx512").describe(), "could_raise": raise_to}}
    return {"schema": REPORT_SCHEMA, "kind": "contract", "groups": sections, "verdict": {"ok": True, "reasons": []}}


def test_a_tier_is_shown_as_a_tier_of_its_group() -> None:
    """A tier's section is "Tier t of group g" with its hosts and level, never "Group g@t"; the next steps choose the
    tier as change_contract takes it (-e cpucompat_contract_tier)."""
    report = _tiered_contract()
    checker = check(_html.report_html(report))
    assert "Tier avx512 of group g" in checker.headings and "Group g" in checker.headings, checker.headings
    text = " ".join(checker.text)
    assert "g@avx512" not in " ".join(checker.headings)
    assert "The tier's hosts: plat; its level: Cascadelake-Server" in text
    assert "-e cpucompat_group=g -e cpucompat_contract_tier=avx512 -e cpucompat_contract_action=raise" in text
    assert "Pinned the contract of g, tier avx512 of group g in this run" in text
    plan = {"schema": REPORT_SCHEMA, "kind": "plan", "group": "g@avx512", "action": "raise", "tier": "avx512", "tier_hosts": ["plat"],
            "applicable": True, "check_mode": True, "verdict": {"ok": True, "reasons": []},
            "change": {"from": {"model": "Cascadelake-Server"}, "to": {"model": "Cooperlake"}, "gained": [], "lost": []}}
    page = check(_html.report_html(plan))
    assert "Contract plan: tier avx512 of group g" in page.headings, page.headings
    assert "-e cpucompat_group=g -e cpucompat_contract_tier=avx512 -e cpucompat_contract_action=raise" in " ".join(page.text)
