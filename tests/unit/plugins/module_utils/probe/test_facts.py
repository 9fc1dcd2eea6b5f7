# Copyright (c) 2026 cpucompat.cluster contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Reply-to-facts conversion over every recorded real host."""

from __future__ import annotations

import json

import pytest

from ansible_collections.cpucompat.cluster.plugins.module_utils.cpu import _catalog
from ansible_collections.cpucompat.cluster.plugins.module_utils.probe import _facts
from ansible_collections.cpucompat.cluster.plugins.module_utils._errors import FactsError
from ansible_collections.cpucompat.cluster.plugins.module_utils.cpu._features import FEATURE_NAME_RE, X86_KVM_SOFT_FEATURES, enabled_features
from utils.recordings import build, facts_of, load, names, primary_key, served_replies
from utils.engine import model_view

ALL = names()


@pytest.mark.parametrize("name", ALL)
def test_identity_and_schema(name: str) -> None:
    rec = load(name)
    facts = facts_of(name)
    assert facts["schema_version"] == _facts.SCHEMA_VERSION
    assert facts["arch"] == rec["arch"]
    assert facts["accel"] == rec["accelerator"]
    assert facts["qemu"]["version"] == rec["qemu_version"]
    ident = rec.get("cpu_identity") or {}
    if rec["arch"] == "x86_64":
        assert facts["vendor"] == ident["vendor"]
        assert facts["model_id"] == (ident["model-id"].strip() or None), "a blank brand string is unknown, null"
        assert (facts["family"], facts["model"], facts["stepping"]) == (ident["family"], ident["model"], ident["stepping"])
    elif rec["arch"] == "s390x":
        assert facts["vendor"] == "IBM"
        assert facts["base_model"] == ident["qemu-cpu-model"]
    assert facts["fingerprint"].startswith("sha256:")


@pytest.mark.parametrize("name", ALL)
def test_features_are_canonical_and_nonempty(name: str) -> None:
    facts = facts_of(name)
    feats = facts["features"]
    assert feats == sorted(set(feats))
    assert all(FEATURE_NAME_RE.match(f) for f in feats)
    if facts["arch"] == "x86_64":
        # canonical spellings only: no legacy aliases, no QEMU knobs
        assert not {"sse4_1", "sse4-1", "sse3", "pclmuldq", "lahf_lm", "i64", "xd", "migratable", "enforce", "pmu"} & set(feats)
        assert not [f for f in feats if f.startswith(("hv-", "x-")) or "_" in f]
        assert {"fpu", "sse2", "lm", "cx8"} <= set(feats), "every x86_64 host has these"
    if facts["arch"] == "s390x":
        assert {"esan3", "zarch", "stfle"} <= set(feats)
    # A fleet's cache holds one per host: the facts stay compact (the median bound: test_facts_schema.py).
    assert len(json.dumps(facts, separators=(",", ":"))) < 16 * 1024, "facts must stay compact"


@pytest.mark.parametrize("name", [n for n in ALL if load(n)["replies"].get("query-cpu-definitions") and not n.startswith("aarch64")])
def test_runnable_models_need_only_host_features(name: str) -> None:
    """The host model's features are a superset of what each runnable model needs (QEMU's own verdict)."""
    rec = load(name)
    facts = facts_of(name)
    # Only immutable definitions can be compared across QEMU releases: the
    # catalog holds versioned models, which QEMU before 4.1 did not have.
    runnable = {m: feats for m in facts["runnable_models"] if (feats := _catalog.model_features(facts["arch"], m)) is not None}
    if not any(m.endswith("-v1") for m in facts["models"]) and facts["arch"] == "x86_64":
        pytest.skip("QEMU before 4.1: no versioned models to compare with the catalog")
    assert runnable, "each recorded host runs some model the catalog knows"
    host = set(facts["features"]) | set(facts["non_migratable_features"] or [])
    # Features this recording's QEMU had no property for did not exist for it.
    known = set()
    for key, reply in rec["replies"].items():
        if key.startswith("query-cpu-model-expansion"):
            known |= set(enabled_features(facts["arch"], reply["model"].get("props", {}), name))
    for model, feats in runnable.items():
        missing = (set(feats) & known) - host - X86_KVM_SOFT_FEATURES
        assert not missing, f"{name}: QEMU says {model} runs, but the host expansion lacks {sorted(missing)}"


@pytest.mark.parametrize("name", [n for n in ALL if load(n)["replies"].get("query-cpu-definitions")])
def test_model_runnability_matches_unavailable_features(name: str) -> None:
    rec = load(name)
    facts = facts_of(name)
    view = model_view(facts)
    for entry in rec["replies"]["query-cpu-definitions"]:
        info = view[entry["name"]]
        if "unavailable-features" not in entry:
            assert info["runnable"] is None, "unknown must stay unknown, never runnable"
        else:
            assert info["runnable"] is (not entry["unavailable-features"])
            if not entry.get("alias-of"):
                assert len(info["unavailable_features"]) <= len(set(entry["unavailable-features"]))


@pytest.mark.parametrize("name", [n for n in ALL if "query-cpu-model-expansion:static:host:migratable=false" in load(n)["replies"]])
def test_non_migratable_features(name: str) -> None:
    facts = facts_of(name)
    assert facts["non_migratable_features"] is not None
    assert not set(facts["non_migratable_features"]) & set(facts["features"])
    if facts["vendor"] == "GenuineIntel" or "invtsc" in json.dumps(load(name)["replies"]["query-cpu-model-expansion:static:host:migratable=false"]):
        assert "invtsc" in facts["non_migratable_features"]


def test_s390x_static_delta_resolves_against_base_model() -> None:
    """gen16a (QEMU 9.2) was recorded with both static and full host expansions: both views agree."""
    rec = load("s390x-gen16a-qemu-9.2.0")
    replies, errors = served_replies(rec)
    full = build(replies, errors, "query-cpu-model-expansion:full:host", "t")
    static = build(replies, errors, "query-cpu-model-expansion:static:host", "t")
    assert static["host_cpu"]["features_source"] == "catalog+delta"
    assert static["features"] == full["features"]


@pytest.mark.parametrize(
    "mutate, message",
    [
        (lambda r: r.pop("query-target"), "query-target reply is missing"),
        (lambda r: r.update({"query-target": {"arch": "riscv64"}}), "'riscv64' is not supported"),
        (lambda r: r.update({"query-version": {"qemu": {"major": "x"}}}), "no usable major/minor/micro"),
        (lambda r: r.update({"query-kvm": {}}), "query-kvm reply is missing"),
        (lambda r: r.pop("query-cpu-model-expansion:static:host"), "no host CPU expansion"),
        (lambda r: r.update({"query-cpu-definitions": {"not": "a list"}}), "did not return a list"),
        (lambda r: r["query-cpu-definitions"].append({"static": False}), "entry without a name"),
        (lambda r: r["query-cpu-model-expansion:static:host"]["model"]["props"].update({"evil'/><x": True}), "not a valid CPU feature name"),
        (lambda r: r["query-cpu-model-expansion:static:host"]["model"].update({"props": [1]}), "malformed props"),
    ],
    ids=["no-target", "arch", "version", "kvm", "no-expansion", "defs-type", "defs-name", "bad-feature", "bad-props"],
)
def test_malformed_replies_name_the_problem(mutate, message: str) -> None:
    rec = json.loads(json.dumps(load("x86_64-epyc-9654-qemu-10.0.0")))
    replies, errors = served_replies(rec)
    mutate(replies)
    with pytest.raises(FactsError, match=message) as info:
        build(replies, errors, primary_key(rec), "host-under-test")
    assert "host-under-test" in str(info.value)


def test_conflicting_alias_is_rejected() -> None:
    rec = json.loads(json.dumps(load("x86_64-core-i7-8700")))
    replies, errors = served_replies(rec)
    props = replies[primary_key(rec)]["model"]["props"]
    props["sse4_1"] = not props["sse4.1"]
    with pytest.raises(FactsError, match="canonical name 'sse4.1'"):
        build(replies, errors, primary_key(rec), "h")


def test_fingerprint_changes_with_inputs() -> None:
    base = {"binary": "/usr/bin/qemu-system-x86_64", "kernel": "6.1", "cpu": {"microcode": "0x1"}, "accel": "kvm"}
    prints = {_facts.fingerprint(base)}
    for key, value in (("kernel", "6.2"), ("cpu", {"microcode": "0x2"}), ("accel", "tcg"), ("binary", "/opt/qemu")):
        prints.add(_facts.fingerprint({**base, key: value}))
    assert len(prints) == 5
    assert _facts.fingerprint(dict(reversed(list(base.items())))) == _facts.fingerprint(base)


@pytest.mark.parametrize("blockers, named, unnamed", [
    (["avx512vbmi", "", "avx512vbmi2"], ["avx512vbmi", "avx512vbmi2"], 1),
    ([""], [], 1),
    (["", ""], [], 2),
])
def test_unnamed_blockers_make_a_model_not_runnable(blockers: list, named: list, unnamed: int) -> None:
    """QEMU 2.x-4.x report blockers without a name as '' (a real Xeon Platinum 8268: Cascadelake-Server by ['']):
    the model does not run here; the probe does not fail and the empty name reaches no list."""
    rec = json.loads(json.dumps(load("x86_64-xeon-gold-6130")))
    replies, errors = served_replies(rec)
    for entry in replies["query-cpu-definitions"]:
        if entry["name"] == "Skylake-Server-v1":
            entry["unavailable-features"] = blockers
    facts = build(replies, errors, primary_key(rec), "h")
    model = model_view(facts)["Skylake-Server-v1"]
    assert model["runnable"] is False and model["unavailable_features"] == named and model["unnamed_blockers"] == unnamed
    assert "Skylake-Server-v1" not in facts["runnable_models"]
    from utils.engine import baseline  # pylint: disable=import-outside-toplevel
    assert baseline({"h": facts})["model"] != "Skylake-Server-v1"
