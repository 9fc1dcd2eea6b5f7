# Copyright (c) 2026 cpucompat.cluster contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""A group's contract as a store holds it: :class:`Stored`, the store's errors, the stored document and the
compare-and-swap helpers both stores share. Private.
"""

from __future__ import annotations

import getpass
import json
import os
import socket
from dataclasses import dataclass
from typing import Any

from ..deploy._stamp import group_name_problem
from ._contract import Contract, ContractError


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


def writer() -> str:
    """Who writes: user@host of the controller."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = str(os.getuid())
    return f"{user}@{socket.gethostname()}"


def check_group(group: str) -> str:
    """``group``, when it can name a stored contract (the one group-name rule, deploy/_stamp.group_name_problem)."""
    problem = group_name_problem(group)
    if problem is not None:
        raise ContractError(f"group name {group!r} cannot name a stored contract: {problem}")
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


def generation_of(text: str, where: str) -> int:
    """The ``generation`` a stored document carries (1 for one written before generations existed): what a
    compare-and-swap compares, whatever the document (a contract, a power cycle's progress)."""
    try:
        doc = json.loads(text)
    except ValueError as exc:
        raise StoreError(f"{where} is not JSON: {exc}") from exc
    generation = doc.get("generation", 1) if isinstance(doc, dict) else None
    if not isinstance(generation, int) or isinstance(generation, bool) or generation < 1:
        raise StoreError(f"{where}: its generation {generation!r} is not a positive integer")
    return generation


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
