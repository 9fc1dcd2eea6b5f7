# Copyright (c) 2026 cpucompat.cluster contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""One answer per question (issue 29): what retiring a host gives is computed once, by the same function, for the
baseline page and for change_contract's what-if."""

from __future__ import annotations

from ansible_collections.cpucompat.cluster.plugins.module_utils.contract._change import ChangeRequest, plan_change
from ansible_collections.cpucompat.cluster.plugins.module_utils.contract._contract import pinned
from ansible_collections.cpucompat.cluster.plugins.module_utils.cpu._libvirt_map import MapRegistry
from ansible_collections.cpucompat.cluster.plugins.module_utils.engine._baseline import BaselineOptions, compute_baseline
from ansible_collections.cpucompat.cluster.plugins.module_utils.engine._group import group_facts
from ansible_collections.cpucompat.cluster.plugins.module_utils.reports._cluster import cluster_view
from ansible_collections.cpucompat.cluster.plugins.module_utils.reports._header import header
from utils.recordings import facts_of

HOSTS = {"gold": "x86_64-xeon-gold-6130", "platinum": "x86_64-xeon-platinum-9242", "old": "x86_64-xeon-e5-2650-v4"}


def test_the_baseline_page_and_change_contract_give_the_same_what_if() -> None:
    group = group_facts({n: facts_of(r) for n, r in HOSTS.items()})
    opts, registry = BaselineOptions(), MapRegistry()
    view = cluster_view(group, opts, registry)
    retire = view["retire"]
    assert retire["host"] == "old" and retire["gained"]
    contract = pinned("hv", compute_baseline(group.hosts(), opts, registry).guest, list(HOSTS), "test")
    plan = plan_change("hv", group, contract, "/s/hv.json", ChangeRequest("raise", without=("old",)), opts, registry, {})
    change = plan.section["change"]
    assert (change["to"]["model"], len(change["to"]["features"]), change["gained"]) == \
        (retire["model"], retire["features"], retire["gained"])
    text = " ".join(header(view)["next"])
    assert f"model {retire['model']}, {retire['features']} features" in text and '"cpucompat_contract_without": ["old"]' in text
