# Copyright (c) 2026 cpucompat.cluster contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""One batch of the power cycle against a libvirt stand-in: the paths a real guest seldom takes (a destroy that fails,
a start that fails, a domain that vanished), and the order of the steps. The real thing: tests/integration/test_power_cycle.py."""

from __future__ import annotations

from typing import Any

from ansible_collections.cpucompat.cluster.plugins.module_utils.deploy._cycle import CycleOptions, run_batch


class LibvirtError(Exception):
    def get_error_message(self) -> str:
        return str(self)


class Libvirt:
    libvirtError = LibvirtError
    VIR_DOMAIN_RUNNING = 1
    VIR_DOMAIN_LIFECYCLE_REBOOT = 1
    VIR_DOMAIN_LIFECYCLE_ACTION_DESTROY = 0
    VIR_DOMAIN_AFFECT_LIVE = 1


class Dom:
    """A domain that stops after ``stops_after`` shutdown requests (never: None)."""

    def __init__(self, name: str, log: list[str], stops_after: int | None = 1, destroy_fails: bool = False,
                 start_fails: bool = False, agent: bool = False) -> None:
        self._name, self.log, self.active, self.asked = name, log, True, 0
        self.stops_after, self.destroy_fails, self.start_fails, self.agent = stops_after, destroy_fails, start_fails, agent
        self.on_reboot = "restart"
        self.cpu = "old"

    def name(self) -> str:
        return self._name

    def XMLDesc(self, _flags: int) -> str:  # noqa: N802  libvirt's name
        channel = "<channel><target name='org.qemu.guest_agent.0'/></channel>" if self.agent else ""
        return (f"<domain><on_reboot>{self.on_reboot}</on_reboot><cpu><model>{self.cpu}</model></cpu>"
                f"<devices>{channel}</devices></domain>")

    def isActive(self) -> bool:  # noqa: N802
        return self.active

    def state(self) -> list[int]:
        return [1 if self.active else 5, 0]

    def shutdown(self) -> None:
        self.log.append(f"shutdown {self._name}")
        self.asked += 1
        if self.stops_after is not None and self.asked >= self.stops_after:
            self.active = False

    def destroy(self) -> None:
        self.log.append(f"destroy {self._name}")
        if self.destroy_fails:
            raise LibvirtError(f"{self._name}: cannot destroy")
        self.active = False

    def create(self) -> None:
        self.log.append(f"start {self._name}")
        if self.start_fails:
            raise LibvirtError("cannot start: no memory")
        self.active, self.cpu = True, "new"

    def setLifecycleAction(self, _kind: int, _action: int, flags: int) -> None:  # noqa: N802
        assert flags == Libvirt.VIR_DOMAIN_AFFECT_LIVE
        self.on_reboot = "destroy"


class Conn:
    def __init__(self, *doms: Dom) -> None:
        self.doms = {d.name(): d for d in doms}

    def lookupByName(self, name: str) -> Dom:  # noqa: N802
        if name not in self.doms:
            raise LibvirtError(f"Domain not found: no domain with matching name '{name}'")
        return self.doms[name]


class Clock:
    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        self.t += 0.5
        return self.t


FAST = {"poll": 0.0, "retry": 1.0}


def _run(conn: Conn, names: list[str], agent: Any = None, command: Any = None, **opts: Any) -> list[dict[str, Any]]:
    return run_batch(Libvirt, conn, names, CycleOptions(**{"mode": "now", **FAST, **opts}), observe=lambda d: {"cpuid": {"x": d.cpu}},
                     agent=agent, command=command, clock=Clock())


def test_all_are_asked_together_each_starts_once_off_then_the_gates() -> None:
    log: list[str] = []
    conn = Conn(Dom("a", log), Dom("b", log, stops_after=3))
    results = _run(conn, ["a", "b"], timeout=100)
    assert log == ["shutdown a", "shutdown b", "start a", "shutdown b", "shutdown b", "start b"]
    assert [r["state"] for r in results] == ["done", "done"]
    a = results[0]
    assert a["cpu_before"] == "<cpu><model>old</model></cpu>" and a["cpu_after"] == "<cpu><model>new</model></cpu>"
    assert a["observed_before"] == {"cpuid": {"x": "old"}} and a["observed_after"] == {"cpuid": {"x": "new"}}
    assert a["shutdown_at"] < a["stopped_at"] < a["started_at"] < a["gate_at"] and a["down_s"] > 0 and results[1]["shutdown_requests"] == 3


def test_timeout_leaves_it_running_force_destroys_and_a_failing_destroy_is_an_error() -> None:
    log: list[str] = []
    conn = Conn(Dom("stuck", log, stops_after=None), Dom("worse", log, stops_after=None, destroy_fails=True))
    left = _run(conn, ["stuck"], timeout=3)
    assert left[0]["state"] == "timeout" and "did not shut down within 3 s: left running" in left[0]["why"]
    assert conn.doms["stuck"].active and "destroy stuck" not in log
    forced = _run(conn, ["stuck", "worse"], timeout=3, force=True)
    assert forced[0]["state"] == "done" and forced[0]["forced"]
    assert forced[1]["state"] == "error" and "cannot be destroyed: worse: cannot destroy" in forced[1]["why"]
    assert "start worse" not in log


def test_gates_agent_command_and_a_start_that_fails() -> None:
    log: list[str] = []
    conn = Conn(Dom("agent", log, agent=True), Dom("cmd", log), Dom("nostart", log, start_fails=True))
    calls: list[tuple[tuple[str, ...], str]] = []

    def command(argv: Any, name: str) -> tuple[int, str]:
        calls.append((tuple(argv), name))
        return (3, "service down\n") if name == "cmd" else (0, "")

    results = _run(conn, ["agent", "cmd", "nostart"], agent=lambda _d, _t: "Guest agent is not responding", command=command,
                   timeout=10, health_command=("check",), agent_timeout=2)
    states = {r["name"]: r for r in results}
    assert states["agent"]["state"] == "gate-failed" and "guest agent (org.qemu.guest_agent.0) did not answer within 2 s: Guest agent is " \
        "not responding" in states["agent"]["why"]
    assert states["cmd"]["state"] == "gate-failed" and states["cmd"]["why"] == "domain cmd: the health command check exited 3: service down"
    assert states["nostart"]["state"] == "gate-failed" and "does not start again: cannot start: no memory" in states["nostart"]["why"]
    assert calls == [(("check",), "cmd")]  # the agent's gate failed first: its command is not run


def test_next_shutdown_arms_once_and_check_mode_changes_nothing() -> None:
    log: list[str] = []
    dom = Dom("n", log)
    conn = Conn(dom, Dom("off", log))
    conn.doms["off"].active = False
    checked = run_batch(Libvirt, conn, ["n", "off", "gone"], CycleOptions(check_mode=True))
    assert [r["state"] for r in checked] == ["armed", "shut-off", "error"] and dom.on_reboot == "restart"
    assert "no domain with matching name 'gone'" in checked[2]["why"]
    armed = run_batch(Libvirt, conn, ["n"], CycleOptions())
    assert armed[0]["changed"] and dom.on_reboot == "destroy" and log == []  # nothing shut down or started
    assert not run_batch(Libvirt, conn, ["n"], CycleOptions())[0]["changed"]
    planned = run_batch(Libvirt, conn, ["n"], CycleOptions(mode="now", check_mode=True))
    assert planned[0]["state"] == "planned" and log == []
