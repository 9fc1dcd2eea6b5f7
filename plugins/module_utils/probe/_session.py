# Copyright (c) 2026 cpucompat.cluster contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""One QMP conversation's replies, keyed by typed queries, with the one codec of recording keys. Private to the collection.

The live probe fills a :class:`Session`; the test fixtures (recorded sessions) are decoded into the same
:class:`Session` with :meth:`Query.decode`; the replay server keys a request with :meth:`Query.from_request`. The fact
builder reads a session through its accessors only, so the three can never disagree on how a question is spelled.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from ._qmp import Reply

EXPANSION = "query-cpu-model-expansion"
EXPANSION_TYPES = ("static", "full")
# How libvirt's recordings name the questions they stand for (tests/fixtures/cpu-data/README.md): the full expansion
# of the static host model, and a host expansion rebuilt from qom-get.
_RECORDED_FULL_OF_STATIC = "full:base:<static:"
_RECORDED_QOM_GET = "converted-from-qom-get"


@dataclass(frozen=True)
class Query:
    """A question asked over QMP: a command, and for model expansions the expansion type, model and properties."""

    command: str
    expansion_type: str | None = None
    model: str | None = None
    props: tuple[tuple[str, Any], ...] = ()

    @classmethod
    def expansion(cls, expansion_type: str, model: str, props: Mapping[str, Any] | None = None) -> Query:
        return cls(EXPANSION, expansion_type, model, tuple(sorted((props or {}).items())))

    @classmethod
    def from_request(cls, command: str, arguments: Mapping[str, Any] | None) -> Query:
        """The query a QMP request asks (what the replay server answers)."""
        if command != EXPANSION:
            return cls(command)
        arguments = arguments or {}
        model = _model if isinstance(_model := arguments.get("model"), Mapping) else {}
        props = _props if isinstance(_props := model.get("props"), Mapping) else {}
        return cls.expansion(str(arguments.get("type")), str(model.get("name")), props)

    def arguments(self) -> dict[str, Any] | None:
        """The QMP arguments of an expansion query (None for other commands, whose arguments the caller gives)."""
        if self.command != EXPANSION:
            return None
        model: dict[str, Any] = {"name": self.model}
        if self.props:
            model["props"] = dict(self.props)
        return {"type": self.expansion_type, "model": model}

    @property
    def label(self) -> str:
        """The key without the command, as the facts name the host expansion (``static:host``)."""
        return self.encode()[len(EXPANSION) + 1:] if self.command == EXPANSION else self.command

    def encode(self) -> str:
        """The recording key: ``query-cpu-model-expansion:<type>:<model>[:<prop>=<json>,...]``, else the command."""
        if self.command != EXPANSION:
            return self.command
        key = f"{EXPANSION}:{self.expansion_type}:{self.model}"
        if self.props:
            key += ":" + ",".join(f"{k}={json.dumps(v)}" for k, v in self.props)
        return key

    @classmethod
    def decode(cls, key: str) -> Query:
        """The query a recording key stands for (the inverse of :meth:`encode`, plus libvirt's recorded forms)."""
        if not key.startswith(EXPANSION + ":"):
            return cls(key)
        rest = key[len(EXPANSION) + 1:]
        if rest == _RECORDED_QOM_GET:
            return cls.expansion("full", "host")
        if rest.startswith(_RECORDED_FULL_OF_STATIC) and rest.endswith(">"):
            inner = rest[len(_RECORDED_FULL_OF_STATIC):-1]  # "host" or "host:migratable=false"
            model, _sep, props = inner.partition(":")
            return cls.expansion("full", model, _decode_props(props, key))
        expansion_type, _sep, rest = rest.partition(":")
        model, _sep, props = rest.partition(":")
        if expansion_type not in EXPANSION_TYPES or not model:
            raise ValueError(f"not a model expansion key: {key!r}")
        return cls.expansion(expansion_type, model, _decode_props(props, key))


def _decode_props(text: str, key: str) -> dict[str, Any]:
    props: dict[str, Any] = {}
    for item in filter(None, text.split(",")):
        name, sep, value = item.partition("=")
        if not sep:
            raise ValueError(f"property {item!r} of {key!r} has no value")
        try:
            props[name] = json.loads(value)
        except ValueError:
            props[name] = value  # a bare string
    return props


@dataclass
class Session:
    """Replies of one QMP conversation."""

    replies: dict[Query, Any] = field(default_factory=dict)
    errors: dict[Query, dict[str, str]] = field(default_factory=dict)
    primary: Query | None = None  # the host expansion the facts are built from
    host_model: str | None = None  # "host" under KVM, "max" under TCG

    def record(self, query: Query, reply: Reply) -> None:
        if reply.ok:
            self.replies[query] = reply.value
        else:
            self.errors[query] = {"class": reply.error_class or "GenericError", "desc": reply.error_desc or ""}

    @classmethod
    def decode(cls, replies: Mapping[str, Any], errors: Mapping[str, Any], primary: str | None = None) -> Session:
        """A recorded session (string keys, as in tests/fixtures/cpu-data)."""
        return cls({Query.decode(k): v for k, v in replies.items()}, {Query.decode(k): v for k, v in errors.items()},
                   Query.decode(primary) if primary else None)

    def encode(self) -> tuple[dict[str, Any], dict[str, Any]]:
        return {q.encode(): v for q, v in self.replies.items()}, {q.encode(): v for q, v in self.errors.items()}

    # ------------------------------------------------------------------ accessors
    def reply(self, command: str) -> Any:
        return self.replies.get(Query(command))

    def error(self, query: Query | str) -> dict[str, str] | None:
        return self.errors.get(Query(query) if isinstance(query, str) else query)

    def expansion(self, expansion_type: str, model: str, props: Mapping[str, Any] | None = None) -> Any:
        return self.replies.get(Query.expansion(expansion_type, model, props))

    def expansions(self) -> Iterator[tuple[Query, Any]]:
        """Every expansion reply, the primary first, then in key order."""
        if self.primary is not None and self.primary in self.replies:
            yield self.primary, self.replies[self.primary]
        rest = sorted((q for q in self.replies if q.command == EXPANSION and q != self.primary), key=Query.encode)
        for query in rest:
            yield query, self.replies[query]

    def supports(self, command: str) -> bool | None:
        """True/False when QEMU said so, None when we cannot tell (e.g. not recorded)."""
        if Query(command) in self.replies:
            return True
        err = self.error(command)
        if not isinstance(err, Mapping):
            return None
        if err.get("class") == "CommandNotFound" or "not supported" in str(err.get("desc", "")).lower():
            return False
        return None
