# Copyright (c) 2026 cpucompat.cluster contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The one codec of QMP queries: the probe's requests, the recordings' keys and the replay server's lookups agree."""

from __future__ import annotations

import pytest

from ansible_collections.cpucompat.cluster.plugins.module_utils.probe._session import EXPANSION, Query, Session
from utils.recordings import load, names


@pytest.mark.parametrize("query", [
    Query("query-cpu-definitions"),
    Query.expansion("static", "host"),
    Query.expansion("static", "host", {"migratable": False}),
    Query.expansion("full", "host", {"hv-passthrough": True, "migratable": False}),
    Query.expansion("full", "Skylake-Server-v4", {"vendor": "GenuineIntel", "level": 13}),
], ids=["command", "static-host", "bool-prop", "two-props", "string-and-int-props"])
def test_encode_decode_and_request_agree(query: Query) -> None:
    assert Query.decode(query.encode()) == query
    if query.command == EXPANSION:
        assert Query.from_request(EXPANSION, query.arguments()) == query


def test_bool_props_keep_the_recordings_spelling() -> None:
    assert Query.expansion("static", "host", {"migratable": False}).encode() == "query-cpu-model-expansion:static:host:migratable=false"


@pytest.mark.parametrize("key, stands_for", [
    ("query-cpu-model-expansion:full:base:<static:host>", Query.expansion("full", "host")),
    ("query-cpu-model-expansion:full:base:<static:host:migratable=false>", Query.expansion("full", "host", {"migratable": False})),
    ("query-cpu-model-expansion:converted-from-qom-get", Query.expansion("full", "host")),
])
def test_libvirts_recorded_names_decode_to_the_question(key: str, stands_for: Query) -> None:
    assert Query.decode(key) == stands_for


@pytest.mark.parametrize("key", ["query-cpu-model-expansion:sideways:host", "query-cpu-model-expansion:static:",
                                 "query-cpu-model-expansion:static:host:migratable"])
def test_malformed_keys_are_refused(key: str) -> None:
    with pytest.raises(ValueError, match=key.split(":")[-1] or "not a model expansion key"):
        Query.decode(key)


@pytest.mark.parametrize("name", names())
def test_every_recording_decodes(name: str) -> None:
    rec = load(name)
    session = Session.decode(rec["replies"], rec.get("errors", {}), rec["primary_host_expansion"])
    assert session.primary in session.replies, "the recording's host expansion is found under its query"
    assert len(session.replies) == len(rec["replies"]), "no two recorded keys collapse into one query"
