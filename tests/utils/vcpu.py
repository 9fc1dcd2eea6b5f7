# Copyright (c) 2026 cpucompat.cluster contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Real vCPUs of real QEMUs for the observation judges: start a guest CPU paused, read its CPUID words independently
of the collection's observation path, migrate it live (or save and restore it) from one QEMU to another.

Guests run no code (``-S``, no disk, 16 MiB); a migration of a paused guest moves its whole state (CPU registers, the
machine's devices, RAM), which is what a live migration's destination has to accept. QEMU processes run in their own
process group and are killed on every exit path (the probe's spawn_qemu).
"""

from __future__ import annotations

import contextlib
import os
import tempfile
import time
from collections.abc import Iterator
from typing import Any

from ansible_collections.cpucompat.cluster.plugins.module_utils.probe import _fingerprint, _probe

ACCEL = "kvm" if _fingerprint.kvm_usable() else "tcg"


def key(word: dict[str, Any]) -> str:
    """A QOM feature word's key, computed here independently of the collection (``0x7.0x0.EBX``)."""
    return f"{word['cpuid-input-eax']:#x}.{word.get('cpuid-input-ecx', 0):#x}.{word['cpuid-register']}"


def words(client: Any, prop: str = "feature-words") -> dict[str, int]:
    path = client.execute("query-cpus-fast")[0]["qom-path"]
    return {key(w): w["features"] for w in client.execute("qom-get", {"path": path, "property": prop})}


@contextlib.contextmanager
def guest(binary: str, machine: str, cpu: str, accel: str = ACCEL, incoming: bool = False,
          timeout: float = 30) -> Iterator[Any]:
    """A paused guest of ``cpu`` (a ``-cpu`` value); ``incoming``: waiting for a migration (``-incoming defer``)."""
    extra = ("-cpu", cpu, "-m", "16", *(("-incoming", "defer") if incoming else ()))
    with _probe.spawn_qemu(binary, accel, timeout, machine=machine, extra_args=extra) as client:
        yield client


def _wait(client: Any, what: str, timeout: float = 60) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        state = client.execute("query-migrate")
        status = state.get("status")
        if status == "completed":
            return state
        if status in ("failed", "cancelled"):
            raise AssertionError(f"{what}: migration {status}: {state.get('error-desc', state)}")
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: migration still {status} after {timeout} s")
        time.sleep(0.02)


def _wait_incoming(client: Any, what: str, timeout: float = 60) -> None:
    """The destination has loaded the whole state (it then stays paused, as the source was)."""
    deadline = time.monotonic() + timeout
    while True:
        status = client.execute("query-status")["status"]
        if status in ("paused", "prelaunch", "running") and client.execute("query-migrate").get("status") in ("completed", None):
            return
        if status == "inmigrate" and time.monotonic() < deadline:
            time.sleep(0.02)
            continue
        if status not in ("inmigrate",):
            return
        raise AssertionError(f"{what}: the destination is still {status} after {timeout} s")


def migrate(src: Any, dst: Any, what: str) -> None:
    """Live-migrate ``src`` into ``dst`` (started with ``incoming=True``) over a Unix socket."""
    with tempfile.TemporaryDirectory(prefix="cpucompat-mig-") as tmp:
        uri = f"unix:{os.path.join(tmp, 'mig.sock')}"
        dst.execute("migrate-incoming", {"uri": uri})
        src.execute("migrate", {"uri": uri})
        _wait(src, what)
        _wait_incoming(dst, what)


def save_restore(src: Any, dst: Any, what: str) -> int:
    """Save ``src``'s state to a file and restore it into ``dst`` (``incoming=True``); the file's size."""
    with tempfile.TemporaryDirectory(prefix="cpucompat-save-") as tmp:
        path = os.path.join(tmp, "state")
        src.execute("migrate", {"uri": f"exec:cat > {path}"})
        _wait(src, what)
        size = os.path.getsize(path)
        dst.execute("migrate-incoming", {"uri": f"exec:cat {path}"})
        _wait_incoming(dst, what)
        return size
