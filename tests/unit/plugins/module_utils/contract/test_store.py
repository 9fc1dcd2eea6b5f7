# Copyright (c) 2026 cpucompat.cluster contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The contract stores (a folder and a real redis-server) and the domain stamps: compare-and-swap, lost stores, rebuild."""

from __future__ import annotations

import fcntl
import json
import os
import threading

import pytest

from ansible_collections.cpucompat.cluster.plugins.module_utils.contract import _contract, _stamps, _store
from ansible_collections.cpucompat.cluster.plugins.module_utils.engine._baseline import baseline_of
from ansible_collections.cpucompat.cluster.plugins.module_utils.contract._domain import domains_of
from utils.recordings import facts_of
from utils.redis_server import RedisServer

GOLD = facts_of("x86_64-xeon-gold-6130")
BROADWELL = facts_of("x86_64-xeon-e5-2650-v4")


def _pinned(hosts: dict) -> _contract.Contract:
    return _contract.pinned("g", baseline_of(hosts).guest, sorted(hosts), "test")


def test_compare_and_swap_names_the_winner_and_writes_nothing(store) -> None:
    first, second = _pinned({"gold": GOLD}), _pinned({"gold": GOLD, "bdw": BROADWELL})
    assert store.write("g", first, 0) == 1
    read_by_a = store.read("g")
    read_by_b = store.read("g")
    assert store.write("g", second, read_by_a.generation) == 2
    with pytest.raises(_store.ConflictError, match="generation 2 was written by .*@.* at .*this run read generation 1") as exc:
        store.write("g", first, read_by_b.generation)
    assert (exc.value.expected, exc.value.found) == (1, 2)
    assert store.read("g").contract.to_dict() == second.to_dict(), "the loser wrote nothing"
    with pytest.raises(_store.ConflictError):
        store.write("g", first, 0)  # a second first pin is a conflict too


def test_a_rebuild_sets_the_generation_the_stamps_carry(store) -> None:
    contract = _pinned({"gold": GOLD})
    assert store.write("g", contract, 0, generation=7) == 7 and store.read("g").generation == 7
    with pytest.raises(_store.StoreError, match="only grows"):
        store.write("g", contract, 7, generation=3)


def test_the_file_store_serialises_writers_with_a_lock(tmp_path) -> None:
    store = _store.FileStore(str(tmp_path), lock_timeout=0.3)
    contract = _pinned({"gold": GOLD})
    os.makedirs(tmp_path, exist_ok=True)
    with open(tmp_path / ".g.lock", "w", encoding="utf-8") as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        with pytest.raises(_store.StoreError, match="locked by another run for more than 0 s"):
            store.write("g", contract, 0)
        assert not (tmp_path / "g.json").exists()
        # released while a writer waits: it proceeds
        writer = threading.Thread(target=lambda: _store.FileStore(str(tmp_path), lock_timeout=5).write("g", contract, 0))
        writer.start()
        threading.Event().wait(0.2)
        fcntl.flock(held, fcntl.LOCK_UN)
        writer.join(5)
    assert json.loads((tmp_path / "g.json").read_text())["generation"] == 1


def test_a_contract_in_the_former_folder_is_read_and_moved_on_the_next_write(tmp_path) -> None:
    old_dir = tmp_path / "inventory" / "cpucompat-contracts"
    old_dir.mkdir(parents=True)
    contract = _pinned({"gold": GOLD})
    (old_dir / "g.json").write_text(_contract.render_text(contract))
    store = _store.FileStore(str(tmp_path / "store"), former=(str(old_dir),))
    stored = store.read("g")
    assert stored.generation == 0 and stored.moved_from == str(old_dir / "g.json")
    assert stored.contract.to_dict() == contract.to_dict()
    assert store.write("g", stored.contract, stored.generation) == 1 and store.read("g").moved_from is None


def test_an_unreachable_redis_is_a_clear_error(tmp_path) -> None:
    server = RedisServer(str(tmp_path))
    store = _store.RedisStore(server.connection, timeout=1)
    server.stop()
    with pytest.raises(_store.StoreError, match=r"contract store redis://127.0.0.1:\d+/0 cannot read the contract of group g: "
                                                r"ConnectionError"):
        store.read("g")
    with pytest.raises(_store.StoreError, match=r"cannot write the power-cycle record of group g: ConnectionError"):
        store.swap_text("power_cycle/g", "{}", 0, 1, "g")


def test_one_compare_and_swap_for_every_document(tmp_path) -> None:
    """The file store's swap compares the stored document's own generation, for a contract as for what is kept beside
    it: a stale expected generation writes nothing and returns what is stored."""
    store = _store.FileStore(str(tmp_path))
    assert store.swap_text("power_cycle/g", '{"generation": 1}\n', 0, 1, "g") == (True, 1, None)
    assert store.swap_text("power_cycle/g", '{"generation": 2}\n', 0, 1, "g") == (False, 1, '{"generation": 1}\n')
    assert store.read_text("power_cycle/g") == '{"generation": 1}\n' and store.read_text("g") is None
    with open(tmp_path / "power_cycle" / "g.json", "w", encoding="utf-8") as fh:
        fh.write("not json")
    with pytest.raises(_store.StoreError, match=r"power_cycle/g.json is not JSON"):
        store.swap_text("power_cycle/g", '{"generation": 2}\n', 1, 2, "g")


@pytest.mark.parametrize("connection, expected", [
    ("localhost:6379:0", {"host": "localhost", "port": 6379, "db": 0, "password": None}),
    ("10.0.0.5:6380:2:s3cret", {"host": "10.0.0.5", "port": 6380, "db": 2, "password": "s3cret"}),
    ("redis://:pw@cache:6379/1", {"url": "redis://:pw@cache:6379/1"}),
])
def test_connections_in_the_fact_cache_form_or_as_urls(connection: str, expected: dict) -> None:
    assert _store.parse_connection(connection) == expected


# ------------------------------------------------------------------------------------------------ stamps
def _stamped(contract: _contract.Contract, generation: int, host: str = "hv1", name: str = "web1") -> dict:
    return {host: [{"name": name, "stamp": {"group": contract.group, "generation": generation, "digest": contract.digest,
                                            "pinned_at": contract.pinned_at, "level": contract.cpu.level()}}]}


def test_a_lost_store_with_stamped_domains_is_refused_and_named() -> None:
    contract = _pinned({"gold": GOLD})
    stamps = _stamps.found("g", domains_of(_stamped(contract, 3)))
    why = _stamps.refusal("g", _store.Stored(None, 0), stamps, "/store/g.json", pin=False)
    assert "no contract in the store (/store/g.json), but 1 of its domains (on hv1) carry the stamp" in why
    assert "cpucompat.cluster.rebuild_contract -e cpucompat_group=g" in why and "cpucompat_contract_pin=true" in why
    assert _stamps.refusal("g", _store.Stored(None, 0), stamps, "x", pin=True) is None
    assert _stamps.refusal("g", _store.Stored(None, 0), _stamps.found("other", domains_of(_stamped(contract, 3))), "x", False) is None


def test_an_older_store_than_the_stamps_is_refused() -> None:
    old, new = _pinned({"gold": GOLD, "bdw": BROADWELL}), _pinned({"gold": GOLD})
    stamps = _stamps.found("g", domains_of(_stamped(new, 5)))
    why = _stamps.refusal("g", _store.Stored(old, 4), stamps, "s", pin=False)
    assert "holds generation 4" in why and "carry generation 5" in why
    assert _stamps.refusal("g", _store.Stored(new, 5), stamps, "s", pin=False) is None


def test_rebuild_takes_the_newest_stamps_and_checks_their_digest() -> None:
    old, new = _pinned({"gold": GOLD, "bdw": BROADWELL}), _pinned({"gold": GOLD})
    domains = {**_stamped(old, 2, "hv1"), **_stamped(new, 3, "hv2")}
    contract, generation, notes = _stamps.rebuilt("g", _stamps.found("g", domains_of(domains)), _store.Stored(None, 0), "s")
    assert generation == 3 and contract.digest == new.digest and contract.cpu.features == new.cpu.features
    assert contract.history[-1]["action"] == "rebuild" and "older generations (2)" in notes[1]
    forged = _stamped(new, 4, "hv3")
    forged["hv3"][0]["stamp"]["level"] = old.cpu.level()
    with pytest.raises(_contract.ContractError, match="does not match its digest"):
        _stamps.rebuilt("g", _stamps.found("g", domains_of(forged)), _store.Stored(None, 0), "s")
    with pytest.raises(_contract.ContractError, match="as new as the domains' stamps"):
        _stamps.rebuilt("g", _stamps.found("g", domains_of(domains)), _store.Stored(new, 3), "s")
    with pytest.raises(_contract.ContractError, match="nothing to rebuild from"):
        _stamps.rebuilt("g", [], _store.Stored(None, 0), "s")
