# Copyright (c) 2026 cpucompat.cluster contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""A listed domain read once: its CPUs parsed once per distinct text, its stamp, tier and why it is spared."""

from __future__ import annotations

import dataclasses

import pytest

from ansible_collections.cpucompat.cluster.plugins.module_utils._errors import CpuXmlError
from ansible_collections.cpucompat.cluster.plugins.module_utils.contract._domain import Domain, domains_of
from ansible_collections.cpucompat.cluster.plugins.module_utils.deploy._stamp import Stamp

SKYLAKE = "<cpu mode='custom' match='exact'><model>Skylake-Server</model><feature policy='require' name='avx2'/></cpu>"
NEHALEM = "<cpu mode='custom' match='exact'><model>Nehalem</model></cpu>"
STAMP = {"group": "g", "tier": "avx512", "generation": 2, "digest": "sha256:" + "0" * 64, "pinned_at": "2026-12-01T00:00:00Z",
         "level": {"model": "Skylake-Server", "features": ["avx2"]}}


def test_a_listing_is_read_once_in_host_order_and_its_cpus_are_shared() -> None:
    listing = {"hv2": [{"name": "b", "active": True, "cpu_xml": SKYLAKE, "live_cpu_xml": NEHALEM}],
               "hv1": [{"name": "z", "cpu_xml": SKYLAKE}, {"name": "a", "cpu_xml": SKYLAKE}]}
    domains = domains_of(listing)
    assert [d.key for d in domains] == ["hv1/z", "hv1/a", "hv2/b"], "hosts sorted, each host's domains in their order"
    z, a, b = domains
    assert z.cpus is a.cpus, "the same two <cpu> texts: one DomainCpus"
    assert z.cpu is b.cpu and z.cpu is not None and z.cpu.model == "Skylake-Server", "one CpuSpec per distinct text"
    assert b.runs_live_cpu and b.live_cpu is not None and b.live_cpu.model == "Nehalem" and not z.runs_live_cpu
    assert b.moving_cpu_xml == NEHALEM and z.moving_cpu_xml == SKYLAKE and z.persistent and not z.excluded
    with pytest.raises(dataclasses.FrozenInstanceError):
        z.name = "other"  # type: ignore[misc]


def test_an_unreadable_cpu_raises_naming_the_domain_only_where_it_is_read() -> None:
    bad, good = domains_of({"hv": [{"name": "bad", "cpu_xml": "<cpu><model>no such", "active": True},
                                   {"name": "good", "cpu_xml": NEHALEM, "live_cpu_xml": "<notcpu/>"}]})
    assert bad.cpu_xml == "<cpu><model>no such" and bad.cpus.parsed is None
    with pytest.raises(CpuXmlError, match="domain hv/bad: <cpu> is not well-formed"):
        assert bad.cpu is None, "reading it raises"
    with pytest.raises(CpuXmlError, match="domain hv/good: live <cpu> must be a <cpu> element"):
        assert good.live_cpu is None, "reading it raises"
    assert good.cpu is not None and good.cpu.model == "Nehalem"


def test_its_stamp_tier_and_why_it_is_spared() -> None:
    stamped, marked, nova, opted, excluded = domains_of({"hv": [
        {"name": "s", "stamp": STAMP, "tier": "avx512"}, {"name": "m", "tier": "gold"}, {"name": "n", "nova": True, "opted_out": True},
        {"name": "o", "opted_out": True}, {"name": "e", "excluded": True, "persistent": False}]})
    assert stamped.stamp == Stamp("g", 2, STAMP["digest"], STAMP["pinned_at"], STAMP["level"], "avx512")
    assert stamped.stamp.owner == "g@avx512" and stamped.stamp.to_dict() == STAMP and stamped.tier == "avx512"
    assert marked.stamp is None and marked.tier == "gold", "the operator's own <cpucompat:cpu tier=...>"
    assert nova.spared is not None and "Nova" in nova.spared, "Nova first"
    assert opted.spared is not None and "opted out" in opted.spared
    assert excluded.spared is not None and "excluded" in excluded.spared and excluded.excluded and not excluded.persistent
    assert stamped.spared is None and Domain.of("hv", {"name": "x"}).tier is None
