# Copyright (c) 2026 cpucompat.cluster contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""What the contract tests share: a contract store of each kind, a folder and a real redis-server on a loopback port."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from ansible_collections.cpucompat.cluster.plugins.module_utils.contract import _store
from utils.redis_server import RedisServer


@pytest.fixture(params=["file", "redis"])
def store(request: pytest.FixtureRequest, tmp_path) -> Iterator[_store.ContractStore]:  # type: ignore[no-untyped-def]
    if request.param == "file":
        yield _store.FileStore(str(tmp_path / "contracts"))
        return
    server = RedisServer(str(tmp_path))
    try:
        yield _store.RedisStore(server.connection)
    finally:
        server.stop()
