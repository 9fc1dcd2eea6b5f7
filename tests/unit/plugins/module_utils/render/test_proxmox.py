# Copyright (c) 2026 cpucompat.cluster contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Proxmox VE: the section, the -cpu get_cpu_options composes, and cpu-models.conf edited section by section as Proxmox's
SectionConfig reads it. Proxmox's own model list and cfg2cmd vectors judge the composition in test_proxmox_upstream.py."""

from __future__ import annotations

from dataclasses import replace

import pytest

from ansible_collections.cpucompat.cluster.plugins.module_utils._errors import InputError, RenderError
from ansible_collections.cpucompat.cluster.plugins.module_utils.cpu._exact import InexactError
from ansible_collections.cpucompat.cluster.plugins.module_utils.cpu._guest import GuestCpu, QemuStack
from ansible_collections.cpucompat.cluster.plugins.module_utils.deploy._proxmox_conf import (SectionConfigError, cpu_model_errors,
                                                                                             parse, set_section)
from ansible_collections.cpucompat.cluster.plugins.module_utils.render import _proxmox

# ------------------------------------------------------------------------------------------------ the rendering
QEMU = QemuStack("QEMU 10.0", ("pve1", "pve2"), {
    "Broadwell-v3": frozenset({"fpu", "sse", "hle", "lm"}), "Broadwell-IBRS": frozenset({"fpu", "sse", "hle", "lm"}),
    "Opteron_G3": frozenset({"fpu", "rdtscp", "svm"}), "Snowridge-v1": frozenset({"fpu"}), "kvm64": frozenset({"fpu", "lahf-lm", "sep"})})


def guest(model="Broadwell-v3", features=("fpu", "sse", "pku", "lm"), candidates=("Broadwell-v3", "Broadwell-IBRS"), **more) -> GuestCpu:
    return GuestCpu("x86_64", "GenuineIntel", model, frozenset(features), candidates=candidates, qemu=(QEMU,), **more)


def test_the_alias_name_is_reported_and_flags_name_every_disagreement() -> None:
    cpu = _proxmox.render(guest(phys_bits=40), "cluster_cpu")
    assert cpu.reported_model == "Broadwell-IBRS" and cpu.flags_text == "-hle;+pku"
    assert cpu.cpu_models_conf == "cpu-model: cluster_cpu\n\tflags -hle;+pku\n\tphys-bits 40\n\treported-model Broadwell-IBRS\n"
    assert cpu.vm_cpu == "custom-cluster_cpu"
    assert cpu.qemu_args == ("Broadwell-IBRS,enforce,-hle,+kvm_pv_eoi,+kvm_pv_unhalt,+pku,vendor=GenuineIntel,phys-bits=40")


def test_proxmox_own_flags_are_overridden_where_they_differ_from_the_set() -> None:
    """Proxmox adds -rdtscp for Opteron models: a set with rdtscp names it, as Proxmox spells it, so ours wins."""
    cpu = _proxmox.render(guest("Opteron_G3", ("fpu", "rdtscp"), ("Opteron_G3",)))
    assert cpu.flags == {"rdtscp": True, "svm": False}
    assert ",+rdtscp," in cpu.qemu_args and "-rdtscp" not in cpu.qemu_args
    kvm64 = _proxmox.render(guest("kvm64", ("fpu", "sep"), ("kvm64",)))
    assert kvm64.flags == {"lahf_lm": False}, "Proxmox's +lahf_lm, overridden in its own spelling"
    assert "vendor=" not in kvm64.qemu_args


def test_a_model_proxmox_does_not_offer_is_refused_naming_it() -> None:
    with pytest.raises(InexactError, match="reported-model list has no Snowridge-v1 .qemu-server's CPUConfig.pm at [0-9a-f]{12}"):
        _proxmox.render(guest("Snowridge-v1", ("fpu",), ("Snowridge-v1",)))


@pytest.mark.parametrize("name", ["Cluster", "x", "with-dash", "a" * 41, "9lives"])
def test_a_section_name_some_proxmox_refuses_is_refused(name) -> None:
    with pytest.raises(InputError, match="custom CPU model name"):
        _proxmox.render(guest(), name)


def test_a_feature_proxmox_flags_cannot_carry_is_refused_naming_it() -> None:
    with pytest.raises(RenderError, match="feature 'pk;u'"):
        _proxmox.render(replace(guest(), features=frozenset({"fpu", "sse", "pk;u"})))


# ------------------------------------------------------------------------------------------------ cpu-models.conf
FILE = """# our cluster
cpu-model: legacy
\tflags +aes
\treported-model Haswell

cpu-model: cluster_cpu
\treported-model qemu64
# a comment inside
\tflags +sse4.2

other-type: thing
\tkey value
"""
SECTION = "cpu-model: cluster_cpu\n\tflags +pku\n\treported-model Broadwell-IBRS\n"


def test_the_file_is_read_as_section_config_reads_it() -> None:
    sections = parse(FILE)
    assert [(s.type, s.id) for s in sections] == [("cpu-model", "legacy"), ("cpu-model", "cluster_cpu"), ("other-type", "thing")]
    assert sections[1].properties == {"reported-model": "qemu64", "flags": "+sse4.2"}
    assert not cpu_model_errors(sections[0]) and not cpu_model_errors(sections[1])


def test_a_section_is_replaced_in_place_and_every_other_line_kept() -> None:
    after = set_section(FILE, "cluster_cpu", SECTION)
    assert after == FILE.replace("\treported-model qemu64\n# a comment inside\n\tflags +sse4.2\n", "\tflags +pku\n\treported-model Broadwell-IBRS\n")
    assert set_section(after, "cluster_cpu", SECTION) == after


def test_a_new_section_is_appended_and_an_old_one_removed() -> None:
    text = "cpu-model: legacy\n\treported-model Haswell\n"
    added = set_section(text, "cluster_cpu", SECTION)
    assert added == text + "\n" + SECTION + "\n"
    assert set_section(added, "cluster_cpu", None) == text + "\n"
    assert set_section("", "cluster_cpu", SECTION) == SECTION + "\n"


@pytest.mark.parametrize("section, message", [
    ("cpu-model: cluster_cpu\n\tflags pku\n", "flags has an invalid value"),
    ("cpu-model: cluster_cpu\n\treported-model Skylake-Server-v2\n", "reported-model has an invalid value"),
    ("cpu-model: cluster_cpu\n\tphys-bits 7\n", "phys-bits has an invalid value"),
    ("cpu-model: cluster_cpu\n\tmodel Broadwell\n", "unknown property 'model'"),
    ("cpu-model: cluster_cpu\n\tflags +a\n\tflags +b\n", "duplicate attribute flags"),
    ("cpu-model: other\n\tflags +a\n", "one 'cpu-model: cluster_cpu' section"),
], ids=["flag-without-operator", "versioned-name", "phys-bits", "unknown-key", "duplicate", "other-name"])
def test_a_section_proxmox_would_misread_is_refused(section, message) -> None:
    with pytest.raises(SectionConfigError, match=message):
        set_section(FILE, "cluster_cpu", section)
