# Copyright (c) 2026 cpucompat.cluster contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""A group's tiers (contract/_tiers) as OpenStack Nova says them: an ordered ``cpu_models`` list and, per tier, flavor
extra specs ``trait:HW_CPU_X86_*=required``. Private.

Nova's libvirt driver (``_get_guest_cpu_model_config``) gives an instance the first model of ``cpu_models`` unless its
flavor requires CPU traits; then the first model whose libvirt definition (``baselineCPU`` of the bare model) has every
feature those traits name (``_match_cpu_model_by_flags``). With ``cpu_mode = custom`` a compute node reports the traits
of all its ``cpu_models`` and of ``cpu_model_extra_flags`` (``_get_cpu_feature_traits``), so placement sends a flavor
that requires a tier's traits only to the hosts that list the tier's model. Hence, per tier beyond the base, the traits
of the features its model's definition has and no earlier tier's model (nor an extra flag) has: required by the tier's
flavors, they pick the tier's model, on the tier's hosts only. The list is ordered base first, as Nova asks (the less
advanced models earlier). ``cpu_model_extra_flags`` applies to every listed model: the tiers must need the same flags,
else a refusal names them. A tier whose model no trait tells apart is refused by name.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from .._errors import InputError, RenderError
from ..cpu._guest import GuestCpu
from ..cpu._exact import Solution, name_order
from ._nova import PLATFORM, NovaCpu, _refusals, check_flags
from ._platform import also_exact, first_exact, require_libvirt, require_x86

# Nova's CPU_TRAITS_MAPPING (nova/virt/libvirt/utils.py): libvirt's feature name -> the os-traits trait(s) Nova reports
# for it. tests/integration/test_platforms_nova.py compares it with the Nova release in .cache/nova-venv.
CPU_TRAITS: dict[str, tuple[str, ...]] = {
    "3dnow": ("HW_CPU_X86_3DNOW",), "abm": ("HW_CPU_X86_ABM",), "aes": ("HW_CPU_X86_AESNI",),
    "amx-bf16": ("HW_CPU_X86_AMXBF16",), "amx-int8": ("HW_CPU_X86_AMXINT8",), "amx-tile": ("HW_CPU_X86_AMXTILE",),
    "avx": ("HW_CPU_X86_AVX",), "avx2": ("HW_CPU_X86_AVX2",), "avx512bw": ("HW_CPU_X86_AVX512BW",),
    "avx512cd": ("HW_CPU_X86_AVX512CD",), "avx512dq": ("HW_CPU_X86_AVX512DQ",), "avx512er": ("HW_CPU_X86_AVX512ER",),
    "avx512f": ("HW_CPU_X86_AVX512F",), "avx512pf": ("HW_CPU_X86_AVX512PF",), "avx512vl": ("HW_CPU_X86_AVX512VL",),
    "avx512vnni": ("HW_CPU_X86_AVX512VNNI",), "avx512vbmi": ("HW_CPU_X86_AVX512VBMI",),
    "avx512ifma": ("HW_CPU_X86_AVX512IFMA",), "avx512vbmi2": ("HW_CPU_X86_AVX512VBMI2",),
    "avx512bitalg": ("HW_CPU_X86_AVX512BITALG",), "vaes": ("HW_CPU_X86_AVX512VAES",), "gfni": ("HW_CPU_X86_AVX512GFNI",),
    "vpclmulqdq": ("HW_CPU_X86_AVX512VPCLMULQDQ",), "avx512-vpopcntdq": ("HW_CPU_X86_AVX512VPOPCNTDQ",),
    "bmi1": ("HW_CPU_X86_BMI",), "bmi2": ("HW_CPU_X86_BMI2",), "pclmuldq": ("HW_CPU_X86_CLMUL",),
    "f16c": ("HW_CPU_X86_F16C",), "fma": ("HW_CPU_X86_FMA3",), "fma4": ("HW_CPU_X86_FMA4",), "mmx": ("HW_CPU_X86_MMX",),
    "mpx": ("HW_CPU_X86_MPX",), "sha-ni": ("HW_CPU_X86_SHA",), "sse": ("HW_CPU_X86_SSE",), "sse2": ("HW_CPU_X86_SSE2",),
    "sse3": ("HW_CPU_X86_SSE3",), "sse4.1": ("HW_CPU_X86_SSE41",), "sse4.2": ("HW_CPU_X86_SSE42",),
    "sse4a": ("HW_CPU_X86_SSE4A",), "ssse3": ("HW_CPU_X86_SSSE3",), "svm": ("HW_CPU_X86_SVM", "HW_CPU_X86_AMD_SVM"),
    "tbm": ("HW_CPU_X86_TBM",), "vmx": ("HW_CPU_X86_VMX", "HW_CPU_X86_INTEL_VMX"), "xop": ("HW_CPU_X86_XOP",),
}


@dataclass(frozen=True)
class NovaTier:
    name: str
    cpu: NovaCpu
    flags: tuple[str, ...]  # libvirt's names of the features the tier's flavors require (empty for the base)

    @property
    def model(self) -> str:
        return self.cpu.models[0]

    @property
    def flavor_extra_specs(self) -> dict[str, str]:
        """The extra specs of the tier's flavors: its traits required (the first trait of each feature, as Nova's
        reverse mapping reads either), and the address bits Nova 27.0.0 takes there."""
        return {**{f"trait:{CPU_TRAITS[f][0]}": "required" for f in self.flags}, **self.cpu.flavor_extra_specs}


@dataclass(frozen=True)
class NovaTiers:
    tiers: tuple[NovaTier, ...]  # the base first, then each tier in the order given (less advanced earlier)

    def chosen(self, names: Sequence[str]) -> list[NovaTier]:
        """The tiers of a compute host of the tiers ``names``, in order: the base always, first."""
        return [t for t in self.tiers if t.name in names or t is self.tiers[0]]

    def options(self, names: Sequence[str]) -> dict[str, str]:
        """nova.conf's ``[libvirt]`` options on a compute host of the tiers ``names`` (the base is always there)."""
        models = [t.model for t in self.chosen(names)]
        return {"cpu_mode": "custom", "cpu_models": ", ".join(models),
                "cpu_model_extra_flags": ", ".join(self.tiers[0].cpu.extra_flags)}

    def to_dict(self) -> dict[str, Any]:
        return {"cpu_models": [t.model for t in self.tiers], "cpu_model_extra_flags": self.tiers[0].cpu.extra_flags,
                "tiers": {t.name: {"model": t.model, "flavor_extra_specs": t.flavor_extra_specs} for t in self.tiers}}


def _definitions(guest: GuestCpu, model: str) -> list[frozenset[str]]:
    """The model's libvirt definition (libvirt's names) on each libvirt of the tier; empty where a map lacks it."""
    return [frozenset(lv.cpu_map.models.get(model) or ()) for lv in guest.libvirt]


def _solution(guest: GuestCpu, form: str) -> Solution:
    require_x86(guest, PLATFORM)
    require_libvirt(guest, PLATFORM)
    return first_exact(guest, name_order(guest), PLATFORM, form=form, libvirt=True, check=_refusals)


def render_tiers(tiers: Sequence[tuple[str, GuestCpu]], form: str = "minimal") -> NovaTiers:
    """Nova's tiers for ``tiers``: (name, the tier's guest CPU on its hosts' stacks), the base first.

    Each tier's model is its own exact rendering's; ``cpu_model_extra_flags`` is the union of the tiers' flags, and must
    keep every tier's model exact (a flag one tier needs that gives another tier's model a feature its CPU lacks is
    refused, naming both; choose the tier's level so that it does not need it)."""
    if not tiers:
        raise InputError(f"{PLATFORM}: no tiers to render")
    solved = [(name, _solution(guest, form), guest) for name, guest in tiers]
    combined: dict[str, bool] = {}
    for name, solution, _guest in solved:
        for feature, on in solution.policies.items():
            if combined.get(feature, on) != on:
                raise RenderError(f"{PLATFORM}: the tiers need {feature} both on and off in cpu_model_extra_flags, which "
                                  f"applies to every model of cpu_models (tier {name}: {'on' if on else 'off'})")
            combined[feature] = on
    for name, solution, guest in solved:
        if not also_exact(guest, solution.model, dict(combined), libvirt=True):
            own = dict(solution.policies)
            breaking = sorted(f for f, on in combined.items() if f not in own
                              and not also_exact(guest, solution.model, {**own, f: on}, libvirt=True))
            raise RenderError(f"{PLATFORM}: tier {name} (model {solution.model}) cannot take the other tiers' "
                              f"cpu_model_extra_flags {', '.join(('+' if combined[f] else '-') + f for f in breaking) or '(together)'}: "
                              "Nova applies them to every model of cpu_models, so that tier's guests would get another CPU; "
                              "choose the tiers' levels so that they need the same flags (a tier's level with -feature)")
    spell = solved[0][2].libvirt[0].cpu_map.libvirt_name
    flags = {str(spell(f)): on for f, on in combined.items()}
    check_flags(flags)
    out: list[NovaTier] = []
    earlier: set[str] = {f for f, on in flags.items() if on}
    disabled = {f for f, on in flags.items() if not on}  # a trait of a feature the flags take away would lie
    for name, solution, guest in solved:
        cpu = NovaCpu((solution.model,), flags, guest.phys_bits, tuple(sorted(guest.left_out)))
        defs = _definitions(guest, solution.model)
        have = frozenset.intersection(*defs) if defs else frozenset()
        chosen = tuple(sorted(f for f in have - earlier - disabled if f in CPU_TRAITS)) if out else ()
        if out and not chosen:
            raise RenderError(f"{PLATFORM}: tier {name} (model {solution.model}) has no CPU trait that the models before "
                              f"it in cpu_models ({', '.join(t.model for t in out)}) lack: a flavor cannot choose it")
        out.append(NovaTier(name, cpu, chosen))
        earlier |= set().union(*defs)
    return NovaTiers(tuple(out))
