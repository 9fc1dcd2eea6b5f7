# Copyright (c) 2026 cpucompat.cluster contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Our s390x comparison and baseline against QEMU's own, on a live qemu-system-s390x (TCG)."""

from __future__ import annotations

import itertools
import random

import pytest

from ansible_collections.cpucompat.cluster.plugins.module_utils.probe import _probe
from ansible_collections.cpucompat.cluster.plugins.module_utils.engine import _s390x
from ansible_collections.cpucompat.cluster.plugins.module_utils.cpu._features import enabled_features

pytestmark = pytest.mark.usefixtures("no_leftover_qemu")
PAIRS = 600


def _features(props: dict) -> frozenset[str]:
    return frozenset(k for k, v in enabled_features("s390x", props, "qemu-system-s390x").items() if v)


@pytest.fixture(scope="module")
def oracle():
    """Full expansions of every table model QEMU knows, and QEMU's verdict for a fixed sample of pairs."""
    with _probe.spawn_qemu(_probe.find_binary("qemu-system-s390x"), "tcg", 60) as client:
        known = {d["name"] for d in client.execute("query-cpu-definitions")}
        names = [n for d in _s390x.DEFS for n in (d.name, f"{d.name}-base") if n in known]
        expansions = client.execute_many([("query-cpu-model-expansion", {"type": "full", "model": {"name": n}}) for n in names])
        models = {n: _s390x.S390Model(_s390x.definition_of(n), _features(r.unwrap()["model"]["props"])) for n, r in zip(names, expansions)}
        pairs = sorted(itertools.product(names, names))
        random.Random(20261125).shuffle(pairs)
        pairs = pairs[:PAIRS]
        args = [{"modela": {"name": a}, "modelb": {"name": b}} for a, b in pairs]
        comparisons = client.execute_many([("query-cpu-model-comparison", x) for x in args])
        baselines = client.execute_many([("query-cpu-model-baseline", x) for x in args])
        base_names = sorted({r.value["model"]["name"] for r in baselines if r.ok})
        base_exp = client.execute_many([("query-cpu-model-expansion", {"type": "full", "model": {"name": n}}) for n in base_names])
        base_feats = {n: _features(r.unwrap()["model"]["props"]) for n, r in zip(base_names, base_exp)}
    return models, pairs, comparisons, baselines, base_feats


def test_sample_is_large_and_deterministic(oracle) -> None:
    models, pairs, _c, _b, _f = oracle
    assert len(models) >= 70 and len(pairs) == PAIRS >= 500


def test_comparison_equals_qemu(oracle) -> None:
    models, pairs, comparisons, _b, _f = oracle
    disagree = []
    for (a, b), reply in zip(pairs, comparisons):
        want = reply.unwrap()
        result, responsible = _s390x.compare(models[a], models[b])
        if (result, set(responsible)) != (want["result"], set(want.get("responsible-properties", []))):
            disagree.append((a, b, result, want["result"], sorted(set(responsible) ^ set(want.get("responsible-properties", [])))))
    assert not disagree, f"{len(disagree)} of {len(pairs)} comparisons differ from QEMU, e.g. {disagree[:3]}"


def test_baseline_equals_qemu(oracle) -> None:
    models, pairs, _c, baselines, base_feats = oracle
    disagree = []
    for (a, b), reply in zip(pairs, baselines):
        if not reply.ok:
            with pytest.raises(Exception, match="base features"):
                _s390x.baseline(models[a], models[b])
            continue
        want = reply.value["model"]
        feats = set(base_feats[want["name"]])
        for prop, value in (want.get("props") or {}).items():
            (feats.add if value else feats.discard)(prop)
        ours = _s390x.baseline(models[a], models[b])
        if set(ours.features) != feats or f"{ours.definition.name}-base" != want["name"]:
            disagree.append((a, b, ours.definition.name, want["name"], sorted(set(ours.features) ^ feats)[:5]))
    assert not disagree, f"{len(disagree)} of {len(pairs)} baselines differ from QEMU, e.g. {disagree[:3]}"
