# Copyright (c) 2026 cpucompat.cluster contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""libvirt itself judges the rendered <cpu>: this machine (probed live) plus recorded hosts."""

from __future__ import annotations

import subprocess
import uuid

import pytest

from ansible_collections.cpucompat.cluster.plugins.module_utils.engine import _baseline
from ansible_collections.cpucompat.cluster.plugins.module_utils.probe import _fingerprint, _probe
from ansible_collections.cpucompat.cluster.plugins.module_utils.cpu import _libvirt_map
from ansible_collections.cpucompat.cluster.plugins.module_utils.render import _libvirt_xml
from utils.recordings import facts_of

pytestmark = pytest.mark.usefixtures("no_leftover_qemu")
ACCEL = "kvm" if _fingerprint.kvm_usable() else "tcg"
VIRTTYPE = "kvm" if ACCEL == "kvm" else "qemu"
URI = "qemu:///system"


@pytest.fixture(scope="module")
def this_machine() -> dict:
    facts = _probe.probe(_probe.ProbeRequest(accel=ACCEL))
    if ACCEL == "tcg":
        pytest.skip("recorded hosts are KVM probes; mixing them with a TCG probe of this machine is refused by design")
    return facts


def _virsh(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["virsh", "-c", URI, *args], capture_output=True, text=True, check=False, timeout=120)


def _define_and_start(tmp_path, cpu_xml: str) -> str:
    """Define a domain on ``cpu_xml``, start it paused (libvirt checks the CPU with check='full'); its live XML."""
    name = f"cpucompat-test-{uuid.uuid4().hex[:8]}"
    domain = tmp_path / "domain.xml"
    domain.write_text(f"""<domain type='{VIRTTYPE}'>
  <name>{name}</name>
  <memory unit='MiB'>64</memory>
  <vcpu>1</vcpu>
  <os><type arch='x86_64' machine='pc'>hvm</type></os>
  {cpu_xml}
  <devices><emulator>/usr/bin/qemu-system-x86_64</emulator></devices>
</domain>
""")
    try:
        defined = _virsh("define", str(domain))
        assert defined.returncode == 0, defined.stderr
        started = _virsh("start", "--paused", name)
        assert started.returncode == 0, f"libvirt refused to start the CPU: {started.stderr}\n{cpu_xml}"
        assert _virsh("domstate", name).stdout.strip() == "paused"
        return _virsh("dumpxml", name).stdout
    finally:
        _virsh("destroy", name)
        _virsh("undefine", name)


@pytest.mark.skipif(ACCEL != "kvm", reason="a TCG probe describes QEMU's emulated CPU: no host address bits to emulate")
def test_maxphysaddr_is_rendered_and_libvirt_starts_it(tmp_path, this_machine: dict) -> None:
    """The group's fewest physical address bits, as <maxphysaddr mode='emulate'>, where libvirt (>= 8.7) knows it."""
    assert this_machine["phys_bits"] and this_machine["versions"]["libvirt"]
    base = _baseline.baseline_of({"this-machine": this_machine})
    assert base.phys_bits == base.maxphysaddr == this_machine["phys_bits"] and base.phys_bits_note is None
    rendered = _libvirt_xml.render(base)
    assert f"<maxphysaddr mode='emulate' bits='{this_machine['phys_bits']}'/>" in rendered.xml
    xml = tmp_path / "cpu.xml"
    xml.write_text(rendered.xml)
    verdict = _virsh("hypervisor-cpu-compare", str(xml), "--virttype", VIRTTYPE)
    assert verdict.returncode == 0 and "incompatible" not in verdict.stdout.lower(), verdict.stdout + verdict.stderr
    live = _define_and_start(tmp_path, rendered.xml)
    assert f"bits='{this_machine['phys_bits']}'" in live, "the running guest keeps the emulated address bits"
    # an older libvirt somewhere in the group: the bits are reported, not rendered
    old = dict(this_machine, versions={**this_machine["versions"], "libvirt": "8.6.0"})
    older = _baseline.baseline_of({"this-machine": this_machine, "old-libvirt": old})
    assert older.maxphysaddr is None and "old-libvirt" in older.phys_bits_note
    assert "maxphysaddr" not in _libvirt_xml.render(older).xml


@pytest.mark.parametrize("recorded", ["x86_64-xeon-gold-6130", "x86_64-epyc-7502", "x86_64-core-i7-8700", "x86_64-epyc-9654-qemu-10.0.0"])
def test_libvirt_accepts_and_starts_the_baseline(tmp_path, this_machine: dict, recorded: str) -> None:
    hosts = {"this-machine": this_machine, recorded: facts_of(recorded)}
    base = _baseline.baseline_of(hosts, _baseline.BaselineOptions(vendor_neutral=True))
    rendered = _libvirt_xml.render(base)
    xml = tmp_path / "cpu.xml"
    xml.write_text(rendered.xml)
    verdict = _virsh("hypervisor-cpu-compare", str(xml), "--virttype", VIRTTYPE)
    assert verdict.returncode == 0 and "incompatible" not in verdict.stdout.lower(), verdict.stdout + verdict.stderr
    live = _define_and_start(tmp_path, rendered.xml)
    assert "<cpu" in live, "the running guest's live definition carries its CPU"


def test_render_rejects_what_is_not_a_feature_name() -> None:
    with pytest.raises(Exception, match="not a valid CPU feature name"):
        _libvirt_xml.render(_baseline.Baseline.from_dict({"arch": "x86_64", "vendor": "GenuineIntel", "model": None,
                                                         "features": ["sse2", "x'/><evil"]}))


def test_libvirt_spelling_and_model_mapping() -> None:
    cpu_map = _libvirt_map.load_cpu_map()
    assert cpu_map.libvirt_name("pclmulqdq") == "pclmuldq"
    assert cpu_map.libvirt_name("lahf-lm") == "lahf_lm"
    assert cpu_map.libvirt_name("sse4.1") == "sse4.1"
    assert cpu_map.libvirt_name("kvmclock") is None
    facts = facts_of("x86_64-xeon-gold-6130")
    out = _libvirt_xml.render(_baseline.baseline_of({"gold": facts}))
    assert out.spec.model in cpu_map.models and not out.spec.model.endswith(("-v1", "-v2", "-v3", "-v4", "-v5"))
    assert out.xml.startswith("<cpu mode='custom' match='exact' check='full'>")
    assert "<vendor>Intel</vendor>" in out.xml


def test_features_libvirt_does_not_know_are_named_never_silently_dropped() -> None:
    base = _baseline.Baseline.from_dict({"arch": "x86_64", "vendor": "GenuineIntel", "model": None, "candidates": ["pentium3-v1"],
                                         "features": ["fpu", "sse", "kvmclock", "future-feature"]})
    with pytest.raises(Exception, match="does not know these baseline features: future-feature"):
        _libvirt_xml.render(base, unknown_features="fail")
    dropped = _libvirt_xml.render(base)
    assert list(dropped.unexpressible) == ["future-feature", "kvmclock"]
    assert "name='future-feature'" not in dropped.xml and "name='kvmclock'" not in dropped.xml
    assert "<!-- left out, libvirt's CPU map has no name for: future-feature, kvmclock -->" in dropped.xml
