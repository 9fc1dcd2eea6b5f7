# Copyright (c) 2026 cpucompat.cluster contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Talk to QEMU about its CPU models: spawn or attach, then query. Private to the collection.

The conversation produces a :class:`_session.Session` keyed by typed queries, the
same type the recorded sessions of the test fixtures decode to, so that the pure
conversion in ``_facts`` serves live probes and recordings alike.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from . import _cache, _fingerprint
from .._errors import CpuCompatError, FactsError, QemuStartError, QMPError
from ._fingerprint import binary_arch, default_qemu_binary
from ._qmp import QMPClient
from ._session import EXPANSION, Query, Session

HV_PASSTHROUGH = {"hv-passthrough": True, "migratable": False}


@contextlib.contextmanager
def _start_errors() -> Iterator[None]:
    """What ``_fingerprint`` finds wrong with the host, reported as the QemuStartError the module fails with."""
    try:
        yield
    except _fingerprint.EnvironmentProblem as exc:
        raise QemuStartError(str(exc)) from None


def resolve_accel(requested: str, binary: str) -> str:
    """Pick kvm or tcg; 'kvm' fails clearly when it cannot work."""
    with _start_errors():
        return _fingerprint.resolve_accel(requested, binary)


def find_binary(binary: str) -> str:
    with _start_errors():
        return _fingerprint.find_binary(binary)


def _kill_group(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=5)


def _accept(listener: socket.socket, proc: subprocess.Popen[bytes], deadline: float,
            exited: Callable[[], QemuStartError], too_late: str) -> socket.socket:
    """Wait for QEMU to connect its monitor; fail as soon as it has died or the deadline passed."""
    while True:
        try:
            return listener.accept()[0]
        except socket.timeout:
            if proc.poll() is not None:
                raise exited() from None
            if time.monotonic() > deadline:
                raise QemuStartError(too_late) from None


# The PC machine types' optional onboard devices (SATA, SMBus, USB, VGA, HPET, vmport, PIT): no answer about CPUs
# depends on them (the conversation's replies are the same byte for byte with and without them, under KVM and TCG),
# and under KVM creating them (memory regions, ioeventfds) is about a quarter of q35's start. The machine type is the
# guests' still. A QEMU that lacks one of these properties (older than 5.2 for hpet) is started again with them all.
_LEAN_PC = "sata=off,smbus=off,usb=off,graphics=off,hpet=off,vmport=off,pit=off"
_PC_MACHINE_RE = re.compile(r"^(pc|q35|pc-(q35|i440fx)-[0-9][0-9.]*)$")


def _lean(machine: str | None) -> bool:
    return machine is not None and _PC_MACHINE_RE.match(machine) is not None


@contextlib.contextmanager
def spawn_qemu(binary: str, accel: str, timeout: float, machine: str | None = "none",
               extra_args: tuple[str, ...] = ()) -> Iterator[QMPClient]:
    """Start a throwaway QEMU (``machine``: the guests' machine type, spawn_target's choice; ``none``: no machine;
    None: QEMU's default machine type) and yield a QMP client."""
    with contextlib.ExitStack() as stack:
        lean = _lean(machine)
        try:
            client = stack.enter_context(_spawn_qemu(binary, accel, timeout, machine, extra_args, lean))
        except QemuStartError as exc:
            if not lean or "propert" not in str(exc).lower():
                raise
            client = stack.enter_context(_spawn_qemu(binary, accel, timeout, machine, extra_args, False))
        yield client


@contextlib.contextmanager
def _spawn_qemu(binary: str, accel: str, timeout: float, machine: str | None, extra_args: tuple[str, ...],
                lean: bool) -> Iterator[QMPClient]:
    """:func:`spawn_qemu`, ``lean``: without the PC machine's optional onboard devices.

    We listen on a socket in a private 0700 directory and QEMU connects to us,
    so there is no polling for a socket file. QEMU runs in its own process
    group; on every exit path the group is killed and the directory removed.
    """
    tmpdir = tempfile.mkdtemp(prefix="cpucompat-probe-")
    os.chmod(tmpdir, 0o700)
    path = os.path.join(tmpdir, "qmp.sock")
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    proc: subprocess.Popen[bytes] | None = None
    client: QMPClient | None = None
    errlog = open(os.path.join(tmpdir, "stderr"), "w+b")  # pylint: disable=consider-using-with

    def exited(when: str) -> QemuStartError:
        errlog.seek(0)
        stderr = errlog.read().decode(errors="replace").strip()
        return QemuStartError(f"{binary} (accel={accel}) exited with status {proc.returncode if proc else '?'} {when}"
                              + (f": {stderr[-800:]}" if stderr else ""))

    try:
        listener.bind(path)
        listener.listen(1)
        listener.settimeout(0.02)
        options = f"{machine},{_LEAN_PC if lean else ''}".rstrip(",") if machine else ""
        argv = [binary, "-machine", f"{options},accel={accel}" if options else f"accel={accel}", "-nodefaults", "-no-user-config",
                "-display", "none", "-S", "-chardev", f"socket,id=qmp,path={path}",
                "-mon", "chardev=qmp,mode=control", *extra_args]
        try:
            proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,  # pylint: disable=consider-using-with
                                    stderr=errlog, start_new_session=True, close_fds=True)
        except OSError as exc:
            raise QemuStartError(f"cannot start {binary}: {exc.strerror or exc}") from exc
        deadline = time.monotonic() + timeout
        conn = _accept(listener, proc, deadline, lambda: exited("before its QMP monitor connected"),
                       f"{binary} (accel={accel}) did not connect its QMP monitor within {timeout:g} s; it was killed")
        client = QMPClient(conn, f"{binary} (accel={accel})", timeout, first_deadline=deadline)
        try:
            client.handshake()
        except QMPError as exc:
            # QEMU connects its monitor before it checks all options; if it
            # died, its exit status and stderr say why, not the closed socket.
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=1)
            if proc.returncode is None:
                raise
            raise exited("during the QMP handshake") from exc
        yield client
    finally:
        errlog.close()
        if client is not None:
            client.close()
        listener.close()
        if proc is not None:
            _kill_group(proc)
        shutil.rmtree(tmpdir, ignore_errors=True)


@contextlib.contextmanager
def attach(path: str, timeout: float) -> Iterator[QMPClient]:
    """Attach to an existing QMP socket (a running QEMU, a daemon, a replay)."""
    client = QMPClient.connect(path, timeout)
    try:
        client.handshake()
        yield client
    finally:
        client.close()


def _model_props_for_static(static_reply: Any) -> dict[str, Any] | None:
    if isinstance(static_reply, dict) and isinstance(static_reply.get("model"), dict):
        return static_reply["model"]
    return None


def _ask(client: QMPClient, session: Session, plan: list[tuple[Query, dict[str, Any] | None]]) -> None:
    """Send independent queries pipelined and record every answer."""
    replies = client.execute_many([(q.command, args if args is not None else q.arguments()) for q, args in plan])
    for (query, _args), reply in zip(plan, replies):
        session.record(query, reply)


def converse(client: QMPClient, expand_models: bool = True, known: dict[str, Any] | None = None) -> Session:
    """Ask everything the facts need, pipelining independent commands.

    ``known``: replies to named models' expansions from the host-side cache (``_cache``), by query key; the models that
    run here and are not in it are asked, and their replies added to it.
    """
    session = Session()
    basics = ("query-version", "query-target", "query-kvm", "query-cpu-definitions", "query-machines")
    _ask(client, session, [(Query(c), None) for c in basics])
    for name in ("query-target", "query-kvm"):
        err = session.error(name)
        if err is not None:
            raise QMPError(f"QEMU rejected '{name}': {err['class']}: {err['desc']}")
    kvm = session.reply("query-kvm") or {}
    host = "host" if isinstance(kvm, dict) and kvm.get("enabled") else "max"
    session.host_model = host
    target = session.reply("query-target")
    arch = target.get("arch") if isinstance(target, dict) else None

    plan: list[tuple[Query, dict[str, Any] | None]] = [(Query.expansion("static", host), None), (Query.expansion("full", host), None)]
    if arch == "x86_64":
        plan.append((Query.expansion("static", host, {"migratable": False}), None))
        if host == "host":  # the Hyper-V enlightenments this KVM supports
            plan.append((Query.expansion("full", host, HV_PASSTHROUGH), None))
    # Support of comparison/baseline is recorded from QEMU's own answer, not
    # guessed from query-commands: some builds have the command and answer
    # "not supported on this target".
    pair = {"modela": {"name": host}, "modelb": {"name": host}}
    plan += [(Query("query-cpu-model-comparison"), pair), (Query("query-cpu-model-baseline"), pair)]
    _ask(client, session, plan)
    # x86: the static expansion is the migratable CPUID feature set and nothing
    # else; s390x/aarch64: the full expansion lists every feature true/false.
    for expansion_type in (("static", "full") if arch == "x86_64" else ("full", "static")):
        if Query.expansion(expansion_type, host) in session.replies:
            session.primary = Query.expansion(expansion_type, host)
            break

    defs = session.reply("query-cpu-definitions")
    if expand_models and isinstance(defs, list) and Query.expansion("static", host) in session.replies:
        names = [d["name"] for d in defs
                 if isinstance(d, dict) and d.get("unavailable-features") == [] and not d.get("alias-of")
                 and d.get("name") not in ("host", "max") and isinstance(d.get("name"), str)]
        expansion_type = "full" if arch == "s390x" else "static"
        queries = [Query.expansion(expansion_type, n) for n in names]
        known = {} if known is None else known
        for query in queries:
            if query.encode() in known:
                session.replies[query] = known[query.encode()]
        missing = [q for q in queries if q.encode() not in known]
        if missing:
            _ask(client, session, [(q, None) for q in missing])
            known.update({q.encode(): session.replies[q] for q in missing if isinstance(session.replies.get(q), dict)})
    return session


_MSR_FAILURE_RE = re.compile(r"failed to set MSR (0x[0-9a-fA-F]+) to (0x[0-9a-fA-F]+)")


def kvm_rejected_features(binary: str, timeout: float, rounds: int = 4, machine: str | None = "q35") -> tuple[list[str], str | None]:
    """Features QEMU offers for ``-cpu host`` that this KVM refuses when a vCPU is created.

    Seen on nested hypervisors: QEMU lists arch-capabilities bits
    (rdctl-no, mds-no, ...) in the host model, but KVM rejects the MSR write
    and every guest that asks for them dies at start ("failed to set MSR
    0x10a to 0x69"). A ``-machine none`` probe creates no vCPU and cannot
    see this, so a second QEMU creates one. Returns the rejected features and,
    when the failure cannot be traced to features, QEMU's message.
    """
    rejected: list[str] = []
    for _round in range(rounds):
        cpu = "host" + "".join(f",-{f}" for f in rejected)
        try:
            with spawn_qemu(binary, "kvm", timeout, machine=machine if machine != "none" else "q35", extra_args=("-cpu", cpu)) as client:
                client.execute("query-cpus-fast")
            return rejected, None
        except (QemuStartError, QMPError) as exc:
            from ..cpu._features import msr_features  # pylint: disable=import-outside-toplevel

            match = _MSR_FAILURE_RE.search(str(exc))
            bits = msr_features(int(match.group(1), 16), int(match.group(2), 16)) if match else None
            if not bits or set(bits) <= set(rejected):
                return rejected, f"a KVM vCPU with -cpu {cpu} does not start: {exc}"
            rejected += [b for b in bits if b not in rejected]
    return rejected, f"KVM still rejects -cpu host after disabling {', '.join(rejected)}"


@dataclass(frozen=True)
class ProbeRequest:
    """What the cpu_probe module was asked to do."""

    qemu_binary: str | None = None
    accel: str = "auto"
    qmp_socket: str | None = None
    timeout: float = 10.0
    expand_models: bool = True
    machine: str | None = None  # None: the machine type this QEMU starts by default
    cpu_map: str = _fingerprint.DEFAULT_CPU_MAP  # libvirt's CPU map on this host (none there: no libvirt)
    libvirt_version: str | None = None  # None: the installed libvirt's
    cache_dir: str | None = None  # the host-side cache (_cache); None: none
    host_root: str = "/"  # where an arm64 host's /sys and /proc are read (_armhost); a recorded tree in tests


@dataclass(frozen=True)
class SpawnTarget:
    """The QEMU a spawned probe starts, and what can change its answer (read once per probe)."""

    binary: str
    accel: str
    inputs: dict[str, Any]
    machine: str | None = None

    @property
    def fingerprint(self) -> str:
        from . import _facts  # pylint: disable=import-outside-toplevel

        return _facts.fingerprint(self.inputs)


def spawn_target(req: ProbeRequest) -> SpawnTarget | None:
    """Resolve binary, accelerator and fingerprint inputs; None in socket mode."""
    if req.qmp_socket:
        return None
    with _start_errors():
        binary = _fingerprint.find_binary(req.qemu_binary or default_qemu_binary())
        accel = _fingerprint.resolve_accel(req.accel, binary)
        try:
            inputs = _fingerprint.environment_inputs(binary, accel, req.machine, req.cpu_map)
        except OSError as exc:
            raise _fingerprint.EnvironmentProblem(f"cannot read {binary}: {exc}") from exc
    # The guests' machine type when the caller knows it (the probe role finds it), else the architecture's usual one.
    return SpawnTarget(binary, accel, inputs, _fingerprint.default_machine(binary, req.machine))


def current_fingerprint(req: ProbeRequest) -> str | None:
    """The fingerprint a fresh spawned probe would report, or None in socket mode."""
    target = spawn_target(req)
    return target.fingerprint if target else None


@dataclass
class _Conversation:
    session: Session
    where: str
    inputs: dict[str, Any]
    binary: str | None = None
    rejected: tuple[str, ...] = ()
    rejection_detail: str | None = None
    machine: str | None = None


def _converse_socket(req: ProbeRequest, path: str) -> _Conversation:
    with attach(path, req.timeout) as client:
        session = converse(client, req.expand_models)
    inputs = {"mode": "socket", "socket": path, "libvirt": _fingerprint.libvirt_inputs(req.cpu_map)}
    return _Conversation(session, f"QMP socket {path}", inputs)


def _cpu_host(rejected: list[str] | tuple[str, ...]) -> str:
    return "host" + "".join(f",-{f}" for f in rejected)


def _converse_checked(req: ProbeRequest, target: SpawnTarget, entry: _cache.Entry) -> _Conversation | None:
    """One QEMU for both jobs when the cache knows what KVM refuses: it runs a vCPU of the host model with those
    features off (the check) and answers the conversation. None when that vCPU does not start: probe cold."""
    rejected = list(entry.kvm_rejected or [])
    try:
        with spawn_qemu(target.binary, target.accel, req.timeout, machine=target.machine, extra_args=("-cpu", _cpu_host(rejected))) as client:
            session = converse(client, req.expand_models, entry.expansions)
    except QemuStartError:
        return None
    # The vCPU's -cpu options are global properties of QEMU's host model: its expansions here lack the refused
    # features, which the facts take out of a cold probe's expansions too.
    return _Conversation(session, f"{target.binary} (accel={target.accel})", target.inputs, target.binary, tuple(rejected), None,
                         target.machine)


def _converse_spawned(req: ProbeRequest, target: SpawnTarget, entry: _cache.Entry | None = None) -> _Conversation:
    binary, accel = target.binary, target.accel
    entry = entry or _cache.Entry({})
    needs_check = accel == "kvm" and binary_arch(binary) in (None, "x86_64")
    if needs_check and entry.kvm_rejected is not None and target.machine not in (None, "none"):
        conv = _converse_checked(req, target, entry)
        if conv is not None:
            return conv
    check: list[tuple[list[str], str | None]] = []
    checker = None
    if needs_check:
        checker = threading.Thread(target=lambda: check.append(kvm_rejected_features(binary, req.timeout, machine=target.machine or "q35")),
                                   daemon=True)
        checker.start()
    try:
        with spawn_qemu(binary, accel, req.timeout, machine=target.machine) as client:
            session = converse(client, req.expand_models, entry.expansions)
    finally:
        if checker is not None:
            checker.join()
    rejected, detail = check[0] if check else ([], None)
    if checker is not None and detail is None:
        entry.kvm_rejected = list(rejected)
    return _Conversation(session, f"{binary} (accel={accel})", target.inputs, binary, tuple(rejected), detail, target.machine)


def _host(req: ProbeRequest, libvirt: str | None = None) -> dict[str, Any]:
    """What the host says about itself beyond QEMU, and the CPU map its libvirt reads (None: no libvirt map there);
    ``libvirt``: the installed libvirt's version when the probe cache knows it."""
    from . import _hostinfo, _libvirt  # pylint: disable=import-outside-toplevel

    info = _hostinfo.host_info(req.timeout, libvirt=req.libvirt_version or libvirt)
    try:
        info["cpu_map"] = _libvirt.read_cpu_map(req.cpu_map, info.get("libvirt"))
    except CpuCompatError as exc:  # raised again by the probe, once QEMU is done
        info["cpu_map_error"] = exc
    return info


def probe(req: ProbeRequest, target: SpawnTarget | None = None) -> dict[str, Any]:
    """Probe one QEMU and return the ``cpucompat`` fact (``target``: the caller's already resolved :func:`spawn_target`)."""
    if req.timeout <= 0:
        raise QemuStartError(f"timeout must be positive, got {req.timeout}")
    started = time.monotonic()
    entry = None
    daemon: dict[str, Any] = {}
    if not req.qmp_socket:
        target = target or spawn_target(req)
        if target is None:
            raise AssertionError("a spawned probe resolves its target")
        entry = _cache.load(req.cache_dir, target.inputs)
        daemon = target.inputs.get("libvirt") or {}  # the libvirt daemon binary, as the fingerprint reads it
    known = _cache.libvirt_version(entry, daemon) if entry is not None else None
    host: list[dict[str, Any]] = []
    reader = threading.Thread(target=lambda: host.append(_host(req, known)), daemon=True)
    reader.start()  # versions, address bits, TSC and libvirt's CPU map are read while QEMU starts
    try:
        if req.qmp_socket:
            conv = _converse_socket(req, req.qmp_socket)
        else:
            if target is None or entry is None:
                raise AssertionError("a spawned probe has its target and cache entry")
            before = (dict(entry.expansions), entry.kvm_rejected, entry.libvirt)
            conv = _converse_spawned(req, target, entry)
    finally:
        reader.join()
    if entry is not None:
        if host and not req.libvirt_version:
            _cache.remember_libvirt(entry, daemon, host[0].get("libvirt"))
        entry.changed = (entry.expansions, entry.kvm_rejected, entry.libvirt) != before
    from . import _armhost, _facts  # pylint: disable=import-outside-toplevel

    target_arch = conv.session.reply("query-target")
    arm_host = _armhost.read(req.host_root) if isinstance(target_arch, dict) and target_arch.get("arch") == "aarch64" else None
    if host and host[0].get("cpu_map_error"):
        raise FactsError(f"libvirt's CPU map at {req.cpu_map}: {host[0]['cpu_map_error']}")
    if conv.session.primary is None:
        errs = "; ".join(f"{q.label}: {v['desc']}" for q, v in conv.session.errors.items() if q.command == EXPANSION)
        raise QMPError(f"{conv.where}: query-cpu-model-expansion: QEMU expanded no host CPU model ({errs or 'no reply'})")
    probe_info = {"mode": conv.inputs["mode"], "socket": req.qmp_socket, "duration_s": round(time.monotonic() - started, 4),
                  "probed_at": int(time.time())}
    facts = _facts.build_facts(conv.session, where=conv.where, qemu_binary=conv.binary, probe=probe_info,
                               fingerprint_inputs=conv.inputs, rejected_features=conv.rejected,
                               rejection_detail=conv.rejection_detail, host=host[0] if host else None,
                               machine=None if req.qmp_socket else (conv.machine or "default"), arm_host=arm_host)
    if req.qmp_socket:
        # Without a binary to stat, the answer itself is what we fingerprint.
        answer = {k: facts[k] for k in ("arch", "accel", "qemu", "features", "models") + (("arm",) if "arm" in facts else ())}
        facts["fingerprint"] = _facts.fingerprint({**conv.inputs, "answer": answer})
    elif entry is not None:
        _cache.save(req.cache_dir, entry)  # only once the facts were built from what it keeps
    return facts
