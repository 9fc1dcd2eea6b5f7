# Copyright (c) 2026 cpucompat.cluster contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""An arm64 host's identity read from its /sys and /proc (recorded trees of real hosts, PROVENANCE.md beside them),
and QEMU's expansion of the host CPU as the facts keep it."""

from __future__ import annotations

import os

import pytest

from ansible_collections.cpucompat.cluster.plugins.module_utils.probe import _armhost

TREES = os.path.join(os.path.dirname(__file__), "..", "..", "..", "..", "fixtures", "arm64-hosts")


def _tree(name: str) -> str:
    return os.path.join(TREES, name)


@pytest.mark.parametrize("name, midr, part, page, sve", [
    ("neoverse-n1-altra-a", 0x413FD0C1, "Neoverse-N1", 4096, False),
    ("neoverse-v2-grace", 0x410FD4F0, "Neoverse-V2", 65536, True),
    ("neoverse-v1-graviton3", 0x411FD401, "Neoverse-V1", 4096, True),
    ("thunderx2", 0x431F0AF1, "ThunderX2", 4096, False),
])
def test_a_recorded_tree_gives_the_hosts_identity(name: str, midr: int, part: str, page: int, sve: bool) -> None:
    host = _armhost.read(_tree(name))
    assert host.is_arm and host.midr == (midr,) and host.revidr == (0,) and host.cpus == 4
    assert host.page_size == page and host.kernel and host.firmware
    assert ("sve" in (host.features or ())) is sve and "fp" in (host.features or ())
    assert _armhost.Midr(midr).describe().startswith(part)
    # /proc/cpuinfo's CPU 0 lines say the same as its MIDR
    decoded = _armhost.Midr(midr)
    assert int(host.cpuinfo["part"], 16) == decoded.part and int(host.cpuinfo["implementer"], 16) == decoded.implementer
    assert int(host.cpuinfo["variant"], 16) == decoded.variant and int(host.cpuinfo["revision"]) == decoded.revision


def test_read_tree_reads_only_the_files_it_names() -> None:
    files = _armhost.read_tree(_tree("neoverse-n1-altra-a"))
    assert set(files) == {f"sys/devices/system/cpu/cpu{i}/regs/identification/{r}" for i in range(4) for r in ("midr_el1", "revidr_el1")} | {
        "proc/cpuinfo", "proc/self/smaps", "proc/sys/kernel/osrelease", "sys/class/dmi/id/bios_version"}


def test_a_tree_without_an_arm_cpu_has_no_identity(tmp_path) -> None:
    (tmp_path / "proc").mkdir()
    (tmp_path / "proc" / "cpuinfo").write_text("processor\t: 0\nvendor_id\t: GenuineIntel\nflags\t\t: fpu vme\n\n")
    host = _armhost.read(str(tmp_path))
    assert not host.is_arm and host.midr == () and host.features is None and host.page_size is None


def test_mixed_cores_and_disagreeing_features_are_kept_as_they_are() -> None:
    files = {
        "sys/devices/system/cpu/cpu0/regs/identification/midr_el1": "0x00000000410fd050\n",  # Cortex-A55
        "sys/devices/system/cpu/cpu4/regs/identification/midr_el1": "0x00000000414fd0b0\n",  # Cortex-A76
        "sys/devices/system/cpu/cpu5/regs/identification/midr_el1": "garbage\n",
        "proc/cpuinfo": "processor\t: 0\nFeatures\t: fp asimd aes\nCPU part\t: 0xd05\n\nprocessor\t: 4\nFeatures\t: fp asimd\n",
    }
    host = _armhost.parse(files)
    assert host.midr == (0x410FD050, 0x414FD0B0) and host.cpus == 2
    assert host.features == ("asimd", "fp")  # the intersection: what every CPU has
    assert host.cpuinfo == {"part": "0xd05"}


def test_expansion_keeps_sve_lengths_pmu_pauth_and_kvm_properties() -> None:
    props = {"sve": True, "sve128": True, "sve256": True, "sve512": False, "pmu": True, "pauth": True, "aarch64": True,
             "kvm-steal-time": True, "kvm-no-adjvtime": False}
    assert _armhost.expansion(props) == {"sve_lengths": [128, 256], "pmu": True, "pauth": True,
                                         "kvm": {"kvm-no-adjvtime": False, "kvm-steal-time": True}}
    assert _armhost.expansion({"sve": False, "sve128": True})["sve_lengths"] == []


@pytest.mark.parametrize("version, machines, expected", [
    ("8.2.0", None, "virt-8.2"),
    ("10.0.3", None, "virt-10.0"),
    ("9.2.0", [{"name": "virt-9.1", "alias": "virt"}, {"name": "virt-9.0"}], "virt-9.1"),
    (None, None, None),
])
def test_the_virt_machine_type(version, machines, expected) -> None:
    assert _armhost.virt_machine(version, machines) == expected


def test_the_fingerprint_of_an_aarch64_probe_covers_the_identity_the_kernel_and_features_do_not() -> None:
    """A firmware update (or another CPU) changes a spawned aarch64 probe's fingerprint; x86 fingerprints are unchanged."""
    from ansible_collections.cpucompat.cluster.plugins.module_utils.probe import _fingerprint  # pylint: disable=import-outside-toplevel

    inputs = _fingerprint.arm_identity_inputs(_tree("thunderx2"))
    assert inputs["regs"] == ["midr_el1=0x00000000431f0af1", "revidr_el1=0x0000000000000000"] and inputs["firmware"] == "T99-BIOS 7.3"
    assert _fingerprint.arm_identity_inputs(_tree("neoverse-n1-altra-a")) != inputs
    for binary, has_arm in (("qemu-system-aarch64", True), ("qemu-system-x86_64", False)):
        found = _fingerprint.find_binary(binary)
        assert ("arm" in _fingerprint.environment_inputs(found, "tcg")) is has_arm
