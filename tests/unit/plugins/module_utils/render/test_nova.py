# Copyright (c) 2026 cpucompat.cluster contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""OpenStack Nova: the [libvirt] options, the <cpu> Nova builds from them, and nova.conf edited as oslo.config reads it."""

from __future__ import annotations

from dataclasses import replace

import pytest

from ansible_collections.cpucompat.cluster.plugins.module_utils._errors import RenderError
from ansible_collections.cpucompat.cluster.plugins.module_utils.cpu._exact import InexactError
from ansible_collections.cpucompat.cluster.plugins.module_utils.cpu._guest import GuestCpu, LibvirtStack, QemuStack
from ansible_collections.cpucompat.cluster.plugins.module_utils.cpu._libvirt_map import parse_cpu_map
from ansible_collections.cpucompat.cluster.plugins.module_utils.deploy._ini import get_options, set_options
from ansible_collections.cpucompat.cluster.plugins.module_utils.deploy._nova_check import guest_xml, nova_flags
from ansible_collections.cpucompat.cluster.plugins.module_utils.engine._baseline import baseline_of
from ansible_collections.cpucompat.cluster.plugins.module_utils.render import _nova
from ansible_collections.cpucompat.cluster.plugins.module_utils.render._cpuspec import CpuSpec
from utils.recordings import facts_of


def _map(models: str, features=("fpu", "sse", "mpx", "pku", "Caps", "lahf_lm")):
    defs = "".join(f"<feature name='{f}'><cpuid eax_in='0x1' ecx='0x{i + 1:x}'/></feature>" for i, f in enumerate(features))
    files = {"x86_features.xml": f"<cpus>{defs}</cpus>".encode(), "x86_vendors.xml": b"<cpus><vendor name='Intel' string='GenuineIntel'/></cpus>",
             "x86_models.xml": f"<cpus>{models}</cpus>".encode()}
    return parse_cpu_map(files, "map", "sha256:9", "9.0.0")


MAP = _map("<model name='M'><vendor name='Intel'/><feature name='fpu'/><feature name='sse'/><feature name='mpx'/></model>"
           "<model name='M-alias'><model name='M'/></model>")
QEMU = QemuStack("QEMU 7.2", ("c1", "c2"), {"M": frozenset({"fpu", "sse", "pku"}), "M-alias": frozenset({"fpu", "sse", "pku"})})


def guest(features=("fpu", "sse", "pku"), **more) -> GuestCpu:
    stacks = {"qemu": (QEMU,), "libvirt": (LibvirtStack(MAP, ("c1", "c2")),), **more}
    return GuestCpu("x86_64", "GenuineIntel", "M", frozenset(features), candidates=("M", "M-alias"), **stacks)


def test_options_name_what_libvirt_and_qemu_disagree_on_and_list_equivalent_models() -> None:
    cpu = _nova.render(guest())
    assert cpu.models == ("M", "M-alias") and cpu.flags == {"mpx": False, "pku": True}
    assert cpu.ini == "[libvirt]\ncpu_mode = custom\ncpu_models = M, M-alias\ncpu_model_extra_flags = -mpx, +pku\n"
    assert "23.0.0" in cpu.requires and cpu.flavor_extra_specs == {}


def test_plus_flags_only_need_train_and_address_bits_go_to_the_flavors() -> None:
    """A 64-bit guest (lm in the model, so no flag for it) has address bits to emulate."""
    long_map = _map("<model name='M'><vendor name='Intel'/><feature name='fpu'/><feature name='sse'/><feature name='mpx'/>"
                    "<feature name='lm'/></model><model name='M-alias'><model name='M'/></model>",
                    ("fpu", "sse", "mpx", "pku", "Caps", "lahf_lm", "lm"))
    long_qemu = QemuStack("QEMU 7.2", ("c1", "c2"), {m: frozenset({"fpu", "sse", "pku", "lm"}) for m in ("M", "M-alias")})
    cpu = _nova.render(guest(("fpu", "sse", "pku", "mpx", "lm"), phys_bits=42, qemu=(long_qemu,),
                             libvirt=(LibvirtStack(long_map, ("c1", "c2")),)))
    assert cpu.extra_flags == ["+mpx", "+pku"] and "20.0.0" in cpu.requires
    assert cpu.flavor_extra_specs == {"hw:maxphysaddr_mode": "emulate", "hw:maxphysaddr_bits": "42"}


def test_the_cpu_nova_builds_is_the_one_nova_cpu_check_asks_about() -> None:
    cpu = _nova.render(guest())
    spec = CpuSpec.parse(cpu.xml("M"))
    assert (spec.mode, spec.match, spec.check, spec.model) == ("custom", "exact", None, "M")
    assert spec.features == (("disable", "mpx"), ("require", "pku"))
    assert guest_xml("M", nova_flags(cpu.extra_flags)) == cpu.xml("M")


@pytest.mark.parametrize("flags, read", [
    (["+PKU", "-mpx", "sse"], {"pku": True, "mpx": False, "sse": True}),
    ([" +pku ", "+pku", ""], {"pku": True}),
])
def test_flags_are_read_as_nova_reads_them(flags, read) -> None:
    assert nova_flags(flags) == read


def test_a_feature_nova_would_lower_case_is_refused_naming_it() -> None:
    with pytest.raises(RenderError, match="feature Caps cannot be named: Nova lower-cases"):
        _nova.render(guest(("fpu", "sse", "pku", "Caps")))


def test_without_libvirt_maps_nova_cannot_be_said() -> None:
    with pytest.raises(InexactError, match="no host of the group has a libvirt CPU map"):
        _nova.render(replace(guest(), libvirt=()))


def test_a_recorded_group() -> None:
    cpu = _nova.render(baseline_of({n: facts_of(n) for n in ("x86_64-xeon-gold-6130", "x86_64-xeon-platinum-9242")}).guest)
    assert cpu.models[0] == "Skylake-Server-IBRS" and "+tsc_adjust" in cpu.extra_flags, "libvirt's spelling"


# ------------------------------------------------------------------------------------------------ nova.conf
CONF = """[DEFAULT]
debug = true
[libvirt]
virt_type = kvm
cpu_mode: host-model
cpu_models = Haswell,
  Broadwell
images_type = qcow2
[libvirt]
cpu_model = Nehalem
"""
OPTIONS = {"cpu_mode": "custom", "cpu_models": "M", "cpu_model_extra_flags": "+pku"}


def test_every_assignment_is_replaced_where_the_first_was_and_the_rest_kept() -> None:
    after = set_options(CONF, "libvirt", OPTIONS, drop=("cpu_model",))
    assert after == ("[DEFAULT]\ndebug = true\n[libvirt]\nvirt_type = kvm\ncpu_mode = custom\ncpu_models = M\n"
                     "cpu_model_extra_flags = +pku\nimages_type = qcow2\n[libvirt]\n")
    assert set_options(after, "libvirt", OPTIONS, drop=("cpu_model",)) == after
    assert get_options(after, "libvirt") == {"virt_type": "kvm", "images_type": "qcow2", **OPTIONS}


@pytest.mark.parametrize("text, expected", [
    ("", "[libvirt]\ncpu_mode = custom\ncpu_models = M\ncpu_model_extra_flags = +pku\n"),
    ("[DEFAULT]\ndebug = true", "[DEFAULT]\ndebug = true\n\n[libvirt]\ncpu_mode = custom\ncpu_models = M\ncpu_model_extra_flags = +pku\n"),
    ("[libvirt]\n# a comment\n", "[libvirt]\ncpu_mode = custom\ncpu_models = M\ncpu_model_extra_flags = +pku\n# a comment\n"),
], ids=["empty", "no-section", "empty-section"])
def test_a_missing_section_or_option_is_added(text, expected) -> None:
    assert set_options(text, "libvirt", OPTIONS) == expected
