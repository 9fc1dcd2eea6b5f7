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

from collections.abc import Iterable, Sequence
from typing import Any

from .._errors import RenderError
from ..cpu._guest import GuestCpu
from . import _kubevirt, _proxmox

TIER_LABEL = "cpucompat.cluster/tier-"


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
