# Copyright (c) 2026 cpucompat.cluster contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""libvirt itself judges the rendered <cpu> of groups with this machine (probed live): it compares it with the host
(``virsh hypervisor-cpu-compare``) and starts it with check='full'. The exactness on both stacks: test_exact_cpu."""

from __future__ import annotations

import subprocess

import pytest

from ansible_collections.cpucompat.cluster.plugins.module_utils.cpu._guest import GuestCpu
from ansible_collections.cpucompat.cluster.plugins.module_utils.engine import _baseline
from ansible_collections.cpucompat.cluster.plugins.module_utils.probe import _fingerprint, _probe
from ansible_collections.cpucompat.cluster.plugins.module_utils.render import _libvirt
from integration.libvirt_helpers import URI, VIRTTYPE, live_cycle
from utils.recordings import facts_of

pytestmark = pytest.mark.usefixtures("no_leftover_qemu")
ACCEL = "kvm" if _fingerprint.kvm_usable() else "tcg"


@pytest.fixture(scope="module")
def this_machine() -> dict:
    facts = _probe.probe(_probe.ProbeRequest(accel=ACCEL, machine="q35"))
    if ACCEL == "tcg":
        pytest.skip("recorded hosts are KVM probes; mixing them with a TCG probe of this machine is refused by design")
    return facts


def _virsh(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["virsh", "-c", URI, *args], capture_output=True, text=True, check=False, timeout=120)


@pytest.mark.skipif(ACCEL != "kvm", reason="a TCG probe describes QEMU's emulated CPU: no host address bits to emulate")
def test_maxphysaddr_is_rendered_and_libvirt_starts_it(tmp_path, this_machine: dict) -> None:
    """The group's fewest physical address bits, as <maxphysaddr mode='emulate'>, where libvirt (>= 8.7) knows it."""
    assert this_machine["phys_bits"] and this_machine["versions"]["libvirt"]
    base = _baseline.baseline_of({"this-machine": this_machine})
    assert base.phys_bits == base.maxphysaddr == base.guest.phys_bits == this_machine["phys_bits"] and base.phys_bits_note is None
    rendered = _libvirt.render(base.guest)
    assert f"<maxphysaddr mode='emulate' bits='{this_machine['phys_bits']}'/>" in rendered.xml
    xml = tmp_path / "cpu.xml"
    xml.write_text(rendered.xml)
    verdict = _virsh("hypervisor-cpu-compare", str(xml), "--virttype", VIRTTYPE)
    assert verdict.returncode == 0 and "incompatible" not in verdict.stdout.lower(), verdict.stdout + verdict.stderr
    live = live_cycle(tmp_path, rendered.xml)
    assert f"bits='{this_machine['phys_bits']}'" in live, "the running guest keeps the emulated address bits"
    # an older libvirt somewhere in the group: the bits are reported, not rendered
    old = dict(this_machine, versions={**this_machine["versions"], "libvirt": "8.6.0"})
    older = _baseline.baseline_of({"this-machine": this_machine, "old-libvirt": old})
    assert older.maxphysaddr is None and "old-libvirt" in older.phys_bits_note
    assert "maxphysaddr" not in _libvirt.render(older.guest).xml


@pytest.mark.parametrize("recorded", ["x86_64-xeon-gold-6130", "x86_64-epyc-7502", "x86_64-core-i7-8700", "x86_64-epyc-9654-qemu-10.0.0"])
def test_libvirt_accepts_and_starts_the_baseline(tmp_path, this_machine: dict, recorded: str) -> None:
    hosts = {"this-machine": this_machine, recorded: facts_of(recorded)}
    base = _baseline.baseline_of(hosts, _baseline.BaselineOptions(vendor_neutral=True))
    assert base.guest is not None, base.guest_error
    rendered = _libvirt.render(base.guest)
    xml = tmp_path / "cpu.xml"
    xml.write_text(rendered.xml)
    verdict = _virsh("hypervisor-cpu-compare", str(xml), "--virttype", VIRTTYPE)
    assert verdict.returncode == 0 and "incompatible" not in verdict.stdout.lower(), verdict.stdout + verdict.stderr
    assert "<cpu" in live_cycle(tmp_path, rendered.xml), "the running guest's live definition carries its CPU"


@pytest.mark.parametrize("bad", ["x'/><evil", "a b", ""])
def test_a_guest_cpu_with_what_is_not_a_feature_name_never_reaches_xml(bad: str) -> None:
    guest = _baseline.baseline_of({"gold": facts_of("x86_64-xeon-gold-6130")}).guest.to_dict()
    guest["features"] = [*guest["features"], bad]
    with pytest.raises(Exception, match="not a valid CPU feature name"):
        _libvirt.render(GuestCpu.from_dict(guest))
