# Copyright (c) 2026 cpucompat.cluster contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Access to the recorded QMP sessions in tests/fixtures/cpu-data (provenance in its README)."""

from __future__ import annotations

import functools
import glob
import json
import os
from typing import Any

FIXTURES = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "fixtures", "cpu-data")
EXPANSION = "query-cpu-model-expansion"


@functools.lru_cache(maxsize=None)
def load(name: str) -> dict[str, Any]:
    with open(os.path.join(FIXTURES, name + ".json"), encoding="utf-8") as fh:
        return json.load(fh)


def names(arch: str | None = None) -> list[str]:
    out = sorted(os.path.basename(p)[:-5] for p in glob.glob(os.path.join(FIXTURES, "*.json")))
    return [n for n in out if arch is None or n.startswith(arch + "-")]


def served_replies(rec: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """The replies the replay server gives for a recording, keyed like the recording.

    Recordings taken from libvirt's cputestdata kept no query-target/query-kvm
    replies; their metadata states the architecture and that they were taken
    under KVM, so the replay answers those two commands from the metadata.
    Their query-version was not recorded and stays unanswered.
    """
    replies = dict(rec["replies"])
    errors = dict(rec.get("errors", {}))
    replies.setdefault("query-target", {"arch": rec["arch"]})
    replies.setdefault("query-kvm", {"enabled": rec["accelerator"] == "kvm", "present": rec["accelerator"] == "kvm"})
    return replies, errors


def expansion_alias(rec: dict[str, Any], kind: str, model: str) -> str | None:
    """Recording key that answers an expansion of ``host`` the recording kept under another key.

    libvirt's gathering script expanded the static expansion of ``host`` fully
    (``full:base:<static:host>``), or the reply was rebuilt from qom-get
    (converted files): both are answered for ``full host``, the question they stand for.
    """
    if model != "host":
        return None
    primary = rec["primary_host_expansion"]
    primary_kind = "full" if primary.endswith("converted-from-qom-get") else primary.split(":")[1]
    return primary if primary_kind == kind else None


def facts_of(name: str) -> dict[str, Any]:
    """The cpucompat fact the probe gives for a recording (pure conversion, no socket)."""
    from ansible_collections.cpucompat.cluster.plugins.module_utils import _facts  # pylint: disable=import-outside-toplevel

    rec = load(name)
    replies, errors = served_replies(rec)
    return _facts.build_facts(replies, errors, rec["primary_host_expansion"], where=name, qemu_binary=None,
                              probe={"mode": "recording"}, fingerprint_inputs={"recording": name})
