# Copyright (c) 2026 cpucompat.cluster contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The rolling power cycle on real libvirt domains of this machine (KVM when /dev/kvm is usable, else TCG).

There is no guest OS here. Each guest is a 512-byte boot sector assembled below:
- ``ACPI``: enables the ACPI power button (PM1 enable, port 0x602; SeaBIOS maps the PIIX4/ICH9 PM block at 0x600),
  polls its status bit and then powers off (SLP_EN with S5 into PM1 control, 0x604) - a guest that shuts down when
  libvirt presses the power button, as an OS does; and on any key (``virsh send-key``) resets the machine through the
  keyboard controller (``out 0x64, 0xfe``) - a reboot from inside the guest. Between two polls it halts until the next
  interrupt (SeaBIOS's timer, 18.2 Hz), an idle guest rather than a vCPU spinning on port I/O; the keyboard's interrupt
  is masked so that its byte stays in the controller for the poll.
- ``HANG``: ``cli; hlt`` - a guest that never stops (the timeout and force path).
What such a guest cannot show: a guest agent (a domain with an agent channel and no agent fails its gate, as a guest
whose agent does not come back would), services, or a long shutdown.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from ansible_collections.cpucompat.cluster.plugins.module_utils.contract import _store
from ansible_collections.cpucompat.cluster.plugins.module_utils.contract._domain import Domain
from ansible_collections.cpucompat.cluster.plugins.module_utils.contract._domains import Specs, domain_status
from ansible_collections.cpucompat.cluster.plugins.module_utils.deploy._cycle import CycleOptions, live_cpu, run_batch
from ansible_collections.cpucompat.cluster.plugins.module_utils.verbs import _power_cycle
from ansible_collections.cpucompat.cluster.plugins.module_utils.render._cpuspec import CpuSpec
from ansible_collections.cpucompat.cluster.plugins.modules import domain_power_cycle as module

from .helpers import run_playbook
from .libvirt_helpers import URI, VIRTTYPE, remove, virsh

libvirt = pytest.importorskip("libvirt")
libvirt_qemu = pytest.importorskip("libvirt_qemu")

ACPI = bytes.fromhex("fa ba0206 b80001 ef e421 0c02 e621 fb f4 fa ba0006 ed a90001 750e e464 a801 74ee e460 b0fe e664 ebe6"
                     " ba0406 b80020 ef f4 ebfd".replace(" ", ""))
HANG = bytes.fromhex("faf4ebfd")
OLD = "<cpu mode='custom' match='exact' check='none'><model fallback='forbid'>qemu64</model></cpu>"
NEW = ("<cpu mode='custom' match='exact' check='none'><model fallback='forbid'>qemu64</model>"
       "<feature policy='require' name='ssse3'/><feature policy='require' name='sse4.1'/>"
       "<feature policy='require' name='sse4.2'/><feature policy='require' name='popcnt'/></cpu>")
HOST = "localhost"


def _sector(code: bytes) -> bytes:
    return code + bytes(510 - len(code)) + b"\x55\xaa"


def _xml(name: str, image: str, cpu: str, agent: bool = False) -> str:
    ident = uuid.uuid5(uuid.NAMESPACE_DNS, name)
    channel = "<channel type='unix'><target type='virtio' name='org.qemu.guest_agent.0'/></channel>" if agent else ""
    return f"""<domain type='{VIRTTYPE}'><name>{name}</name><uuid>{ident}</uuid><description>cpucompat power-cycle test domain</description>
  <memory unit='MiB'>32</memory><vcpu>1</vcpu>
  <os><type arch='x86_64' machine='pc'>hvm</type><boot dev='hd'/></os><features><acpi/></features>
  {cpu}
  <on_poweroff>destroy</on_poweroff><on_reboot>restart</on_reboot>
  <devices><emulator>/usr/bin/qemu-system-x86_64</emulator>
    <disk type='file' device='disk'><driver name='qemu' type='raw'/><source file='{image}'/><target dev='hda' bus='ide'/></disk>
    {channel}</devices></domain>"""


class Guests:
    """This test's own domains (unique names), started on OLD, then defined on NEW: pending; removed afterwards."""

    def __init__(self) -> None:
        self.dir = tempfile.mkdtemp(prefix="cpucompat-cycle-", dir="/tmp")
        os.chmod(self.dir, 0o755)  # QEMU reads the images as libvirt's QEMU user
        for name, code in (("acpi", ACPI), ("hang", HANG)):
            with open(os.path.join(self.dir, f"{name}.img"), "wb") as fh:
                fh.write(_sector(code))
        self.tag = uuid.uuid4().hex[:6]
        self.names: list[str] = []
        self.conn = libvirt.open(URI)

    def add(self, role: str, image: str = "acpi", agent: bool = False, cpu: str = NEW) -> str:
        name = f"cpucompat-cycle-{self.tag}-{role}"
        src = os.path.join(self.dir, f"{role}-disk.img")  # a copy each: QEMU locks a disk image for writing
        shutil.copyfile(os.path.join(self.dir, f"{image}.img"), src)
        self.conn.defineXML(_xml(name, src, OLD, agent))
        self.names.append(name)
        dom = self.conn.lookupByName(name)
        dom.create()
        if cpu != OLD:
            self.conn.defineXML(_xml(name, src, cpu, agent))  # the deploy's step: the definition now carries the contract
        return name

    def booted(self) -> None:
        """Wait until every running ACPI guest runs its boot sector (it has enabled the power button), as a cycle of an
        OS that has come up: a power-button press while SeaBIOS still boots is lost, and the next request comes only
        ``retry`` (5 s) later."""
        for name in self.names:
            dom = self.conn.lookupByName(name)
            if dom.isActive() and name.rsplit("-", 1)[-1] != "hang":
                _wait(lambda name=name: _power_button_enabled(name), f"{name}'s boot sector to run (it enables the power button)")

    def section(self) -> dict:
        """The contract step's view of these domains, by the contract report's own rule (domain_status)."""
        specs, domains = Specs(), {}
        for name in self.names:
            dom = self.conn.lookupByName(name)
            entry = {"name": name, "active": bool(dom.isActive()), "cpu_xml": live_cpu_of(dom, inactive=True),
                     "live_cpu_xml": live_cpu(dom) if dom.isActive() else None}
            domains[f"{HOST}/{name}"] = domain_status(CpuSpec.parse(NEW, "the new <cpu>"), Domain.of(HOST, entry), None, specs)
        return {"model": "qemu64", "features": ["popcnt", "sse4.1", "sse4.2", "ssse3"], "domains": domains}

    def close(self) -> None:
        for name in self.names:
            remove(name)
        self.conn.close()
        shutil.rmtree(self.dir, ignore_errors=True)


def live_cpu_of(dom, inactive: bool) -> str:  # type: ignore[no-untyped-def]
    import xml.etree.ElementTree as ET  # pylint: disable=import-outside-toplevel
    root = ET.fromstring(dom.XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE if inactive else 0))
    return ET.tostring(root.find("cpu"), encoding="unicode")


@pytest.fixture
def guests() -> Iterator[Guests]:
    g = Guests()
    try:
        yield g
    finally:
        g.close()


def _run(g: Guests, batch: dict, opts: CycleOptions) -> list[dict]:
    return run_batch(libvirt, g.conn, batch["hosts"][HOST], opts, module._observe(libvirt, libvirt_qemu),
                     module._agent(libvirt, libvirt_qemu), module._command)


def _ran(results: list[dict]) -> list[dict]:
    return [{"item": {"key": HOST}, "domains": results}]


NOW = CycleOptions(mode="now", timeout=60, agent_timeout=1)  # the agent that never answers: as short as it shows


def test_now_cycle_in_two_batches_keeps_an_anti_affinity_pair_apart(guests: Guests, tmp_path) -> None:
    names = [guests.add(r) for r in ("a1", "a2", "b1", "b2")]
    guests.booted()
    section = guests.section()
    assert all(d["status"] == "restart-required" for d in section["domains"].values()), section
    store = _store.FileStore(str(tmp_path / "contracts"))
    options = {"mode": "now", "batch": {"per_host": 2, "overall": 2}, "anti_affinity": [[names[0], names[1]]]}
    _report, plan = _power_cycle.plan(store, "g", section, [HOST], options, check_mode=False)
    assert len(plan["batches"]) == 2
    generation, started = plan["generation"], time.monotonic()
    for batch in plan["batches"]:
        results = _run(guests, batch, NOW)
        report, out = _power_cycle.record(store, "g", section, options, batch["index"], _ran(results), generation, plan["batches"])
        generation = out["generation"]
        assert not out["stop"], results
    elapsed = time.monotonic() - started
    rows = {r["guest"].split("/")[1]: r for r in report["rows"]}
    assert all(r["state"] == "done" for r in rows.values()), rows
    # Never down together: one of the pair was running again (and its gate passed) before the other was asked to stop.
    progress = _store_progress(store)
    a1, a2 = (progress.guests[f"{HOST}/{n}"] for n in names[:2])
    first, second = sorted((a1, a2), key=lambda r: r["shutdown_at"])
    assert first["gate_at"] <= second["shutdown_at"] and first["batch"] != second["batch"]
    for name in names:
        dom = guests.conn.lookupByName(name)
        assert "sse4.2" in live_cpu(dom)  # the running guest now has its definition's CPU
        # What the vCPU really gained, read through QEMU: the features asked for, less those this host's KVM filters
        # (check='none' lets such a CPU start; the contract's check='full' would refuse it).
        seen = rows[name]["observed"]
        assert set(seen["gains"]) | set(seen["filtered"]) >= {"ssse3", "sse4.1", "sse4.2", "popcnt"}, seen
        assert not seen["loses"], seen
        assert rows[name]["down_s"] < 10 and rows[name]["before"] == rows[name]["after"] == "qemu64"
    print(f"\nobserved on {names[0]}: {rows[names[0]]['observed']}")
    print(f"\nnow, 4 guests in 2 batches: {elapsed:.1f} s; down (s): "
          + ", ".join(f"{n[-2:]} {rows[n]['down_s']:.2f} (asked->up {rows[n]['unavailable_s']:.2f})" for n in names))


def _store_progress(store):  # type: ignore[no-untyped-def]
    from ansible_collections.cpucompat.cluster.plugins.module_utils.contract import _progress_store  # pylint: disable=import-outside-toplevel
    progress, _generation = _progress_store.read(store, "g")
    assert progress is not None
    return progress


def test_a_failed_health_gate_stops_the_run_and_a_rerun_resumes(guests: Guests, tmp_path) -> None:
    bad = guests.add("c1-agent", agent=True)  # an agent channel, and no agent answers
    good = [guests.add(r) for r in ("c2", "c3")]
    guests.booted()
    section = guests.section()
    store = _store.FileStore(str(tmp_path / "contracts"))
    options = {"mode": "now", "batch": 1, "select": "~cycle-" + guests.tag}
    _report, plan = _power_cycle.plan(store, "g", section, [HOST], options, check_mode=False)
    assert [b["hosts"][HOST] for b in plan["batches"]] == [[bad], [good[0]], [good[1]]]
    results = _run(guests, plan["batches"][0], NOW)
    report, out = _power_cycle.record(store, "g", section, options, 0, _ran(results), plan["generation"], plan["batches"])
    assert out["stop"] and out["gate_failed"] == [f"{HOST}/{bad}"]
    assert "guest agent (org.qemu.guest_agent.0) did not answer within 1 s" in out["why"]
    assert report["verdict"]["ok"] is False and report["stopped"]["guests"] == [f"{HOST}/{bad}"]
    assert all(guests.conn.lookupByName(n).isActive() and "sse4.2" not in live_cpu(guests.conn.lookupByName(n)) for n in good)
    # The operator's command fails the gate too (it is given the domain's name).
    command = CycleOptions(mode="now", timeout=60, health_command=("sh", "-c", 'test "$CPUCOMPAT_DOMAIN" != ' + good[0]))
    # The rerun: the failed guest is never cycled again; the others continue.
    _report, plan = _power_cycle.plan(store, "g", guests.section(), [HOST], options, check_mode=False)
    assert [b["hosts"][HOST] for b in plan["batches"]] == [[good[0]], [good[1]]] and plan["skipped"] == [f"{HOST}/{bad}"]
    results = _run(guests, plan["batches"][0], command)
    assert results[0]["state"] == "gate-failed" and "exited 1" in results[0]["why"], results
    results = _run(guests, plan["batches"][1], command)
    assert results[0]["state"] == "done", results


def test_a_guest_that_never_stops_is_left_running_unless_forced(guests: Guests) -> None:
    name = guests.add("hang", image="hang")
    batch = {"hosts": {HOST: [name]}}
    # As short as the behaviour allows: three shutdown requests, each ignored, within the timeout.
    [left] = _run(guests, batch, CycleOptions(mode="now", timeout=1.5, retry=0.5))
    dom = guests.conn.lookupByName(name)
    assert left["state"] == "timeout" and "did not shut down within 1.5 s" in left["why"] and left["shutdown_requests"] >= 3
    assert dom.isActive() and "sse4.2" not in live_cpu(dom)
    [forced] = _run(guests, batch, CycleOptions(mode="now", timeout=1.5, retry=0.5, force=True))
    assert forced["state"] == "done" and forced["forced"] and "sse4.2" in live_cpu(dom)


def test_next_shutdown_makes_a_reboot_inside_the_guest_end_the_domain(guests: Guests) -> None:
    name = guests.add("n1")
    dom = guests.conn.lookupByName(name)
    batch = {"hosts": {HOST: [name]}}
    [checked] = _run(guests, batch, CycleOptions(check_mode=True))
    assert checked["state"] == "armed" and "<on_reboot>restart</on_reboot>" in dom.XMLDesc(0)  # check mode: nothing armed
    [armed] = _run(guests, batch, CycleOptions())
    assert armed["state"] == "armed" and armed["changed"]
    assert "<on_reboot>destroy</on_reboot>" in dom.XMLDesc(0)
    assert "<on_reboot>restart</on_reboot>" in dom.XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE)  # the definition is untouched
    [again] = _run(guests, batch, CycleOptions())
    assert again["state"] == "armed" and not again["changed"]
    _reboot_inside(name, dom)
    dom.create()  # the next start
    assert "sse4.2" in live_cpu(dom) and "<on_reboot>restart</on_reboot>" in dom.XMLDesc(0)


def _reboot_inside(name: str, dom) -> None:  # type: ignore[no-untyped-def]
    """A reboot from inside the guest, once its code runs (it enables the power button): it resets itself on a key,
    pressed again until the domain ends (a key that comes while SeaBIOS still sets up the keyboard is lost)."""
    _wait(lambda: _power_button_enabled(name), f"{name}'s code to run (it enables the power button)")
    _wait(lambda: not dom.isActive() or virsh("send-key", name, "KEY_R").returncode != 0 or time.sleep(0.5), "the domain to end")


def _old(dom) -> bool:  # type: ignore[no-untyped-def]
    """The guest runs its old CPU (qemu64; the contract deployed by site is another model)."""
    return ">qemu64</model>" in (live_cpu(dom) or "")


def _power_button_enabled(name: str) -> bool:
    """Read PM1 enable (port 0x602) through the monitor: the boot sector sets the power button bit first."""
    out = virsh("qemu-monitor-command", name, "--hmp", "i /w 0x602").stdout.strip()
    value = int(out.rsplit("=", 1)[-1].strip(), 16) if out else 0xFFFFFFFF
    return value != 0xFFFFFFFF and value & 0x100 != 0  # all ones: SeaBIOS has not mapped the PM block yet


def _wait(condition, what: str, timeout: float = 30) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"waited {timeout} s for {what}"
        time.sleep(0.2)


LOCAL = {"ansible_connection": "local", "ansible_python_interpreter": sys.executable}


def _deployed(tmp_path, names: list[str]) -> tuple[Path, Path, dict]:
    """A one-host inventory (this machine, these guests only) on which the site playbook has pinned and deployed the
    contract: its path, the report folder and the extra vars every later run takes."""
    inventory = tmp_path / "inventory.yml"
    inventory.write_text(yaml.safe_dump({"hypervisors": {"hosts": {"hv1": {**LOCAL, "cpucompat_domains": {"names": names}}}}}))
    reports = tmp_path / "reports"
    extra = {"cpucompat_report_dir": str(reports)}
    site = run_playbook("cpucompat.cluster.site", tmp_path, inventory=str(inventory), extra=extra)
    assert site.returncode == 0, site.stdout[-3000:]
    return inventory, reports, extra


def test_the_playbook_cycles_the_deployed_guests_and_a_rerun_finds_none_left(guests: Guests, tmp_path) -> None:
    """End to end: site pins this machine's contract and deploys it into three running guests' definitions (they keep
    their old CPU: restart-required), power_cycle --check plans, power_cycle now cycles them in two batches with an
    anti-affinity pair, and a rerun finds nothing to do."""
    names = [guests.add(r, cpu=OLD) for r in ("e1", "e2", "e3")]
    inventory, reports, extra = _deployed(tmp_path, names)
    contract = json.loads((reports / "contract.json").read_text())
    statuses = contract["groups"]["hypervisors"]["domains"]
    assert {statuses[f"hv1/{n}"]["status"] for n in names} == {"restart-required"}, statuses
    assert "power_cycle.md" in (reports / "contract.md").read_text()  # the contract report links to the plan
    cycle = {**extra, "cpucompat_cycle_mode": "now", "cpucompat_cycle_batch": {"per_host": 2, "overall": 2},
             "cpucompat_cycle_anti_affinity": [names[:2]], "cpucompat_cycle_timeout": 60}
    planned = run_playbook("cpucompat.cluster.power_cycle", tmp_path, inventory=str(inventory), extra=cycle, check=True)
    assert planned.returncode == 0, planned.stdout[-3000:]
    plan = json.loads((reports / "power_cycle.json").read_text())
    assert [r["state"] for r in plan["rows"]] == ["planned"] * 3 and len({r["batch"] for r in plan["rows"]}) == 2
    assert all(guests.conn.lookupByName(n).isActive() and _old(guests.conn.lookupByName(n)) for n in names)  # check mode: nothing
    started = time.monotonic()
    ran = run_playbook("cpucompat.cluster.power_cycle", tmp_path, inventory=str(inventory), extra=cycle)
    elapsed = time.monotonic() - started
    assert ran.returncode == 0, ran.stdout[-3000:]
    report = json.loads((reports / "power_cycle.json").read_text())
    rows = {r["guest"]: r for r in report["rows"]}
    assert {r["state"] for r in rows.values()} == {"done"}, rows
    assert not any(_old(guests.conn.lookupByName(n)) for n in names)  # each runs the contract CPU now
    first, second = sorted((rows[f"hv1/{n}"] for n in names[:2]), key=lambda r: r["stopped_at"])
    assert first["batch"] != second["batch"] and first["started_at"] <= second["stopped_at"]
    print(f"\nplaybook, 3 guests in 2 batches: {elapsed:.1f} s (with the contract step); down (s): "
          + ", ".join(f"{k}: {r['down_s']:.2f}" for k, r in sorted(rows.items())))
    again = run_playbook("cpucompat.cluster.power_cycle", tmp_path, inventory=str(inventory), extra=cycle)
    assert again.returncode == 0, again.stdout[-3000:]
    assert json.loads((reports / "power_cycle.json").read_text())["rows"] == []
    site = run_playbook("cpucompat.cluster.site", tmp_path, inventory=str(inventory), extra=extra)
    assert site.returncode == 0, site.stdout[-3000:]
    statuses = json.loads((reports / "contract.json").read_text())["groups"]["hypervisors"]["domains"]
    assert {statuses[f"hv1/{n}"]["status"] for n in names} == {"compliant"}, statuses


def test_the_playbook_stops_at_a_failed_gate_and_a_rerun_resumes(guests: Guests, tmp_path) -> None:
    """The operator's health command fails for the second guest: the run stops there (the third keeps its old CPU), the
    playbook fails naming it; the rerun cycles only the third."""
    names = [guests.add(r, cpu=OLD) for r in ("g1", "g2", "g3")]
    inventory, reports, extra = _deployed(tmp_path, names)
    cycle = {**extra, "cpucompat_cycle_mode": "now", "cpucompat_cycle_timeout": 60,
             "cpucompat_cycle_health_command": ["sh", "-c", f'test "$CPUCOMPAT_DOMAIN" != {names[1]}']}
    stopped = run_playbook("cpucompat.cluster.power_cycle", tmp_path, inventory=str(inventory), extra=cycle)
    assert stopped.returncode != 0, stopped.stdout[-3000:]
    assert f"power cycle stopped: hv1/{names[1]}: domain {names[1]}: the health command sh -c" in stopped.stdout, stopped.stdout[-3000:]
    report = json.loads((reports / "power_cycle.json").read_text())
    assert [r["state"] for r in report["rows"]] == ["done", "gate-failed", "waiting"] and report["verdict"]["ok"] is False
    assert _old(guests.conn.lookupByName(names[2]))  # never reached: still its old CPU
    del cycle["cpucompat_cycle_health_command"]
    resumed = run_playbook("cpucompat.cluster.power_cycle", tmp_path, inventory=str(inventory), extra=cycle)
    assert resumed.returncode == 0, resumed.stdout[-3000:]
    report = json.loads((reports / "power_cycle.json").read_text())
    assert [(r["guest"], r["state"]) for r in report["rows"]] == [(f"hv1/{names[2]}", "done")] and report["resumed"]
    assert {e["guest"]: e["state"] for e in report["earlier"]} == {f"hv1/{names[0]}": "done", f"hv1/{names[1]}": "gate-failed"}


def test_the_playbook_next_shutdown_arms_and_a_reboot_inside_ends_the_domain(guests: Guests, tmp_path) -> None:
    """The default mode through the playbook: nothing goes down; each guest's reboot now ends its domain; a rerun says
    what became of the one that ended, and its next start runs the contract CPU."""
    names = [guests.add(r, cpu=OLD) for r in ("s1", "s2")]
    inventory, reports, extra = _deployed(tmp_path, names)
    armed = run_playbook("cpucompat.cluster.power_cycle", tmp_path, inventory=str(inventory), extra=extra)
    assert armed.returncode == 0, armed.stdout[-3000:]
    report = json.loads((reports / "power_cycle.json").read_text())
    assert [(r["batch"], r["state"]) for r in report["rows"]] == [(1, "armed"), (1, "armed")]
    doms = [guests.conn.lookupByName(n) for n in names]
    assert all(d.isActive() and "<on_reboot>destroy</on_reboot>" in d.XMLDesc(0) for d in doms)
    _reboot_inside(names[0], doms[0])
    again = run_playbook("cpucompat.cluster.power_cycle", tmp_path, inventory=str(inventory), extra=extra)
    assert again.returncode == 0, again.stdout[-3000:]
    report = json.loads((reports / "power_cycle.json").read_text())
    assert [(r["guest"], r["state"]) for r in report["rows"]] == [(f"hv1/{names[1]}", "armed")]  # armed already: left so
    assert report["earlier"][0]["now"].startswith("shut off (ended): its next start runs the contract CPU"), report["earlier"]
    doms[0].create()
    assert not _old(doms[0]) and "<on_reboot>restart</on_reboot>" in doms[0].XMLDesc(0)  # the contract CPU now
