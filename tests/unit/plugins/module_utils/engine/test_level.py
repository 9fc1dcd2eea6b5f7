# Copyright (c) 2026 cpucompat.cluster contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""A level the operator chooses (a model with changes, or an x86-64 psABI level), over recorded real hosts."""

from __future__ import annotations

import pytest

from ansible_collections.cpucompat.cluster.plugins.module_utils.contract import _admission, _change
from ansible_collections.cpucompat.cluster.plugins.module_utils.cpu._libvirt_map import MapRegistry
from ansible_collections.cpucompat.cluster.plugins.module_utils.engine import _level
from ansible_collections.cpucompat.cluster.plugins.module_utils.engine._baseline import BaselineOptions, baseline_of
from ansible_collections.cpucompat.cluster.plugins.module_utils.engine._group import group_facts
from ansible_collections.cpucompat.cluster.plugins.module_utils.render._libvirt import render
from utils.recordings import facts_of

GOLD = facts_of("x86_64-xeon-gold-6130")
PLATINUM = facts_of("x86_64-xeon-platinum-9242")
BROADWELL = facts_of("x86_64-xeon-e5-2650-v4")
OPTS, REGISTRY = BaselineOptions(), MapRegistry()


def _hosts(facts: dict) -> list:
    return group_facts(facts).hosts()


@pytest.mark.parametrize("text, model, psabi, add, remove", [
    ("Skylake-Server", "Skylake-Server", None, set(), set()),
    ("Skylake-Server,+pku,-hle", "Skylake-Server", None, {"pku"}, {"hle"}),
    ("x86-64-v3", None, "x86-64-v3", set(), set()),
    ("X86-64-V2", None, "x86-64-v2", set(), set()),
])
def test_levels_parse(text, model, psabi, add, remove) -> None:
    spec = _level.parse_level(text)
    assert (spec.model, spec.psabi, set(spec.add), set(spec.remove)) == (model, psabi, add, remove)


@pytest.mark.parametrize("text, message", [
    ("Skylake-Server,pku", "is not a model"), ("Sky lake", "is not a model"), ("", "is not a model"),
    ("x86-64-v1", "below every named x86 model"), ("Skylake-Server,+pku,-pku", "both added and removed"),
])
def test_bad_levels_are_refused_by_name(text, message) -> None:
    with pytest.raises(_level.LevelError, match=message):
        _level.parse_level(text)


def test_a_named_level_is_the_models_features_with_the_changes_and_exact() -> None:
    hosts = _hosts({"gold": GOLD, "platinum": PLATINUM})
    today = baseline_of({"gold": GOLD, "platinum": PLATINUM})
    spec = _level.parse_level("Skylake-Server,+spec-ctrl,-hle,-rtm")
    model, features = _level.wanted(spec, today, hosts)
    assert model == "Skylake-Server" and "spec-ctrl" in features and not {"hle", "rtm"} & features
    held = _level.chosen_baseline(spec, hosts, OPTS, REGISTRY, today)
    assert held.guest.features == {f for f in features if not f.startswith("kvm")}, "exactly the level (paravirt aside)"
    assert held.guest.features < today.guest.features, "below the group's best of today"
    assert "md-clear" in today.guest.features - held.guest.features
    assert render(held.guest).xml, "exact on the group's stacks like any baseline"


def test_an_x86_64_level_is_the_oldest_model_that_has_it() -> None:
    hosts = _hosts({"gold": GOLD, "bdw": BROADWELL})
    held = _level.chosen_baseline(_level.parse_level("x86-64-v3"), hosts, OPTS, REGISTRY)
    assert _level.PSABI["x86-64-v3"] <= held.guest.features and "avx512f" not in held.guest.features
    assert held.guest.model.startswith("Haswell"), held.guest.model
    assert _level.psabi_level(held.guest.features) == "x86-64-v3"


@pytest.mark.parametrize("text, message", [
    ("Skylake-Server", "model Skylake-Server does not run on bdw"),
    ("x86-64-v4", "bdw lacks avx512bw, avx512cd, avx512dq, avx512f, avx512vl"),
    ("Broadwell,+avx512f", "bdw lacks avx512f"),
])
def test_a_level_some_host_cannot_run_is_refused_naming_it(text, message) -> None:
    with pytest.raises(_level.LevelError, match=message):
        _level.chosen_baseline(_level.parse_level(text), _hosts({"gold": GOLD, "bdw": BROADWELL}), OPTS, REGISTRY)


def test_the_baseline_report_says_who_runs_which_model_and_each_hosts_level() -> None:
    hosts = _hosts({"gold": GOLD, "bdw": BROADWELL})
    view = _level.levels_view(hosts, baseline_of({"gold": GOLD, "bdw": BROADWELL}))
    assert view["hosts"]["gold"] == {"best_model": "Skylake-Server-IBRS", "psabi": "x86-64-v4"}
    assert view["hosts"]["bdw"]["psabi"] == "x86-64-v3" and view["hosts"]["bdw"]["best_model"].startswith("Broadwell")
    assert view["models"]["Skylake-Server"] == {"hosts": 1, "not_on": ["bdw"], "not_on_count": 1}
    assert view["models"]["Haswell-noTSX"]["hosts"] == 2 and view["group"]["psabi"] == "x86-64-v3"
    assert list(view["models"]).index("Skylake-Server") < list(view["models"]).index("Haswell-noTSX"), "best first"


def test_a_first_pin_and_a_lower_take_the_chosen_level() -> None:
    group = group_facts({"gold": GOLD, "platinum": PLATINUM})
    run = _admission.group_contract("g", group, None, "c", OPTS, REGISTRY, None, level="x86-64-v3")
    assert run.section["pinned_now"] and run.to_write.cpu.model.startswith("Haswell")
    assert run.to_write.history[0]["reason"] == "first pin at the level x86-64-v3"
    refused = _admission.group_contract("g", group_facts({"gold": GOLD, "bdw": BROADWELL}), None, "c", OPTS, REGISTRY, None,
                                        level="x86-64-v4")
    assert refused.to_write is None and "bdw lacks avx512" in refused.section["reasons"][0]
    pinned = _admission.group_contract("g", group, None, "c", OPTS, REGISTRY, None).to_write
    request = _change.ChangeRequest("lower", allow_lower=True, level="Skylake-Server")
    consent = _change.plan_change("g", group, pinned, "c", request, OPTS, REGISTRY, {})
    assert not consent.section["applicable"] and "beyond the chosen level: arch-capabilities, md-clear" in consent.section["reasons"][0]
    plan = _change.plan_change("g", group, pinned, "c", _change.ChangeRequest(
        "lower", allow_lower=True, allow_security_loss=True, level="Skylake-Server"), OPTS, REGISTRY, {})
    assert plan.section["applicable"] and plan.to_write.cpu.model == "Skylake-Server"
    assert plan.to_write.history[-1]["reason"] == "lower to the level Skylake-Server"
