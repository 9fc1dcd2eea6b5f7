# Copyright (c) 2026 cpucompat.cluster contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Hostile replies: every recording, every field replaced by what a broken or malicious QEMU could send.

The conversion either returns facts whose every feature and model name passes validation, or fails with one line
(FactsError) that names the QMP command it could not understand; never another exception, never a half-built fact.
A seeded generator makes the cases reproducible: a failure prints the recording, the seed and the mutation.
"""

from __future__ import annotations

import copy
import json
import os
import random
import re
from typing import Any

import pytest

from ansible_collections.cpucompat.cluster.plugins.module_utils.probe import _facts
from ansible_collections.cpucompat.cluster.plugins.module_utils._errors import FactsError
from ansible_collections.cpucompat.cluster.plugins.module_utils.cpu._features import FEATURE_NAME_RE
from ansible_collections.cpucompat.cluster.plugins.module_utils.probe._session import Session
from utils.recordings import load, names, served_session

CASES_PER_RECORDING = int(os.environ.get("CPUCOMPAT_MUTATION_CASES", "120"))
HOSTILE: list[Any] = [
    None, 0, -1, 2**70, 1.5, True, False, "", " ", "x", "sse2", "<evil/>", "a'b", 'a"b', "a b", "é", "\u202e", "a\x00b", "a\nb",
    [], [None], [""], ["", ""], ["sse2", "sse2"], ["<x>"], [1, 2], {}, {"x": 1}, {"name": None}, {"name": "<x>"},
    ["a"] * 5000, [f"f{i}" for i in range(5000)],
]
QMP_COMMAND = re.compile(r"query-[a-z-]+")


def _paths(node: Any, path: tuple = ()) -> list[tuple]:
    """Every path into a JSON tree (dict keys and list indexes), the root included."""
    out = [path]
    if isinstance(node, dict):
        for key, value in node.items():
            out += _paths(value, (*path, key))
    elif isinstance(node, list):
        for index, value in enumerate(node[:40]):  # long lists: the first entries stand for the rest
            out += _paths(value, (*path, index))
    return out


def _mutate(session: Session, rng: random.Random) -> str:
    """Apply one hostile change in place; return what it was, for the failure message."""
    query = rng.choice(sorted(session.replies, key=lambda q: q.encode()))
    paths = _paths(session.replies[query])
    path = rng.choice(paths)
    value = copy.deepcopy(rng.choice(HOSTILE))
    if not path:
        session.replies[query] = value
        return f"{query.encode()} := {str(value)[:40]!r}"
    parent = session.replies[query]
    for step in path[:-1]:
        parent = parent[step]
    if isinstance(parent, dict) and rng.random() < 0.25:
        del parent[path[-1]]
        return f"{query.encode()} {path}: deleted"
    if isinstance(parent, dict) and rng.random() < 0.1:
        parent[rng.choice(["<k>", "", "hv-x", "sse4_1", "a b", "x" * 300])] = value
        return f"{query.encode()} {path[:-1]}: odd key with {str(value)[:40]!r}"
    parent[path[-1]] = value
    return f"{query.encode()} {path} := {str(value)[:40]!r}"


def _names_in(facts: dict) -> list[Any]:
    out = list(facts["features"]) + list(facts.get("non_migratable_features") or []) + list(facts.get("runnable_models") or [])
    out += list(facts.get("model_blockers") or [])
    for model, blockers in (_facts.read_models(facts, "t") or {}).items():
        out += [model, *(blockers or [])]
    for alias, target in _facts.read_aliases(facts, "t").items():
        out += [alias, target]
    for model, feats in (facts.get("model_features") or {}).items():
        out += [model, *feats]
    out += [m for key in ("deprecated", "not_migration_safe", "static") for m in (facts.get("model_flags") or {}).get(key) or []]
    out += list((facts.get("host_cpu") or {}).get("kvm_rejected_features") or [])
    return out


@pytest.mark.parametrize("name", names())
def test_hostile_replies(name: str) -> None:
    rng = random.Random(f"{name}-20261127")
    pristine = served_session(load(name))
    outcomes = {"facts": 0, "refused": 0}
    for case in range(CASES_PER_RECORDING):
        session = Session(copy.deepcopy(pristine.replies), copy.deepcopy(pristine.errors), pristine.primary)
        what = "; ".join(_mutate(session, rng) for _step in range(rng.randint(1, 3)))
        try:
            facts = _facts.build_facts(session, where=name, qemu_binary=None, probe={}, fingerprint_inputs={})
        except FactsError as exc:
            message = str(exc)
            assert "\n" not in message, f"case {case} ({what}): a multi-line message: {message!r}"
            assert QMP_COMMAND.search(message), f"case {case} ({what}): the message names no QMP command: {message}"
            outcomes["refused"] += 1
            continue
        bad = [n for n in _names_in(facts) if not isinstance(n, str) or not FEATURE_NAME_RE.match(n)]
        assert not bad, f"case {case} ({what}): invalid names reached the facts: {bad[:5]}"
        json.dumps(facts)  # plain JSON
        outcomes["facts"] += 1
    assert outcomes["facts"] and outcomes["refused"], outcomes


@pytest.mark.usefixtures("no_leftover_qemu")
@pytest.mark.parametrize("name", ["x86_64-epyc-9654-qemu-10.0.0", "x86_64-xeon-gold-6130", "s390x-gen16a-qemu-9.2.0",
                                  "aarch64-unidentified-nosve-qemu-8.2.0"])
def test_hostile_replies_over_the_socket(replay, name: str) -> None:
    """The same through the probe's real code path: a replay server answering with the mutated session."""
    from ansible_collections.cpucompat.cluster.plugins.module_utils.probe import _probe  # pylint: disable=import-outside-toplevel
    from ansible_collections.cpucompat.cluster.plugins.module_utils._errors import CpuCompatError  # pylint: disable=import-outside-toplevel

    rng = random.Random(f"{name}-socket")
    pristine = served_session(load(name))
    for case in range(25):
        session = Session(copy.deepcopy(pristine.replies), copy.deepcopy(pristine.errors), pristine.primary)
        what = "; ".join(_mutate(session, rng) for _step in range(rng.randint(1, 2)))
        server = replay(name)
        server.replies, server.errors = session.replies, session.errors
        try:
            facts = _probe.probe(_probe.ProbeRequest(qmp_socket=server.path, timeout=3))
        except CpuCompatError as exc:
            assert "\n" not in str(exc) and QMP_COMMAND.search(str(exc)), f"case {case} ({what}): {exc}"
            continue
        finally:
            server.stop()
        bad = [n for n in _names_in(facts) if not isinstance(n, str) or not FEATURE_NAME_RE.match(n)]
        assert not bad, f"case {case} ({what}): invalid names reached the facts: {bad[:5]}"
