# Copyright (c) 2026 cpucompat.cluster contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Admission by observation (contract/_observed): the group's words, a refusal that names words and stack, the record."""

from __future__ import annotations

import pytest

from ansible_collections.cpucompat.cluster.plugins.module_utils.contract._contract import Contract, ContractError
from ansible_collections.cpucompat.cluster.plugins.module_utils.contract._observed import (
    OBSERVATION_SCHEMA, Observation, ObservationError, check, cpu_digest, refusal_reason)

XML = "<cpu mode='custom' match='exact'><model>Skylake-Server</model></cpu>"
DIGEST = cpu_digest(XML)
WORDS = {"0x1.0x0.ECX": 0x80202001, "0x7.0x0.EBX": 0x20, "0xd.0x0.EAX": 0x7}


def fact(words=None, version="7.2.22", machine="pc-q35-7.2", accel="kvm", filtered=None, digest=DIGEST) -> dict:
    return {"schema": OBSERVATION_SCHEMA, "cpuid": dict(words or WORDS), "filtered": filtered or {}, "accel": accel,
            "machine": machine, "qemu": {"version": version, "package": f"Debian {version}"}, "kernel": "6.1.0-40-amd64",
            "cpu_digest": digest}


def obs(host: str, **kw) -> Observation:
    return Observation.from_fact(host, fact(**kw), microcode="0x1000065")


def test_first_observation_the_words_most_hosts_share_are_the_groups() -> None:
    other = {**WORDS, "0x1.0x0.ECX": WORDS["0x1.0x0.ECX"] & ~0x200000}  # x2apic off
    result = check({}, {"a": obs("a"), "b": obs("b", version="10.0.2"), "c": obs("c", words=other, machine="pc-q35-2.11")},
                   ["a", "b", "c"], {DIGEST})
    assert set(result.stacks) == {obs("a").stack, obs("b", version="10.0.2").stack}
    assert [r["host"] for r in result.refused] == ["c"]
    entry = result.refused[0]
    assert entry["describe"] == ["0x1.0x0.ECX: 0x200000 only on the group (x2apic)"]
    assert entry["differs"]["machine"] == {"this_host": "pc-q35-2.11", "reference_hosts": ["pc-q35-7.2"]}
    reason = refusal_reason(entry, "hv")
    assert reason.startswith("c does not give the contract CPU of group hv") and "x2apic" in reason and "pc-q35-2.11" in reason


def test_a_word_one_qemu_does_not_present_counts_as_zero_and_any_bit_counts() -> None:
    newer = {**WORDS, "0x24.0x0.EBX": 0}
    assert not check({}, {"a": obs("a"), "b": obs("b", words=newer)}, ["a", "b"], {DIGEST}).refused
    pinned = {obs("a").stack: {**obs("a").record(), "hosts": ["a"]}}
    one_bit = {**WORDS, "0xd.0x0.EAX": 0x207}
    assert [r["host"] for r in check(pinned, {"b": obs("b", words=one_bit)}, ["b"], {DIGEST}).refused] == ["b"]


def test_filtered_features_are_a_refusal_naming_them() -> None:
    result = check({}, {"a": obs("a"), "b": obs("b", filtered={"0x7.0x0.EBX": 0x20})}, ["a", "b"], {DIGEST})
    assert result.refused[0]["filtered"] == ["avx2 (0x7.0x0.EBX)"]


def test_tcg_words_listed_as_the_accelerators_are_skipped_between_tcg_observations_only() -> None:
    xsave = {**WORDS, "0xd.0x0.EAX": 0xe7}
    assert not check({}, {"a": obs("a", accel="tcg"), "b": obs("b", words=xsave, accel="tcg")}, ["a", "b"], {DIGEST}).refused
    pinned = {obs("a").stack: {**obs("a").record(), "hosts": ["a"]}}
    assert check(pinned, {"b": obs("b", words=xsave)}, ["b"], {DIGEST}).refused


def test_unobserved_and_stale_hosts_are_listed_not_refused() -> None:
    result = check({}, {"a": obs("a"), "b": "probed through a QMP socket", "c": obs("c", digest="sha256:0")},
                   ["a", "b", "c", "d"], {DIGEST})
    assert not result.refused
    assert set(result.not_observed) == {"b", "c", "d"} and "another <cpu>" in result.not_observed["c"]


def test_a_malformed_observation_is_named() -> None:
    with pytest.raises(ObservationError, match="host x: cpucompat_observation"):
        Observation.from_fact("x", {"schema": OBSERVATION_SCHEMA, "cpuid": {"0x1.0x0.ECX": -1}})
    with pytest.raises(ObservationError, match="not an observation"):
        Observation.from_fact("x", {"cpuid": {}})


def test_the_contract_keeps_the_record_out_of_its_digest() -> None:
    doc = {"schema": "cpucompat.contract/2", "group": "hv", "arch": "x86_64", "vendor": "GenuineIntel", "pinned_at": "2026-12-04T00:00:00Z",
           "history": [], "cpu": {"arch": "x86_64", "vendor": "GenuineIntel", "model": "M", "features": ["fpu"], "machine": "pc-q35",
                                  "phys_bits": None, "left_out": {}}}
    plain = Contract.from_dict(doc, "c")
    recorded = Contract.from_dict({**doc, "observed": {"s": {**obs("a").record(), "hosts": ["a"]}}}, "c")
    assert recorded.digest == plain.digest and recorded.observed["s"]["hosts"] == ["a"]
    assert Contract.from_dict(recorded.to_dict(), "c").observed == recorded.observed
    assert "observed" not in plain.to_dict()
    with pytest.raises(ContractError, match="observed"):
        Contract.from_dict({**doc, "observed": {"s": {"cpuid": {"k": "x"}}}}, "c")


def test_the_migration_matrix_and_the_upgrade_check_carry_each_hosts_stack() -> None:
    """QEMU's exact version and package, the kernel, the microcode: what decides a guest's CPU besides its <cpu>."""
    from ansible_collections.cpucompat.cluster.plugins.module_utils.engine._group import group_facts  # pylint: disable=import-outside-toplevel
    from ansible_collections.cpucompat.cluster.plugins.module_utils.reports._cluster import migration_report  # pylint: disable=import-outside-toplevel
    from utils.recordings import facts_of  # pylint: disable=import-outside-toplevel
    facts = {**facts_of("x86_64-xeon-gold-6130"), "qemu": {"version": "7.2.22", "package": "Debian 1:7.2+dfsg-7+deb12u18+b3"},
             "versions": {"kernel": "6.1.0-40-amd64", "microcode": "0x2007006", "libvirt": "9.0.0"}}
    report = migration_report(group_facts({"hv2": facts}), {}, {}, [], sources=group_facts({"hv1": facts}))
    assert report["stacks"]["hv2"] == {"qemu": "7.2.22", "qemu_package": "Debian 1:7.2+dfsg-7+deb12u18+b3",
                                       "kernel": "6.1.0-40-amd64", "microcode": "0x2007006", "libvirt": "9.0.0",
                                       "machine": (facts.get("machine") or {}).get("name")}
    assert set(report["stacks"]) == {"hv1", "hv2"}


def test_the_deploy_never_lists_an_observations_transient_domain() -> None:
    """The listing skips cpu_observe's own transient domains by their prefix, which both parts spell alike."""
    from ansible_collections.cpucompat.cluster.plugins.module_utils.deploy._domain import OBSERVE_PREFIX  # pylint: disable=import-outside-toplevel
    from ansible_collections.cpucompat.cluster.plugins.module_utils.probe._observe import DOMAIN_PREFIX  # pylint: disable=import-outside-toplevel
    assert OBSERVE_PREFIX == DOMAIN_PREFIX
