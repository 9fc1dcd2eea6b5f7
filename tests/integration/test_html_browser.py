# Copyright (c) 2026 cpucompat.cluster contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""A real browser opens every report kind: headless Chromium (Debian's package) renders the page, takes a screenshot
on a desktop and on a phone, and reports no console error (a blocked fetch or script would be one)."""

from __future__ import annotations

import re
import shutil
import subprocess

import pytest

from ansible_collections.cpucompat.cluster.plugins.module_utils.contract import _admission, _change
from ansible_collections.cpucompat.cluster.plugins.module_utils.engine._baseline import BaselineOptions, baseline_of
from ansible_collections.cpucompat.cluster.plugins.module_utils.reports._cluster import cluster_view
from ansible_collections.cpucompat.cluster.plugins.module_utils.engine._group import group_facts
from ansible_collections.cpucompat.cluster.plugins.module_utils.engine._hostcpu import host_cpus
from ansible_collections.cpucompat.cluster.plugins.module_utils.cpu._libvirt_map import MapRegistry
from ansible_collections.cpucompat.cluster.plugins.module_utils.render._libvirt import render
from ansible_collections.cpucompat.cluster.plugins.module_utils.reports._planning import migration_matrix, plan_expansion
from ansible_collections.cpucompat.cluster.plugins.module_utils.reports._header import header
from ansible_collections.cpucompat.cluster.plugins.module_utils.reports._files import write_reports
from ansible_collections.cpucompat.cluster.plugins.module_utils.contract import _power_cycle as pc
from ansible_collections.cpucompat.cluster.plugins.module_utils.contract._domain import domains_of
from ansible_collections.cpucompat.cluster.plugins.module_utils.verbs import _power_cycle
from ansible_collections.cpucompat.cluster.plugins.module_utils.reports._schema import REPORT_SCHEMA
from utils.recordings import facts_of

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="Chromium is not installed (tools/setup.sh installs Debian's chromium)")
INTEL = ["x86_64-xeon-gold-6130", "x86_64-xeon-platinum-9242", "x86_64-xeon-e5-2650-v4", "x86_64-core-i7-8700"]
HEADINGS = {"baseline": ["Which hosts lack which features", "Bottlenecks: what the group gains without one host", "Security features",
                         "Levels to choose from"],
            "expansion": ["Candidates and what each costs", "Domains"],
            "migration": ["Can each domain move to each target?", "Blocked moves, with everything that blocks them"],
            "contract": ["Group pool", "Hosts"], "plan": [], "rebuild": ["Stamps by generation"],
            "power_cycle": ["Batches", "Earlier runs"]}


def reports() -> dict[str, dict]:
    cpu_map = MapRegistry()
    facts = {n: facts_of(n) for n in INTEL}
    gold, bdw = facts[INTEL[0]], facts[INTEL[2]]
    cpu = render(baseline_of({"gold": gold}).guest).xml
    domains = {"gold": [{"name": f"vm{i}", "cpu_xml": cpu, "live_cpu_xml": None} for i in range(3)]}
    run = _admission.group_contract("pool", group_facts({"gold": gold, "bdw": bdw}), None, "/c/pool.json", BaselineOptions(), cpu_map,
                                    domains_of({"gold": [{"name": "vm0", "cpu_xml": cpu, "active": False}]}))
    lower = _change.plan_change("pool", group_facts({"gold": gold, "bdw": bdw}), run.to_write, "/c/pool.json",
                                _change.ChangeRequest("lower"), BaselineOptions(), cpu_map, domains_of(domains))
    return {
        "baseline": {**cluster_view(group_facts(facts), BaselineOptions()), "group": "pool"},
        "plan": {"schema": REPORT_SCHEMA, "kind": "plan", **lower.section, "applied": False, "check_mode": True,
                 "verdict": {"ok": not lower.section["reasons"], "reasons": lower.section["reasons"]}},
        "rebuild": {"schema": REPORT_SCHEMA, "kind": "rebuild", "group": "pool", "contract_file": "/c/pool.json", "generation": 3,
                    "model": "Skylake-Server", "features": ["avx2"], "pinned_at": "2026-12-01T00:00:00Z", "notes": ["rebuilt"],
                    "stamps": {"domains": 2, "generations": {"3": 2}, "hosts": ["gold"]}, "check_mode": False,
                    "verdict": {"ok": True, "reasons": []}},
        "expansion": plan_expansion(host_cpus({"gold": gold}), host_cpus({"bdw": bdw}), domains, BaselineOptions(), cpu_map, "lowers_baseline"),
        "migration": migration_matrix(domains, {"gold": gold, "bdw": bdw}, cpu_map),
        "contract": {"schema": REPORT_SCHEMA, "kind": "contract", "groups": {"pool": run.section}, "check_mode": True,
                     "verdict": {"ok": True, "reasons": []}},
        "power_cycle": _power_cycle_report(),
    }


def _power_cycle_report() -> dict:
    """A run stopped by a failed gate in its second batch, resumed from an earlier run's guest."""
    progress = pc.Progress("pool", "k", {
        "gold/old": {"state": "done", "batch": 0, "down_s": 2.5},
        "gold/vm0": {"state": "done", "cpu_before": "<cpu><model>Broadwell</model></cpu>", "cpu_after": "<cpu><model>Skylake-Server</model></cpu>",
                     "down_s": 1.25, "observed_change": {"gains": ["avx512f"], "loses": [], "words": [], "filtered": []}},
        "gold/vm1": {"state": "gate-failed", "why": "domain vm1: the health command check-app exited 1"}},
        stopped={"at": "2026-12-01T00:00:00Z", "batch": 1, "guests": ["gold/vm1"], "why": "gold/vm1: domain vm1: the health command check-app exited 1"})
    batches = [[pc.Guest("gold", "vm0", "restart-required", ("avx512f",))], [pc.Guest("gold", "vm1", "restart-required", ("avx512f",))],
               [pc.Guest("gold", "vm2", "restart-required", ("avx512f",))]]
    section = {"model": "Skylake-Server", "features": ["avx512f"], "domains": {"gold/old": {"status": "compliant", "active": True}}}
    return _power_cycle.view("pool", section, progress, batches, {"mode": "now", "batch": 1}, "/c/power_cycle/pool.json", False, True)


def chromium(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([CHROMIUM, "--headless=new", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--no-first-run",
                           "--disable-dev-shm-usage", "--enable-logging=stderr", "--v=0", *args],
                          capture_output=True, text=True, timeout=120, check=False)


@pytest.mark.parametrize("kind", sorted(HEADINGS))
def test_browser_renders_the_report(tmp_path, kind: str) -> None:
    paths = write_reports(reports()[kind], str(tmp_path), kind)
    page = next(p for p in paths if p.endswith(".html"))
    url = f"file://{page}"
    # One Chromium per window size: it dumps the page's DOM and takes its screenshot in the same run.
    for size, name in (("1280,1800", "desktop"), ("390,844", "phone")):
        shot = tmp_path / f"{kind}-{name}.png"
        taken = chromium(f"--window-size={size}", "--dump-dom", f"--screenshot={shot}", url)
        assert taken.returncode == 0 and shot.stat().st_size > 10_000, taken.stderr[-2000:]
        headings = [re.sub(r"<[^>]+>", "", h).strip() for h in re.findall(r"<h[123][^>]*>(.*?)</h[123]>", taken.stdout, re.S)]
        for heading in HEADINGS[kind]:
            assert heading in headings, (name, heading, headings)
        _assert_header(taken.stdout, reports()[kind])
        console = [line for line in taken.stderr.splitlines() if "CONSOLE" in line or "Refused to" in line]
        assert not console, console


def _text(html: str) -> str:
    return " ".join(re.sub(r"<[^>]+>", " ", html).replace("&amp;", "&").replace("&lt;", "<").replace("&gt;", ">").split())


def _assert_header(dom: str, report: dict) -> None:
    """The header block every page starts with: the verdict in words, the numbers, Next: with commands, the context."""
    head = header(report)
    match = re.search(r'<section class="head"[^>]*>(.*?)</section>', dom, re.S)
    assert match, "no header block"
    block = _text(match.group(1))
    assert " ".join(head["words"].split()) in block
    assert all(label in block for label, _value in head["numbers"])
    if head["next"]:
        assert "Next:" in block and all(" ".join(n.split()) in block for n in head["next"])
    assert all(f"{k}: {v}" in block for k, v in head["context"])


def test_no_ok_badge_over_a_blocked_matrix_nobody_asked_about(tmp_path) -> None:
    report = reports()["migration"]
    assert not report["requested"] and any(c.get("ok") is False for row in report["matrix"].values() for c in row.values())
    page = next(p for p in write_reports(report, str(tmp_path), "migration") if p.endswith(".html"))
    dom = chromium("--dump-dom", f"file://{page}").stdout
    block = re.search(r'<section class="head"[^>]*>(.*?)</section>', dom, re.S).group(1)
    assert 'class="verdict ok"' not in block and "No migration requested · " in _text(block) and "moves blocked" in _text(block)
    assert "**OK:" not in (tmp_path / "migration.md").read_text()


def test_check_mode_never_says_pinned_in_this_run(tmp_path) -> None:
    report = reports()["contract"]
    assert report["groups"]["pool"]["pinned_now"] and report["check_mode"]
    paths = write_reports(report, str(tmp_path), "contract")
    dom = chromium("--dump-dom", f"file://{next(p for p in paths if p.endswith('.html'))}").stdout
    markdown = (tmp_path / "contract.md").read_text()
    for text in (_text(dom), markdown):
        assert "pinned in this run" not in text.lower() and "check mode" in text
