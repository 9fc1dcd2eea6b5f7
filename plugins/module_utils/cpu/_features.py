# Copyright (c) 2026 cpucompat.cluster contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""CPU feature vocabulary: QEMU spellings, aliases, validation. Private to the collection.

QEMU's canonical x86 property names use dashes (``lahf-lm``) except the few
historical ones it keeps as primary names (``pni``, ``sse4.1``); full
expansions repeat every feature under its legacy aliases (``sse4_1``,
``sse4-1``, ``lahf_lm``). Facts only ever carry the canonical spelling.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

from .._errors import FactsError

SUPPORTED_ARCHES = ("x86_64", "s390x", "aarch64")

# QEMU's versioned x86 model suffix ("Skylake-Server-v4"); group 1 is the version.
MODEL_VERSION_RE = re.compile(r"-v([0-9]+)$")

# A feature name as it may appear in facts and, later, in libvirt XML.
FEATURE_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")

# QEMU x86 property aliases whose canonical name is not the dash spelling.
_X86_ALIASES: dict[str, str] = {
    "sse3": "pni",
    "pclmuldq": "pclmulqdq",
    "sse4-1": "sse4.1",
    "sse4-2": "sse4.2",
    "sse4_1": "sse4.1",
    "sse4_2": "sse4.2",
    "xd": "nx",
    "ffxsr": "fxsr-opt",
    "i64": "lm",
}

# Boolean x86 properties of a CPU object that are not CPUID features: they
# configure QEMU itself (enforce, migratable, ...) and never reach a guest as
# a CPU flag. Hyper-V enlightenments (hv-*) and experimental knobs (x-*) are
# configured by libvirt outside <cpu>, so they are not CPU-model features.
_X86_NON_FEATURE_PROPS = frozenset({
    "check", "enforce", "kvm", "migratable", "pmu", "realized", "start-powered-off",
    "tcg-cpuid", "l3-cache", "legacy-cache", "host-cache-info", "host-phys-bits",
    "fill-mtrr-mask", "full-cpuid-auto-level", "cpuid-0xb", "vmware-cpuid-freq",
    "kvm-no-smi-migration", "kvm-pv-enforce-cpuid", "hotplugged", "hotpluggable",
    "lbr-fmt", "host-phys-bits-limit", "hv-passthrough",
})
_X86_NON_FEATURE_PREFIXES = ("hv-", "x-")

# Features of a named x86 model that QEMU does not hold against the model when
# it judges runnability under KVM: kvm_default_props turns "svm", "monitor"
# and "acpi" off for every named model, and QEMU derives "topoext" from the
# guest topology. Seen in recordings: Dhyana-v1 and EPYC-v1 are runnable on
# EPYC hosts whose host model lacks monitor and topoext; Opteron_G2-v1 on
# Intel hosts without svm.
X86_KVM_SOFT_FEATURES = frozenset({"svm", "monitor", "acpi", "topoext"})

# Mitigation features: losing one exposes guests to the attack it mitigates (QEMU's names).
SECURITY_FEATURES = frozenset({
    "spec-ctrl", "ssbd", "virt-ssbd", "amd-ssbd", "amd-no-ssb", "ibpb", "ibrs", "amd-stibp", "stibp", "md-clear",
    "flush-l1d", "pcid", "arch-capabilities", "rdctl-no", "ibrs-all", "skip-l1dfl-vmentry", "ssb-no", "mds-no",
    "pschange-mc-no", "taa-no", "sbdr-ssdp-no", "fbsdp-no", "psdp-no", "fb-clear", "pbrsb-no", "gds-no", "rfds-no",
    "bhi-ctrl", "ipred-ctrl", "rrsba-ctrl", "psfd", "stibp-always-on", "ibpb-brtype", "sbpb", "srso-no",
    "srso-user-kernel-no", "verw-clear", "its-no",
})

# Bits of IA32_ARCH_CAPABILITIES (MSR 0x10a) and QEMU's names for them
# (target/i386/cpu.c, FEAT_ARCH_CAPABILITIES), to name what KVM rejects.
_MSR_FEATURE_BITS: dict[int, dict[int, str]] = {
    0x10A: {0: "rdctl-no", 1: "ibrs-all", 2: "rsba", 3: "skip-l1dfl-vmentry", 4: "ssb-no", 5: "mds-no",
            6: "pschange-mc-no", 7: "tsx-ctrl", 8: "taa-no", 13: "sbdr-ssdp-no", 14: "fbsdp-no", 15: "psdp-no",
            17: "fb-clear", 24: "pbrsb-no", 26: "gds-no", 27: "rfds-no"},
}


def msr_features(index: int, value: int) -> list[str] | None:
    """QEMU feature names of the bits set in a value written to a feature MSR, None if unknown."""
    bits = _MSR_FEATURE_BITS.get(index)
    if bits is None:
        return None
    names = [name for bit, name in sorted(bits.items()) if value >> bit & 1]
    if value >> max(bits) + 1 or any(value >> bit & 1 and bit not in bits for bit in range(max(bits) + 1)):
        return None  # a bit we cannot name: do not guess
    return names


# aarch64 properties that tune KVM rather than describe the CPU.
_ARM_NON_FEATURE_PREFIXES = ("kvm-",)


def canonical_name(arch: str, name: str) -> str:
    """QEMU's canonical spelling of a CPU property name."""
    if arch != "x86_64":
        return name
    name = _X86_ALIASES.get(name, name)
    if "_" in name:
        name = name.replace("_", "-")
        name = _X86_ALIASES.get(name, name)
    return name


def is_cpu_feature(arch: str, name: str) -> bool:
    """True when the (canonical) boolean property is a guest-visible CPU feature."""
    if arch == "x86_64":
        return name not in _X86_NON_FEATURE_PROPS and not name.startswith(_X86_NON_FEATURE_PREFIXES)
    if arch == "aarch64":
        return not name.startswith(_ARM_NON_FEATURE_PREFIXES)
    return True


def validate_feature_name(name: Any, where: str, what: str = "feature") -> str:
    """Return the name if it is a plain feature (or, ``what``, model) name, else raise naming the source and what it is."""
    if not isinstance(name, str) or not FEATURE_NAME_RE.match(name):
        raise FactsError(f"{where}: {name!r} is not a valid CPU {what} name")
    return name


def enabled_features(arch: str, props: Mapping[str, Any], where: str) -> dict[str, bool]:
    """Canonical boolean feature properties of an expansion reply.

    Returns name -> value for every boolean feature property. Aliases that
    disagree with their canonical property are an error: it means the reply
    was edited or QEMU changed its vocabulary, and guessing would be wrong.
    """
    out: dict[str, bool] = {}
    for raw, value in props.items():
        if not isinstance(value, bool):
            continue
        name = canonical_name(arch, raw)
        if not is_cpu_feature(arch, name):
            continue
        validate_feature_name(name, where)
        previous = out.get(name)
        if previous is not None and previous != value:
            raise FactsError(f"{where}: property {raw!r} says {value} but its canonical name {name!r} says {previous}")
        out[name] = value
    return out


def canonical_list(arch: str, names: Iterable[Any], where: str) -> list[str]:
    """Canonical, validated, de-duplicated, sorted feature names."""
    return sorted({validate_feature_name(canonical_name(arch, str(n)), where) for n in names})


def compare_feature_sets(a: frozenset[str], b: frozenset[str]) -> str:
    """QEMU's comparison verdict for feature sets: how ``a`` stands to ``b``."""
    if a == b:
        return "identical"
    if a <= b:
        return "subset"
    if a >= b:
        return "superset"
    return "incompatible"
