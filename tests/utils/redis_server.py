# Copyright (c) 2026 cpucompat.cluster contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""A real redis-server of the caller's own on a loopback port, holding nothing on disk unless asked (tests, benchmarks)."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time

import redis


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class RedisServer:
    """Debian's redis-server (tools/setup.sh installs it), started on a free loopback port; stop() ends it."""

    def __init__(self, workdir: str, persistent: bool = False, port: int | None = None) -> None:
        """``persistent``: every write reaches the append-only file before it is acknowledged, so a server killed and
        started again on the same ``workdir`` (and ``port``) has all of it."""
        binary = shutil.which("redis-server")
        assert binary, "redis-server is missing: tools/setup.sh installs Debian's redis-server"
        self.port = port or free_port()
        durability = ["--appendonly", "yes", "--appendfsync", "always"] if persistent else ["--appendonly", "no"]
        self.proc = subprocess.Popen([binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
                                      *durability, "--dir", workdir], stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL)
        self.client = redis.Redis(host="127.0.0.1", port=self.port)
        for _attempt in range(100):
            try:
                self.client.ping()
                return
            except redis.ConnectionError:
                time.sleep(0.05)
        self.stop()
        raise AssertionError("redis-server did not answer")

    @property
    def connection(self) -> str:
        """The fact_caching_connection of the community.general.redis cache plugin."""
        return f"127.0.0.1:{self.port}:0"

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(timeout=10)
