# Copyright (c) 2026 cpucompat.cluster contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Where the groups' contracts live: a file store (default) or a shared Redis, both with compare-and-swap. Private.

Every stored contract carries a **generation**, one more at each write. A run reads a group's contract and its
generation, plans, and writes with the generation it read: when another run wrote in between, the write is refused
naming the winner's generation, who wrote it and when, and nothing is written. So two controllers (or two AWX jobs)
that change one group at once never overwrite each other silently.

- :class:`FileStore`: one ``<group>.json`` per group in a folder outside any inventory directory (by default
  ``$XDG_DATA_HOME/cpucompat/contracts``, i.e. ``~/.local/share/cpucompat/contracts``). A write holds an exclusive
  ``flock`` on ``.<group>.lock`` in that folder while it compares and replaces the file (written to a temporary file,
  flushed, renamed): no reader ever sees half a file. A contract found only in a former location (the
  ``cpucompat-contracts`` folder beside the inventory, the default before 0.3.0) is read from there and moved into the
  store on the next write.
- :class:`RedisStore`: one key per group (``<prefix><group>``) in the Redis a fleet's fact cache uses; the comparison
  and the write are one Lua script, atomic on the server. An unreachable server is a clear error; nothing is written.

The shared parts (:class:`Stored`, the errors, the document) live in ``_stored``, the stores in ``_file_store`` and
``_redis_store``; this module keeps the protocol and the factory, and re-exports their names.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

from ._contract import Contract
from ._file_store import LOCK_TIMEOUT, FileStore, default_directory
from ._redis_store import DEFAULT_PREFIX, RedisStore, parse_connection
from ._stored import UNREADABLE_HINT, ConflictError, StoreError, Stored, check_group, document, parse, writer

__all__ = ["DEFAULT_PREFIX", "LOCK_TIMEOUT", "UNREADABLE_HINT", "ConflictError", "ContractStore", "FileStore", "RedisStore",
           "StoreError", "Stored", "check_group", "default_directory", "document", "parse", "parse_connection", "store_of",
           "writer"]


class ContractStore(Protocol):
    kind: str

    def where(self, group: str) -> str:
        """Where the group's contract lives, for people (a path, or redis://host:port/db key)."""

    def read(self, group: str) -> Stored: ...

    def write(self, group: str, contract: Contract, expected: int, generation: int | None = None) -> int:
        """Write ``contract`` if the stored generation is still ``expected``; the new generation (``generation``, by
        default one more; unchanged when the stored contract is identical). :class:`ConflictError` otherwise."""

    # The one compare-and-swap, for any document kept beside the contracts (a power cycle's progress): by name
    # (``<group>``, ``power_cycle/<group>``), compared by the document's own ``generation``.
    def place(self, name: str) -> str: ...

    def read_text(self, name: str) -> str | None: ...

    def swap_text(self, name: str, text: str, expected: int, generation: int, lock: str) -> tuple[bool, int, str | None]: ...


def store_of(options: Mapping[str, Any], former: tuple[str, ...] = ()) -> ContractStore:
    """The store the options name: ``type`` (file | redis), ``path`` (file), ``connection`` and ``prefix`` (redis)."""
    kind = options.get("type") or "file"
    if kind == "file":
        return FileStore(options.get("path") or None, former)
    if kind == "redis":
        if not options.get("connection"):
            raise StoreError("the Redis contract store needs a connection (host:port[:db[:password]] or a redis:// URL); "
                             "by default the fact cache's, when the fact cache is Redis")
        return RedisStore(str(options["connection"]), str(options.get("prefix") or DEFAULT_PREFIX))
    raise StoreError(f"unknown contract store type {kind!r} (file or redis)")
