# Copyright (c) 2026 cpucompat.cluster contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""One guest CPU rendered for each platform a group runs, or why a platform cannot say it: what reports show. Private."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from .._errors import CpuCompatError, InputError
from ..cpu._guest import GuestCpu
from . import _incus, _kubevirt, _libvirt, _nova, _passthrough, _proxmox, _qemu

PLATFORMS = ("libvirt", "qemu", "proxmox", "nova", "kubevirt", "incus")


def render_one(guest: GuestCpu, platform: str, form: str = "minimal", options: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The rendering of ``guest`` for one platform as a plain dict; raises the renderer's refusal.

    ``options``: ``proxmox_name`` (the custom model's name), ``kubevirt_preference`` (the cluster preference's name),
    ``kubevirt_obsolete`` (the KubeVirt CR's obsoleteCPUModels), ``incus_group`` (the cluster group in the commands).
    """
    opts = dict(options or {})
    if guest.passthrough and platform in PLATFORMS:
        return _passthrough.render(guest, platform)
    if platform == "libvirt":
        cpu = _libvirt.render(guest, form)
        return {"xml": cpu.xml, "model": cpu.model, "left_out": list(cpu.left_out)}
    if platform == "qemu":
        return _qemu.render(guest, form).to_dict()
    if platform == "proxmox":
        return _proxmox.render(guest, opts.get("proxmox_name") or _proxmox.DEFAULT_NAME, form).to_dict()
    if platform == "nova":
        return _nova.render(guest, form).to_dict()
    if platform == "kubevirt":
        return _kubevirt.render(guest, opts.get("kubevirt_preference") or _kubevirt.DEFAULT_PREFERENCE,
                                opts.get("kubevirt_obsolete"), form).to_dict()
    if platform == "incus":
        incus = _incus.render(guest, form)
        return {**incus.to_dict(), "commands": incus.commands(str(opts.get("incus_group") or "default"))}
    raise InputError(f"no renderer for platform {platform!r} (one of {', '.join(PLATFORMS)})")


def render_platforms(guest: GuestCpu, platforms: Sequence[str], form: str = "minimal",
                     options: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Per platform: ``{"ok": True, "rendering": {...}}``, or ``{"ok": False, "refused": "why"}`` when its renderer
    refuses (naming the hosts, the stack and the model or feature). An unknown platform name is an error."""
    unknown = [p for p in platforms if p not in PLATFORMS]
    if unknown:
        raise InputError(f"unknown platforms {', '.join(map(repr, unknown))} (known: {', '.join(PLATFORMS)})")
    out: dict[str, Any] = {}
    for platform in dict.fromkeys(platforms):
        try:
            out[platform] = {"ok": True, "rendering": render_one(guest, platform, form, options)}
        except CpuCompatError as exc:
            out[platform] = {"ok": False, "refused": str(exc)}
    return out
