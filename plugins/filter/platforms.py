# Copyright (c) 2026 cpucompat.cluster contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Filters rendering the guest CPU for platforms beyond plain libvirt; thin adapters over module_utils/render (docs in
the sidecar .yml files)."""

from __future__ import annotations

from typing import Any

from ansible.errors import AnsibleFilterError

from ansible_collections.cpucompat.cluster.plugins.module_utils._errors import CpuCompatError
from ansible_collections.cpucompat.cluster.plugins.module_utils.cpu._guest import GuestCpu
from ansible_collections.cpucompat.cluster.plugins.module_utils.render import _incus, _kubevirt, _nova, _platform_tiers, _proxmox, _qemu


def _guest(value: Any, level: Any, name: str) -> GuestCpu:
    """The guest CPU of a baseline (or the baseline itself), with a pinned level (a contract's ``cpu``) when given."""
    guest = GuestCpu.from_dict(value, f"{name} input")
    if level is not None:
        guest = guest.with_level(level, f"{name}: the level")
    return guest


def cpu_qemu_args(guest: Any, form: str = "minimal", level: Any = None) -> str:
    try:
        return _qemu.render(_guest(guest, level, "cpu_qemu_args"), form).args
    except CpuCompatError as exc:
        raise AnsibleFilterError(f"cpu_qemu_args: {exc}") from exc


def cpu_proxmox(guest: Any, name: str = _proxmox.DEFAULT_NAME, form: str = "minimal", level: Any = None) -> dict[str, Any]:
    try:
        return _proxmox.render(_guest(guest, level, "cpu_proxmox"), name, form).to_dict()
    except CpuCompatError as exc:
        raise AnsibleFilterError(f"cpu_proxmox: {exc}") from exc


def cpu_nova(guest: Any, form: str = "minimal", level: Any = None) -> dict[str, Any]:
    try:
        return _nova.render(_guest(guest, level, "cpu_nova"), form).to_dict()
    except CpuCompatError as exc:
        raise AnsibleFilterError(f"cpu_nova: {exc}") from exc


def cpu_kubevirt(guest: Any, preference: str = _kubevirt.DEFAULT_PREFERENCE, obsolete_models: Any = None,
                 form: str = "minimal", level: Any = None) -> dict[str, Any]:
    if obsolete_models is not None and (isinstance(obsolete_models, str) or not all(isinstance(m, str) for m in obsolete_models)):
        raise AnsibleFilterError(f"cpu_kubevirt: obsolete_models must be a list of CPU model names, got {obsolete_models!r}")
    try:
        return _kubevirt.render(_guest(guest, level, "cpu_kubevirt"), preference, obsolete_models, form).to_dict()
    except CpuCompatError as exc:
        raise AnsibleFilterError(f"cpu_kubevirt: {exc}") from exc


def cpu_incus(guest: Any, group: str = "default", form: str = "minimal", level: Any = None) -> dict[str, Any]:
    try:
        cpu = _incus.render(_guest(guest, level, "cpu_incus"), form)
        return {**cpu.to_dict(), "commands": cpu.commands(group)}
    except CpuCompatError as exc:
        raise AnsibleFilterError(f"cpu_incus: {exc}") from exc


def cpu_tiers(tiers: Any, platform: str, form: str = "minimal", name: str | None = None, preference: str | None = None,
              obsolete_models: Any = None) -> dict[str, Any]:
    if not isinstance(tiers, list) or not all(isinstance(t, dict) and {"name", "guest", "hosts"} <= set(t) for t in tiers):
        raise AnsibleFilterError(f"cpu_tiers: the input must be a list of tiers (name, guest, cpu, hosts), the base first, got {tiers!r:.200}")
    try:
        listed = [(str(t["name"]), _guest(t["guest"], t.get("cpu") or None, f"cpu_tiers (tier {t['name']})"), [str(h) for h in t["hosts"]])
                  for t in tiers]
        return _platform_tiers.tier_render(listed, platform, form, {"proxmox_name": name, "kubevirt_preference": preference,
                                                                    "kubevirt_obsolete": obsolete_models})
    except CpuCompatError as exc:
        raise AnsibleFilterError(f"cpu_tiers: {exc}") from exc


class FilterModule:
    """cpucompat.cluster filters for Proxmox VE, OpenStack Nova, KubeVirt, Incus and plain QEMU."""

    def filters(self) -> dict[str, Any]:
        return {"cpu_qemu_args": cpu_qemu_args, "cpu_proxmox": cpu_proxmox, "cpu_nova": cpu_nova, "cpu_kubevirt": cpu_kubevirt,
                "cpu_incus": cpu_incus, "cpu_tiers": cpu_tiers}
