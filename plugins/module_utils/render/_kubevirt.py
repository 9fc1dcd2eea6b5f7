# Copyright (c) 2026 cpucompat.cluster contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Render a :class:`GuestCpu` for KubeVirt: the cluster's default CPU model, a cluster preference with the features, a
VM's ``spec.domain.cpu``, and the node labels the group's nodes must carry. Private.

virt-launcher writes a VM's ``spec.domain.cpu`` (``model``, ``features`` with their policies) into the libvirt
``<cpu mode='custom'>`` of its domain, so the rule is the libvirt ``<cpu>``'s (``cpu/_exact`` with ``libvirt=True``):
libvirt's names, every feature on which some QEMU or libvirt map of the group disagrees with the pinned set named,
``require`` or ``disable``, among the six policies KubeVirt's admission webhook accepts. The QEMU and libvirt are those
of the virt-launcher image: probe with them. virt-controller schedules the VM on nodes labelled
``cpu-model.node.kubevirt.io/<model>`` and ``cpu-feature.node.kubevirt.io/<feature>`` for every required feature;
KubeVirt's node labeller never labels an obsolete model (its ``obsoleteCPUModels``), so none is chosen.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from .._errors import InputError, RenderError
from ..cpu._exact import Problem, Solution, name_order
from ..cpu._guest import GuestCpu
from ._platform import Refusal, first_exact, plain_name, require_libvirt, require_x86

PLATFORM = "KubeVirt"
# The feature policies KubeVirt's admission webhook accepts ("" means require).
POLICIES = ("", "force", "require", "optional", "disable", "forbid")
SELECTING = ("", "require")  # policies virt-controller turns into a node selector
MODEL_LABEL = "cpu-model.node.kubevirt.io/"
FEATURE_LABEL = "cpu-feature.node.kubevirt.io/"
# KubeVirt's default obsoleteCPUModels: never labelled by the node labeller (the KubeVirt CR may set others).
DEFAULT_OBSOLETE = frozenset(
    f"{m}{v}" for m in ("486", "pentium", "pentium2", "pentium3", "pentiumpro", "coreduo", "n270", "core2duo", "Conroe",
                        "athlon", "phenom", "qemu64", "qemu32", "kvm64", "kvm32", "Opteron_G1", "Opteron_G2")
    for v in ("", "-v1"))
DEFAULT_PREFERENCE = "cpucompat"
# A Kubernetes object name (RFC 1123 subdomain) and a label name (the part after the prefix).
_OBJECT_NAME = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_LABEL_NAME = re.compile(r"^[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$")


@dataclass(frozen=True)
class KubevirtCpu:
    """A VM's CPU for KubeVirt: the model and the features with their policies (libvirt's names)."""

    model: str
    features: tuple[tuple[str, str], ...]  # (name, policy)
    preference: str = DEFAULT_PREFERENCE
    phys_bits: int | None = None
    left_out: tuple[str, ...] = ()

    @property
    def feature_list(self) -> list[dict[str, str]]:
        return [{"name": name, "policy": policy} for name, policy in self.features]

    @property
    def vm_cpu(self) -> dict[str, Any]:
        return {"model": self.model, "features": self.feature_list}

    @property
    def kubevirt_cr_patch(self) -> dict[str, Any]:
        """A merge patch of the KubeVirt CR: the model of every VM that names none."""
        return {"spec": {"configuration": {"cpuModel": self.model}}}

    @property
    def cluster_preference(self) -> dict[str, Any]:
        return {"apiVersion": "instancetype.kubevirt.io/v1beta1", "kind": "VirtualMachineClusterPreference",
                "metadata": {"name": self.preference}, "spec": {"cpu": {"preferredCPUFeatures": self.feature_list}}}

    @property
    def node_selector(self) -> dict[str, str]:
        """The labels virt-controller requires of a node for this CPU (the model, every required feature)."""
        out = {MODEL_LABEL + self.model: "true"}
        out.update({FEATURE_LABEL + name: "true" for name, policy in self.features if policy in SELECTING})
        return out

    def to_dict(self) -> dict[str, Any]:
        notes = []
        if self.phys_bits:
            notes.append(f"KubeVirt has no field for the guests' physical address bits ({self.phys_bits} on the "
                         "group's hosts): its guests get QEMU's default for the model on every host alike")
        return {"kubevirt_cr_patch": self.kubevirt_cr_patch, "cluster_preference": self.cluster_preference,
                "vm_cpu": self.vm_cpu, "node_selector": self.node_selector, "left_out": list(self.left_out),
                "notes": notes}


def render(guest: GuestCpu, preference: str = DEFAULT_PREFERENCE, obsolete: Iterable[str] | None = None,
           form: str = "minimal") -> KubevirtCpu:
    """KubeVirt's CPU for ``guest``; ``obsolete``: the KubeVirt CR's ``obsoleteCPUModels`` (default: KubeVirt's)."""
    if not isinstance(preference, str) or len(preference) > 253 or not _OBJECT_NAME.match(preference):
        raise InputError(f"{PLATFORM}: {preference!r} is not a Kubernetes object name (lower-case RFC 1123 subdomain)")
    require_x86(guest, PLATFORM)
    require_libvirt(guest, PLATFORM)
    never = DEFAULT_OBSOLETE if obsolete is None else frozenset(str(m) for m in obsolete)
    solution = first_exact(guest, name_order(guest), PLATFORM, form=form, libvirt=True, check=_labelled(never))
    spell = guest.libvirt[0].cpu_map.libvirt_name
    features = tuple((label_name(str(spell(f)), "feature"), "require" if on else "disable")
                     for f, on in sorted(solution.policies.items(), key=lambda item: str(spell(item[0]))))
    return KubevirtCpu(solution.model, features, preference, guest.phys_bits, tuple(sorted(guest.left_out)))


def label_name(name: str, what: str) -> str:
    """``name`` when it can be the name part of a node label (KubeVirt labels models and features by name)."""
    plain_name(name, what, PLATFORM)
    if not _LABEL_NAME.match(name):
        raise RenderError(f"{PLATFORM}: {what} {name!r} cannot be a node label name (at most 63 characters)")
    return name


def _labelled(obsolete: frozenset[str]) -> Any:
    def check(model: str, solution: Solution) -> list[Problem]:
        label_name(model, "model")
        if model in obsolete:
            return [Refusal("model", model, PLATFORM, (), f"KubeVirt's node labeller never labels {model}, an obsolete "
                            "CPU model (obsoleteCPUModels): no node would match the VM's selector")]
        return []
    return check


def check_policies(features: Iterable[Mapping[str, Any]]) -> None:
    """Every feature's policy is one KubeVirt's admission webhook accepts."""
    for feature in features:
        if feature.get("policy", "") not in POLICIES:
            raise RenderError(f"{PLATFORM}: feature {feature.get('name')!r} has policy {feature.get('policy')!r}, "
                              f"not one of {', '.join(repr(p) for p in POLICIES)}")
