# Copyright (c) 2026 cpucompat.cluster contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
""":class:`FileStore`: one ``<group>.json`` per group in a folder outside any inventory directory (by default
``$XDG_DATA_HOME/cpucompat/contracts``, i.e. ``~/.local/share/cpucompat/contracts``). A write holds an exclusive
``flock`` on ``.<group>.lock`` in that folder while it compares and replaces the file (written to a temporary file,
flushed, renamed): no reader ever sees half a file. A contract found only in a former location (the
``cpucompat-contracts`` folder beside the inventory, the default before 0.3.0) is read from there and moved into the
store on the next write.
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
import time

from .._atomic import write_atomic
from ._contract import Contract, now_iso
from ._stored import StoreError, Stored, _conflict, _next, _same, check_group, document, generation_of, parse, writer


LOCK_TIMEOUT = 60.0  # seconds a write waits for another run's write on the same group


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

    def _path(self, name: str) -> str:
        return os.path.join(self.directory, f"{name}.json")

    @staticmethod
    def _text(path: str) -> str | None:
        try:
            with open(path, encoding="utf-8") as fh:
                return fh.read()
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise StoreError(f"{path} cannot be read: {exc.strerror or exc}") from exc

    def place(self, name: str) -> str:
        """Where the document ``name`` lives, for people."""
        return self._path(name)

    def read_text(self, name: str) -> str | None:
        """The document stored under ``name`` (``<group>``, ``power_cycle/<group>``), None when there is none."""
        return self._text(self._path(name))

    def swap_text(self, name: str, text: str, expected: int, generation: int, lock: str) -> tuple[bool, int, str | None]:
        """Store ``text`` under ``name`` if the stored document's generation is still ``expected`` (0: none), holding
        the group ``lock``'s flock: ``(True, generation, None)``, or ``(False, the stored generation, its text)``."""
        path = self._path(name)
        fd = self._lock(lock)
        try:
            current = self._text(path)
            found = generation_of(current, path) if current is not None else 0
            if found != expected:
                return False, found, current
            try:
                os.makedirs(os.path.dirname(path), exist_ok=True)
                write_atomic(path, text, mode=0o644, durable=True, prefix=f".{os.path.basename(path)}.")
            except OSError as exc:
                raise StoreError(f"{path} cannot be written: {exc.strerror or exc}") from exc
            return True, generation, None
        finally:
            os.close(fd)  # releases the lock

    def _read_file(self, path: str) -> Stored | None:
        text = self._text(path)
        return None if text is None else parse(text, path)

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
        current = self._read_file(path) or Stored(None, 0)
        if current.generation == expected and _same(current, contract) and generation is None:
            return current.generation
        text = json.dumps(document(contract, new_generation, writer(), now_iso()), indent=2, sort_keys=True) + "\n"
        ok, found, found_text = self.swap_text(group, text, expected, new_generation, group)
        if not ok:
            raise _conflict(group, path, expected, parse(found_text, path) if found_text is not None else Stored(None, found))
        return new_generation
