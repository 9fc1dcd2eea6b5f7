# Copyright (c) 2026 cpucompat.cluster contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Markdown tables keep their columns whatever the names (issue 29): a ``|`` in a name is escaped; no ``None``."""

from __future__ import annotations

from ansible_collections.cpucompat.cluster.plugins.module_utils.reports._markdown import contract_markdown, report_markdown
from ansible_collections.cpucompat.cluster.plugins.module_utils.reports._schema import REPORT_SCHEMA


def _row_cells(line: str) -> int:
    """Cells of a Markdown table row, as a renderer splits it (an escaped pipe is no separator)."""
    return len(line.replace("\\|", "").strip().strip("|").split("|"))


def test_a_pipe_in_a_domain_or_host_name_keeps_the_row_whole() -> None:
    section = {"contract_file": "/s/hv.json", "pinned_at": "2026-12-04T00:00:00Z", "model": "M", "features": ["fpu"],
               "host_table": {"hv|1": {"runs_contract": True, "best_model": "M", "psabi": "x86-64-v2", "microcode": "0x1"}},
               "domains": {"hv|1/web|a": {"status": "compliant", "persistent": True, "live": None}},
               "status_counts": {"compliant": 1}, "reasons": [],
               "history": [{"at": "t", "action": "pin", "from": None, "to": {"model": "M"}, "reason": "a | b"}]}
    md = contract_markdown({"kind": "contract", "groups": {"hv": section}, "verdict": {"ok": True, "reasons": []}})
    rows = [line for line in md.splitlines() if line.startswith("| ") and ("hv\\|1" in line or "a \\| b" in line)]
    assert len(rows) == 3, md
    headers = {line.count("|") for line in md.splitlines() if line.startswith("|---")}
    for row in rows:
        assert _row_cells(row) + 1 in headers, row


def test_no_none_for_a_group_without_a_contract() -> None:
    section = {"contract_file": "/s/hv.json", "pinned_at": None, "model": None, "features": [], "reasons": ["x"], "history": []}
    md = contract_markdown({"kind": "contract", "groups": {"hv": section}, "verdict": {"ok": False, "reasons": ["x"]}})
    assert "None" not in md and "no contract pinned" in md


def test_a_check_mode_header_agrees_with_its_verdict() -> None:
    """--check: the domains the deploy would change are the plan, not an ATTENTION above 'Verdict: OK'."""
    section = {"contract_file": "/s/hv.json", "pinned_at": None, "pinned_now": True, "model": "M", "features": ["fpu"],
               "admitted": ["hv1"], "domains": {"hv1/web": {"status": "not-deployed", "persistent": True, "live": False}},
               "status_counts": {"not-deployed": 1}, "reasons": [], "history": []}
    report = {"schema": REPORT_SCHEMA, "kind": "contract", "check_mode": True, "groups": {"hv": section},
              "verdict": {"ok": True, "reasons": [], "compliance": {"domains": 1, "settled": 0, "pending": {"hv1/web": "not-deployed"}}}}
    md = report_markdown(report)
    assert "**OK: Would pin" in md and "ATTENTION" not in md
    assert "ATTENTION" in report_markdown({**report, "check_mode": False})


def test_a_cpu_is_counted_one_way_on_every_page() -> None:
    """issue 29: one contract was '47 features' on the baseline page and '40 features' on the contract page. Every page
    counts the features the guest gets, and says the common set as such."""
    from ansible_collections.cpucompat.cluster.plugins.module_utils.reports._header import header  # pylint: disable=import-outside-toplevel
    base = {"model": "M", "features": [f"f{i}" for i in range(47)], "guest": {"features": [f"f{i}" for i in range(40)]}}
    numbers = dict(header({"kind": "baseline", "baseline": base, "hosts": {}})["numbers"])
    assert numbers["features the guest gets"] == 40 and numbers["features in common"] == 47
    section = {"contract_file": "/s", "pinned_at": "t", "model": "M", "features": [f"f{i}" for i in range(40)], "reasons": [],
               "history": []}
    context = dict(header({"kind": "contract", "groups": {"g": section}, "verdict": {"ok": True, "reasons": []}})["context"])
    assert context["pinned level"] == "M (40 features the guest gets)"


def test_the_migration_page_names_the_pinned_contract() -> None:
    """issue 29: it said 'contract: -' although a contract was pinned."""
    from ansible_collections.cpucompat.cluster.plugins.module_utils.reports._header import header  # pylint: disable=import-outside-toplevel
    report = {"kind": "migration", "matrix": {}, "group": "hv", "verdict": {"ok": True, "reasons": []},
              "contract": {"group": "hv", "contract_model": "EPYC-Rome", "contract_file": "/s/hv.json", "domains": {}}}
    assert dict(header(report)["context"])["contract"] == "EPYC-Rome (/s/hv.json)"
    assert dict(header({**report, "contract": None})["context"])["contract"] == "none pinned"


def test_the_expansion_pages_next_steps_are_its_possible_options() -> None:
    """issue 29: Next proposed 'a group of their own' while the Options table said it was not possible."""
    from ansible_collections.cpucompat.cluster.plugins.module_utils.reports._header import expansion_options, header  # pylint: disable=import-outside-toplevel
    report = {"kind": "expansion", "verdict": {"ok": False, "reasons": ["lowers"]}, "fail_on": "incompatible",
              "candidates": {"new1": {"runs_current_baseline": False, "missing_features": ["avx2"]}},
              "delta": {"features_lost": ["avx2"], "model_before": "Haswell", "model_after": None, "model_changes": True},
              "options": {"own_group": {"error": "no common CPU"}}}
    nxt = " ".join(header(report)["next"])
    assert "group of their own" not in nxt and "admit all 1 candidate(s)" in nxt
    assert any(o["effect"].startswith("not possible") for o in expansion_options(report))
    assert "None" not in str(header(report)["context"])


def test_the_migration_page_shows_the_cpu_a_running_domain_runs() -> None:
    """issue 29: its CPU column showed the saved definition's model for a running domain that still ran the old one."""
    from ansible_collections.cpucompat.cluster.plugins.module_utils.cpu._libvirt_map import MapRegistry  # pylint: disable=import-outside-toplevel
    from ansible_collections.cpucompat.cluster.plugins.module_utils.reports._planning import migration_matrix  # pylint: disable=import-outside-toplevel
    dom = {"name": "web", "active": True, "cpu_xml": "<cpu mode='custom' match='exact'><model>Westmere</model></cpu>",
           "live_cpu_xml": "<cpu mode='custom' match='exact'><model>Nehalem</model></cpu>"}
    from utils.recordings import facts_of  # pylint: disable=import-outside-toplevel
    gold = facts_of("x86_64-xeon-gold-6130")
    about = migration_matrix({"hv1": [dom]}, {"hv2": gold}, MapRegistry(), sources={"hv1": gold})["domains"]["hv1/web"]
    assert about["model"] == "Nehalem" and about["running_cpu"] and about["next_power_cycle_model"] == "Westmere"


def test_a_tier_is_titled_as_a_tier_of_its_group() -> None:
    """A tier's section is "Tier t of group g" with its hosts and level; its verdict and next steps name it so, and choose
    it as the playbooks take it (-e cpucompat_contract_tier), never -e cpucompat_group=g@t."""
    from ansible_collections.cpucompat.cluster.plugins.module_utils.contract._tiers import parse_tiers  # pylint: disable=import-outside-toplevel
    tiers = parse_tiers("hv", {"base": "auto", "avx512": {"level": "Cascadelake-Server", "hosts": "hv[34]"}},
                        ["hv1", "hv2", "hv3", "hv4"], {})
    common = {"pinned_at": None, "pinned_now": True, "features": ["fpu"], "reasons": [], "history": []}
    sections = {"hv": {**common, "contract_file": "/s/hv.json", "model": "Skylake-Server"},
                "hv@avx512": {**common, "contract_file": "/s/hv@avx512.json", "model": "Cascadelake-Server",
                              "tier": tiers.tier("avx512").describe(), "could_raise": {"model": "Cooperlake", "features_gained": []}}}
    md = report_markdown({"schema": REPORT_SCHEMA, "kind": "contract", "groups": sections, "verdict": {"ok": True, "reasons": []}})
    assert "## Tier avx512 of group hv\n\n- The tier's hosts: hv3, hv4; its level: Cascadelake-Server\n" in md, md
    assert "## Group hv\n" in md and "Group hv@avx512" not in md
    assert "Pinned the contract of hv, tier avx512 of group hv in this run" in md
    assert "-e cpucompat_group=hv -e cpucompat_contract_tier=avx512 -e cpucompat_contract_action=raise --check" in md
    assert "cpucompat_group=hv@" not in md
    auto = {**sections["hv@avx512"], "tier": {**sections["hv@avx512"]["tier"], "level": None}}
    assert "its level: the best every host of the tier runs" in contract_markdown({"groups": {"hv@avx512": auto}})
    lost = {**common, "contract_file": "/s/hv@avx512.json", "model": None, "pinned_now": False,
            "reasons": ["the contract of group hv@avx512 is lost: ... rebuild_contract -e cpucompat_group=hv -e cpucompat_contract_tier=avx512"]}
    md = report_markdown({"schema": REPORT_SCHEMA, "kind": "contract", "groups": {"hv": sections["hv"], "hv@avx512": lost},
                          "verdict": {"ok": False, "reasons": lost["reasons"]}})
    assert "cpucompat.cluster.rebuild_contract -e cpucompat_group=hv -e cpucompat_contract_tier=avx512`" in md or \
        "cpucompat.cluster.rebuild_contract -e cpucompat_group=hv -e cpucompat_contract_tier=avx512\n" in md, md
    rebuilt = report_markdown({"schema": REPORT_SCHEMA, "kind": "rebuild", "group": "hv@avx512", "generation": 3, "features": [],
                               "contract_file": "/s/hv@avx512.json"})
    assert rebuilt.startswith("# Contract of tier avx512 of group hv rebuilt") and "of tier avx512 of group hv's contract" in rebuilt


def _fleet_section(hosts: int) -> dict:
    names = [f"hv{i:04d}" for i in range(hosts)]
    return {"contract_file": "/s/hv.json", "pinned_at": "2026-12-04T00:00:00Z", "model": "M", "features": ["fpu"], "reasons": [],
            "admitted": names, "history": [],
            "host_table": {n: {"runs_contract": True, "best_model": "M", "psabi": "x86-64-v2", "microcode": "0x1"} for n in names},
            "observation": {"not_observed": {n: "not observed in this run" for n in names}},
            "domains": {f"{n}/web": {"status": "compliant", "persistent": True, "live": None} for n in names},
            "status_counts": {"compliant": hosts}}


def test_the_console_rendering_of_a_fleet_cuts_every_per_host_list_and_says_how_many_it_left_out() -> None:
    """The console (host_rows) shows 20 rows of each list and one line for the rest; the files (no host_rows) all."""
    view = {"schema": REPORT_SCHEMA, "kind": "contract", "groups": {"hv": _fleet_section(1000)},
            "verdict": {"ok": True, "reasons": []}}
    short, whole = report_markdown(view, 20), report_markdown(view)
    assert sum(1 for line in short.splitlines() if line.startswith("| hv")) == 40  # 20 hosts + 20 domains
    assert sum(1 for line in short.splitlines() if line.startswith("- hv")) == 20  # 20 hosts not observed
    assert "| ... and 980 more hosts (the report files list them all) | | | | |" in short.splitlines()
    assert "| ... and 980 more domains (the report files list them all) | | | | | |" in short.splitlines()
    assert "- ... and 980 more hosts not observed (the report files list them all)" in short.splitlines()
    assert sum(1 for line in whole.splitlines() if line.startswith("| hv")) == 2000 and "more hosts" not in whole
    for line in (x for x in short.splitlines() if x.startswith("| ...")):  # the cut row keeps the table's columns
        headers = {h.count("|") for h in short.splitlines() if h.startswith("|---")}
        assert _row_cells(line) + 1 in headers, line


def test_the_console_rendering_of_a_small_group_is_the_whole_report() -> None:
    view = {"schema": REPORT_SCHEMA, "kind": "contract", "groups": {"hv": _fleet_section(20)}, "verdict": {"ok": True, "reasons": []}}
    assert report_markdown(view, 20) == report_markdown(view)
