# Copyright (c) 2026 cpucompat.cluster contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Render a host-passthrough guest CPU (an aarch64 group of identical hosts) for every platform. Private.

Under KVM on arm64 only ``host`` runs, so every platform's answer is its spelling of host-passthrough, and each says
"identical hosts only": a guest may move only between hosts of the pinned identity (``GuestCpu.identity``; what
identical means is engine/_arm_identity's). libvirt gets ``<cpu mode='host-passthrough' check='none'/>``, without
``migratable='on'``: libvirt accepts that attribute only when QEMU's ``max-x86_64-cpu`` has a ``migratable`` property
(QEMU_CAPS_CPU_MIGRATABLE), so libvirt 9.0 refuses it for every aarch64 domain at define time ("Migratable attribute for
host-passthrough CPU is not supported by this QEMU binary", measured here), and QEMU's arm CPUs have no such property to
set; what migrates is decided by the identity instead. Plain QEMU gets ``-cpu host``, Proxmox ``cpu: host``,
Nova ``cpu_mode = host-passthrough``, KubeVirt ``host-passthrough`` with a ``nodeSelector`` on the identity's label
(nodes of the identity labelled with it), Incus nothing to set (it gives arm64 VMs ``-cpu host`` itself).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .._errors import InputError, RenderError
from ..cpu._guest import IDENTITY_LABEL_KEY, GuestCpu, identity_label
from ._cpuspec import CpuSpec, RenderedCpu

NOTE = ("identical hosts only: host-passthrough shows each host's own CPU, so a guest may move only between hosts of "
        "the pinned identity")


def _identity(guest: GuestCpu) -> Mapping[str, Any]:
    if guest.identity is None:
        raise RenderError(f"the {guest.arch} guest CPU is not host-passthrough over a pinned identity")
    return guest.identity


def _note(guest: GuestCpu) -> str:
    ident = _identity(guest)
    return (f"{NOTE} ({', '.join(ident.get('midr') or [])}; {ident.get('page_size')} B pages; kernel {ident.get('kernel')}; "
            f"QEMU {ident.get('qemu')} {ident.get('machine')}; firmware {ident.get('firmware')})")


def libvirt(guest: GuestCpu) -> RenderedCpu:
    """``<cpu mode='host-passthrough' check='none'/>`` with the identity as a comment (no ``migratable``: see above)."""
    _identity(guest)
    return RenderedCpu(CpuSpec(mode="host-passthrough", check="none", note=_note(guest)), (), None)


def node_selector(guest: GuestCpu) -> dict[str, str]:
    return {IDENTITY_LABEL_KEY: identity_label(_identity(guest))}


def render(guest: GuestCpu, platform: str) -> dict[str, Any]:
    """The rendering for ``platform`` as a plain dict, each with ``identical_hosts_only``."""
    ident = _identity(guest)
    note = _note(guest)
    if platform == "libvirt":
        cpu = libvirt(guest)
        out: dict[str, Any] = {"xml": cpu.xml, "model": None, "left_out": []}
    elif platform == "qemu":
        out = {"args": "host", "model": "host", "props": [], "phys_bits": None, "left_out": [],
               "machine": ident.get("machine")}
    elif platform == "proxmox":
        out = {"vm_cpu": "host", "qemu_args": "host", "cpu_models_conf": None, "left_out": []}
    elif platform == "nova":
        options = {"cpu_mode": "host-passthrough", "cpu_models": "", "cpu_model_extra_flags": ""}
        out = {"cpu_mode": "host-passthrough", "cpu_models": [], "cpu_model_extra_flags": [],
               "ini": "[libvirt]\ncpu_mode = host-passthrough\n", "options": options, "flavor_extra_specs": {},
               "requires": "every compute node of the aggregate identical (the identity below)", "left_out": []}
    elif platform == "kubevirt":
        selector = node_selector(guest)
        label = f"{IDENTITY_LABEL_KEY}={selector[IDENTITY_LABEL_KEY]}"
        out = {"vm_cpu": {"model": "host-passthrough"}, "node_selector": selector,
               "kubevirt_cr_patch": {"spec": {"configuration": {"cpuModel": "host-passthrough"}}}, "cluster_preference": None,
               "label_nodes": f"kubectl label node <node> {label}   # every node of this identity, and only those",
               "left_out": [], "notes": ["KubeVirt live-migrates a host-passthrough VM only to nodes that match its "
                                         "nodeSelector: label exactly the nodes of the pinned identity"]}
    elif platform == "incus":
        out = {"keys": {}, "qemu_args": "host", "commands": [], "left_out": [],
               "applies_to": "Incus gives arm64 VMs -cpu host itself: nothing to set; keep the cluster group to hosts of "
                             "the pinned identity"}
    else:
        raise InputError(f"no host-passthrough rendering for platform {platform!r}")
    return {**out, "identical_hosts_only": note, "identity": dict(ident)}
