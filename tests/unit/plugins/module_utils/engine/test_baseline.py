# Copyright (c) 2026 cpucompat.cluster contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The baseline engine over clusters of recorded real hosts."""

from __future__ import annotations

import copy
import functools

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ansible_collections.cpucompat.cluster.plugins.module_utils.engine._baseline import BaselineOptions
from ansible_collections.cpucompat.cluster.plugins.module_utils._errors import BaselineError, CpuCompatError
from ansible_collections.cpucompat.cluster.plugins.module_utils.probe._facts import SCHEMA_VERSION
from utils.engine import baseline as compute_baseline
from utils.engine import compare
from utils.recordings import facts_of, load, names


@functools.lru_cache(maxsize=None)
def _facts(name: str) -> dict:
    return facts_of(name)


def _with_defs(vendor: str) -> list[str]:
    return [n for n in names("x86_64") if load(n)["replies"].get("query-cpu-definitions")
            and _facts(n)["vendor"] == vendor]


INTEL = _with_defs("GenuineIntel")
AMD = _with_defs("AuthenticAMD")


def cluster(members: list[str]) -> dict[str, dict]:
    return {f"{n}#{i}": _facts(n) for i, n in enumerate(members)}


def test_intel_cluster_baseline_is_exact_and_explained() -> None:
    hosts = cluster(["x86_64-xeon-gold-6130", "x86_64-xeon-e5-2650-v4", "x86_64-core-i7-8700"])
    result = compute_baseline(hosts)
    common = set.intersection(*(set(f["features"]) for f in hosts.values()))
    assert set(result["features"]) == common, "retention is exactly the common migratable set"
    assert result["vendor"] == "GenuineIntel" and result["arch"] == "x86_64"
    assert result["model"], "a named model runs everywhere"
    for name, facts in hosts.items():
        assert result["model"] in facts["runnable_models"], name
        assert set(result["require"]) <= set(facts["features"])
    # every feature some host has but the baseline lacks names exactly the hosts lacking it
    for feature, lacking in result["lost"].items():
        assert lacking == sorted(n for n, f in hosts.items() if feature not in f["features"])
    assert "avx512f" in result["lost"] and result["lost"]["avx512f"] == sorted(n for n in hosts if "gold" not in n)


def test_bottlenecks_match_recomputation_without_the_host() -> None:
    hosts = cluster(["x86_64-xeon-gold-6130", "x86_64-xeon-platinum-9242", "x86_64-xeon-e5-2650-v4"])
    result = compute_baseline(hosts)
    for name in hosts:
        without = compute_baseline({n: f for n, f in hosts.items() if n != name})
        gained = sorted(set(without["features"]) - set(result["features"]))
        entry = result["bottlenecks"].get(name, {"features": [], "model": None})
        assert entry["features"] == gained, name
        if entry["model"]:
            assert entry["model"] == without["model"]


def test_single_host_baseline_is_the_host() -> None:
    facts = _facts("x86_64-epyc-9654-qemu-10.0.0")
    result = compute_baseline({"h": facts})
    assert result["features"] == facts["features"]
    assert result["lost"] == {} and result["bottlenecks"] == {}
    assert "invtsc" in result["non_migratable_left_out"]
    wider = compute_baseline({"h": facts}, BaselineOptions(migratable_only=False))
    assert "invtsc" in wider["features"]


def test_options() -> None:
    hosts = cluster(["x86_64-xeon-gold-6130", "x86_64-xeon-e5-2650-v4"])
    result = compute_baseline(hosts, BaselineOptions(exclude_features=("avx2",)))
    assert "avx2" not in result["features"] and result["excluded"] == ["avx2"]
    with pytest.raises(BaselineError, match=r"falls below the required features: avx512f \(lacking on x86_64-xeon-e5-2650-v4#1\)"):
        compute_baseline(hosts, BaselineOptions(require_features=("avx512f",)))
    with pytest.raises(BaselineError, match="falls below min_model Skylake-Server-v1: it does not run on x86_64-xeon-e5-2650-v4#1"):
        compute_baseline(hosts, BaselineOptions(min_model="Skylake-Server-v1"))


def _tcg(facts: dict) -> dict:
    out = copy.deepcopy(facts)
    out["accel"] = "tcg"
    return out


@pytest.mark.parametrize("hosts, message", [
    ({}, "no hosts given"),
    ({"a": None}, "host a has no cpucompat facts"),
    ({"a": {"schema_version": 99}}, "host a: facts have schema_version 99"),
    ({"a": {"schema_version": SCHEMA_VERSION, "arch": "x86_64", "accel": "kvm"}}, "host a: facts lack the field 'features'"),
    ({"a": {"schema_version": SCHEMA_VERSION, "arch": "x86_64", "accel": "kvm", "features": ["ok", "<bad/>"]}}, "host a: features: '<bad/>' is not a valid"),
    ("lambda: mixed arch", "different architectures cannot share a CPU baseline: s390x: s390"),
    ("lambda: mixed vendor", "different CPU vendors: AuthenticAMD: amd; GenuineIntel: intel"),
    ("lambda: tcg", "probed under TCG .* cannot be mixed with KVM hosts: emulated"),
], ids=["empty", "none", "schema", "field", "name", "arch", "vendor", "tcg"])
def test_bad_input_names_the_host(hosts, message: str) -> None:
    if hosts == "lambda: mixed arch":
        hosts = {"s390": _facts("s390x-z14-qemu-3.0.0"), "x86": _facts("x86_64-xeon-gold-6130")}
    elif hosts == "lambda: mixed vendor":
        hosts = {"amd": _facts("x86_64-epyc-7502"), "intel": _facts("x86_64-xeon-gold-6130")}
    elif hosts == "lambda: tcg":
        hosts = {"real": _facts("x86_64-xeon-gold-6130"), "emulated": _tcg(_facts("x86_64-xeon-gold-6130"))}
    with pytest.raises(CpuCompatError, match=message):
        compute_baseline(hosts)


def test_vendor_neutral() -> None:
    hosts = {"amd": _facts("x86_64-epyc-7502"), "intel": _facts("x86_64-xeon-gold-6130")}
    result = compute_baseline(hosts, BaselineOptions(vendor_neutral=True))
    assert result["vendor"] is None
    assert result["model"] is None or result["model"].startswith(("qemu64", "kvm64"))
    for name, facts in hosts.items():
        assert compare(result, name, facts)["runnable"], name


def test_s390x_baseline_from_static_expansions() -> None:
    """Old s390x QEMU (3.0, 4.0) and newer hosts: feature sets from static expansions plus the base model."""
    hosts = {n: _facts(n) for n in names("s390x")}
    result = compute_baseline(hosts)
    assert result["vendor"] == "IBM"
    assert set(result["features"]) == set.intersection(*(set(f["features"]) for f in hosts.values()))
    assert {"esan3", "zarch"} <= set(result["features"])
    # QEMU's rule: the oldest generation in the cluster bounds the model (z14 GA1 here)
    assert result["model"] == "z14-base"
    for name, facts in hosts.items():
        verdict = compare(result, name, facts)
        assert verdict["runnable"] and verdict["result"] in ("identical", "superset"), (name, verdict)
    # without the z14 GA1 host, the z14 GA2 host bounds the cluster
    assert result["bottlenecks"]["s390x-z14-qemu-3.0.0"]["model"] == "z14.2-base"


def test_s390x_newer_definition_is_not_runnable_on_older_host() -> None:
    newer = compute_baseline({"z16": _facts("s390x-gen16a-qemu-9.2.0")})
    assert newer["model"] == "gen16a-base"
    verdict = compare(newer, "z14", _facts("s390x-z14-qemu-3.0.0"))
    assert not verdict["runnable"] and verdict["result"] in ("subset", "incompatible")


@pytest.mark.parametrize("cpu_features, host_features, verdict", [
    (["a", "b"], ["a", "b"], "identical"),
    (["a"], ["a", "b"], "superset"),
    (["a", "b"], ["a"], "subset"),
    (["a", "c"], ["a", "b"], "incompatible"),
])
def test_compare_verdicts(cpu_features, host_features, verdict) -> None:
    facts = {"schema_version": SCHEMA_VERSION, "arch": "x86_64", "accel": "kvm", "features": host_features, "models": {}}
    out = compare({"model": None, "features": cpu_features}, "h1", facts)
    assert out["result"] == verdict
    assert out["runnable"] is (verdict in ("identical", "superset"))


member_lists = st.lists(st.sampled_from(INTEL), min_size=1, max_size=6)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(members=member_lists, extra=st.sampled_from(INTEL), seed=st.randoms())
def test_properties(members: list[str], extra: str, seed) -> None:
    hosts = cluster(members)
    result = compute_baseline(hosts)
    # runnable on every member, by the model and by the features
    for name, facts in hosts.items():
        verdict = compare(result, name, facts)
        assert verdict["runnable"], (name, verdict["missing_features"])
        if result["model"]:
            assert result["model"] in facts["runnable_models"]
    # adding a host never adds features
    bigger = compute_baseline({**hosts, "extra": _facts(extra)})
    assert set(bigger["features"]) <= set(result["features"])
    # host order does not change the result
    items = list(hosts.items())
    seed.shuffle(items)
    shuffled = compute_baseline(dict(items))
    assert shuffled == result
