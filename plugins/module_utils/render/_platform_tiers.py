# Copyright (c) 2026 cpucompat.cluster contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""A group's tiers (contract/_tiers) for KubeVirt and Proxmox VE. Private. (Nova: ``_nova_tiers``.)

Each tier is rendered like a group's contract, exact on the stacks of the tier's hosts, by the platform's own renderer:

- KubeVirt: per tier a ``VirtualMachineClusterPreference`` (``<preference>-<tier>``; the base keeps ``<preference>``)
  with the tier's features, the VM's ``spec.domain.cpu``, and a node label per tier, ``cpucompat.cluster/tier-<tier>``,
  that the operator sets on the tier's nodes (``node_labels``); a tier's VMs select it beside the model and feature
  labels KubeVirt's node labeller sets, so they are scheduled on the tier's nodes only. The KubeVirt CR's cluster-wide
  ``cpuModel`` stays the base's.
- Proxmox VE: a custom model per tier in ``cpu-models.conf`` (``<name>_<tier>``; the base keeps ``<name>``); a tier's VMs
  take ``cpu: custom-<name>_<tier>`` and are kept on the tier's nodes by the operator's HA groups (``nodes``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from .._errors import CpuCompatError, InputError, RenderError
from ..cpu._guest import GuestCpu
from . import _kubevirt, _nova_tiers, _proxmox

TIER_LABEL = "cpucompat.cluster/tier-"
TIERED = ("nova", "kubevirt", "proxmox")  # the platforms that say a group's tiers at once (the others: each tier alone)


def kubevirt_tiers(tiers: Sequence[tuple[str, GuestCpu, Sequence[str]]], preference: str = _kubevirt.DEFAULT_PREFERENCE,
                   obsolete: Iterable[str] | None = None, form: str = "minimal") -> dict[str, Any]:
    """KubeVirt's objects for ``tiers``: (name, the tier's guest CPU on its hosts' stacks, its hosts), the base first."""
    out: dict[str, Any] = {"tiers": {}, "node_labels": {}}
    for index, (name, guest, hosts) in enumerate(tiers):
        label = TIER_LABEL + _kubevirt.label_name(name, "tier")
        cpu = _kubevirt.render(guest, preference if index == 0 else f"{preference}-{name.lower().replace('_', '-')}",
                               obsolete, form)
        selector = {**cpu.node_selector, **({} if index == 0 else {label: "true"})}
        if index == 0:
            out["kubevirt_cr_patch"] = cpu.kubevirt_cr_patch
        out["tiers"][name] = {"cluster_preference": cpu.cluster_preference, "vm_cpu": cpu.vm_cpu, "node_selector": selector,
                              "left_out": list(cpu.left_out)}
        for host in hosts:
            out["node_labels"].setdefault(host, {})[label] = "true"
    return out


def proxmox_tiers(tiers: Sequence[tuple[str, GuestCpu, Sequence[str]]], name: str = _proxmox.DEFAULT_NAME,
                  form: str = "minimal") -> dict[str, Any]:
    """Proxmox's custom models for ``tiers`` (the base first): one ``cpu-models.conf`` with a section per tier."""
    out: dict[str, Any] = {"tiers": {}, "path": _proxmox.CPU_MODELS_CONF}
    sections = []
    for index, (tier, guest, hosts) in enumerate(tiers):
        model = name if index == 0 else f"{name}_{tier.lower().replace('-', '_')}"
        if len(model) > 40:
            raise RenderError(f"{_proxmox.PLATFORM}: the custom model of tier {tier}, {model}, is longer than Proxmox "
                              "accepts (40 characters); choose a shorter model name or tier name")
        cpu = _proxmox.render(guest, model, form)
        sections.append(cpu.cpu_models_conf)
        out["tiers"][tier] = {**cpu.to_dict(), "nodes": list(hosts)}
    out["cpu_models_conf"] = "\n".join(sections)
    return out


def nova_tiers(tiers: Sequence[tuple[str, GuestCpu, Sequence[str]]], form: str = "minimal") -> dict[str, Any]:
    """Nova's tiers (``_nova_tiers``) with what each compute host writes: ``hosts``, host -> its ``[libvirt]`` options
    (``cpu_models`` the base's model then those of the host's tiers, as lists), and ``ini``, the sections per set of
    hosts with each tier's flavor extra specs, as a page shows them."""
    made = _nova_tiers.render_tiers([(name, guest) for name, guest, _hosts in tiers], form)
    first = made.tiers[0].cpu
    of_host: dict[str, list[str]] = {}
    for name, _guest, hosts in tiers:
        for host in hosts:
            of_host.setdefault(host, []).append(name)
    hosts_out: dict[str, Any] = {}
    for host, names in of_host.items():
        picked = made.chosen(names)
        hosts_out[host] = {"cpu_mode": "custom", "cpu_models": [t.model for t in picked], "cpu_model_extra_flags": first.extra_flags,
                           "tiers": [t.name for t in picked],
                           "requires": first.requires, "flavor_extra_specs": first.flavor_extra_specs}
    sets: dict[tuple[str, ...], list[str]] = {}
    for host, options in hosts_out.items():
        sets.setdefault(tuple(options["tiers"]), []).append(host)
    ini = []
    for chosen, listed in sets.items():
        ini.append(f"# compute hosts {', '.join(listed)} (tiers {', '.join(chosen)})\n[libvirt]\n"
                   + "".join(f"{k} = {v}".rstrip() + "\n" for k, v in made.options(list(chosen)).items()))
    ini += [f"# flavors of tier {t.name} (model {t.model}) need the extra specs " + " ".join(f"{k}={v}" for k, v in t.flavor_extra_specs.items()) + "\n"
            for t in made.tiers if t.flavor_extra_specs]
    return {**made.to_dict(), "requires": first.requires, "hosts": hosts_out, "ini": "\n".join(ini),
            "left_out": list(first.left_out)}


def render_tier_platforms(tiers: Sequence[tuple[str, GuestCpu, Sequence[str]]], platforms: Sequence[str], form: str = "minimal",
                          options: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Per platform of ``platforms`` that says tiers at once (:data:`TIERED`): ``{"ok": True, "rendering": {...},
    "tiers": [names]}``, or ``{"ok": False, "refused": "why"}``; the other platforms are left out (each tier alone)."""
    opts = dict(options or {})
    out: dict[str, Any] = {}
    names = [name for name, _guest, _hosts in tiers]
    for platform in (p for p in dict.fromkeys(platforms) if p in TIERED):
        try:
            if platform == "nova":
                made = nova_tiers(tiers, form)
            elif platform == "kubevirt":
                made = kubevirt_tiers(tiers, opts.get("kubevirt_preference") or _kubevirt.DEFAULT_PREFERENCE,
                                      opts.get("kubevirt_obsolete"), form)
            else:
                made = proxmox_tiers(tiers, opts.get("proxmox_name") or _proxmox.DEFAULT_NAME, form)
            out[platform] = {"ok": True, "rendering": made, "tiers": names}
        except CpuCompatError as exc:
            out[platform] = {"ok": False, "refused": str(exc), "tiers": names}
    return out


def tier_render(tiers: Sequence[tuple[str, GuestCpu, Sequence[str]]], platform: str, form: str = "minimal",
                options: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """One platform's rendering of ``tiers`` (the base first); raises the renderer's refusal."""
    if platform not in TIERED:
        raise InputError(f"no rendering of tiers for platform {platform!r} (one of {', '.join(TIERED)})")
    if not tiers or tiers[0][0] != "base":
        raise InputError(f"{platform}: the tiers to render start with the base tier (got {', '.join(t[0] for t in tiers) or 'none'})")
    made = render_tier_platforms(tiers, [platform], form, options)[platform]
    if not made["ok"]:
        raise RenderError(made["refused"])
    return dict(made["rendering"])
