# Copyright (c) 2026 cpucompat.cluster contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
""":class:`RedisStore`: one key per group (``<prefix><group>``) in the Redis a fleet's fact cache uses; the comparison
and the write are one Lua script, atomic on the server. An unreachable server is a clear error; nothing is written.
"""

from __future__ import annotations

import json
from typing import Any

from ._contract import Contract, now_iso
from ._stored import StoreError, Stored, _conflict, _next, _same, check_group, document, parse, writer


DEFAULT_PREFIX = "cpucompat_contract_"


# KEYS[1]: the document's key; ARGV[1]: the generation this run read; ARGV[2]: the document to write (its generation is
# ARGV[3]), ARGV[3]: the new generation. Any document with a "generation" (a contract, a power cycle's progress).
_CAS = """
local cur = redis.call('GET', KEYS[1])
local gen = 0
if cur then
  local doc = cjson.decode(cur)
  gen = tonumber(doc['generation']) or 1
end
if gen ~= tonumber(ARGV[1]) then
  return {0, gen, cur or ''}
end
redis.call('SET', KEYS[1], ARGV[2])
return {1, tonumber(ARGV[3]), ''}
"""


def parse_connection(connection: str) -> dict[str, Any]:
    """``host:port[:db[:password]]`` (the community.general.redis cache's form) or a ``redis://`` / ``rediss://`` URL."""
    if "://" in connection:
        return {"url": connection}
    parts = connection.split(":", 3)
    try:
        host = parts[0] or "localhost"
        port = int(parts[1]) if len(parts) > 1 and parts[1] else 6379
        db = int(parts[2]) if len(parts) > 2 and parts[2] else 0
    except ValueError:
        raise StoreError(f"contract store connection {connection!r} is not host:port[:db[:password]] or a redis:// URL") from None
    return {"host": host, "port": port, "db": db, "password": parts[3] if len(parts) > 3 else None}


class RedisStore:
    """One key per group in a Redis server; compare-and-swap in one server-side script."""

    kind = "redis"

    def __init__(self, connection: str, prefix: str = DEFAULT_PREFIX, timeout: float = 10.0, client: Any = None) -> None:
        self.connection = connection
        self.prefix = prefix
        self._options = parse_connection(connection)
        self._timeout = timeout
        self._client = client

    @property
    def label(self) -> str:
        o = self._options
        return o["url"].split("@")[-1] if "url" in o else f"redis://{o['host']}:{o['port']}/{o['db']}"

    def where(self, group: str) -> str:
        return self.place(check_group(group))

    def client(self) -> Any:
        if self._client is None:
            try:
                import redis  # pylint: disable=import-outside-toplevel  # only a Redis store needs it
            except ImportError as exc:
                raise StoreError("the Redis contract store needs the Python package redis on the controller "
                                 "(pip install redis; the community.general.redis fact cache needs it too)") from exc
            kw: dict[str, Any] = {"socket_timeout": self._timeout, "socket_connect_timeout": self._timeout}
            o = self._options
            self._client = (redis.Redis.from_url(o["url"], **kw) if "url" in o else
                            redis.Redis(host=o["host"], port=o["port"], db=o["db"], password=o["password"], **kw))
        return self._client

    @staticmethod
    def _subject(name: str) -> str:
        """What a document under ``name`` is, for people: a group's contract, or what is kept beside it."""
        kind, _sep, group = name.rpartition("/")
        return f"the contract of group {group}" if not kind else f"the {kind.replace('_', '-')} record of group {group}"

    def _call(self, what: str, name: str, fn: Any) -> Any:
        try:
            return fn(self.client())
        except StoreError:
            raise
        except Exception as exc:  # pylint: disable=broad-exception-caught  # redis raises its own hierarchy
            raise StoreError(f"contract store {self.label} cannot {what} {self._subject(name)}: "
                             f"{type(exc).__name__}: {exc}; nothing was written") from exc

    def place(self, name: str) -> str:
        """Where the document ``name`` lives, for people."""
        return f"{self.label} key {self.prefix}{name}"

    def read_text(self, name: str) -> str | None:
        """The document stored under ``name`` (``<group>``, ``power_cycle/<group>``), None when there is none."""
        raw = self._call("read", name, lambda c: c.get(self.prefix + name))
        return None if raw is None else raw.decode("utf-8") if isinstance(raw, bytes) else str(raw)

    def swap_text(self, name: str, text: str, expected: int, generation: int, lock: str) -> tuple[bool, int, str | None]:
        """Store ``text`` under ``name`` if the stored document's generation is still ``expected`` (0: none), in one
        server-side script (``lock``, the file store's, is not needed): ``(True, generation, None)``, or ``(False, the stored
        generation, its text)``."""
        del lock  # the script is atomic on the server
        ok, now, found = self._call("write", name, lambda c: c.eval(_CAS, 1, self.prefix + name, str(expected), text, str(generation)))
        if int(ok):
            return True, int(now), None
        return False, int(now), (found.decode("utf-8") if isinstance(found, bytes) else str(found)) if found else None

    def read(self, group: str) -> Stored:
        text = self.read_text(check_group(group))
        return Stored(None, 0) if text is None else parse(text, self.where(group))

    def write(self, group: str, contract: Contract, expected: int, generation: int | None = None) -> int:
        new_generation = _next(expected, generation)
        current = self.read(group)
        if current.generation == expected and _same(current, contract) and generation is None:
            return expected
        text = json.dumps(document(contract, new_generation, writer(), now_iso()), sort_keys=True)
        ok, now, found = self.swap_text(group, text, expected, new_generation, group)
        if not ok:
            raise _conflict(group, self.where(group), expected, parse(found, self.where(group)) if found else Stored(None, now))
        return now
