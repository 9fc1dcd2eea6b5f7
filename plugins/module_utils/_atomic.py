# Copyright (c) 2026 cpucompat.cluster contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The one atomic file writer of the collection (the report files, the probe cache, the contract store, the stack
files). Standard library only: modules import it on the managed host. Private to the collection."""

from __future__ import annotations

import os
import tempfile


def write_atomic(path: str, data: str | bytes, mode: int = 0o644, durable: bool = False, prefix: str | None = None) -> str:
    """Write ``data`` (text as UTF-8, or bytes) to ``path`` atomically: a reader sees the old file or the new one, never
    a part. The data goes to a temporary file in the same folder (named ``prefix`` + random; default ``.<name>.``),
    which is flushed and fsynced, given ``mode`` and renamed over ``path``. ``durable`` also fsyncs the folder, so
    the rename survives a crash. On any error the temporary file is removed, ``path`` is left as it was and the
    OSError is raised. Returns ``path``."""
    directory = os.path.dirname(path) or "."
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=prefix if prefix is not None else f".{os.path.basename(path)}.")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data.encode("utf-8") if isinstance(data, str) else data)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    if durable:
        dir_fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
    return path
