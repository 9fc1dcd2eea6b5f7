# Copyright (c) 2026 cpucompat.cluster contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Recorded arm64 hosts: a tree of the host's /sys and /proc (tests/fixtures/arm64-hosts, PROVENANCE.md there) served
beside a QMP recording (tests/fixtures/cpu-data), probed by the collection's own probe."""

from __future__ import annotations

import copy
import functools
import json
import os
import tempfile
from typing import Any

from .qmp_replay import ReplayServer  # first: it puts the collection on the path when run alone
from .recordings import load

from ansible_collections.cpucompat.cluster.plugins.module_utils.probe import _probe  # noqa: E402  pylint: disable=wrong-import-order

TREES = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "fixtures", "arm64-hosts")
QMP = "aarch64-unidentified-nosve-qemu-8.2.0"
# The SVE vector lengths of the SVE hosts (PROVENANCE.md: the recording without SVE is served with these turned on).
SVE = {"neoverse-v2-grace": (128,), "neoverse-v1-graviton3": (128, 256)}
HOSTS = sorted(n for n in os.listdir(TREES) if os.path.isdir(os.path.join(TREES, n)))


def tree(name: str) -> str:
    return os.path.join(TREES, name)


def recording(name: str) -> dict[str, Any]:
    """The QMP recording a host is served with: the N1 and ThunderX2 (no SVE, no pointer authentication) as recorded;
    the SVE hosts with SVE and their vector lengths on (and pointer authentication on Graviton3, whose Features has
    paca/pacg)."""
    rec = load(QMP)
    if name not in SVE:
        return rec
    rec = copy.deepcopy(rec)
    props = rec["replies"]["query-cpu-model-expansion:full:host"]["model"]["props"]
    props["sve"] = True
    for length in SVE[name]:
        props[f"sve{length}"] = True
    if name == "neoverse-v1-graviton3":
        props["pauth"] = True
    return rec


@functools.lru_cache(maxsize=None)
def _facts_json(name: str) -> str:
    with tempfile.TemporaryDirectory(prefix="cpucompat-arm-") as tmp:
        with ReplayServer(recording(name), os.path.join(tmp, "qmp.sock")) as server:
            facts = _probe.probe(_probe.ProbeRequest(qmp_socket=server.path, host_root=tree(name)))
    return json.dumps(facts)


def facts(name: str) -> dict[str, Any]:
    """The facts of recorded host ``name`` as the collection's probe gives them (served over QMP, tree as host_root)."""
    return json.loads(_facts_json(name))
