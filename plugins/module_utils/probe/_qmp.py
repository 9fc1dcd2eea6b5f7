# Copyright (c) 2026 cpucompat.cluster contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""A small synchronous QMP client over a Unix socket. Private to the collection.

Only the standard library is used so that the probe module needs nothing on a
hypervisor but Python and QEMU. Every read has a deadline; commands can be
pipelined (QEMU answers them in order), which keeps a probe fast.
"""

from __future__ import annotations

import json
import socket
import time
from dataclasses import dataclass
from typing import Any

from .._errors import QMPCommandError, QMPProtocolError, QMPTimeout

# A QMP reply larger than this is not something QEMU sends for the commands
# we issue (a full x86 expansion is ~20 KiB); it protects against a peer that
# streams garbage without newlines.
MAX_MESSAGE_BYTES = 8 * 1024 * 1024


@dataclass(frozen=True)
class Reply:
    """The outcome of one command: a return value or a QMP error."""

    command: str
    value: Any = None
    error_class: str | None = None
    error_desc: str | None = None

    @property
    def ok(self) -> bool:
        return self.error_class is None

    def unwrap(self) -> Any:
        if self.error_class is not None:
            raise QMPCommandError(self.command, self.error_class, self.error_desc or "")
        return self.value


class QMPClient:
    """QMP over an already connected stream socket."""

    def __init__(self, sock: socket.socket, peer: str, timeout: float, first_deadline: float | None = None) -> None:
        self._sock = sock
        self._peer = peer
        self._timeout = timeout
        # The handshake may have less than `timeout` left when QEMU took time to start.
        self._first_deadline = first_deadline
        self._buf = b""
        self._next_id = 0
        self.greeting: dict[str, Any] = {}

    @classmethod
    def connect(cls, path: str, timeout: float) -> QMPClient:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(timeout)
        try:
            sock.connect(path)
        except OSError as exc:
            sock.close()
            raise QMPProtocolError(f"cannot connect to QMP socket {path}: {exc.strerror or exc}") from exc
        return cls(sock, path, timeout)

    def close(self) -> None:
        try:
            self._sock.close()
        except OSError:
            pass

    def __enter__(self) -> QMPClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- wire -------------------------------------------------------------
    def _read_message(self, deadline: float, what: str) -> dict[str, Any]:
        while True:
            newline = self._buf.find(b"\n")
            if newline >= 0:
                line, self._buf = self._buf[:newline], self._buf[newline + 1:]
                if not line.strip():
                    continue
                try:
                    msg = json.loads(line)
                except ValueError as exc:
                    raise QMPProtocolError(
                        f"{self._peer} is not a QMP monitor or sent a malformed reply while {what}: "
                        f"{line[:120]!r}") from exc
                if not isinstance(msg, dict):
                    raise QMPProtocolError(f"{self._peer} sent a non-object QMP message while {what}: {line[:120]!r}")
                return msg
            if len(self._buf) > MAX_MESSAGE_BYTES:
                raise QMPProtocolError(f"{self._peer} sent more than {MAX_MESSAGE_BYTES} bytes without a newline while {what}")
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise QMPTimeout(f"no answer from {self._peer} within {self._timeout:g} s while {what}")
            self._sock.settimeout(remaining)
            try:
                chunk = self._sock.recv(65536)
            except socket.timeout as exc:
                raise QMPTimeout(f"no answer from {self._peer} within {self._timeout:g} s while {what}") from exc
            except ConnectionResetError:
                chunk = b""
            except OSError as exc:
                raise QMPProtocolError(f"reading from {self._peer} failed while {what}: {exc}") from exc
            if not chunk:
                detail = f" (truncated message {self._buf[:120]!r})" if self._buf else ""
                raise QMPProtocolError(f"{self._peer} closed the connection while {what}{detail}")
            self._buf += chunk

    def _send(self, payload: dict[str, Any], what: str) -> None:
        try:
            self._sock.sendall(json.dumps(payload).encode() + b"\n")
        except OSError as exc:
            raise QMPProtocolError(f"writing to {self._peer} failed while {what}: {exc}") from exc

    # -- protocol ---------------------------------------------------------
    def handshake(self) -> dict[str, Any]:
        """Read the greeting and leave capabilities negotiation mode."""
        deadline = self._first_deadline or time.monotonic() + self._timeout
        greeting = self._read_message(deadline, "waiting for the QMP greeting")
        if not isinstance(greeting.get("QMP"), dict):
            raise QMPProtocolError(f"{self._peer} is not a QMP monitor: its first message has no 'QMP' member")
        self.greeting = greeting["QMP"]
        self.execute("qmp_capabilities")
        return self.greeting

    def execute(self, command: str, arguments: dict[str, Any] | None = None) -> Any:
        return self.execute_many([(command, arguments)])[0].unwrap()

    def execute_many(self, commands: list[tuple[str, dict[str, Any] | None]]) -> list[Reply]:
        """Send all commands at once and collect their replies in order.

        QMP errors are returned as Reply objects, not raised, so that a caller
        can record which commands this QEMU does not support.
        """
        deadline = time.monotonic() + self._timeout
        pending: dict[int, str] = {}
        send_error: QMPProtocolError | None = None
        for command, arguments in commands:
            self._next_id += 1
            payload: dict[str, Any] = {"execute": command, "id": self._next_id}
            if arguments:
                payload["arguments"] = arguments
            try:
                self._send(payload, f"sending '{command}'")
            except QMPProtocolError as exc:
                # The peer went away: what it said before closing explains why better than EPIPE does.
                send_error = exc
                if not pending:
                    self._read_message(deadline, f"waiting for the reply to '{command}'")
                break
            pending[self._next_id] = command
        replies: dict[int, Reply] = {}
        while len(replies) < len(pending):
            waiting = next(c for i, c in pending.items() if i not in replies)
            msg = self._read_message(deadline, f"waiting for the reply to '{waiting}'")
            if "event" in msg:
                continue
            msg_id = msg.get("id")
            if msg_id not in pending:
                raise QMPProtocolError(f"{self._peer} answered an unknown command id {msg_id!r} while waiting for '{waiting}'")
            command = pending[msg_id]
            if "return" in msg:
                replies[msg_id] = Reply(command, value=msg["return"])
            elif isinstance(msg.get("error"), dict):
                err = msg["error"]
                replies[msg_id] = Reply(command, error_class=str(err.get("class", "GenericError")), error_desc=str(err.get("desc", "")))
            else:
                raise QMPProtocolError(f"{self._peer} sent a reply to '{command}' with neither 'return' nor 'error'")
        if send_error is not None:
            raise send_error
        return [replies[i] for i in sorted(pending)]
