# Copyright (c) 2026 cpucompat.cluster contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""One libvirtd serves every test process on this machine (each pytest-xdist worker, other runs): a test that stops it
holds this lock exclusively; every other test holds it shared (tests/conftest.py takes it around each test). Two
``flock`` files: the gate makes a waiting exclusive holder block new shared ones, so a stream of short tests never
starves it. Never nest two holds in one process."""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager

# Beside the system's lock files, not in a test process's own TMPDIR: every process on the machine must see the same ones.
FOLDER = "/run/lock" if os.path.isdir("/run/lock") else "/tmp"
GATE, LOCK = (os.path.join(FOLDER, f"cpucompat-libvirtd{suffix}.lock") for suffix in (".gate", ""))


def _open(path: str) -> int:
    return os.open(path, os.O_RDWR | os.O_CREAT, 0o666)


@contextmanager
def held(exclusive: bool = False) -> Iterator[None]:
    gate, lock = _open(GATE), _open(LOCK)
    try:
        fcntl.flock(gate, fcntl.LOCK_EX)
        fcntl.flock(lock, fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH)
        fcntl.flock(gate, fcntl.LOCK_UN)
        yield
    finally:
        os.close(lock)
        os.close(gate)


DOMAINS = os.path.join(FOLDER, "cpucompat-libvirt-domains.lock")


@contextmanager
def domains() -> Iterator[None]:
    """Held by every test that defines, starts, removes or lists libvirt domains (the xdist group "libvirt" of
    tests/conftest.py), one at a time on this machine, whichever run it belongs to; taken before :func:`held`."""
    fd = _open(DOMAINS)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)
