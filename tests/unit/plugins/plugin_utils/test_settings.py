# Copyright (c) 2026 cpucompat.cluster contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""One variable per concept: every role resolves a shared name alike, from the old names it replaces."""

from __future__ import annotations

import glob
import os

import pytest
import yaml

from ansible_collections.cpucompat.cluster.plugins.plugin_utils._settings import (
    DEFAULTS, RENAMED, REMOVED_IN, default_expression, deprecations)

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))))
ROLES = sorted(os.path.basename(os.path.dirname(os.path.dirname(p))) for p in glob.glob(os.path.join(ROOT, "roles", "*", "defaults", "main.yml")))


def _defaults(role: str) -> dict:
    with open(os.path.join(ROOT, "roles", role, "defaults", "main.yml"), encoding="utf-8") as fh:
        return yaml.safe_load(fh) or {}


def _flat(defaults: dict) -> dict:
    out = dict(defaults)
    for key, value in (defaults.get("cpucompat_domains") or {}).items():
        out[f"cpucompat_domains.{key}"] = value
    return out


@pytest.mark.parametrize("role", ROLES)
def test_every_role_resolves_a_shared_name_from_its_old_names_alike(role: str) -> None:
    defaults = _flat(_defaults(role))
    shared = sorted(set(defaults) & set(DEFAULTS))
    for name in shared:
        assert " ".join(defaults[name].split()) == default_expression(name), f"roles/{role}: {name}"
    assert not set(defaults) & set(RENAMED), f"roles/{role} defines an old name: the warning would fire for everyone"


def test_every_old_name_still_resolves_somewhere_and_no_new_name_is_orphaned() -> None:
    defined = set().union(*(_flat(_defaults(r)) for r in ROLES))
    assert set(RENAMED.values()) <= defined, "every new name has a role that resolves it"
    for name in DEFAULTS:
        assert name in defined


def test_the_old_names_a_host_has_are_each_warned_once_with_the_new_name() -> None:
    found = deprecations(frozenset({"cpucompat_deploy_uri", "cpucompat_deploy_domains", "cpucompat_group", "inventory_hostname"}))
    assert [d["msg"].split()[2] for d in found] == ["cpucompat_deploy_domains", "cpucompat_deploy_uri"]
    assert "cpucompat_libvirt_uri" in found[1]["msg"] and "the key names of cpucompat_domains" in found[0]["msg"]
    assert all(d["version"] == REMOVED_IN and d["collection_name"] == "cpucompat.cluster" for d in found)
    assert deprecations(frozenset({"cpucompat_group"})) == []
