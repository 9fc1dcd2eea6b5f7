# Copyright (c) 2026 cpucompat.cluster contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The one atomic writer: content, mode, durability, and nothing left behind when a write fails."""

from __future__ import annotations

import os
import stat

import pytest

from ansible_collections.cpucompat.cluster.plugins.module_utils import _atomic
from ansible_collections.cpucompat.cluster.plugins.module_utils._atomic import write_atomic


def _mode(path: str) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def test_text_and_bytes_are_written_whole(tmp_path) -> None:
    path = str(tmp_path / "report.md")
    assert write_atomic(path, "héllo\n| a |\n") == path
    with open(path, "rb") as fh:
        assert fh.read() == "héllo\n| a |\n".encode("utf-8")
    write_atomic(path, b"\x00\xffbytes")
    with open(path, "rb") as fh:
        assert fh.read() == b"\x00\xffbytes"
    assert os.listdir(tmp_path) == ["report.md"]


def test_the_mode_is_the_one_asked_whatever_the_umask(tmp_path) -> None:
    old = os.umask(0o077)
    try:
        write_atomic(str(tmp_path / "a.json"), "{}", mode=0o644)
        write_atomic(str(tmp_path / "b.json"), "{}", mode=0o600)
    finally:
        os.umask(old)
    assert _mode(str(tmp_path / "a.json")) == 0o644 and _mode(str(tmp_path / "b.json")) == 0o600


def test_the_replaced_file_keeps_no_old_bytes_and_a_relative_path_works(tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    write_atomic("group.json", "a much longer first version\n")
    write_atomic("group.json", "short\n", prefix=".group.json.")
    with open("group.json", encoding="utf-8") as fh:
        assert fh.read() == "short\n"
    assert sorted(os.listdir(".")) == ["group.json"]


def test_a_failed_write_leaves_the_old_file_and_no_temporary_file(tmp_path, monkeypatch) -> None:
    path = str(tmp_path / "contract.json")
    write_atomic(path, "old\n")

    def no_replace(src: str, dst: str) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(_atomic.os, "replace", no_replace)
    with pytest.raises(OSError, match="No space left"):
        write_atomic(path, "new\n", durable=True)
    assert os.listdir(tmp_path) == ["contract.json"]
    with open(path, encoding="utf-8") as fh:
        assert fh.read() == "old\n"


def test_an_error_while_writing_removes_the_temporary_file(tmp_path) -> None:
    path = str(tmp_path / "cache.json")
    with pytest.raises(TypeError):
        write_atomic(path, {"not": "text"})  # type: ignore[arg-type]
    assert not os.listdir(tmp_path)


def test_a_missing_folder_raises_and_creates_nothing(tmp_path) -> None:
    with pytest.raises(FileNotFoundError):
        write_atomic(str(tmp_path / "absent" / "x.json"), "{}")
    assert not os.listdir(tmp_path)


def test_durable_fsyncs_the_file_and_its_folder(tmp_path, monkeypatch) -> None:
    synced: list[bool] = []
    real = os.fsync

    def fsync(fd: int) -> None:
        synced.append(stat.S_ISDIR(os.fstat(fd).st_mode))
        real(fd)

    monkeypatch.setattr(_atomic.os, "fsync", fsync)
    write_atomic(str(tmp_path / "a"), "x")
    assert synced == [False]
    write_atomic(str(tmp_path / "b"), "x", durable=True)
    assert synced == [False, False, True]
