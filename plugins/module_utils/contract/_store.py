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
"""

from __future__ import annotations

import errno
import fcntl
import getpass
import json
import os
import socket
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from .._atomic import write_atomic
from ._contract import Contract, ContractError, now_iso

LOCK_TIMEOUT = 60.0  # seconds a write waits for another run's write on the same group
DEFAULT_PREFIX = "cpucompat_contract_"


class StoreError(ContractError):
    """The store cannot be read or written (unreachable, locked too long, not writable)."""


class ConflictError(StoreError):
    """Another run wrote the group's contract after this run read it."""

    def __init__(self, message: str, group: str, expected: int, found: int) -> None:
        super().__init__(message)
        self.group, self.expected, self.found = group, expected, found


@dataclass(frozen=True)
class Stored:
    """A group's contract as the store holds it (None: none yet), its generation (0: none) and who wrote it."""

    contract: Contract | None
    generation: int
    written_by: str | None = None
    written_at: str | None = None
    moved_from: str | None = None  # a former location it was read from (it moves into the store at the next write)
    written_digest: str | None = None  # the level digest written beside the contract (None: written before it was)


class ContractStore(Protocol):
    kind: str

    def where(self, group: str) -> str:
        """Where the group's contract lives, for people (a path, or redis://host:port/db key)."""

    def read(self, group: str) -> Stored: ...

    def write(self, group: str, contract: Contract, expected: int, generation: int | None = None) -> int:
        """Write ``contract`` if the stored generation is still ``expected``; the new generation (``generation``, by
        default one more; unchanged when the stored contract is identical). :class:`ConflictError` otherwise."""


def writer() -> str:
    """Who writes: user@host of the controller."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = str(os.getuid())
    return f"{user}@{socket.gethostname()}"


def check_group(group: str) -> str:
    if not group or "/" in group or group.startswith(".") or len(group) > 200:
        raise ContractError(f"group name {group!r} cannot name a stored contract")
    return group


def document(contract: Contract, generation: int, by: str, at: str) -> dict[str, Any]:
    # The level's digest beside it: a contract edited outside the tool no longer matches it (contract/_stamps).
    return {**contract.to_dict(), "generation": generation, "written_by": by, "written_at": at, "digest": contract.digest}


UNREADABLE_HINT = ("; it is kept as it is: restore it from a copy, or move it aside and rebuild it from the domains' stamps "
                   "(ansible-playbook -i <inventory> cpucompat.cluster.rebuild_contract -e cpucompat_group=<group>)")


def parse(text: str, where: str) -> Stored:
    try:
        doc = json.loads(text)
    except ValueError as exc:
        raise ContractError(f"contract {where} is not JSON: {exc}{UNREADABLE_HINT}") from exc
    try:
        contract = Contract.from_dict(doc, f"contract {where}")
    except ContractError as exc:
        raise ContractError(f"{exc}{UNREADABLE_HINT}") from None
    generation = doc.get("generation", 1)  # written before generations existed: the first
    if not isinstance(generation, int) or isinstance(generation, bool) or generation < 1:
        raise ContractError(f"contract {where}: its generation {generation!r} is not a positive integer")
    digest = doc.get("digest")
    return Stored(contract, generation, doc.get("written_by"), doc.get("written_at"),
                  written_digest=digest if isinstance(digest, str) else None)


def _next(expected: int, generation: int | None) -> int:
    if generation is None:
        return expected + 1
    if generation <= expected:
        raise StoreError(f"a contract's generation only grows: {generation} after {expected}")
    return generation


def _same(stored: Stored, contract: Contract) -> bool:
    return stored.contract is not None and stored.contract.to_dict() == contract.to_dict()


def _conflict(group: str, where: str, expected: int, found: Stored) -> ConflictError:
    by = f" by {found.written_by}" if found.written_by else ""
    at = f" at {found.written_at}" if found.written_at else ""
    return ConflictError(f"the contract of group {group} changed while this run planned ({where}): generation "
                         f"{found.generation} was written{by}{at}, this run read generation {expected}; nothing was "
                         "written - run it again to plan against the new contract", group, expected, found.generation)


# ------------------------------------------------------------------------------------------------ file store
def default_directory() -> str:
    base = os.environ.get("XDG_DATA_HOME") or os.path.join(os.path.expanduser("~"), ".local", "share")
    return os.path.join(base, "cpucompat", "contracts")


class FileStore:
    """One JSON file per group in ``directory``; ``former``: folders an older release kept contracts in (read only)."""

    kind = "file"

    def __init__(self, directory: str | None = None, former: tuple[str, ...] = (), lock_timeout: float = LOCK_TIMEOUT) -> None:
        self.directory = os.path.abspath(os.path.expanduser(directory or default_directory()))
        self.former = tuple(os.path.abspath(d) for d in former if os.path.abspath(d) != self.directory)
        self.lock_timeout = lock_timeout

    def where(self, group: str) -> str:
        return os.path.join(self.directory, f"{check_group(group)}.json")

    @staticmethod
    def _read_file(path: str) -> Stored | None:
        try:
            with open(path, encoding="utf-8") as fh:
                text = fh.read()
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise StoreError(f"contract {path} cannot be read: {exc.strerror or exc}") from exc
        return parse(text, path)

    def read(self, group: str) -> Stored:
        stored = self._read_file(self.where(group))
        if stored is not None:
            return stored
        for directory in self.former:
            path = os.path.join(directory, f"{group}.json")
            old = self._read_file(path)
            if old is not None:
                # Generation 0: the store has none yet; the next write moves it in.
                return Stored(old.contract, 0, old.written_by, old.written_at, moved_from=path)
        return Stored(None, 0)

    def _lock(self, group: str) -> int:
        path = os.path.join(self.directory, f".{group}.lock")
        try:
            os.makedirs(self.directory, exist_ok=True)
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            raise StoreError(f"contract store {self.directory} cannot be written: {exc.strerror or exc}") from exc
        deadline = time.monotonic() + self.lock_timeout
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return fd
            except OSError as exc:
                if exc.errno not in (errno.EAGAIN, errno.EACCES) or time.monotonic() > deadline:
                    os.close(fd)
                    raise StoreError(f"the contract of group {group} is locked by another run for more than "
                                     f"{self.lock_timeout:.0f} s ({path})") from exc
                time.sleep(0.05)

    def write(self, group: str, contract: Contract, expected: int, generation: int | None = None) -> int:
        new_generation = _next(expected, generation)
        path = self.where(group)
        fd = self._lock(group)
        try:
            current = self._read_file(path) or Stored(None, 0)
            if current.generation != expected:
                raise _conflict(group, path, expected, current)
            if _same(current, contract) and generation is None:
                return current.generation
            text = json.dumps(document(contract, new_generation, writer(), now_iso()), indent=2, sort_keys=True) + "\n"
            try:
                write_atomic(path, text, mode=0o644, durable=True, prefix=f".{group}.json.")
            except OSError as exc:
                raise StoreError(f"contract {path} cannot be written: {exc.strerror or exc}") from exc
            return new_generation
        finally:
            os.close(fd)  # releases the lock


# ------------------------------------------------------------------------------------------------ Redis store
# KEYS[1]: the group's key; ARGV[1]: the generation this run read; ARGV[2]: the document to write (its generation is
# ARGV[3]), ARGV[3]: the new generation.
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
        return f"{self.label} key {self.prefix}{check_group(group)}"

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

    def _call(self, what: str, group: str, fn: Any) -> Any:
        try:
            return fn(self.client())
        except StoreError:
            raise
        except Exception as exc:  # pylint: disable=broad-exception-caught  # redis raises its own hierarchy
            raise StoreError(f"contract store {self.label} cannot {what} the contract of group {group}: "
                             f"{type(exc).__name__}: {exc}; nothing was written") from exc

    def read(self, group: str) -> Stored:
        key = self.prefix + check_group(group)
        raw = self._call("read", group, lambda c: c.get(key))
        if raw is None:
            return Stored(None, 0)
        return parse(raw.decode("utf-8") if isinstance(raw, bytes) else str(raw), self.where(group))

    def write(self, group: str, contract: Contract, expected: int, generation: int | None = None) -> int:
        new_generation = _next(expected, generation)
        key = self.prefix + check_group(group)
        current = self.read(group)
        if current.generation == expected and _same(current, contract) and generation is None:
            return expected
        text = json.dumps(document(contract, new_generation, writer(), now_iso()), sort_keys=True)
        ok, now, found = self._call("write", group, lambda c: c.eval(_CAS, 1, key, str(expected), text, str(new_generation)))
        if not int(ok):
            stored = parse(found.decode("utf-8") if isinstance(found, bytes) else str(found), self.where(group)) if found \
                else Stored(None, int(now))
            raise _conflict(group, self.where(group), expected, stored)
        return int(now)


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
