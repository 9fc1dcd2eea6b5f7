# Copyright (c) 2026 cpucompat.cluster contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Access to the recorded QMP sessions in tests/fixtures/cpu-data (provenance in its README)."""

from __future__ import annotations

import copy
import functools
import glob
import json
import os
from typing import Any

from ansible_collections.cpucompat.cluster.plugins.module_utils.probe import _facts
from ansible_collections.cpucompat.cluster.plugins.module_utils.probe._session import Query, Session

from . import stacks

FIXTURES = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "fixtures", "cpu-data")


@functools.lru_cache(maxsize=None)
def load(name: str) -> dict[str, Any]:
    with open(os.path.join(FIXTURES, name + ".json"), encoding="utf-8") as fh:
        return json.load(fh)


def names(arch: str | None = None) -> list[str]:
    out = sorted(os.path.basename(p)[:-5] for p in glob.glob(os.path.join(FIXTURES, "*.json")))
    return [n for n in out if arch is None or n.startswith(arch + "-")]


def served_session(rec: dict[str, Any]) -> Session:
    """The session the replay server serves for a recording, decoded with the collection's own codec.

    Recordings taken from libvirt's cputestdata kept no query-target/query-kvm
    replies; their metadata states the architecture and that they were taken
    under KVM, so the replay answers those two commands from the metadata.
    Their query-version was not recorded and stays unanswered. libvirt's names for
    the host expansion (``full:base:<static:host>``, ``converted-from-qom-get``)
    decode to the question they stand for, the full expansion of ``host``.
    """
    session = Session.decode(rec["replies"], rec.get("errors", {}), rec["primary_host_expansion"])
    session.replies.setdefault(Query("query-target"), {"arch": rec["arch"]})
    session.replies.setdefault(Query("query-kvm"), {"enabled": rec["accelerator"] == "kvm", "present": rec["accelerator"] == "kvm"})
    return session


def served_replies(rec: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """:func:`served_session` encoded back to string keys (to edit a reply in a test)."""
    return served_session(rec).encode()


def primary_key(rec: dict[str, Any]) -> str:
    """The recording's host expansion as the codec spells it."""
    return Query.decode(rec["primary_host_expansion"]).encode()


def build(replies: dict[str, Any], errors: dict[str, Any], primary: str, where: str) -> dict[str, Any]:
    """Facts from string-keyed replies, through the codec."""
    return _facts.build_facts(Session.decode(replies, errors, primary), where=where, qemu_binary=None, probe={}, fingerprint_inputs={})


def facts_of(name: str, libvirt: str | None = "system") -> dict[str, Any]:
    """:func:`built_facts`, a fresh copy each call (tests change what they are given)."""
    return copy.deepcopy(built_facts(name, libvirt))


@functools.lru_cache(maxsize=None)
def built_facts(name: str, libvirt: str | None = "system") -> dict[str, Any]:
    """The cpucompat fact the probe gives for a recording (pure conversion, no socket).

    ``libvirt``: which libvirt the recorded host runs, as the probe reads it there: ``system`` (this machine's, as a
    probe over the replayed socket reads it), ``backports`` (the unpacked second stack, tools/backports.sh), or None
    (no libvirt: its facts carry no CPU map).
    """
    host = None
    if libvirt is not None:
        stack = stacks.by_name(libvirt)
        host = {"libvirt": stack.libvirt_version, "cpu_map": stack.cpu_map}
    return _facts.build_facts(served_session(load(name)), where=name, qemu_binary=None,
                              probe={"mode": "recording"}, fingerprint_inputs={"recording": name}, host=host)
