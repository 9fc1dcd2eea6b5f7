# Copyright (c) 2026 cpucompat.cluster contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""A group's power-cycle progress, kept beside its contract in the same store with the same compare-and-swap. Private.

- file store: ``power_cycle/<group>.json`` in the contracts' folder (a group name has no ``/``: never a contract's
  file), written under the contract's own ``flock`` (``.<group>.lock``), atomically;
- Redis: the key ``<prefix>power_cycle/<group>``, compared and written by one server-side script.

Each write carries a generation; a write that did not read the stored one is refused (:class:`ConflictError`), naming
who wrote in between, and nothing is written.
"""

from __future__ import annotations

import json
import os
from typing import Any

from .._atomic import write_atomic
from ._contract import now_iso
from ._file_store import FileStore
from ._power_cycle import PowerCycleError, Progress
from ._redis_store import RedisStore
from ._stored import ConflictError, StoreError, check_group, writer

_CAS = """
local cur = redis.call('GET', KEYS[1])
local gen = 0
if cur then
  local doc = cjson.decode(cur)
  gen = tonumber(doc['generation']) or 0
end
if gen ~= tonumber(ARGV[1]) then
  return {0, gen}
end
redis.call('SET', KEYS[1], ARGV[2])
return {1, tonumber(ARGV[1]) + 1}
"""


def where(store: Any, group: str) -> str:
    """Where a group's progress lives, for people."""
    check_group(group)
    if isinstance(store, FileStore):
        return os.path.join(store.directory, "power_cycle", f"{group}.json")
    if isinstance(store, RedisStore):
        return f"{store.label} key {store.prefix}power_cycle/{group}"
    raise StoreError(f"no power-cycle progress in a {getattr(store, 'kind', type(store).__name__)} store")


def _parse(text: str, place: str) -> tuple[Progress, int]:
    try:
        doc = json.loads(text)
    except ValueError as exc:
        raise PowerCycleError(f"power-cycle progress {place} is not JSON: {exc}; move it aside to start anew") from exc
    generation = doc.get("generation") if isinstance(doc, dict) else None
    if not isinstance(generation, int) or isinstance(generation, bool) or generation < 1:
        raise PowerCycleError(f"power-cycle progress {place}: its generation {generation!r} is not a positive integer")
    return Progress.from_dict(doc, place), generation


def read(store: Any, group: str) -> tuple[Progress | None, int]:
    """The stored progress and its generation (None and 0: none yet)."""
    place = where(store, group)
    if isinstance(store, FileStore):
        try:
            with open(place, encoding="utf-8") as fh:
                text = fh.read()
        except FileNotFoundError:
            return None, 0
        except OSError as exc:
            raise StoreError(f"power-cycle progress {place} cannot be read: {exc.strerror or exc}") from exc
    else:
        raw = store._call("read", group, lambda c: c.get(f"{store.prefix}power_cycle/{group}"))  # pylint: disable=protected-access
        if raw is None:
            return None, 0
        text = raw.decode("utf-8") if isinstance(raw, bytes) else str(raw)
    return _parse(text, place)


def _conflict(group: str, place: str, expected: int, found: int, by: str | None = None) -> ConflictError:
    return ConflictError(f"the power-cycle progress of group {group} changed while this run worked ({place}): generation "
                         f"{found} was written{' by ' + by if by else ''}, this run read generation {expected}; nothing was "
                         "written - another run cycles this group: let it finish, then run again", group, expected, found)


def write(store: Any, group: str, progress: Progress, expected: int) -> int:
    """Write ``progress`` if the stored generation is still ``expected``; the new generation."""
    place = where(store, group)
    doc = {**progress.to_dict(), "generation": expected + 1, "written_by": writer(), "written_at": now_iso()}
    text = json.dumps(doc, indent=2, sort_keys=True) + "\n"
    if isinstance(store, FileStore):
        fd = store._lock(group)  # pylint: disable=protected-access  # the contract's own lock
        try:
            stored, generation = read(store, group)
            if generation != expected:
                raise _conflict(group, place, expected, generation)
            del stored
            try:
                os.makedirs(os.path.dirname(place), exist_ok=True)
                write_atomic(place, text, mode=0o644, durable=True, prefix=f".{group}.json.")
            except OSError as exc:
                raise StoreError(f"power-cycle progress {place} cannot be written: {exc.strerror or exc}") from exc
            return expected + 1
        finally:
            os.close(fd)
    key = f"{store.prefix}power_cycle/{group}"
    ok, now = store._call("write", group, lambda c: c.eval(_CAS, 1, key, str(expected), text))  # pylint: disable=protected-access
    if not int(ok):
        raise _conflict(group, place, expected, int(now))
    return int(now)
