# Copyright (c) 2026 cpucompat.cluster contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""cpu_observe against real QEMU and libvirt: the words it returns are the running vCPU's, read independently; nothing
outlives a fault; a 32-bit guest CPU starts."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import time

import libvirt
import pytest

from ansible_collections.cpucompat.cluster.plugins.module_utils._errors import CpuCompatError, CpuXmlError, LibvirtError, QemuStartError
from ansible_collections.cpucompat.cluster.plugins.module_utils.engine._baseline import baseline_of
from ansible_collections.cpucompat.cluster.plugins.module_utils.probe import _observe, _probe
from ansible_collections.cpucompat.cluster.plugins.module_utils.render._libvirt import render
from ansible_collections.cpucompat.cluster.plugins.module_utils.render._qemu import render as render_qemu
from integration.libvirt_helpers import domain_xml, remove, virsh
from utils import vcpu

MACHINE = "pc-q35-7.2"


@pytest.fixture(scope="module")
def me() -> dict:
    """This machine's facts (the system QEMU, an explicit machine type: nothing depends on the domains defined here)."""
    return _probe.probe(_probe.ProbeRequest(accel="auto", machine="q35"))


def _observe_xml(xml: str, machine: str = MACHINE, **kw) -> dict:
    return _observe.observe(_observe.ObserveRequest(cpu_xml=xml, machine=machine, **kw), libvirt)


def _leftovers() -> tuple[list[str], list[str]]:
    """Observation domains libvirt still knows, and QEMU processes of them."""
    names = [n for n in virsh("list", "--all", "--name").stdout.split() if n.startswith(_observe.DOMAIN_PREFIX)
             and n.split("-")[2] == str(os.getpid())]
    procs = subprocess.run(["pgrep", "-f", f"guest={_observe.DOMAIN_PREFIX}{os.getpid()}-"], capture_output=True, text=True,
                           check=False).stdout.split()
    return names, procs


@pytest.mark.xdist_group("libvirt")  # a persistent domain of its own, of machine type pc-q35-7.2, for a moment
def test_the_words_are_those_of_the_running_vcpu(me, tmp_path) -> None:
    """A domain of the same <cpu> and machine type, started by libvirt and read with virsh qemu-monitor-command (not
    the collection's code): cpu_observe returns exactly its CPUID words."""
    xml = render(baseline_of({"me": me}).guest).xml
    seen = _observe_xml(xml)
    assert seen["via"] == "libvirt" and seen["machine"] == MACHINE and seen["accel"] == me["accel"]
    assert seen["qemu"]["version"] == me["qemu"]["version"] and seen["qemu"]["package"] == me["qemu"]["package"]
    assert seen["kernel"] == os.uname().release and not seen["filtered"]
    name = f"cpucompat-observe-ref-{os.getpid()}"
    path = tmp_path / "ref.xml"
    path.write_text(domain_xml(name, xml).replace("machine='pc'", f"machine='{MACHINE}'"))
    try:
        virsh("define", str(path), check=True)
        assert virsh("start", "--paused", name).returncode == 0
        path_of = json.loads(virsh("qemu-monitor-command", name, '{"execute":"query-cpus-fast"}', check=True).stdout)
        qom = path_of["return"][0]["qom-path"]
        reply = virsh("qemu-monitor-command", name,
                      json.dumps({"execute": "qom-get", "arguments": {"path": qom, "property": "feature-words"}}), check=True)
        independent = {vcpu.key(w): w["features"] for w in json.loads(reply.stdout)["return"]}
    finally:
        remove(name)
    assert seen["cpuid"] == independent
    assert len(independent) >= 20 and independent["0x1.0x0.EDX"] != 0


def test_the_plain_qemu_path_gives_the_same_words_as_libvirt(me) -> None:
    """The same CPU through libvirt and as the -cpu the QEMU renderer writes: one vCPU."""
    guest = baseline_of({"me": me}).guest
    through_libvirt = _observe_xml(render(guest).xml)
    plain = _observe.observe(_observe.ObserveRequest(qemu_args=render_qemu(guest).args, machine=MACHINE))
    assert plain["via"] == "qemu" and plain["machine"] == MACHINE
    assert plain["cpuid"] == through_libvirt["cpuid"]


def test_a_32_bit_guest_cpu_starts(me) -> None:
    """The defect: a <cpu> without lm carried <maxphysaddr>, which QEMU refuses in 32 bit. A group whose common CPU is
    486 without long mode now starts, through libvirt and as a plain -cpu."""
    long_mode = ("lm", "nx", "syscall", "lahf-lm", "pdpe1gb")
    weak = {**me, "runnable_models": ["486"], "features": [f for f in me["features"] if f not in long_mode]}
    guest = baseline_of({"me": me, "weak": weak}).guest
    assert guest is not None and "lm" not in guest.features and guest.phys_bits is None
    assert "maxphysaddr" not in render(guest).xml and "phys-bits" not in render_qemu(guest).args
    assert not _observe_xml(render(guest).xml)["filtered"]
    assert not _observe.observe(_observe.ObserveRequest(qemu_args=render_qemu(guest).args, machine=MACHINE))["filtered"]


# ------------------------------------------------------------------------------------------------ faults
def test_a_cpu_libvirt_refuses_is_named_and_nothing_stays(me) -> None:
    """check='full' refuses a <cpu> whose model does not run here; the error says so, and no domain or QEMU remains."""
    xml = "<cpu mode='custom' match='exact'><model fallback='forbid'>Skylake-Server</model><feature policy='require' name='avx512f'/></cpu>"
    with pytest.raises(LibvirtError, match="does not start the <cpu>"):
        _observe_xml(xml)
    assert _leftovers() == ([], [])


@pytest.mark.parametrize("bad, match", [
    ("<cpu><model>x</model><feature policy='require' name='$(touch /tmp/x)'/></cpu>", "not a valid CPU feature name"),
    ("<cpu><model>Sky lake</model></cpu>", "not a valid CPU model name"),
    ("<domain/>", "must be a <cpu>"),
    ("<cpu><model>", "not well-formed"),
])
def test_bad_xml_is_refused_before_libvirt(bad: str, match: str) -> None:
    with pytest.raises(CpuXmlError, match=match):
        _observe_xml(bad)
    assert _leftovers() == ([], [])


@pytest.mark.parametrize("args", ["qemu64 -S", "-machine,none", "qemu64,,+x", "qemu64,+a;b", "q$(x),+sse2"])
def test_qemu_args_that_are_no_cpu_value_are_refused(args: str) -> None:
    with pytest.raises(CpuXmlError):
        _observe.observe(_observe.ObserveRequest(qemu_args=args))


@pytest.mark.usefixtures("no_leftover_qemu")
def test_a_hung_qemu_is_killed_at_the_timeout(tmp_path) -> None:
    """An emulator that never connects its monitor: killed after the timeout, its process group and socket gone."""
    fake = tmp_path / "qemu-system-x86_64"
    fake.write_text("#!/bin/sh\nsleep 60\n")
    fake.chmod(0o755)
    started = time.monotonic()
    with pytest.raises(QemuStartError, match="within 1 s; it was killed"):
        _observe.observe(_observe.ObserveRequest(qemu_args="qemu64", emulator=str(fake), accel="tcg", timeout=1))
    assert time.monotonic() - started < 5
    assert not subprocess.run(["pgrep", "-f", str(fake)], capture_output=True, check=False).stdout  # its group was killed


def test_a_missing_emulator_and_an_unknown_model_are_named() -> None:
    with pytest.raises(QemuStartError, match="no-such-qemu"):
        _observe.observe(_observe.ObserveRequest(qemu_args="qemu64", emulator="/nonexistent/no-such-qemu"))
    with pytest.raises(CpuCompatError, match="NoSuchModel"):
        _observe.observe(_observe.ObserveRequest(qemu_args="NoSuchModel", accel="tcg"))


def test_libvirt_unreachable_is_named() -> None:
    with pytest.raises(LibvirtError, match="cannot connect to libvirt at qemu:///nowhere"):
        _observe_xml("<cpu mode='custom' match='exact'><model>qemu64</model></cpu>", libvirt_uri="qemu:///nowhere")


def test_it_takes_little_time(me) -> None:
    """Measured, not timed against a target here (make bench does): both paths answer, and say how long they took."""
    xml = render(baseline_of({"me": me}).guest).xml
    assert _observe_xml(xml)["duration_s"] > 0
    assert _observe.observe(_observe.ObserveRequest(qemu_args="qemu64", machine=MACHINE))["duration_s"] > 0


def test_several_cpus_are_kept_side_by_side_in_the_fact_cache(tmp_path) -> None:
    """cpu_observe with cpus= (each tier's contract) beside a call with one CPU (the group's): the host's cached facts keep
    each named observation under its name (cpucompat_observations), each of its own CPU, and the group's
    (cpucompat_observation) as it is - no observation overwrites another. A second call observes only what changed,
    keeps the rest from the cache, and names a CPU that does not start without failing the others."""
    from integration.helpers import run_playbook  # pylint: disable=import-outside-toplevel

    play = """
- hosts: localhost
  gather_facts: false
  tasks:
    - name: The group's CPU
      cpucompat.cluster.cpu_observe: {qemu_args: "pentium2", machine: q35}
    - name: Each tier's CPU, by name
      cpucompat.cluster.cpu_observe:
        cpus: "{{ tiers }}"
        via: qemu
        machine: q35
        key: this-stack
        observations: "{{ ansible_facts.cpucompat_observations | default({}) }}"
      register: seen
    - name: Show what the call did
      ansible.builtin.debug:
        msg: "SEEN {{ {'observed': seen.observations | list | sort, 'kept': seen.kept, 'failures': seen.failures | list} | to_json }}"
"""

    def run(tiers: dict) -> tuple[dict, dict]:
        done = run_playbook(play, tmp_path, extra={"tiers": tiers})
        assert done.returncode == 0, done.stdout[-3000:]
        said = json.loads(next(ln for ln in done.stdout.splitlines() if "SEEN " in ln).split("SEEN ", 1)[1].rstrip('"').replace('\\"', '"'))
        return said, json.loads(json.loads((tmp_path / "facts" / "s1_localhost").read_text())["__payload__"])

    said, cached = run({"g@a": {"qemu_args": "pentium3"}, "g@b": {"qemu_args": "pentium"}})
    assert said == {"observed": ["g@a", "g@b"], "kept": [], "failures": []}
    named = cached["cpucompat_observations"]
    assert sorted(named) == ["g@a", "g@b"] and named["g@a"]["name"] == "g@a"
    assert named["g@a"]["cpuid"] != named["g@b"]["cpuid"] != cached["cpucompat_observation"]["cpuid"]
    assert named["g@b"]["cpu_digest"] == "sha256:" + hashlib.sha256(b"pentium").hexdigest()
    assert cached["cpucompat_observation"]["cpu_digest"] == "sha256:" + hashlib.sha256(b"pentium2").hexdigest()
    assert "name" not in cached["cpucompat_observation"]
    said, again = run({"g@a": {"qemu_args": "pentium3"}, "g@b": {"qemu_args": "cpucompat-no-such-model"}, "g@c": {"xml": "<cpu/>"}})
    assert said == {"observed": [], "kept": ["g@a"], "failures": ["g@b", "g@c"]}, said
    assert again["cpucompat_observations"]["g@a"] == named["g@a"], "kept as it was observed"
