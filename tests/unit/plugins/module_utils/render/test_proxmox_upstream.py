# Copyright (c) 2026 cpucompat.cluster contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Proxmox VE's own sources as the judge: its model list (qemu-server's CPUConfig.pm, shipped as data) and its cfg2cmd
test vectors (tests/fixtures/proxmox/cfg2cmd: a VM config, and the QEMU command line Proxmox composes for it).

Our emulation (``ProxmoxCpu.qemu_args``) is Proxmox's ``get_cpu_options`` for a Linux VM with ``cpu: custom-NAME`` under
KVM on x86_64. A vector's ``-cpu`` is compared with it item by item, in order, after the items that come from inputs the
emulation does not take are set aside on both sides, each by a rule of :data:`NOT_EMULATED` that names the input
(Windows' Hyper-V enlightenments, the VM's own ``cpu:`` options, flags that depend on the QEMU binary's version).
``cores`` and ``vcpus`` shape ``-smp``, not ``-cpu``: they are no input here. A built-in model (``cpu: Icelake-Client``)
is composed exactly as a custom model with that ``reported-model`` and no other property, so it is emulated as one.
"""

from __future__ import annotations

import glob
import importlib.util
import os
import re
import shlex
from collections.abc import Callable, Mapping
from typing import Any

import pytest

from ansible_collections.cpucompat.cluster.plugins.module_utils.deploy._proxmox_conf import cpu_model_errors, parse
from ansible_collections.cpucompat.cluster.plugins.module_utils.render import _proxmox, _proxmox_models
from ansible_collections.cpucompat.cluster.plugins.module_utils.render._proxmox import FLAG_RE, ProxmoxCpu

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), *[os.pardir] * 5))
VECTORS = os.path.join(ROOT, "tests", "fixtures", "proxmox", "cfg2cmd")
CONFS = sorted(os.path.basename(p) for p in glob.glob(os.path.join(VECTORS, "*.conf")) if not p.endswith("cpu-models.conf"))


def _generator() -> Any:
    spec = importlib.util.spec_from_file_location("gen_proxmox_models", os.path.join(ROOT, "tools", "gen_proxmox_models.py"))
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# ------------------------------------------------------------------------------------------------ the model list
def test_the_shipped_list_is_the_generators_output_with_its_source() -> None:
    """Nobody edited the data by hand: it is what tools/gen_proxmox_models.py writes, and it names its source commit."""
    assert re.fullmatch(r"[0-9a-f]{40}", _proxmox_models.SOURCE_COMMIT)
    assert _proxmox_models.SOURCE_REPOSITORY == "https://github.com/proxmox/qemu-server"
    text = _generator().module_text(_proxmox_models.MODELS, _proxmox_models.DEPRECATED, _proxmox_models.SOURCE_COMMIT,
                                    _proxmox_models.SOURCE_PATH)
    with open(_proxmox_models.__file__, encoding="utf-8") as fh:
        assert fh.read() == text


def test_the_renderer_offers_proxmoxs_list_and_nothing_else() -> None:
    x86 = _proxmox_models.MODELS["x86_64"]
    assert dict(_proxmox.PROXMOX_MODELS) == {**x86, "host": "default"}, "Proxmox adds host for the node's architecture"
    assert set(x86.values()) == {"GenuineIntel", "AuthenticAMD", "default"}
    assert all(replacement in x86 for replacement in _proxmox_models.DEPRECATED.values())
    assert _proxmox.model_vendor("Skylake-Server-IBRS") == "GenuineIntel" and _proxmox.model_vendor("Skylake-Server-v2") is None


NEW_LAYOUT = """\
my $depreacated_cpu_map = {
    # there never was such a client CPU, so map it to the server one for backward compat
    'Icelake-Client' => 'Icelake-Server',
};

sub initialize_cpu_models {
    if (-f $cpu_models_x86_64_file) { # QEMU package is new enough to ship static model files
        $cpu_models_by_arch->{'x86_64'} = eval { decode_json($json_text) }
            or die "unable to decode contents of '$cpu_models_x86_64_file' - $@\\n";
    } else { # FIXME: MAJOR VERSION: remove hard-coded list
        $cpu_models_by_arch = {
            x86_64 => {
                # Intel CPUs
                486 => 'GenuineIntel',
                'Icelake-Client' => 'GenuineIntel', # depreacated, removed with QEMU 7.1
                'Icelake-Server' => 'GenuineIntel',

                # generic types, use vendor from host node
                kvm64 => 'default',
            },
            aarch64 => {
                'cortex-a57' => 'ARM',
                # 32 bit and deprecated models were not added
                max => 'default',
            },
        };
    }
}
"""
OLD_LAYOUT = """\
my $cpu_vendor_list = {
    # Intel CPUs
    486 => 'GenuineIntel',
    'Skylake-Server-IBRS' => 'GenuineIntel',
    # generic types, use vendor from host node
    host => 'default',
};
"""


@pytest.mark.parametrize("text, models, deprecated", [
    (NEW_LAYOUT, {"x86_64": {"486": "GenuineIntel", "Icelake-Client": "GenuineIntel", "Icelake-Server": "GenuineIntel",
                             "kvm64": "default"}, "aarch64": {"cortex-a57": "ARM", "max": "default"}},
     {"Icelake-Client": "Icelake-Server"}),
    (OLD_LAYOUT, {"x86_64": {"486": "GenuineIntel", "Skylake-Server-IBRS": "GenuineIntel", "host": "default"}}, {}),
], ids=["cpu_models_by_arch", "cpu_vendor_list"])
def test_the_generator_reads_both_layouts_of_cpuconfig(text, models, deprecated) -> None:
    assert _generator().read_models(text) == (models, deprecated)


@pytest.mark.parametrize("text, message", [
    (OLD_LAYOUT.replace("486 => 'GenuineIntel'", "486 => $intel"), r"line 3: not a 'NAME => VALUE' entry"),
    (OLD_LAYOUT.replace("    host => 'default',", "    486 => 'GenuineIntel',"), "line 6: 486 is listed twice"),
    ("my $other = {\n};\n", r"neither \$cpu_models_by_arch"),
], ids=["not-an-entry", "twice", "no-list"])
def test_the_generator_refuses_what_it_cannot_read(text, message) -> None:
    gen = _generator()
    with pytest.raises(gen.PerlListError, match=message):
        gen.read_models(text)


# ------------------------------------------------------------------------------------------------ the cfg2cmd vectors
def _conf(name: str) -> dict[str, str]:
    """A VM config's main section as Proxmox reads it: ``key: value`` lines, comments left out, up to a snapshot."""
    out: dict[str, str] = {}
    with open(os.path.join(VECTORS, name), encoding="utf-8") as fh:
        for line in fh.read().split("\n"):
            if line.startswith("["):
                break
            if line.strip() and not line.startswith("#"):
                key, _sep, value = line.partition(":")
                out[key.strip()] = value.strip()
    return out


def _expected_cpu(name: str) -> str:
    """The ``-cpu`` value of the vector's expected command line (shell-quoted, one option per line)."""
    with open(os.path.join(VECTORS, f"{name}.cmd"), encoding="utf-8") as fh:
        found = [shlex.split(line.rstrip().removesuffix("\\"))[1] for line in fh if line.strip().startswith("-cpu ")]
    assert len(found) == 1, f"{name}.cmd: one -cpu line expected, found {len(found)}"
    return found[0]


def _property_string(text: str) -> dict[str, str]:
    """A ``cpu:`` value (PVE property string): the item without ``=`` is the cputype, the others ``key=value``."""
    out: dict[str, str] = {}
    for item in text.split(","):
        key, sep, value = item.partition("=")
        out[key if sep else "cputype"] = value if sep else key
    return out


def _custom_models() -> Mapping[str, Mapping[str, str | None]]:
    with open(os.path.join(VECTORS, "cpu-models.conf"), encoding="utf-8") as fh:
        sections = parse(fh.read())
    for section in sections:
        assert not cpu_model_errors(section), f"our reading of Proxmox's own fixture section {section.id}"
    return {s.id: s.properties for s in sections}


def _model(cputype: str) -> ProxmoxCpu:
    """The custom model a VM's cputype stands for, as our emulation takes it."""
    if not cputype.startswith("custom-"):
        assert _proxmox.model_vendor(cputype) is not None, f"{cputype}: a built-in model of Proxmox's list"
        return ProxmoxCpu("builtin", cputype)
    name = cputype.removeprefix("custom-")
    props = _custom_models()[name]
    # hv-vendor-id only reaches -cpu through the Windows enlightenments (hv_vendor_id=), set aside below.
    assert set(props) <= {"reported-model", "flags", "phys-bits", "hv-vendor-id"}, f"{name}: a property we do not emulate"
    flags: dict[str, bool] = {}
    for flag in filter(None, (props.get("flags") or "").split(";")):
        match = FLAG_RE.match(flag)
        assert match, flag
        flags[match.group(2)] = match.group(1) == "+"
    phys_bits = props.get("phys-bits")
    return ProxmoxCpu(name, props.get("reported-model") or "kvm64", flags, int(phys_bits) if phys_bits else None)


def _windows_version(ostype: str) -> int:
    """PVE::QemuServer::Helpers::windows_version."""
    if ostype in ("wxp", "w2k3", "w2k"):
        return 5
    if ostype in ("w2k8", "wvista"):
        return 6
    match = re.fullmatch(r"win(\d+)", ostype)
    return int(match.group(1)) if match else 0


def _key(item: str) -> str:
    return item.lstrip("+-").partition("=")[0]


_VM_PHYS_BITS = {"phys-bits", "host-phys-bits", "guest-phys-bits"}
# The inputs of get_cpu_options our emulation does not take: (why, does this rule set aside item KEY for this VM?).
NOT_EMULATED: list[tuple[str, Callable[[dict[str, str], dict[str, str], str], bool]]] = [
    ("Hyper-V enlightenments of a Windows guest (get_hyperv_enlightenments; hv-vendor-id lands here)",
     lambda conf, cpu, key: _windows_version(conf.get("ostype", "")) >= 6 and key.startswith("hv_")),
    ("-cet-ibt/-cet-ss for Windows 11 and newer on QEMU 11.0 or newer (get_pve_cpu_flags)",
     lambda conf, cpu, key: _windows_version(conf.get("ostype", "")) >= 11 and key in ("cet-ibt", "cet-ss")),
    ("-vmx-mbec for host on QEMU 11.0 or newer with a machine older than 11.0: depends on the QEMU binary",
     lambda conf, cpu, key: cpu["cputype"] == "host" and key == "vmx-mbec"),
    ("-x2apic for a Solaris guest", lambda conf, cpu, key: conf.get("ostype") == "solaris" and key == "x2apic"),
    ("the VM's own cpu: flags (a VM given our model adds none)",
     lambda conf, cpu, key: key in {_key(f) for f in cpu.get("flags", "").split(";") if f}),
    ("the VM's own level", lambda conf, cpu, key: "level" in cpu and key == "level"),
    ("the VM's own phys-bits/guest-phys-bits, which replace the model's",
     lambda conf, cpu, key: bool(_VM_PHYS_BITS & set(cpu)) and key in _VM_PHYS_BITS),
    ("the VM's own hidden (kvm=off)", lambda conf, cpu, key: "hidden" in cpu and key == "kvm"),
]


def _emulated_part(value: str, conf: dict[str, str], cpu: dict[str, str]) -> tuple[list[str], list[str]]:
    """(the model and the items our emulation decides, in order; the items set aside, each with its rule)."""
    model, *items = value.split(",")
    kept, aside = [model], []
    for item in items:
        why = next((why for why, rule in NOT_EMULATED if rule(conf, cpu, _key(item))), None)
        if why is None:
            kept.append(item)
        else:
            aside.append(f"{item}: {why}")
    return kept, aside


# Vectors that exercise no part of the composition we emulate: vector -> why. None so far; a new vector goes here only
# with its reason, and the test says so when it skips it.
SKIPPED: dict[str, str] = {}


def test_the_vectors_are_all_there() -> None:
    """Every vector of the fixture directory is compared or skipped with its reason, none silently."""
    assert len(CONFS) == 8 and all(os.path.exists(os.path.join(VECTORS, f"{c}.cmd")) for c in CONFS)
    assert set(SKIPPED) <= set(CONFS)
    assert all("cpu" in _conf(c) for c in CONFS), "each vector sets the VM's cpu"


@pytest.mark.parametrize("name", CONFS, ids=lambda n: n.removesuffix(".conf"))
def test_our_composition_is_proxmoxs_on_its_own_vectors(name) -> None:
    if name in SKIPPED:
        pytest.skip(f"{name}: {SKIPPED[name]}")
    conf = _conf(name)
    assert conf.get("kvm", "1") != "0" and conf.get("arch", "x86_64") == "x86_64", "the emulation is for KVM on x86_64"
    cpu = _property_string(conf["cpu"])
    expected, aside = _emulated_part(_expected_cpu(name), conf, cpu)
    ours, ours_aside = _emulated_part(_model(cpu["cputype"]).qemu_args, conf, cpu)
    assert ours == expected, f"{name}: Proxmox composes {expected}, we {ours} (set aside: {aside}; ours: {ours_aside})"
    assert len(expected) >= 3, f"{name}: too little left to compare: {expected}"
