# Copyright (c) 2026 cpucompat.cluster contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Hosts whose facts say the same about the CPU share one validated HostCpu, and every answer stays the one of the
unshared path (each host validated on its own)."""

from __future__ import annotations

import copy
import dataclasses
import functools
import itertools
import json
import re
from collections.abc import Iterator, Mapping
from typing import Any

import pytest

from ansible_collections.cpucompat.cluster.plugins.module_utils._errors import FactsError
from ansible_collections.cpucompat.cluster.plugins.module_utils.engine import _hostcpu, _level
from ansible_collections.cpucompat.cluster.plugins.module_utils.engine._baseline import compare, compare_each, compute_baseline
from ansible_collections.cpucompat.cluster.plugins.module_utils.engine._group import group_facts
from ansible_collections.cpucompat.cluster.plugins.module_utils.engine._hostcpu import HostCpu, SharedHostCpus, host_cpus
from utils.recordings import facts_of, load, names

INTEL = [n for n in names("x86_64") if load(n)["replies"].get("query-cpu-definitions")
         and load(n)["cpu_identity"]["vendor"] == "GenuineIntel"]


_SERIAL = itertools.count()


@functools.lru_cache(maxsize=None)
def _facts(name: str) -> dict:
    return facts_of(name)


def _own(facts: Mapping[str, Any], **changes: Any) -> dict:
    """A host's own facts, as a separate JSON parse would give them (no object shared with another host)."""
    return {**json.loads(json.dumps(facts)), "fingerprint": f"sha256:{next(_SERIAL):064x}", **changes}


def _fields(host: HostCpu) -> dict[str, Any]:
    return {f.name: getattr(host, f.name) for f in dataclasses.fields(HostCpu) if f.name not in ("name", "facts")}


def test_equal_facts_build_one_hostcpu() -> None:
    a, b = _own(_facts(INTEL[0])), _own(_facts(INTEL[0]))
    assert a["fingerprint"] != b["fingerprint"] and a["features"] is not b["features"]
    build = SharedHostCpus()
    first, second = build("a", a), build("b", b)
    assert build.built == 1
    assert (second.name, second.facts) == ("b", b)  # per host: the name and the facts (reports read them)
    assert second.features is first.features and second.runnable is first.runnable  # the validated sets are shared
    assert _fields(second) == _fields(HostCpu.from_facts("b", b))  # what the unshared path gives
    other = build("c", _own(_facts(INTEL[1])))
    assert build.built == 2 and other.features == HostCpu.from_facts("c", _facts(INTEL[1])).features


@pytest.mark.parametrize("changes", [
    {"phys_bits": 46}, {"phys_bits": True}, {"vendor": "AuthenticAMD"}, {"base_model": "Skylake-Client"},
    {"schema_version": True}, {"qemu": {"version": "9.2.0"}}, {"machine": {"type": "pc-i440fx", "name": "pc-i440fx-9.2"}},
    {"versions": {"libvirt": "11.0.0"}}, {"libvirt": None}, {"model_aliases": {"Nehalem": "Nehalem-v1"}},
    {"non_migratable_features": ["invtsc"]}, {"runnable_models": ["qemu64"]}, {"features": ["fpu"]},
    {"features": ("fpu",)}, {"features": "fpu"}, {"features": [["fpu"]]}, {"models": {"Nehalem": ["sse4.2"]}},
], ids=repr)
def test_what_the_cpu_facts_say_decides_the_sharing(changes: dict[str, Any]) -> None:
    """A host whose facts differ from the first one's in anything HostCpu reads gets its own: the shared path answers
    (or refuses) exactly as the unshared one."""
    base = _facts(INTEL[0])
    changed = _own(base, **changes)
    try:
        unshared: dict[str, Any] | str = _fields(HostCpu.from_facts("b", changed, check_names=False))
    except FactsError as exc:
        unshared = str(exc)
    build = SharedHostCpus()
    build("a", _own(base))
    try:
        shared: dict[str, Any] | str = _fields(build("b", changed))
    except FactsError as exc:
        shared = str(exc)
    assert shared == unshared
    assert isinstance(shared, str) or build.built == 2 or shared == _fields(HostCpu.from_facts("a", base))


class _Recording(Mapping[str, Any]):
    """Facts that note which of their keys are read."""

    def __init__(self, facts: Mapping[str, Any]) -> None:
        self.facts, self.read = facts, set()

    def __getitem__(self, key: str) -> Any:
        self.read.add(key)
        return self.facts[key]

    def __contains__(self, key: object) -> bool:
        self.read.add(str(key))
        return key in self.facts

    def __iter__(self) -> Iterator[str]:
        raise AssertionError("from_facts reads named keys only")

    def __len__(self) -> int:
        return len(self.facts)


def test_the_key_covers_every_fact_from_facts_reads() -> None:
    """The sharing key holds every top-level key HostCpu.from_facts reads: a new one read there must join it."""
    keyed = {*_hostcpu.CPU_FACTS_SCALARS, *_hostcpu.CPU_FACTS_LISTS, *_hostcpu.CPU_FACTS_MAPS}
    for name in INTEL[:3]:
        recording = _Recording(_facts(name))
        HostCpu.from_facts(name, recording)
        assert recording.read and recording.read <= keyed, sorted(recording.read - keyed)


def test_shared_baseline_equals_unshared() -> None:
    """A group of copies of a few hosts: one validation per distinct facts, and the same baseline as host by host."""
    facts = {f"hv{i:03d}": _own(_facts(INTEL[i % 4])) for i in range(24)}
    facts["hv999"] = _own(_facts(INTEL[0]), phys_bits=39)
    unshared = [HostCpu.from_facts(n, f) for n, f in sorted(facts.items())]
    shared = host_cpus(facts)
    assert [h.name for h in shared] == [h.name for h in unshared]
    assert [_fields(h) for h in shared] == [_fields(h) for h in unshared]
    assert compute_baseline(shared).to_dict() == compute_baseline(unshared).to_dict()
    group = group_facts(copy.deepcopy(facts))
    assert [_fields(h) for h in group.hosts()] == [_fields(h) for h in unshared]
    build = SharedHostCpus()
    for n, f in facts.items():
        build(n, f)
    assert build.built == 5


def test_a_bad_host_is_named_though_its_facts_match_a_good_one_but_for_the_fault() -> None:
    good = _facts(INTEL[0])
    bad = _own(good, features=[*good["features"], "Not A Name"])
    with pytest.raises(FactsError, match="host b"):
        host_cpus({"a": _own(good), "b": bad, "c": _own(good)})
    with pytest.raises(FactsError, match="host b"):
        group_facts({"a": _own(good), "b": bad}).hosts()
    with pytest.raises(FactsError, match="host b: facts lack the field 'arch'"):
        host_cpus({"a": _own(good), "b": {k: v for k, v in good.items() if k != "arch"}})


def test_compare_each_answers_as_compare_for_every_host() -> None:
    facts = {f"hv{i:03d}": _own(_facts(INTEL[i % 3])) for i in range(12)}
    facts["hv100"] = _own(_facts(INTEL[0]), phys_bits=36)
    hosts = host_cpus(facts)
    cpu = compute_baseline(host_cpus({n: f for n, f in facts.items() if n != "hv100"}))
    cpu = dataclasses.replace(cpu, maxphysaddr=39, model=sorted(hosts[1].runnable)[-1])  # not every host runs it
    each = compare_each(cpu, hosts)
    assert each == [compare(cpu, h) for h in hosts]
    assert {c.runnable for c in each} == {True, False} and any(c.phys_bits_short for c in each)


def _levels_models_host_by_host(hosts: list[HostCpu], limit: int) -> dict[str, Any]:
    """levels_view's model table as it was worked out before, host by host."""
    runs: dict[str, list[str]] = {}
    for h in hosts:
        for m in h.runnable:
            runs.setdefault(m, []).append(h.name)
    names = sorted((m for m in runs if not re.search(r"-v\d+$", m)), key=lambda m: _level._rank("x86_64", m), reverse=True)
    out = {}
    for m in names:
        have = set(runs[m])
        missing = [h.name for h in hosts if h.name not in have]
        out[m] = {"hosts": len(have), "not_on": missing[:limit], "not_on_count": len(missing)}
    return out


def test_levels_view_per_set_of_models_answers_as_host_by_host() -> None:
    facts = {f"hv{(i * 7) % 30:03d}": _own(_facts(INTEL[i % 5])) for i in range(30)}
    hosts = host_cpus(facts)
    view = _level.levels_view(hosts, compute_baseline(hosts), limit=4)
    assert view["models"] == _levels_models_host_by_host(hosts, 4)
    assert list(view["models"]) == list(_levels_models_host_by_host(hosts, 4))  # the order too
    assert any(0 < v["not_on_count"] < len(hosts) for v in view["models"].values())


@pytest.mark.parametrize("nonmig", [None, [], ["invtsc"]])
def test_hosts_share_whatever_their_lists_of_names_hold(nonmig: list[str] | None) -> None:
    """Empty and absent lists are keyed too: every copy of the facts shares the first host's values."""
    build = SharedHostCpus()
    for i in range(4):
        build(f"h{i}", _own(_facts(INTEL[0]), non_migratable_features=nonmig))
    assert build.built == 1
