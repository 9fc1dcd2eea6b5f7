# Copyright (c) 2026 cpucompat.cluster contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Shared pytest set-up: import the collection from this source tree, helpers for live QEMU and processes."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from typing import Any

import pytest
from ansible.parsing.dataloader import DataLoader
from ansible.playbook.play_context import PlayContext
from ansible.playbook.task import Task
from ansible.template import Templar

TESTS = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(TESTS)
sys.path.insert(0, TESTS)
# pylint: disable=wrong-import-position
from utils.source_tree import SOURCE_COLLECTIONS  # noqa: E402

# The source tree, never an installed copy: a plain pytest after an edit tests the edit. ansible-playbook runs of the
# integration tests see the same tree (utils.source_tree links it as ansible_collections/cpucompat/cluster).
sys.path.insert(0, SOURCE_COLLECTIONS)
os.environ["ANSIBLE_COLLECTIONS_PATH"] = SOURCE_COLLECTIONS
# Ansible's own collection finder, before anything imports the collection: the adapters' tests load plugins through
# Ansible's loaders, which need the collection imported the way Ansible imports it (with its metadata).
from ansible.plugins.loader import action_loader, connection_loader, init_plugin_loader  # noqa: E402

init_plugin_loader([SOURCE_COLLECTIONS])

from ansible_collections.cpucompat.cluster.plugins.module_utils.probe._fingerprint import kvm_usable  # noqa: E402
from utils.qmp_replay import ReplayServer  # noqa: E402
from utils.recordings import load  # noqa: E402

KVM = pytest.mark.skipif(not kvm_usable(), reason="/dev/kvm is missing or not usable: KVM path not testable here")


def qemu_processes() -> set[int]:
    """PIDs of running qemu-system-* processes started by the probe (-machine none)."""
    out = subprocess.run(["pgrep", "-f", "qemu-system-.*-machine none"], capture_output=True, text=True, check=False)
    return {int(p) for p in out.stdout.split()}


@pytest.fixture
def no_leftover_qemu() -> Iterator[None]:
    """Fail the test when a probe QEMU outlives it."""
    before = qemu_processes()
    yield
    leftover = qemu_processes() - before
    assert not leftover, f"QEMU processes outlived the probe: {sorted(leftover)}"


@pytest.fixture
def sockdir() -> Iterator[str]:
    with tempfile.TemporaryDirectory(prefix="cpucompat-test-") as tmp:
        yield tmp


@pytest.fixture
def replay(sockdir: str):
    """Factory: serve a named recording on a fresh socket; stopped at teardown."""
    servers: list[ReplayServer] = []

    def start(name: str, fault: str | None = None) -> ReplayServer:
        server = ReplayServer(load(name), os.path.join(sockdir, f"{name}-{len(servers)}.sock"), fault=fault).start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()


@pytest.fixture(scope="session")
def action_plugin():
    """Factory: the collection's action plugin ``name`` for a task with ``args``, on a real local connection."""
    loader = DataLoader()

    def make(name: str, args: dict[str, Any], **keywords: Any) -> Any:
        """``keywords``: task keywords such as ``run_once=True``."""
        task = Task.load({"action": f"cpucompat.cluster.{name}", "args": args, **keywords}, loader=loader)
        context = PlayContext()
        connection = connection_loader.get("local", context, sys.stdin)
        return action_loader.get(f"cpucompat.cluster.{name}", task=task, connection=connection, play_context=context,
                                 loader=loader, templar=Templar(loader=loader), shared_loader_obj=None)

    return make
