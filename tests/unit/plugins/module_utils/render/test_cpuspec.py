# Copyright (c) 2026 cpucompat.cluster contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The <cpu> specification (one parser, one writer) and the splice of a <cpu> into a domain definition."""

from __future__ import annotations

import pytest

from ansible_collections.cpucompat.cluster.plugins.module_utils.render._cpuspec import CpuSpec
from ansible_collections.cpucompat.cluster.plugins.module_utils.deploy._splice import domain_cpu, replace_cpu
from ansible_collections.cpucompat.cluster.plugins.module_utils._errors import CpuXmlError, LibvirtError
from ansible_collections.cpucompat.cluster.plugins.module_utils.probe._libvirt import load_cpu_map

RENDERED = """<cpu mode='custom' match='exact' check='full'>
  <model fallback='forbid'>Skylake-Server</model>
  <vendor>Intel</vendor>
  <feature policy='require' name='pcid'/>
  <feature policy='disable' name='hle'/>
</cpu>
"""


def test_write_is_the_inverse_of_parse() -> None:
    spec = CpuSpec.parse(RENDERED)
    assert spec.to_xml() == RENDERED
    assert CpuSpec.parse(spec.to_xml()) == spec
    assert spec.policy_names(["require"]) == ["pcid"] and spec.policy_names(["disable"]) == ["hle"]


@pytest.mark.parametrize("a, b, same", [
    ("<cpu mode='custom'><feature name='a'/><feature name='b'/></cpu>",
     "<cpu mode='custom'><feature name='b' policy='require'/><feature name='a'/></cpu>", True),
    ("<cpu mode='custom'><model>x</model><!-- c --></cpu>", "<cpu mode='custom'>\n  <model>x</model>\n</cpu>", True),
    ("<cpu mode='custom'><model>x</model></cpu>", "<cpu mode='custom'><model fallback='forbid'>x</model></cpu>", False),
    ("<cpu mode='custom'><feature name='a'/></cpu>", "<cpu mode='custom'><feature policy='disable' name='a'/></cpu>", False),
    ("<cpu mode='host-model'><topology sockets='1' cores='2' threads='1'/></cpu>",
     "<cpu mode='host-model'><topology sockets='1' cores='2' threads='1'/></cpu>", True),
    ("<cpu mode='host-model'><topology sockets='1' cores='2' threads='1'/></cpu>", "<cpu mode='host-model'/>", False),
], ids=["feature-order", "whitespace-comment", "model-attrs", "policy", "other-elements", "other-missing"])
def test_key_is_the_meaning(a: str, b: str, same: bool) -> None:
    assert (CpuSpec.parse(a).key() == CpuSpec.parse(b).key()) is same


@pytest.mark.parametrize("text, message", [
    ("<cpu><feature name='x&apos;/&gt;'/></cpu>", "not a valid CPU feature name"),
    ("<cpu><model>a b</model></cpu>", "<model>: 'a b' is not a valid"),
    ("<cpu><feature policy='maybe' name='sse2'/></cpu>", "feature sse2 has an unknown policy 'maybe'"),
    ("<domain/>", "must be a <cpu> element"),
    ("<cpu>", "not well-formed"),
])
def test_parse_refuses_with_one_error_class(text: str, message: str) -> None:
    with pytest.raises(CpuXmlError, match=message):
        CpuSpec.parse(text, "cpu_xml")


def test_guest_features_against_libvirts_map() -> None:
    cpu_map = load_cpu_map()
    spec = CpuSpec.parse("<cpu mode='custom'><model>Nehalem</model><feature name='aes'/><feature policy='disable' name='sse4.2'/></cpu>")
    feats = spec.guest_features(cpu_map)
    assert "aes" in feats and "sse4.2" not in feats and cpu_map.models["Nehalem"] - {"sse4.2"} <= feats
    assert CpuSpec.parse("<cpu mode='host-passthrough'/>").guest_features(cpu_map) is None
    with pytest.raises(CpuXmlError, match="'NoSuchModel' is not in libvirt's CPU map"):
        CpuSpec.parse("<cpu><model>NoSuchModel</model></cpu>").guest_features(cpu_map)


DOMAIN = """<domain type='kvm' xmlns:qemu='http://libvirt.org/schemas/domain/qemu/1.0'>
  <name>vm</name>
  <metadata>
    <nova:instance xmlns:nova="http://openstack.org/xmlns/libvirt/nova/1.1"><nova:name>web-1</nova:name></nova:instance>
  </metadata>
  <memory unit='KiB'>65536</memory>
  <os>
    <type arch='x86_64' machine='pc'>hvm</type>
  </os>
  <features>
    <acpi/>
  </features>
  {cpu}
  <devices/>
  <qemu:commandline><qemu:arg value='-no-user-config'/></qemu:commandline>
</domain>
"""


@pytest.mark.parametrize("old", ["<cpu mode='host-model' check='partial'/>",
                                 "<cpu mode='custom' match='exact'>\n    <model>486</model>\n  </cpu>"],
                         ids=["empty-element", "element-with-children"])
def test_splice_changes_only_the_cpu_bytes(old: str) -> None:
    before = DOMAIN.format(cpu=old)
    new = CpuSpec.parse(RENDERED)
    after = replace_cpu(before, new, "vm")
    assert after.replace(new.to_xml(comments=False).rstrip("\n").replace("\n", "\n  "), old) == before
    assert domain_cpu(after, "vm").key() == new.key()
    assert "<nova:instance xmlns:nova=" in after and "ns0:" not in after


def test_splice_adds_and_removes_a_cpu() -> None:
    bare = DOMAIN.format(cpu="").replace("  \n", "")
    added = replace_cpu(bare, CpuSpec.parse(RENDERED), "vm")
    assert added.index("</features>") < added.index("<cpu mode='custom'") < added.index("<devices/>")
    assert replace_cpu(added, None, "vm") == bare
    assert replace_cpu(bare, None, "vm") == bare


def test_splice_refuses_what_is_not_a_definition() -> None:
    with pytest.raises(LibvirtError, match="domain vm definition is not well-formed"):
        replace_cpu("<domain>", None, "vm")
