# Copyright (c) 2026 cpucompat.cluster contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The cpu_probe action's freshness policy: max age, then the fingerprint script (run for real on this machine)."""

from __future__ import annotations

import sys
import time

import pytest

from ansible_collections.cpucompat.cluster.plugins.module_utils.probe import _facts, _probe

S390X = {"qemu_binary": "qemu-system-s390x", "accel": "tcg"}


def _cached(fingerprint: str, probed_at: float, schema: int = _facts.SCHEMA_VERSION) -> dict:
    return {"schema_version": schema, "fingerprint": fingerprint, "probe": {"probed_at": int(probed_at)}}


def _task_vars(cached: dict | None) -> dict:
    return {"ansible_facts": {"cpucompat": cached} if cached else {}, "ansible_python_interpreter": sys.executable}


@pytest.fixture(scope="module")
def now_fingerprint() -> str:
    return _probe.current_fingerprint(_probe.ProbeRequest(**S390X))


def test_young_facts_stand_without_contacting_the_host(action_plugin) -> None:
    result = action_plugin("cpu_probe", {**S390X, "reuse_cached": True, "max_age": 3600}).run(
        task_vars=_task_vars(_cached("sha256:not-checked", time.time() - 10)))
    assert result["probed"] is False and result["freshness"] == "max_age" and result["changed"] is False


def test_old_facts_are_confirmed_by_the_fingerprint_script(action_plugin, now_fingerprint: str) -> None:
    result = action_plugin("cpu_probe", {**S390X, "reuse_cached": True, "max_age": 3600}).run(
        task_vars=_task_vars(_cached(now_fingerprint, time.time() - 7200)))
    assert result["probed"] is False and result["freshness"] == "fingerprint"
    assert result["fingerprint"] == now_fingerprint


# The age of the cached facts is taken when the test runs, not when the module is collected (a long run in between
# would age them).
@pytest.mark.parametrize("args, fingerprint, age, schema, fresh", [
    ({"reuse_cached": False, "max_age": 3600}, "sha256:x", 0, _facts.SCHEMA_VERSION, None),
    ({"reuse_cached": True, "max_age": 3600}, "sha256:x", 0, 0, None),
    # Schema 4 facts stay readable everywhere, but a young schema 4 entry is probed again, never kept.
    ({"reuse_cached": True, "max_age": 3600}, "sha256:x", 0, 4, None),
    ({"reuse_cached": True, "max_age": 0}, "sha256:stale", 0, _facts.SCHEMA_VERSION, None),
    ({"reuse_cached": True, "max_age": 60}, "sha256:stale", 120, _facts.SCHEMA_VERSION, None),
    ({"reuse_cached": True, "max_age": 60}, "sha256:stale", 30, _facts.SCHEMA_VERSION, "max_age"),
], ids=["not-reused", "other-schema", "schema-4-reprobed", "no-max-age-stale", "too-old-stale", "young"])
def test_the_policy_in_order(action_plugin, args, fingerprint, age, schema, fresh) -> None:
    cached = _cached(fingerprint, time.time() - age, schema=schema)
    plugin = action_plugin("cpu_probe", {**S390X, **args})
    full = {"force": False, "qmp_socket": None, "cached_fingerprint": None, **S390X, **args}
    facts = plugin._cached_facts(full, _task_vars(cached))  # pylint: disable=protected-access
    fingerprint = (facts or {}).get("fingerprint")
    assert plugin._still_fresh(full, facts, fingerprint, _task_vars(cached)) == fresh  # pylint: disable=protected-access


def test_the_cache_folder_is_an_option_of_the_action_too(action_plugin, tmp_path) -> None:
    """The action validates the module's options before it decides: ``cache_dir`` passes, and reaches the module."""
    plugin = action_plugin("cpu_probe", {**S390X, "reuse_cached": True, "max_age": 3600, "cache_dir": str(tmp_path)})
    result = plugin.run(task_vars=_task_vars(_cached("sha256:not-checked", time.time() - 10)))
    assert result["freshness"] == "max_age" and not result.get("failed"), result
