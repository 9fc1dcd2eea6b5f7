# Copyright (c) 2026 cpucompat.cluster contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Exactness: which features a CPU definition must name so that every stack of a group reads it as one feature set.

Private to the collection; below the engine and the renderers alike. The rule, for a model name M and the exact set S:

- a QEMU stack gives a guest of M its definition of M (with the accelerator's defaults and the machine type's
  compatibility properties), the features named explicitly, and the features a root named ``on`` reveals (vmx
  reveals the model's vmx-* controls);
- a libvirt stack passes M and the named features to its QEMU, adds the features its map marks ``removed`` in M (as
  ``off`` on a fresh start, as ``on`` on an incoming migration from 11.3 on), and with ``check='full'`` refuses a guest
  whose features differ from its map's definition of M plus the named ones (``added='yes'`` features excepted);
- so every feature on which any of these definitions disagrees with S, and every removed one, is named: ``require``
  when S has it, ``disable`` when not. The fully explicit form names every feature of the group's common vocabulary.

A feature can only be named when every libvirt of the group knows its name (libvirt refuses a ``<cpu>`` with an unknown
feature), and M only when every stack knows the model. Where that fails, the :class:`Solution` lists the problems,
naming the stack and its hosts; a renderer refuses instead of writing a ``<cpu>`` some host refuses.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from .._errors import InputError, RenderError
from . import _catalog
from ._guest import GuestCpu, QemuStack, is_paravirt
from ._libvirt_map import LIBVIRT_VENDOR, CpuMap
from ._scoring import ranked

FORMS = ("minimal", "explicit")


class InexactError(RenderError):
    """No model name renders a guest CPU exactly on every stack of its group; ``problems``: those of the first name."""

    def __init__(self, message: str, problems: tuple[Problem, ...] = ()) -> None:
        super().__init__(message)
        self.problems = problems

    @property
    def hosts(self) -> list[str]:
        """The hosts whose stacks cannot say it (those the first name's problems name)."""
        return sorted({h for p in self.problems for h in p.hosts})


@dataclass(frozen=True)
class Problem:
    """Why one model name cannot be rendered exactly: a stack lacks the model, or a libvirt has no name for a feature."""

    kind: str  # "model" | "vendor" | "name" | "spelling"
    name: str  # the model or the feature
    stack: str
    hosts: tuple[str, ...]

    def message(self) -> str:
        hosts = ", ".join(self.hosts[:5]) + (f" and {len(self.hosts) - 5} more" if len(self.hosts) > 5 else "")
        where = f"{self.stack} (hosts {hosts})" if hosts else self.stack
        if self.kind == "model":
            return f"{where} does not know the model {self.name}"
        if self.kind == "vendor":
            return f"{where} defines {self.name} as another vendor's model"
        if self.kind == "spelling":
            return f"the libvirt CPU maps of the group spell feature {self.name} differently ({self.stack})"
        return f"{where} has no name for feature {self.name}, which must be named for every host to read the CPU alike"


@dataclass(frozen=True)
class Solution:
    """A model name and the features named explicitly (QEMU names -> on/off), or why that name cannot be exact."""

    model: str
    policies: Mapping[str, bool]
    problems: tuple[Problem, ...] = ()

    @property
    def ok(self) -> bool:
        return not self.problems

    def summary(self) -> str:
        return f"{self.model}: " + "; ".join(p.message() for p in self.problems)


def _vocabulary(cpu_map: CpuMap) -> frozenset[str]:
    return cpu_map.qemu_vocabulary


def _disagreements(guest: GuestCpu, model: str, libvirt: bool) -> tuple[set[str], list[Problem]]:
    """Features on which some stack's definition of ``model`` differs from the guest's set, and missing models."""
    wanted = guest.features
    named: set[str] = set()
    problems: list[Problem] = []
    for q in guest.qemu:
        defined = q.definitions.get(model)
        if defined is None:
            problems.append(Problem("model", model, q.label, q.hosts))
        else:
            named |= defined ^ wanted
    vendor = LIBVIRT_VENDOR.get(str(guest.vendor))
    for lv in guest.libvirt if libvirt else ():
        cpu_map = lv.cpu_map
        defined = cpu_map.definition(model)
        if defined is None:
            problems.append(Problem("model", model, lv.label, lv.hosts))
            continue
        if cpu_map.vendors.get(model) not in (None, vendor):
            problems.append(Problem("vendor", model, lv.label, lv.hosts))
            continue
        vocab = _vocabulary(cpu_map)
        named |= (defined ^ (wanted & vocab)) - cpu_map.qemu_names(cpu_map.added.get(model, ()))
        named |= cpu_map.qemu_names(cpu_map.removed.get(model, ()))
    return {f for f in named if not is_paravirt(f)}, problems


def _close(guest: GuestCpu, model: str, named: set[str]) -> set[str]:
    """Add what naming reveals: a root turned on brings its hidden features, which must then be named too."""
    for _round in range(4):
        policies = {f: f in guest.features for f in named}
        extra: set[str] = set()
        for q in guest.qemu:
            view = q.view(model, policies)
            if view is not None:
                extra |= {f for f in view ^ guest.features if not is_paravirt(f)} - named
        if not extra:
            break
        named |= extra
    return named


def _naming_problems(guest: GuestCpu, named: set[str]) -> list[Problem]:
    problems = []
    for feature in sorted(named):
        spellings = set()
        for lv in guest.libvirt:
            name = lv.cpu_map.libvirt_name(feature)
            if name is None:
                problems.append(Problem("name", feature, lv.label, lv.hosts))
            spellings.add(name)
        spellings.discard(None)
        if len(spellings) > 1:
            problems.append(Problem("spelling", feature, " / ".join(sorted(str(s) for s in spellings)), ()))
    return problems


def solve(guest: GuestCpu, model: str, form: str = "minimal", libvirt: bool = True) -> Solution:
    """The explicit features that make ``model`` mean exactly the guest's set on every stack (``libvirt``: the CPU goes
    through the group's libvirt maps; False for renderers that hand QEMU its own names)."""
    if form not in FORMS:
        raise InputError(f"the form of a CPU definition must be one of {', '.join(FORMS)}, got {form!r}")
    named, problems = _disagreements(guest, model, libvirt)
    if problems:
        return Solution(model, {}, tuple(problems))
    named = _close(guest, model, named)
    if form == "explicit":
        defined = guest.features.union(*(q.definitions.get(model, frozenset()) for q in guest.qemu))
        if libvirt and guest.libvirt:
            # Every feature of the group's common vocabulary that QEMU knows (libvirt passes QEMU no other).
            named |= frozenset.intersection(*(_vocabulary(lv.cpu_map) for lv in guest.libvirt)) & (_catalog.vocabulary(guest.arch) | defined)
        else:
            named |= defined
        named = {f for f in named if not is_paravirt(f)}
    policies = {f: f in guest.features for f in sorted(named)}
    return Solution(model, policies, tuple(_naming_problems(guest, named)) if libvirt else ())


def guest_view(model: str, features: Sequence[tuple[str, str]], qemu: QemuStack | None,
               cpu_map: CpuMap | None) -> tuple[frozenset[str] | None, str | None]:
    """What a guest of a ``<cpu>`` (its model, its (policy, libvirt name) features) gets on one stack: its QEMU's
    definition and the properties its libvirt passes (the named features, the model's removed ones off: a fresh start);
    (None, why) when that libvirt refuses the ``<cpu>`` or that QEMU's definition of the model is not known."""
    if cpu_map is not None:
        unknown = [n for _p, n in features if n not in cpu_map.features] + ([] if model in cpu_map.models else [model])
        if unknown:
            return None, f"{cpu_map.label} does not know {', '.join(unknown)}: libvirt refuses the <cpu>"
        props = {cpu_map.qemu_name(n): p in ("require", "force") for p, n in features}
        for name in cpu_map.removed.get(model, ()):
            props.setdefault(cpu_map.qemu_name(name), False)
    else:
        props = {n: p in ("require", "force") for p, n in features}
    view = qemu.view(model, props) if qemu is not None else None
    if view is None:
        return None, f"no definition of model {model} from {qemu.label if qemu else 'its QEMU'}"
    return frozenset(f for f in view if not is_paravirt(f)), None


def name_order(guest: GuestCpu) -> list[str]:
    """The names a renderer tries: the engine's model, the names QEMU defines alike (its aliases), then the others,
    closest first. s390x: the model alone - its name is its CPU generation (type and GA level), which no feature says,
    so another name is another CPU however its features are set."""
    if not guest.qemu or guest.arch == "s390x":
        return [guest.model] if guest.model else []
    reference = guest.qemu[0].definitions
    model = guest.model
    own = reference.get(model) if model else None
    pool = {n: reference[n] for n in guest.candidates if n in reference}
    same = [n for n in pool if model and own is not None and n != model
            and all(q.definitions.get(n) == q.definitions.get(model) for q in guest.qemu)]
    rest = [n for n in ranked(pool, guest.features) if n not in same and n != guest.model]
    return ([guest.model] if guest.model else []) + sorted(same) + rest


def choose(guest: GuestCpu, form: str = "minimal", libvirt: bool = True) -> Solution:
    """The first name of :func:`name_order` that is exact on every stack; :class:`InexactError` names why none is."""
    tried: list[Solution] = []
    for name in name_order(guest):
        solution = solve(guest, name, form, libvirt)
        if solution.ok:
            return solution
        tried.append(solution)
    if not tried:
        raise InexactError("no named CPU model runs on every host of the group")
    shown = "; ".join(s.summary() for s in tried[:3]) + (f" (and {len(tried) - 3} more models)" if len(tried) > 3 else "")
    raise InexactError(f"no CPU model renders the guest CPU exactly on every stack of the group: {shown}", tried[0].problems)
