# Copyright (c) 2026 cpucompat.cluster contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""KubeVirt: the CR patch, the cluster preference, a VM's CPU, the node selector; obsolete models and names a node
label cannot carry are refused by name."""

from __future__ import annotations

from dataclasses import replace

import pytest

from ansible_collections.cpucompat.cluster.plugins.module_utils._errors import InputError, RenderError
from ansible_collections.cpucompat.cluster.plugins.module_utils.cpu._exact import InexactError
from ansible_collections.cpucompat.cluster.plugins.module_utils.cpu._guest import GuestCpu, LibvirtStack, QemuStack
from ansible_collections.cpucompat.cluster.plugins.module_utils.cpu._libvirt_map import parse_cpu_map
from ansible_collections.cpucompat.cluster.plugins.module_utils.render import _kubevirt

FEATURES = ("fpu", "sse", "mpx", "pku", "tsc_adjust", "f" * 64)


def _map(models: str):
    defs = "".join(f"<feature name='{f}'><cpuid eax_in='0x1' ecx='0x{i + 1:x}'/>"
                   + ("<alias name='tsc-adjust' source='qemu'/>" if f == "tsc_adjust" else "") + "</feature>" for i, f in enumerate(FEATURES))
    files = {"x86_features.xml": f"<cpus>{defs}</cpus>".encode(), "x86_vendors.xml": b"<cpus><vendor name='Intel' string='GenuineIntel'/></cpus>",
             "x86_models.xml": f"<cpus>{models}</cpus>".encode()}
    return parse_cpu_map(files, "map", "sha256:9", "9.0.0")


MAP = _map("<model name='Modern'><vendor name='Intel'/><feature name='fpu'/><feature name='sse'/><feature name='mpx'/></model>"
           "<model name='qemu64'><feature name='fpu'/></model>")
QEMU = QemuStack("QEMU 7.2", ("n1", "n2"), {"Modern": frozenset({"fpu", "sse"}), "qemu64": frozenset({"fpu"})})


def guest(features=("fpu", "sse", "pku", "tsc-adjust"), model="Modern", candidates=("Modern", "qemu64")) -> GuestCpu:
    return GuestCpu("x86_64", "GenuineIntel", model, frozenset(features), candidates=candidates, qemu=(QEMU,),
                    libvirt=(LibvirtStack(MAP, ("n1", "n2")),))


def test_the_four_shapes_in_libvirt_names() -> None:
    cpu = _kubevirt.render(guest(), "cluster-cpu")
    assert cpu.vm_cpu == {"model": "Modern", "features": [{"name": "mpx", "policy": "disable"}, {"name": "pku", "policy": "require"},
                                                          {"name": "tsc_adjust", "policy": "require"}]}
    assert cpu.kubevirt_cr_patch == {"spec": {"configuration": {"cpuModel": "Modern"}}}
    assert cpu.cluster_preference["kind"] == "VirtualMachineClusterPreference"
    assert cpu.cluster_preference["metadata"] == {"name": "cluster-cpu"}
    assert cpu.cluster_preference["spec"]["cpu"]["preferredCPUFeatures"] == cpu.vm_cpu["features"]
    assert cpu.node_selector == {"cpu-model.node.kubevirt.io/Modern": "true", "cpu-feature.node.kubevirt.io/pku": "true",
                                 "cpu-feature.node.kubevirt.io/tsc_adjust": "true"}
    _kubevirt.check_policies(cpu.feature_list)


def test_an_obsolete_model_is_never_chosen_and_refused_when_alone() -> None:
    with pytest.raises(InexactError, match="never labels qemu64, an obsolete CPU model"):
        _kubevirt.render(guest(("fpu",), "qemu64", ("qemu64",)))
    assert _kubevirt.render(guest(("fpu",), "qemu64", ("qemu64",)), obsolete=()).model == "qemu64"
    with pytest.raises(InexactError, match="never labels Modern"):
        _kubevirt.render(guest(candidates=("Modern",)), obsolete=["Modern"])


def test_a_feature_a_node_label_cannot_carry_is_refused_naming_it() -> None:
    with pytest.raises(RenderError, match="feature 'f{64}'"):
        _kubevirt.render(replace(guest(), features=guest().features | {"f" * 64}))


@pytest.mark.parametrize("name", ["Cluster", "with_underscore", "-x", ""])
def test_a_preference_name_kubernetes_refuses_is_refused(name) -> None:
    with pytest.raises(InputError, match="Kubernetes object name"):
        _kubevirt.render(guest(), name)


def test_a_policy_outside_the_webhooks_set_is_refused() -> None:
    with pytest.raises(RenderError, match="policy 'enable'"):
        _kubevirt.check_policies([{"name": "pku", "policy": "enable"}])
    _kubevirt.check_policies([{"name": "pku", "policy": p} for p in _kubevirt.POLICIES])
