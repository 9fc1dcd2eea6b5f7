# Copyright (c) 2026 cpucompat.cluster contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Schema 5's compact facts: the blocker masks round-trip on every recorded host, schema 4 facts are read beside them,
a libvirt map the collection ships travels as its digest, and the facts' size stays bounded."""

from __future__ import annotations

import copy
import json
import statistics
from typing import Any

import pytest

from ansible_collections.cpucompat.cluster.plugins.inventory.cpu_groups import host_groups
from ansible_collections.cpucompat.cluster.plugins.module_utils._errors import CpuMapError, FactsError
from ansible_collections.cpucompat.cluster.plugins.module_utils.cpu import _catalog, _libvirt_maps_data
from ansible_collections.cpucompat.cluster.plugins.module_utils.cpu._libvirt_map import MapRegistry
from ansible_collections.cpucompat.cluster.plugins.module_utils.engine._group import group_facts
from ansible_collections.cpucompat.cluster.plugins.module_utils.engine._hostcpu import HostCpu
from ansible_collections.cpucompat.cluster.plugins.module_utils.probe import _facts
from ansible_collections.cpucompat.cluster.plugins.module_utils.reports._summary import summary_lines
from utils import stacks
from utils.engine import baseline
from utils.recordings import facts_of, load, names, served_session

ALL = names()
X86 = names("x86_64")


def schema_4(facts: dict[str, Any]) -> dict[str, Any]:
    """The facts a schema 4 probe gave for the same host: per-model blocker lists and the CPU map in full."""
    old = copy.deepcopy(facts)
    old["schema_version"] = 4
    models = _facts.read_models(facts, "t")
    old["models"] = None if models is None else dict(models)
    old["model_aliases"] = _facts.read_aliases(facts, "t") if facts["model_aliases"] is not None else None
    old.pop("model_blockers")
    old.pop("model_aliases_base")
    cpu_map = (old.get("libvirt") or {}).get("cpu_map")
    if cpu_map and "data" not in cpu_map:
        cpu_map["data"] = _libvirt_maps_data.MAPS[cpu_map["digest"]]["data"]
    return old


def _records(name: str) -> dict[str, dict[str, Any]] | None:
    rec = load(name)
    return _facts._models(rec["arch"], served_session(rec), name)  # pylint: disable=protected-access


def _schema_4_lists(name: str) -> dict[str, list[str] | None] | None:
    """What schema 4 wrote in ``models`` for a recording, computed the way its probe did (records, not masks)."""
    records = _records(name)
    if records is None:
        return None
    return {m: None if r["runnable"] is None else ([] if r["runnable"] else list(r["unavailable_features"] or []))
            for m, r in records.items() if not r.get("alias_of")}


@pytest.mark.parametrize("name", ALL)
def test_the_blocker_masks_round_trip_on_every_recorded_host(name: str) -> None:
    facts = facts_of(name)
    lists = _schema_4_lists(name)
    assert _facts.read_models(facts, name) == lists
    if lists is None:
        assert facts["models"] is None and facts["model_blockers"] is None
        return
    assert facts["model_blockers"] == sorted({f for b in lists.values() for f in b or ()}), "each blocker named once, sorted"
    assert all(v is None or (isinstance(v, str) and v == v.lower()) for v in facts["models"].values())
    assert {m for m, v in facts["models"].items() if v == "0"} == {m for m, b in lists.items() if b == []}
    # The engine and the reports see the lists, whichever schema carried them.
    assert HostCpu.from_facts(name, facts).models == HostCpu.from_facts(name, schema_4(facts)).models == lists
    assert summary_lines(facts, name) == summary_lines(schema_4(facts), name)


@pytest.mark.parametrize("name", ALL)
def test_the_aliases_round_trip_on_every_recorded_host(name: str) -> None:
    facts = facts_of(name)
    records = _records(name)
    if records is None:
        assert facts["model_aliases"] is None and facts["model_aliases_base"] is None
        return
    aliases = {m: r["alias_of"] for m, r in records.items() if r.get("alias_of")}
    assert _facts.read_aliases(facts, name) == aliases
    assert HostCpu.from_facts(name, facts).aliases == aliases
    if facts["model_aliases_base"] is not None:
        assert len(facts["model_aliases"]) < len(aliases), "a base is named only when it saves writing aliases"


@pytest.mark.parametrize("aliases", [
    {}, {"Broadwell": "Broadwell-v1"}, {"EPYC": "EPYC-v9", "Mine": "Mine-v1"},
    *({**r.aliases} for r in _catalog.releases("x86_64")),
    *({**{k: v for k, v in r.aliases.items() if k != "EPYC"}, "EPYC": "EPYC-v2", "New": "New-v1"} for r in _catalog.releases("x86_64")),
])
def test_encode_and_read_aliases_round_trip(aliases: dict[str, str]) -> None:
    base, delta = _facts.encode_aliases(aliases)
    assert _facts.read_aliases({"schema_version": 5, "model_aliases": delta, "model_aliases_base": base}, "t") == aliases
    assert len(delta) <= len(aliases)


# The alias tables schema 5 facts of this release of the collection name: a catalogue regenerated later must keep
# them (gen_catalog.py from another point release with the same aliases does), or those facts stop being readable.
SHIPPED_ALIAS_TABLES = {"5adedc928425", "b5c28713c169"}


def test_the_alias_tables_facts_name_stay_in_the_catalogue() -> None:
    assert SHIPPED_ALIAS_TABLES <= set(_facts._alias_tables())  # pylint: disable=protected-access


def test_an_alias_table_the_catalogue_does_not_have_is_an_error_naming_the_host() -> None:
    facts = facts_of("x86_64-cooperlake")
    release, digest = facts["model_aliases_base"].split(":")
    assert digest in SHIPPED_ALIAS_TABLES
    renamed = {**facts, "model_aliases_base": f"7.2.99:{digest}"}
    assert HostCpu.from_facts("hv5", renamed).aliases == HostCpu.from_facts("hv5", facts).aliases, "found by its digest"
    for base in (f"{release}:000000000000", "nonsense"):
        with pytest.raises(FactsError, match=f"host hv5: its facts keep model aliases relative to the alias table '{base}'.*re-probe"):
            HostCpu.from_facts("hv5", {**facts, "model_aliases_base": base})


@pytest.mark.parametrize("models", [
    {}, {"a": None}, {"a": [], "b": ["x"], "c": ["y", "x"], "d": None}, {f"m{i}": [f"f{j}" for j in range(i)] for i in range(70)},
])
def test_encode_and_read_models_round_trip(models: dict[str, list[str] | None]) -> None:
    names_, masks = _facts.encode_models(models)
    back = _facts.read_models({"schema_version": 5, "models": masks, "model_blockers": names_}, "t")
    assert back == {m: None if b is None else sorted(b) for m, b in models.items()}


@pytest.mark.parametrize("facts, message", [
    ({"schema_version": 5, "models": ["a"]}, "field 'models' is not a mapping"),
    ({"schema_version": 5, "models": {"a": "1"}, "model_blockers": "x"}, "field 'model_blockers' is not a list"),
    ({"schema_version": 5, "models": {"a": "2"}, "model_blockers": ["x"]}, "models: a: '2' is not a bit mask over the 1 names"),
    ({"schema_version": 5, "models": {"a": "zz"}, "model_blockers": ["x"]}, "models: a: 'zz' is not a bit mask"),
    ({"schema_version": 5, "models": {"a": ["x"]}, "model_blockers": ["x"]}, "models: a: \\['x'\\] is not a bit mask"),
    ({"schema_version": 5, "models": {"a": "-1"}, "model_blockers": ["x"]}, "models: a: '-1' is not a bit mask"),
])
def test_malformed_masks_name_the_host_and_model(facts: dict[str, Any], message: str) -> None:
    with pytest.raises(FactsError, match=f"hv7: {message}"):
        _facts.read_models(facts, "hv7")
    with pytest.raises(FactsError, match=message):
        HostCpu.from_facts("hv7", {**facts, "arch": "x86_64", "accel": "kvm", "features": ["fpu"]})


@pytest.mark.parametrize("pair", [("x86_64-xeon-gold-6130", "x86_64-xeon-e5-2650-v4"), ("x86_64-epyc-7502", "x86_64-ryzen-9-3900x"),
                                  ("x86_64-epyc-7601-ibpb", "x86_64-epyc-9654-qemu-10.0.0")])
@pytest.mark.parametrize("stack", stacks.NAMES)
def test_a_schema_4_host_beside_a_schema_5_host_gives_the_same_baseline(pair: tuple[str, str], stack: str) -> None:
    a, b = (facts_of(n, stack) for n in pair)
    both_5 = baseline({"a": a, "b": b})
    assert baseline({"a": schema_4(a), "b": b}) == both_5
    assert baseline({"a": a, "b": schema_4(b)}) == both_5
    assert baseline({"a": schema_4(a), "b": schema_4(b)}) == both_5
    group = group_facts({"a": schema_4(a), "b": b, "c": {**b, "schema_version": 3}})
    assert sorted(group.usable) == ["a", "b"] and group.other_schema == ["c"]
    assert "reads 4 and 5" in (group.why("c") or "")


def test_schema_4_facts_group_in_the_inventory_like_schema_5() -> None:
    facts = facts_of("x86_64-xeon-gold-6130")
    assert host_groups(schema_4(facts), "cpu_", ["avx512f"], True, 0, 0) == host_groups(facts, "cpu_", ["avx512f"], True, 0, 0)
    assert host_groups({**facts, "schema_version": 3}, "cpu_", [], True, 0, 0) == ["cpu_facts_stale"]


@pytest.mark.parametrize("stack", stacks.NAMES)
def test_a_shipped_map_travels_as_its_digest_and_resolves_to_the_same_map(stack: str) -> None:
    facts = facts_of("x86_64-xeon-gold-6130", stack)
    real = stacks.by_name(stack).cpu_map
    assert facts["libvirt"]["cpu_map"] == {"format": 2, "digest": real.digest}, "a map the collection ships has no data"
    old = schema_4(facts)
    registry = MapRegistry()
    shipped, full = registry.from_facts("new", facts), registry.from_facts("old", old)
    assert shipped is full, "a digest-only map and the same map in full are one map"
    assert shipped.models == dict(real.models) and shipped.features == real.features and shipped.version == real.version


def test_a_digest_the_collection_does_not_ship_is_an_error_naming_host_and_digest() -> None:
    facts = facts_of("x86_64-xeon-gold-6130")
    facts["libvirt"]["cpu_map"]["digest"] = "sha256:" + "0" * 64
    with pytest.raises(CpuMapError, match=r"host hv9: its facts name libvirt CPU map sha256:0{64} by digest only.*"
                                          r"re-probe the host with this collection"):
        MapRegistry().from_facts("hv9", facts)
    with pytest.raises(CpuMapError, match="host hv9: .*sha256:0{64}"):
        baseline({"hv9": facts, "hv8": facts_of("x86_64-xeon-e5-2650-v4")})


def _sizes() -> list[int]:
    return [len(json.dumps(facts_of(n, stack), separators=(",", ":"))) for n in X86 for stack in stacks.NAMES]


def test_the_median_x86_host_facts_stay_under_8_kib() -> None:
    """A fleet's fact cache holds one per host (docs/facts.md records the measured sizes)."""
    sizes = _sizes()
    assert len(sizes) == 2 * len(X86) >= 40
    assert statistics.median(sizes) <= 8 * 1024, f"median {statistics.median(sizes)} bytes"
    assert max(sizes) <= 12 * 1024, f"largest {max(sizes)} bytes"


@pytest.mark.parametrize("name, bits", [("s390x-z14.2-qemu-4.0.0", None), ("aarch64-unidentified-nosve-qemu-8.2.0", None),
                                        ("x86_64-xeon-gold-6130", 46)])
def test_address_bits_and_tsc_are_x86_facts_only(name: str, bits) -> None:
    """A QMP socket of an s390x or aarch64 QEMU probed from an x86 machine does not get that machine's address bits or
    TSC (an s390x <cpu> with <maxphysaddr> is refused by libvirt)."""
    host = {"phys_bits": 46, "tsc": {"frequency": 2_000_000_000, "scaling": True}}
    facts = _facts.build_facts(served_session(load(name)), where=name, qemu_binary=None,
                               probe={"mode": "socket"}, fingerprint_inputs={}, host=host)
    assert facts["phys_bits"] == bits
    assert (facts["tsc"] is None) == (bits is None)
