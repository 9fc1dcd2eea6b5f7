# Copyright (c) 2026 cpucompat.cluster contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""One batch of the rolling power cycle on one host, through libvirt (the domain_power_cycle module). Private.

- ``now``: every domain of the batch is asked to shut down (libvirt's default: the guest agent where it answers, else
  the ACPI power button; asked again every ``retry`` seconds, as a guest still booting ignores the button), and each is
  started as soon as it is off (the batch bounds how many are down at once; none waits for the others). Never
  ``reboot``: a reboot keeps the QEMU process, so the old CPU. A domain still running after ``timeout`` seconds is
  left running and reported (``timeout``), unless ``force``: then it is destroyed.
- After each start, the health gate: the domain runs; its guest agent answers ``guest-ping`` where the domain has an
  ``org.qemu.guest_agent.0`` channel; the operator's command exits 0 (run on the host, ``CPUCOMPAT_DOMAIN`` in its
  environment). A failed gate is ``gate-failed``, named with what failed; the caller stops the run there.
- ``next_shutdown``: nothing changes in the guest. A running domain's *live* ``on_reboot`` becomes ``destroy``
  (virDomainSetLifecycleAction, live only): a reboot inside the guest then ends the domain instead of resetting it in
  the same QEMU process, and its next start applies the definition's CPU. The persistent definition is untouched, so the
  setting ends with the process: the next start runs with the definition's own ``on_reboot``.

Each domain's CPU before and after: the ``<cpu>`` of its live definition and, where ``observe`` is given, what its
vCPU is (the caller reads its CPUID through the running QEMU).
"""

from __future__ import annotations

import time
import xml.etree.ElementTree as ET
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

AGENT_CHANNEL = "org.qemu.guest_agent.0"


@dataclass(frozen=True)
class CycleOptions:
    mode: str = "next_shutdown"
    timeout: float = 300.0  # seconds a guest has to stop
    force: bool = False  # destroy a guest that did not stop in time
    health_command: Sequence[str] = ()  # argv, run on the host after each start
    agent_timeout: float = 60.0  # seconds the guest agent has to answer after a start
    retry: float = 5.0  # seconds between two shutdown requests
    poll: float = 0.2
    check_mode: bool = False


# The caller's ways to reach what is not libvirt's domain API (the module passes the real ones; tests may too).
Observe = Callable[[Any], "dict[str, Any] | None"]
Agent = Callable[[Any, float], "str | None"]  # None: the agent answered; else why not
Command = Callable[[Sequence[str], str], "tuple[int, str]"]


def live_cpu(dom: Any) -> str | None:
    """The ``<cpu>`` of a running domain's live definition (what its guest runs), as text."""
    root = ET.fromstring(dom.XMLDesc(0))
    cpu = root.find("cpu")
    return ET.tostring(cpu, encoding="unicode").strip() if cpu is not None else None


def has_agent(dom: Any) -> bool:
    root = ET.fromstring(dom.XMLDesc(0))
    return any(t.get("name") == AGENT_CHANNEL for t in root.findall("./devices/channel/target"))


def _on_reboot(dom: Any) -> str | None:
    return ET.fromstring(dom.XMLDesc(0)).findtext("on_reboot")


def _observed(observe: Observe | None, dom: Any) -> dict[str, Any] | None:
    if observe is None:
        return None
    try:
        return observe(dom)
    except Exception as exc:  # pylint: disable=broad-exception-caught  # an observation never stops a cycle
        return {"error": f"{type(exc).__name__}: {exc}"}


def _gate(libvirt: Any, dom: Any, opts: CycleOptions, agent: Agent, command: Command) -> tuple[bool, dict[str, Any]]:
    """The health gate after a start: running, the agent (where configured), the operator's command."""
    name = dom.name()
    state = dom.state()[0]
    out: dict[str, Any] = {"running": state == libvirt.VIR_DOMAIN_RUNNING}
    if not out["running"]:
        return False, {**out, "why": f"domain {name} is not running after its start (state {state})"}
    if has_agent(dom):
        failed = agent(dom, opts.agent_timeout)
        out["agent"] = failed is None
        if failed is not None:
            return False, {**out, "why": f"domain {name}: its guest agent ({AGENT_CHANNEL}) did not answer within "
                                         f"{opts.agent_timeout:g} s: {failed}"}
    if opts.health_command:
        rc, text = command(opts.health_command, name)
        out["command"] = {"rc": rc, "output": text[-2000:]}
        if rc != 0:
            return False, {**out, "why": f"domain {name}: the health command {' '.join(opts.health_command)} exited {rc}"
                                         + (f": {text.strip()[-300:]}" if text.strip() else "")}
    return True, out


def _arm(libvirt: Any, dom: Any, check_mode: bool) -> dict[str, Any]:
    """next_shutdown: a reboot inside the guest ends the domain (live on_reboot=destroy)."""
    if _on_reboot(dom) == "destroy":
        return {"state": "armed", "changed": False, "why": "a reboot inside the guest already ends it (live on_reboot=destroy)"}
    if not check_mode:
        dom.setLifecycleAction(libvirt.VIR_DOMAIN_LIFECYCLE_REBOOT, libvirt.VIR_DOMAIN_LIFECYCLE_ACTION_DESTROY,
                               libvirt.VIR_DOMAIN_AFFECT_LIVE)
    return {"state": "armed", "changed": True,
            "why": "waits for its next shutdown; a reboot inside the guest now ends it (live on_reboot=destroy), and its "
                   "next start runs the contract CPU"}


def run_batch(libvirt: Any, conn: Any, names: Sequence[str], opts: CycleOptions, observe: Observe | None = None,
              agent: Agent | None = None, command: Command | None = None,
              clock: Callable[[], float] = time.time) -> list[dict[str, Any]]:
    """One host's part of a batch: each domain's result (``name``, ``state``, ``why``, times, CPUs before and after)."""
    agent = agent or (lambda _dom, _t: "no way to reach the guest agent was given")
    command = command or (lambda argv, _name: (127, f"no way to run {argv[0]}"))
    results: dict[str, dict[str, Any]] = {}
    doms: dict[str, Any] = {}
    for name in names:
        try:
            dom = conn.lookupByName(name)
        except libvirt.libvirtError as exc:
            results[name] = {"name": name, "state": "error", "why": f"domain {name}: {exc.get_error_message()}"}
            continue
        if not dom.isActive():
            results[name] = {"name": name, "state": "shut-off", "why": f"domain {name} is shut off: its next start applies the contract CPU"}
            continue
        results[name] = {"name": name, "cpu_before": live_cpu(dom), "observed_before": _observed(observe, dom)}
        doms[name] = dom
    if opts.mode == "next_shutdown":
        for name, dom in doms.items():
            results[name].update(_arm(libvirt, dom, opts.check_mode))
        return [results[n] for n in names]
    if opts.check_mode:
        for name in doms:
            results[name].update(state="planned", why="check mode: would be shut down and started")
        return [results[n] for n in names]
    _stop(libvirt, doms, results, opts, clock)
    for name, dom in doms.items():
        r = results[name]
        if "started_at" not in r:
            continue
        ok, gate = _gate(libvirt, dom, opts, agent, command)
        r["gate"], r["gate_at"] = gate, clock()
        r["cpu_after"] = live_cpu(dom) if dom.isActive() else None
        r["observed_after"] = _observed(observe, dom) if dom.isActive() else None
        if ok:
            r.update(state="done", why="shut down and started again; its health gate passed")
        else:
            r.update(state="gate-failed", why=gate["why"])
    return [results[n] for n in names]


def _start(libvirt: Any, dom: Any, r: dict[str, Any], clock: Callable[[], float]) -> None:
    """Start a domain that is off (its definition's CPU applies now)."""
    r["stopped_at"] = clock()
    try:
        dom.create()
    except libvirt.libvirtError as exc:
        r.update(state="gate-failed", why=f"domain {dom.name()} does not start again: {exc.get_error_message()}",
                 gate={"running": False})
        return
    r["started_at"] = clock()
    r["down_s"] = round(r["started_at"] - r["stopped_at"], 3)
    r["unavailable_s"] = round(r["started_at"] - r["shutdown_at"], 3)


def _stop(libvirt: Any, doms: dict[str, Any], results: dict[str, dict[str, Any]], opts: CycleOptions,
          clock: Callable[[], float]) -> None:
    """Ask each domain to shut down until it is off or ``timeout`` passes, starting each as soon as it is off; a domain
    still running then is destroyed and started (``force``) or left running."""
    start = clock()
    asked: dict[str, float] = {}
    for name, dom in doms.items():
        results[name]["shutdown_at"] = clock()
        _ask(libvirt, dom, results[name])
        asked[name] = clock()
    waiting = set(doms)
    while waiting and clock() - start < opts.timeout:
        for name in sorted(waiting):
            dom = doms[name]
            if not dom.isActive():
                waiting.discard(name)
                _start(libvirt, dom, results[name], clock)
            elif clock() - asked[name] >= opts.retry:
                _ask(libvirt, dom, results[name])
                asked[name] = clock()
        if waiting:
            time.sleep(opts.poll)
    for name in sorted(waiting):
        dom, r = doms[name], results[name]
        if not opts.force:
            r.update(state="timeout", why=f"domain {name} did not shut down within {opts.timeout:g} s: left running on its "
                                          "old CPU (cpucompat_cycle_force=true destroys it)")
            continue
        try:
            dom.destroy()
        except libvirt.libvirtError as exc:
            if dom.isActive():
                r.update(state="error", why=f"domain {name} did not shut down within {opts.timeout:g} s and cannot be "
                                            f"destroyed: {exc.get_error_message()}")
                continue
        r["forced"] = True
        _start(libvirt, dom, r, clock)


def _ask(libvirt: Any, dom: Any, result: dict[str, Any]) -> None:
    try:
        dom.shutdown()
        result["shutdown_requests"] = result.get("shutdown_requests", 0) + 1
    except libvirt.libvirtError as exc:
        if dom.isActive():
            result.setdefault("shutdown_errors", []).append(exc.get_error_message())
