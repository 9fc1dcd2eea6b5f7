# Copyright (c) 2026 cpucompat.cluster contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""A QMP replay server: serves a recorded QEMU session over a real Unix socket.

The probe talks to it exactly as to QEMU (greeting, qmp_capabilities, pipelined
commands with ids). Commands are answered from the recording; a command the
recording does not hold gets the GenericError a QEMU would give for something it
cannot answer, naming the missing key, so nothing is invented.

Faults for tests: ``hang`` (accept, never greet), ``garbage`` (a non-JSON line),
``not-qmp`` (a JSON greeting without "QMP"), ``truncate`` (half a reply, then close),
``close`` (close right after the greeting).

Run standalone: python qmp_replay.py RECORDING.json SOCKET_PATH
"""

from __future__ import annotations

import json
import os
import socket
import sys
import threading
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
# Standalone (make run's demo hosts), the collection is imported from this source tree like in the tests.
from utils.source_tree import SOURCE_COLLECTIONS  # noqa: E402  pylint: disable=wrong-import-position

if SOURCE_COLLECTIONS not in sys.path:
    sys.path.insert(1, SOURCE_COLLECTIONS)

from ansible_collections.cpucompat.cluster.plugins.module_utils.probe._session import Query  # noqa: E402  pylint: disable=wrong-import-position
from utils.recordings import served_session  # noqa: E402  pylint: disable=wrong-import-position


class ReplayServer:
    """Serve one recording on ``path`` until stop()."""

    def __init__(self, recording: dict[str, Any], path: str, fault: str | None = None) -> None:
        self.recording = recording
        session = served_session(recording)
        self.replies, self.errors = session.replies, session.errors
        self.path = path
        self.fault = fault
        self.commands: list[str] = []
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._sock.bind(path)
        self._sock.listen(8)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._conns: list[socket.socket] = []

    def start(self) -> ReplayServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        for conn in self._conns:
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        self._sock.close()
        self._thread.join(timeout=5)
        if os.path.exists(self.path):
            os.unlink(self.path)

    def __enter__(self) -> ReplayServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _serve(self) -> None:
        self._sock.settimeout(0.05)
        while not self._stop.is_set():
            try:
                conn = self._sock.accept()[0]
            except OSError:
                continue
            self._conns.append(conn)
            threading.Thread(target=self._handle, args=(conn,), daemon=True).start()

    def _greeting(self) -> dict[str, Any]:
        version = self.replies.get(Query("query-version")) or {
            "qemu": {"major": 0, "minor": 0, "micro": 0}, "package": "replay: version not recorded"}
        return {"QMP": {"version": version, "capabilities": []}}

    def answer(self, command: str, arguments: dict[str, Any]) -> dict[str, Any]:
        if command == "qmp_capabilities":
            return {"return": {}}
        query = Query.from_request(command, arguments)
        self.commands.append(query.encode())
        if query in self.replies:
            return {"return": self.replies[query]}
        if query in self.errors:
            return {"error": self.errors[query]}
        return {"error": {"class": "GenericError",
                          "desc": f"replay: {self.recording['host']} has no recorded reply for {query.encode()}"}}

    def _handle(self, conn: socket.socket) -> None:
        with conn:
            if self.fault == "hang":
                self._stop.wait()
                return
            if self.fault == "garbage":
                conn.sendall(b"SSH-2.0-OpenSSH_9.2\r\n")
                return
            if self.fault == "not-qmp":
                conn.sendall(b'{"hello": "world"}\n')
                return
            conn.sendall(json.dumps(self._greeting()).encode() + b"\n")
            if self.fault == "close":
                return
            buf = b""
            decoder = json.JSONDecoder()
            while not self._stop.is_set():
                try:
                    chunk = conn.recv(65536)
                except OSError:
                    return
                if not chunk:
                    return
                buf += chunk
                # Like QEMU's streaming parser: objects need not end in a newline.
                while True:
                    text = buf.decode(errors="replace").lstrip()
                    if not text:
                        buf = b""
                        break
                    try:
                        msg, end = decoder.raw_decode(text)
                    except ValueError:
                        break
                    buf = text[end:].encode()
                    reply = self.answer(msg["execute"], msg.get("arguments") or {})
                    if "id" in msg:
                        reply["id"] = msg["id"]
                    data = json.dumps(reply).encode() + b"\n"
                    if self.fault == "truncate" and msg["execute"] != "qmp_capabilities":
                        conn.sendall(data[: len(data) // 2])
                        return
                    conn.sendall(data)


def main() -> None:
    with open(sys.argv[1], encoding="utf-8") as fh:
        recording = json.load(fh)
    server = ReplayServer(recording, sys.argv[2])
    server.start()
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()


if __name__ == "__main__":
    main()
