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

from ._contract import now_iso
from ._power_cycle import PowerCycleError, Progress
from ._store import ContractStore
from ._stored import ConflictError, check_group, writer

PREFIX = "power_cycle/"  # a group name has no "/": never a contract's name


def where(store: ContractStore, group: str) -> str:
    """Where a group's progress lives, for people."""
    return store.place(f"{PREFIX}{check_group(group)}")


def _parse(text: str, place: str) -> tuple[Progress, int]:
    try:
        doc = json.loads(text)
    except ValueError as exc:
        raise PowerCycleError(f"power-cycle progress {place} is not JSON: {exc}; move it aside to start anew") from exc
    generation = doc.get("generation") if isinstance(doc, dict) else None
    if not isinstance(generation, int) or isinstance(generation, bool) or generation < 1:
        raise PowerCycleError(f"power-cycle progress {place}: its generation {generation!r} is not a positive integer")
    return Progress.from_dict(doc, place), generation


def read(store: ContractStore, group: str) -> tuple[Progress | None, int]:
    """The stored progress and its generation (None and 0: none yet)."""
    text = store.read_text(f"{PREFIX}{check_group(group)}")
    return (None, 0) if text is None else _parse(text, where(store, group))


def _conflict(group: str, place: str, expected: int, found: int, by: str | None = None) -> ConflictError:
    return ConflictError(f"the power-cycle progress of group {group} changed while this run worked ({place}): generation "
                         f"{found} was written{' by ' + by if by else ''}, this run read generation {expected}; nothing was "
                         "written - another run cycles this group: let it finish, then run again", group, expected, found)


def write(store: ContractStore, group: str, progress: Progress, expected: int) -> int:
    """Write ``progress`` if the stored generation is still ``expected``; the new generation. The store's own
    compare-and-swap, under the group's contract lock in a file store."""
    doc = {**progress.to_dict(), "generation": expected + 1, "written_by": writer(), "written_at": now_iso()}
    text = json.dumps(doc, indent=2, sort_keys=True) + "\n"
    ok, found, _text = store.swap_text(f"{PREFIX}{check_group(group)}", text, expected, expected + 1, group)
    if not ok:
        raise _conflict(group, where(store, group), expected, found)
    return expected + 1
