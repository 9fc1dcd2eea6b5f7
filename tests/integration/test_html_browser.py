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

from ansible_collections.cpucompat.cluster.plugins.module_utils.contract import _admission
from ansible_collections.cpucompat.cluster.plugins.module_utils.engine._baseline import BaselineOptions, baseline_of
from ansible_collections.cpucompat.cluster.plugins.module_utils.reports._cluster import cluster_view
from ansible_collections.cpucompat.cluster.plugins.module_utils.engine._group import group_facts
from ansible_collections.cpucompat.cluster.plugins.module_utils.engine._hostcpu import host_cpus
from ansible_collections.cpucompat.cluster.plugins.module_utils.cpu._libvirt_map import MapRegistry
from ansible_collections.cpucompat.cluster.plugins.module_utils.render._libvirt import render
from ansible_collections.cpucompat.cluster.plugins.module_utils.reports._planning import migration_matrix, plan_expansion
from ansible_collections.cpucompat.cluster.plugins.module_utils.reports._report import REPORT_SCHEMA, write_reports
from utils.recordings import facts_of

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="Chromium is not installed (tools/setup.sh installs Debian's chromium)")
INTEL = ["x86_64-xeon-gold-6130", "x86_64-xeon-platinum-9242", "x86_64-xeon-e5-2650-v4", "x86_64-core-i7-8700"]
HEADINGS = {"baseline": ["Which hosts lack which features", "Bottlenecks: what the group gains without one host", "Security features"],
            "expansion": ["Candidates and what each costs", "Domains"], "migration": ["Can each domain move to each target?"],
            "contract": ["Group pool"]}


def reports() -> dict[str, dict]:
    cpu_map = MapRegistry()
    facts = {n: facts_of(n) for n in INTEL}
    gold, bdw = facts[INTEL[0]], facts[INTEL[2]]
    cpu = render(baseline_of({"gold": gold}).guest).xml
    domains = {"gold": [{"name": f"vm{i}", "cpu_xml": cpu, "live_cpu_xml": None} for i in range(3)]}
    run = _admission.group_contract("pool", group_facts({"gold": gold, "bdw": bdw}), None, "/c/pool.json", BaselineOptions(), cpu_map,
                                    {"gold": [{"name": "vm0", "cpu_xml": cpu, "active": False}]})
    return {
        "baseline": cluster_view(group_facts(facts), BaselineOptions()),
        "expansion": plan_expansion(host_cpus({"gold": gold}), host_cpus({"bdw": bdw}), domains, BaselineOptions(), cpu_map, "lowers_baseline"),
        "migration": migration_matrix(domains, {"gold": gold, "bdw": bdw}, cpu_map),
        "contract": {"schema": REPORT_SCHEMA, "kind": "contract", "groups": {"pool": run.section}, "verdict": {"ok": True, "reasons": []}},
    }


def chromium(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([CHROMIUM, "--headless=new", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--no-first-run",
                           "--disable-dev-shm-usage", "--enable-logging=stderr", "--v=0", *args],
                          capture_output=True, text=True, timeout=120, check=False)


@pytest.mark.parametrize("kind", sorted(HEADINGS))
def test_browser_renders_the_report(tmp_path, kind: str) -> None:
    paths = write_reports(reports()[kind], str(tmp_path), kind)
    page = next(p for p in paths if p.endswith(".html"))
    url = f"file://{page}"
    dom = chromium("--dump-dom", url)
    assert dom.returncode == 0, dom.stderr[-2000:]
    headings = [re.sub(r"<[^>]+>", "", h).strip() for h in re.findall(r"<h[123][^>]*>(.*?)</h[123]>", dom.stdout, re.S)]
    for heading in HEADINGS[kind]:
        assert heading in headings, (heading, headings)
    for size, name in (("1280,1800", "desktop"), ("390,844", "phone")):
        shot = tmp_path / f"{kind}-{name}.png"
        taken = chromium(f"--window-size={size}", f"--screenshot={shot}", url)
        assert taken.returncode == 0 and shot.stat().st_size > 10_000, taken.stderr[-2000:]
        console = [line for line in taken.stderr.splitlines() if "CONSOLE" in line or "Refused to" in line]
        assert not console, console
