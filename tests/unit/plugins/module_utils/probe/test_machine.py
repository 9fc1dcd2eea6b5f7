# Copyright (c) 2026 cpucompat.cluster contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The probe's machine type follows the host's guests, else the architecture's usual one."""

from __future__ import annotations

from ansible_collections.cpucompat.cluster.plugins.module_utils.probe import _fingerprint


def _define(directory, name: str, machine: str, arch: str = "x86_64", emulator: str = "") -> None:
    devices = f"<devices><emulator>{emulator}</emulator></devices>" if emulator else ""
    (directory / f"{name}.xml").write_text(f"<domain type='kvm'><name>{name}</name><os><type arch='{arch}' machine='{machine}'>hvm"
                                           f"</type></os>{devices}</domain>")


def test_the_machine_most_guests_use(tmp_path) -> None:
    assert _fingerprint.guests_machine("x86_64", str(tmp_path)) is None
    _define(tmp_path, "a", "pc-i440fx-7.2")
    _define(tmp_path, "b", "pc-q35-7.2")
    _define(tmp_path, "c", "pc-q35-7.2")
    _define(tmp_path, "arm", "virt-7.2", arch="aarch64")
    _define(tmp_path, "arm2", "virt-7.2", arch="aarch64")
    _define(tmp_path, "arm3", "virt-7.2", arch="aarch64")
    (tmp_path / "broken.xml").write_text("<domain")
    _define(tmp_path, "evil", "q35,accel=tcg -S")
    assert _fingerprint.guests_machine("x86_64", str(tmp_path)) == "pc-q35-7.2", "the other arch, broken and bad names aside"
    assert _fingerprint.guests_machine("aarch64", str(tmp_path)) == "virt-7.2"
    for i in range(3):  # another QEMU's guests: its machine types may not exist in this one
        _define(tmp_path, f"new{i}", "pc-q35-10.0", emulator="/opt/qemu-10/bin/qemu-system-x86_64")
    assert _fingerprint.guests_machine("x86_64", str(tmp_path), binary="/usr/bin/qemu-system-x86_64") == "pc-q35-7.2"


def test_without_guests_the_architectures_usual_machine(monkeypatch) -> None:
    monkeypatch.setattr(_fingerprint, "guests_machine", lambda arch, directory=_fingerprint.GUESTS_DIR, binary=None: None)
    assert _fingerprint.default_machine("/usr/bin/qemu-system-x86_64", None) == "q35"
    assert _fingerprint.default_machine("/usr/bin/qemu-system-aarch64", None) == "virt"
    assert _fingerprint.default_machine("/usr/bin/qemu-system-s390x", None) is None
    assert _fingerprint.default_machine("/usr/bin/qemu-system-x86_64", "pc") == "pc", "the caller's choice stands"
    monkeypatch.setattr(_fingerprint, "guests_machine", lambda arch, directory=_fingerprint.GUESTS_DIR, binary=None: "pc-i440fx-7.2")
    assert _fingerprint.default_machine("/usr/bin/qemu-system-x86_64", None) == "pc-i440fx-7.2"
