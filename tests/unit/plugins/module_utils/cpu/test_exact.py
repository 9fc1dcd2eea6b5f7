# Copyright (c) 2026 cpucompat.cluster contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The exactness rule on small stacks whose every definition is written out: what must be named, and when nothing can."""

from __future__ import annotations

import pytest

from ansible_collections.cpucompat.cluster.plugins.module_utils.cpu._exact import InexactError, choose, guest_view, solve
from ansible_collections.cpucompat.cluster.plugins.module_utils.cpu._guest import GuestCpu, LibvirtStack, QemuStack
from ansible_collections.cpucompat.cluster.plugins.module_utils.cpu._libvirt_map import parse_cpu_map

FEATURES = ("fpu", "sse", "sse2", "x2apic", "hypervisor", "mpx", "pku", "vmx", "svm", "lahf_lm", "vmx-ept")


def _map(models: str, features: tuple[str, ...] = FEATURES, version: str = "9.0.0"):
    defs = "".join(f"<feature name='{f}'><cpuid eax_in='0x1' ecx='0x{i + 1:x}'/>"
                   + ("<alias name='lahf-lm' source='qemu'/>" if f == "lahf_lm" else "") + "</feature>" for i, f in enumerate(features))
    files = {"x86_features.xml": f"<cpus>{defs}</cpus>".encode(), "x86_vendors.xml": b"<cpus><vendor name='Intel' string='GenuineIntel'/>"
             b"<vendor name='AMD' string='AuthenticAMD'/></cpus>", "x86_models.xml": f"<cpus>{models}</cpus>".encode()}
    return parse_cpu_map(files, f"map-{version}", f"sha256:{version}", version)


MAP_9 = _map("<model name='M'><vendor name='Intel'/><feature name='fpu'/><feature name='sse'/><feature name='mpx'/></model>"
             "<model name='A'><vendor name='AMD'/><feature name='fpu'/></model>")
MAP_11 = _map("<model name='M'><vendor name='Intel'/><feature name='fpu'/><feature name='sse'/><feature name='mpx' removed='yes'/>"
              "<feature name='vmx-ept' added='yes'/></model><model name='M-v2'><model name='M'/></model>", version="11.3.0")
QEMU_7 = QemuStack("QEMU 7.2", ("old",), {"M": frozenset({"fpu", "sse", "x2apic", "hypervisor", "pku"}),
                                          "M-v2": frozenset({"fpu", "sse", "x2apic", "hypervisor", "pku"}), "A": frozenset({"fpu"})},
                   latent={"M": {"vmx": frozenset({"vmx-ept"})}})


def guest(features: set[str], libvirt=(MAP_9,), qemu=(QEMU_7,), vendor: str = "GenuineIntel", model: str = "M") -> GuestCpu:
    return GuestCpu("x86_64", vendor, model, frozenset(features), candidates=tuple(dict.fromkeys((model, "M", "M-v2"))), qemu=qemu,
                    libvirt=tuple(LibvirtStack(m, (f"h{i}",)) for i, m in enumerate(libvirt)))


@pytest.mark.parametrize("wanted, libvirt, named", [
    # QEMU gives pku, libvirt's map lacks it; libvirt's map has mpx, QEMU lacks it; hypervisor and x2apic: QEMU only
    ({"fpu", "sse", "x2apic", "hypervisor", "pku", "mpx"}, (MAP_9,), {"pku": True, "x2apic": True, "hypervisor": True, "mpx": True}),
    ({"fpu", "sse", "x2apic", "hypervisor"}, (MAP_9,), {"pku": False, "x2apic": True, "hypervisor": True, "mpx": False}),
    # a removed feature is always named (off on a fresh start, on after an incoming migration on 11.3)
    ({"fpu", "sse", "x2apic", "hypervisor", "pku"}, (MAP_11,), {"x2apic": True, "hypervisor": True, "mpx": False, "pku": True}),
    # both maps at once: the union of what each needs
    ({"fpu", "sse", "x2apic", "hypervisor", "pku"}, (MAP_9, MAP_11), {"x2apic": True, "hypervisor": True, "mpx": False, "pku": True}),
], ids=["all", "without-pku-mpx", "removed", "two-maps"])
def test_what_disagrees_is_named(wanted, libvirt, named) -> None:
    solution = solve(guest(wanted, libvirt), "M")
    assert solution.ok and dict(solution.policies) == named


def test_a_root_turned_on_brings_what_it_hides_which_is_named_too() -> None:
    solution = solve(guest({"fpu", "sse", "x2apic", "hypervisor", "pku", "vmx"}, (MAP_11,)), "M")
    assert solution.policies["vmx"] is True and solution.policies["vmx-ept"] is False, "vmx brings vmx-ept, which the set lacks"


@pytest.mark.parametrize("change, kind, name", [
    ({"model": "M-v2", "libvirt": (MAP_9,)}, "model", "M-v2"),
    ({"vendor": "GenuineIntel", "model": "A", "libvirt": (MAP_9,)}, "vendor", "A"),  # an Intel group on AMD's model
])
def test_what_cannot_be_said_is_a_problem_naming_stack_and_hosts(change, kind, name) -> None:
    base = guest({"fpu", "sse"}, change["libvirt"], vendor=change.get("vendor", "GenuineIntel"), model=change["model"])
    solution = solve(base, change["model"])
    assert [(p.kind, p.name) for p in solution.problems] == [(kind, name)]
    assert "(hosts h0)" in solution.problems[0].message()


def test_a_feature_one_libvirt_cannot_name_blocks_the_model() -> None:
    small = _map("<model name='M'><vendor name='Intel'/><feature name='fpu'/><feature name='sse'/></model>",
                 features=("fpu", "sse", "x2apic", "hypervisor", "mpx"), version="8.0.0")
    solution = solve(guest({"fpu", "sse", "x2apic", "hypervisor", "pku"}, (MAP_9, small)), "M")
    assert [(p.kind, p.name, p.hosts) for p in solution.problems] == [("name", "pku", ("h1",))]
    with pytest.raises(InexactError, match="no name for feature pku") as caught:
        choose(guest({"fpu", "sse", "x2apic", "hypervisor", "pku"}, (MAP_9, small)))
    assert caught.value.hosts == ["h1"]


def test_versioned_name_where_every_libvirt_knows_it_else_the_alias() -> None:
    both = guest({"fpu", "sse", "x2apic", "hypervisor", "pku"}, (MAP_11,), model="M-v2")
    assert choose(both).model == "M-v2"
    older = guest({"fpu", "sse", "x2apic", "hypervisor", "pku"}, (MAP_9, MAP_11), model="M-v2")
    assert choose(older).model == "M", "libvirt 9.0 does not know M-v2: its alias, which QEMU defines alike"


def test_the_explicit_form_names_the_common_vocabulary() -> None:
    minimal = solve(guest({"fpu", "sse", "x2apic", "hypervisor", "pku"}, (MAP_9,)), "M")
    explicit = solve(guest({"fpu", "sse", "x2apic", "hypervisor", "pku"}, (MAP_9,)), "M", "explicit")
    assert set(minimal.policies) < set(explicit.policies) and explicit.policies["fpu"] is True and explicit.policies["svm"] is False
    with pytest.raises(Exception, match="form of a CPU definition"):
        solve(guest({"fpu"}), "M", "verbose")


def test_guest_view_is_what_a_stack_gives_a_cpu() -> None:
    view, why = guest_view("M", (("require", "pku"),), QEMU_7, MAP_11)
    assert why is None and "pku" in view and "mpx" not in view
    view, why = guest_view("M", (("require", "nosuch"),), QEMU_7, MAP_9)
    assert view is None and "does not know nosuch" in why
    view, why = guest_view("Other", (), QEMU_7, None)
    assert view is None and "no definition of model Other" in why


def test_an_s390x_guest_is_never_renamed_to_a_model_with_the_same_features() -> None:
    """z14-base plus z14.2's features is a z14 (its CPU type and GA level) with those features, not a z14.2: on s390x the
    renderer says the model it was given, or refuses, naming the QEMU that lacks it."""
    feats = frozenset({"zarch", "stfle", "vx"})
    new = QemuStack("QEMU 4.0", ("z1",), {"z14.2-base": feats, "z14-base": frozenset({"zarch", "stfle"})})
    old = QemuStack("QEMU 3.0", ("z0",), {"z14-base": frozenset({"zarch", "stfle"})})
    guest = GuestCpu("s390x", "IBM", "z14.2-base", feats, candidates=("z14.2-base", "z14-base"), qemu=(new,))
    assert choose(guest, libvirt=False).model == "z14.2-base"
    with pytest.raises(InexactError, match="QEMU 3.0"):
        choose(GuestCpu("s390x", "IBM", "z14.2-base", feats, candidates=("z14.2-base", "z14-base"), qemu=(new, old)),
               libvirt=False)
