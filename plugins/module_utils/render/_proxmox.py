# Copyright (c) 2026 cpucompat.cluster contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Render a :class:`GuestCpu` for Proxmox VE: a custom CPU model of ``/etc/pve/virtual-guest/cpu-models.conf``. Private.

Proxmox hands QEMU its own names, without libvirt: a VM with ``cpu: custom-NAME`` gets ``-cpu`` composed by
``PVE::QemuServer::CPUConfig::get_cpu_options`` from the section ``cpu-model: NAME``: the section's ``reported-model`` as
the model, Proxmox's own flags for that model (``+kvm_pv_unhalt``, ``+kvm_pv_eoi``; ``-rdtscp`` for Opteron models;
``+lahf_lm`` and ``+sep`` for kvm64), then the section's ``flags`` (``+f;-f``, later ones win, by name), then
``enforce`` and ``vendor=`` (from Proxmox's model list), all sorted by name, then ``phys-bits=``.

So the features named are those on which some QEMU of the group defines the reported model differently from the pinned
set (``cpu/_exact`` with ``libvirt=False``), and those Proxmox's own flags would set otherwise than the set, spelled as
Proxmox spells them so that ours override. ``reported-model`` must be in Proxmox's list of models, which keeps only the
alias names of QEMU's versioned models (``Skylake-Server-IBRS``, never ``Skylake-Server-v2``). That list is built when
pve-qemu is packaged, from ``qemu-system-x86_64 -cpu help``; it is not published anywhere we can fetch, so
:data:`PROXMOX_MODELS` is derived here by :func:`reported_models`, our own implementation of the same rule, from the
``-cpu help`` of Debian's QEMU 7.2 and 10.0 (the tests derive it again from both binaries and compare).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from .._errors import BaselineError
from ..cpu._exact import Problem, Solution, name_order
from ..cpu._features import canonical_name
from ..cpu._guest import GuestCpu, is_paravirt
from ._platform import Refusal, qemu_solution, require_x86, same_everywhere

PLATFORM = "Proxmox VE"
DEFAULT_NAME = "cpucompat"
CPU_MODELS_CONF = "/etc/pve/virtual-guest/cpu-models.conf"
# The strictest section name every Proxmox release accepts (older ones allowed no '-'): 2 to 40 characters.
NAME_RE = re.compile(r"^[a-z][a-z0-9_]{1,39}$")
# Proxmox's custom-model flag: an operator and a name (PVE::QemuServer::CPUFlags' "any flag" pattern).
FLAG_RE = re.compile(r"^([+-])([a-zA-Z0-9._-]+)$")
# Reported models Proxmox maps to another before QEMU sees them (there never was such a client CPU).
_REPLACED = {"Icelake-Client": "Icelake-Server", "Icelake-Client-noTSX": "Icelake-Server-noTSX"}

# Proxmox's reported-model list (model -> vendor) by QEMU release, derived by reported_models() from Debian's
# qemu-system-x86 `-cpu help`: QEMU 7.2 (bookworm) and 10.0 (bookworm-backports). Regenerate with
# `PYTHONPATH=tests:.cache/source-collections python -m utils.platform_judges proxmox-models` after a QEMU release
# is added to the catalogue.
_MODELS_TEXT: Mapping[str, Mapping[str, str]] = {
    "7.2": {
        "AuthenticAMD": "EPYC EPYC-IBPB EPYC-Milan EPYC-Rome EPYC-Rome-v2 EPYC-v3 Opteron_G1 Opteron_G2 Opteron_G3 "
                        "Opteron_G4 Opteron_G5 athlon phenom",
        "GenuineIntel": "486 Broadwell Broadwell-IBRS Broadwell-noTSX Broadwell-noTSX-IBRS Cascadelake-Server "
                        "Cascadelake-Server-noTSX Cascadelake-Server-v2 Cascadelake-Server-v4 Cascadelake-Server-v5 "
                        "Conroe Cooperlake Cooperlake-v2 Haswell Haswell-IBRS Haswell-noTSX Haswell-noTSX-IBRS "
                        "Icelake-Client Icelake-Client-noTSX Icelake-Server Icelake-Server-noTSX Icelake-Server-v3 "
                        "Icelake-Server-v4 Icelake-Server-v5 Icelake-Server-v6 IvyBridge IvyBridge-IBRS KnightsMill "
                        "Nehalem Nehalem-IBRS Penryn SandyBridge SandyBridge-IBRS Skylake-Client "
                        "Skylake-Client-IBRS Skylake-Client-noTSX-IBRS Skylake-Client-v4 Skylake-Server "
                        "Skylake-Server-IBRS Skylake-Server-noTSX-IBRS Skylake-Server-v4 Skylake-Server-v5 Westmere "
                        "Westmere-IBRS core2duo coreduo pentium pentium2 pentium3",
        "default": "kvm32 kvm64 max qemu32 qemu64",
    },
    "10.0": {
        "AuthenticAMD": "EPYC EPYC-Genoa EPYC-IBPB EPYC-Milan EPYC-Milan-v2 EPYC-Rome EPYC-Rome-v2 EPYC-Rome-v3 "
                        "EPYC-Rome-v4 EPYC-v3 EPYC-v4 Opteron_G1 Opteron_G2 Opteron_G3 Opteron_G4 Opteron_G5 "
                        "athlon phenom",
        "GenuineIntel": "486 Broadwell Broadwell-IBRS Broadwell-noTSX Broadwell-noTSX-IBRS Cascadelake-Server "
                        "Cascadelake-Server-noTSX Cascadelake-Server-v2 Cascadelake-Server-v4 "
                        "Cascadelake-Server-v5 ClearwaterForest Conroe Cooperlake Cooperlake-v2 GraniteRapids "
                        "GraniteRapids-v2 Haswell Haswell-IBRS Haswell-noTSX Haswell-noTSX-IBRS Icelake-Client "
                        "Icelake-Client-noTSX Icelake-Server Icelake-Server-noTSX Icelake-Server-v3 "
                        "Icelake-Server-v4 Icelake-Server-v5 Icelake-Server-v6 Icelake-Server-v7 IvyBridge "
                        "IvyBridge-IBRS KnightsMill Nehalem Nehalem-IBRS Penryn SandyBridge SandyBridge-IBRS "
                        "SapphireRapids SapphireRapids-v2 SapphireRapids-v3 SierraForest SierraForest-v2 "
                        "Skylake-Client Skylake-Client-IBRS Skylake-Client-noTSX-IBRS Skylake-Client-v4 "
                        "Skylake-Server Skylake-Server-IBRS Skylake-Server-noTSX-IBRS Skylake-Server-v4 "
                        "Skylake-Server-v5 Westmere Westmere-IBRS core2duo coreduo pentium pentium2 pentium3",
        "default": "kvm32 kvm64 max qemu32 qemu64",
    },
}
PROXMOX_MODELS: Mapping[str, Mapping[str, str]] = {
    release: {model: vendor for vendor, names in table.items() for model in names.split()}
    for release, table in _MODELS_TEXT.items()}


# ------------------------------------------------------------------------------------------------ Proxmox's model list
_SKIPPED = re.compile(r"^(?:base|host|n270|Denverton|Snowridge)(?:-v\d)?$")
_GENERIC = re.compile(r"^(?:(?:kvm|qemu)(?:32|64)-v1|max)$")


def reported_models(cpu_help: str) -> dict[str, str]:
    """Proxmox's reported-model list (model -> vendor, ``default`` for the generic ones) from the text of
    ``qemu-system-x86_64 -cpu help``, by the rule pve-qemu's packaging applies.

    The rule, in our words: the models before the list of CPUID flags; leave out the architecture's special models
    (base, host) and the ones Proxmox does not offer (n270, Denverton, Snowridge, any version), the deprecated ones and
    those of Hygon, Zhaoxin and YongFeng; a model's vendor is AMD or Intel by its description (the generic kvm/qemu
    ones and max have none, the description-less 486 and pentiums are Intel, athlon is AMD); an alias (of a version,
    or configured by the machine type, which stands for ``-v1``) replaces the model it names, so only alias names are
    listed where one exists; Icelake-Client and Icelake-Client-noTSX are kept for compatibility when Icelake-Server is
    there. QEMU 7.2 prefixes each line with its architecture (``x86``); the prefix is not part of the name.
    """
    models: dict[str, str] = {}
    aliases: dict[str, str] = {}
    for raw in cpu_help.splitlines():
        if re.match(r"^\s*Recognized CPUID flags:", raw):
            break
        line = re.sub(r"^x86\s+", "", raw.strip())
        if not line or line.startswith("Available CPUs:"):
            continue
        model, _sep, info = line.partition(" ")
        vendor, alias = _classify(model, info.strip(), line)
        if alias is not None:
            aliases[model] = alias
        elif vendor is not None:
            models[model] = vendor
    for alias, target in sorted(aliases.items()):
        if target in models:
            models[alias] = models.pop(target)
    if "Icelake-Server" in models:
        models.update(dict.fromkeys(("Icelake-Client", "Icelake-Client-noTSX"), "GenuineIntel"))
    return models


def _classify(model: str, info: str, line: str) -> tuple[str | None, str | None]:
    """(the vendor of a listed model, or the model an alias stands for); (None, None): not offered."""
    if model == "athlon-v1":
        return "AuthenticAMD", None
    if _GENERIC.match(model):
        return "default", None
    if _SKIPPED.match(model) or info == "(deprecated)" or re.match(r"^(?:Hygon|YongFeng|Zhaoxin)", info):
        return None, None
    if not info and re.match(r"^(?:486|pentium[23]?)-v1$", model):
        return "GenuineIntel", None
    if info.startswith("(alias configured by machine type)"):
        return None, f"{model}-v1"
    alias = re.match(r"^\(alias of (\S+)\)", info)
    if alias:
        return None, alias.group(1)
    if info.startswith("AMD"):
        return "AuthenticAMD", None
    if re.match(r"^(?:Intel|Genuine Intel|Westmere)", info):
        return "GenuineIntel", None
    raise BaselineError(f"cannot classify the QEMU model line {line!r} as Proxmox does")


def model_vendor(model: str) -> str | None:
    """The vendor Proxmox's list gives ``model`` (``default``: none), or None when the list lacks it."""
    for table in reversed(list(PROXMOX_MODELS.values())):
        if model in table:
            return table[model]
    return None


def pve_flags(reported_model: str) -> dict[str, bool]:
    """The flags Proxmox itself adds for a Linux guest under KVM on x86_64 (``get_pve_cpu_flags``), as it spells them."""
    flags = {"kvm_pv_unhalt": True, "kvm_pv_eoi": True}
    if reported_model == "kvm64":
        flags["lahf_lm"] = True
    if reported_model in ("kvm64", "kvm32"):
        flags["sep"] = True
    if reported_model.startswith("Opteron"):
        flags["rdtscp"] = False
    return flags


# ------------------------------------------------------------------------------------------------ the rendering
@dataclass(frozen=True)
class ProxmoxCpu:
    """A custom CPU model of Proxmox VE: its section name, reported model and flags (Proxmox's spellings)."""

    name: str
    reported_model: str
    flags: Mapping[str, bool] = field(default_factory=dict)  # flag as written -> on/off
    phys_bits: int | None = None
    left_out: tuple[str, ...] = ()

    @property
    def flags_text(self) -> str:
        return ";".join(f"{'+' if on else '-'}{name}" for name, on in sorted(self.flags.items()))

    @property
    def cpu_models_conf(self) -> str:
        """The section as Proxmox writes it: header, then the properties sorted by key, tab-indented."""
        props = {"flags": self.flags_text, "phys-bits": str(self.phys_bits or ""), "reported-model": self.reported_model}
        return f"cpu-model: {self.name}\n" + "".join(f"\t{k} {v}\n" for k, v in sorted(props.items()) if v)

    @property
    def vm_cpu(self) -> str:
        return f"custom-{self.name}"

    @property
    def qemu_args(self) -> str:
        """The ``-cpu`` Proxmox composes for a Linux VM with ``cpu: custom-NAME`` under KVM (``get_cpu_options``)."""
        model = _REPLACED.get(self.reported_model, self.reported_model)
        resolved: dict[str, tuple[str, str]] = {n: ("+" if on else "-", "") for n, on in pve_flags(model).items()}
        resolved.update({n: ("+" if on else "-", "") for n, on in self.flags.items()})
        resolved["enforce"] = ("", "")
        vendor = model_vendor(model)
        if vendor not in (None, "default"):
            resolved["vendor"] = ("", f"={vendor}")
        parts = [f"{op}{name}{value}" for name, (op, value) in sorted(resolved.items())]
        return ",".join([model, *parts, *([f"phys-bits={self.phys_bits}"] if self.phys_bits else [])])

    def to_dict(self) -> dict[str, Any]:
        return {"cpu_models_conf": self.cpu_models_conf, "vm_cpu": self.vm_cpu, "qemu_args": self.qemu_args,
                "name": self.name, "reported_model": self.reported_model, "flags": self.flags_text,
                "phys_bits": self.phys_bits, "path": CPU_MODELS_CONF, "left_out": list(self.left_out)}


def render(guest: GuestCpu, name: str = DEFAULT_NAME, form: str = "minimal") -> ProxmoxCpu:
    """The custom CPU model ``name`` that gives ``guest`` exactly on every host of the group."""
    if not isinstance(name, str) or not NAME_RE.match(name):
        raise BaselineError(f"{PLATFORM}: {name!r} is not a custom CPU model name every Proxmox release accepts "
                            "(a lower-case letter, then 1 to 39 lower-case letters, digits or '_')")
    require_x86(guest, PLATFORM)
    solution = qemu_solution(guest, _names(guest), PLATFORM, form, check=_listed)
    flags = _flags(guest, solution)
    for flag, on in flags.items():
        if not FLAG_RE.match(f"{'+' if on else '-'}{flag}"):
            raise BaselineError(f"{PLATFORM}: feature {flag!r} does not fit Proxmox's flag syntax (+name or -name)")
    return ProxmoxCpu(name, solution.model, flags, guest.phys_bits, tuple(sorted(guest.left_out)))


def _names(guest: GuestCpu) -> list[str]:
    """The engine's order, each name replaced by the name Proxmox lists for it (its alias) where the two are defined
    alike by every QEMU of the group."""
    listed = {m for table in PROXMOX_MODELS.values() for m in table} - set(_REPLACED) - {"max", "host"}
    pool = sorted(set(guest.candidates) | {m for q in guest.qemu for m in q.definitions})
    out: list[str] = []
    for name in name_order(guest):
        spelled = [name] if name in listed else [a for a in pool if a in listed and same_everywhere(guest, a, name)]
        out += [s for s in (spelled or [name]) if s not in out]
    return out


def _listed(model: str, solution: Solution) -> list[Problem]:
    if model_vendor(model) is not None and model not in _REPLACED and model != "max":
        return []
    return [Refusal("model", model, PLATFORM, (), f"Proxmox's reported-model list has no {model} (it lists alias names "
                    "only, and none of Denverton, Snowridge, n270 or Hygon, Zhaoxin and YongFeng models)")]


def _flags(guest: GuestCpu, solution: Solution) -> dict[str, bool]:
    """The section's flags: the solution's features, and Proxmox's own flags where they differ from the set, each
    spelled as Proxmox spells it (a later flag of the same name wins in ``get_cpu_options``)."""
    flags = dict(solution.policies)
    for spelling, on in pve_flags(solution.model).items():
        feature = canonical_name("x86_64", spelling)
        if is_paravirt(feature):
            continue
        named = feature in flags
        wanted = flags.pop(feature) if named else feature in guest.features
        if wanted != on or named:
            flags[spelling] = wanted
    return flags
