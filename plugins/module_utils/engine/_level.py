# Copyright (c) 2026 cpucompat.cluster contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""A level the operator chooses (the EVC mode), and the levels the hosts of a group can run. Private.

By default a group's contract is the best CPU every host runs today. An operator may choose a lower one instead - to
keep room for older hosts that will join, or to match another cluster - as a named model with features added or
removed (``Skylake-Server``, ``Skylake-Server,+pku,-hle``) or as an x86-64 micro-architecture level of the psABI
(``x86-64-v2``, ``-v3``, ``-v4``: the oldest model every host runs that has the level's features). The choice is a
feature set; it is validated against every host (a host that lacks a feature of it is named with what it lacks), and
the engine then makes it exact on the group's stacks like any baseline.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

from .._errors import BaselineError, CpuMapError, FactsError, InputError
from ..cpu import _catalog
from ..cpu._features import FEATURE_NAME_RE
from ..cpu._libvirt_map import MapRegistry
from ..cpu._scoring import model_rank
from ._result import Baseline
from ._cluster import BaselineOptions
from ._baseline import compute_baseline
from ._hostcpu import HostCpu

# The x86-64 psABI micro-architecture levels, in QEMU's feature names (sse3 is pni, lzcnt abm, lahf_lm lahf-lm).
PSABI: dict[str, frozenset[str]] = {}
PSABI["x86-64-v1"] = frozenset({"fpu", "cx8", "cmov", "mmx", "fxsr", "sse", "sse2", "syscall", "lm"})
PSABI["x86-64-v2"] = PSABI["x86-64-v1"] | {"cx16", "lahf-lm", "popcnt", "pni", "sse4.1", "sse4.2", "ssse3"}
PSABI["x86-64-v3"] = PSABI["x86-64-v2"] | {"avx", "avx2", "bmi1", "bmi2", "f16c", "fma", "abm", "movbe", "xsave"}
PSABI["x86-64-v4"] = PSABI["x86-64-v3"] | {"avx512f", "avx512bw", "avx512cd", "avx512dq", "avx512vl"}

# What choosing a group's CPU at a level can raise (parse_level, chosen_baseline): a malformed level, hosts' facts or
# CPU map, or no baseline; callers that name the group catch these.
LEVEL_ERRORS = (BaselineError, CpuMapError, FactsError, InputError)
_TEXT = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*(,[+-][A-Za-z0-9][A-Za-z0-9_.-]*)*$")


class LevelError(BaselineError):
    """The chosen level cannot be a contract of the group (a host cannot run it, or it names what no stack knows)."""


@dataclass(frozen=True)
class LevelSpec:
    """``model`` (or ``psabi``) with features added and removed (QEMU's names)."""

    text: str
    model: str | None = None
    psabi: str | None = None
    add: frozenset[str] = frozenset()
    remove: frozenset[str] = frozenset()


def parse_level(text: Any) -> LevelSpec:
    """``Model[,+feature][,-feature]...`` or ``x86-64-v2``/``v3``/``v4``; every name is checked."""
    if not isinstance(text, str) or not _TEXT.match(text.strip()):
        raise LevelError(f"CPU level {text!r} is not a model with +feature/-feature changes (Skylake-Server,+pku,-hle) "
                         f"nor an x86-64 level ({', '.join(sorted(PSABI)[1:])})")
    head, *changes = text.strip().split(",")
    add = frozenset(c[1:] for c in changes if c.startswith("+"))
    remove = frozenset(c[1:] for c in changes if c.startswith("-"))
    for name in sorted(add | remove):
        _checked(name, "feature", text)
    if add & remove:
        raise LevelError(f"CPU level {text}: {', '.join(sorted(add & remove))} both added and removed")
    if head.lower() in PSABI:
        if head.lower() == "x86-64-v1":
            raise LevelError(f"CPU level {text}: x86-64-v1 is below every named x86 model; choose v2, v3 or v4")
        return LevelSpec(text, psabi=head.lower(), add=add, remove=remove)
    if re.match(r"^x86-64-v[0-9]+$", head, re.IGNORECASE):
        raise LevelError(f"CPU level {text}: unknown x86-64 level {head} (the psABI defines "
                         f"{', '.join(sorted(PSABI)[1:])})")
    _checked(head, "model", text)
    return LevelSpec(text, model=head, add=add, remove=remove)


def _checked(name: str, what: str, text: str) -> str:
    """A model or feature name of a level, refused as what it is (not every bad name is a 'feature name')."""
    if not FEATURE_NAME_RE.match(name):
        raise LevelError(f"CPU level {text}: {name!r} is not a valid CPU {what} name")
    return name


def _rank(arch: str, model: str) -> tuple[int, int, str]:
    return model_rank(model, _catalog.model_features(arch, model) or frozenset())


def psabi_level(features: frozenset[str]) -> str | None:
    """The highest x86-64 psABI level ``features`` meet (None: below v1)."""
    best = None
    for name in sorted(PSABI):
        if PSABI[name] <= features:
            best = name
    return best


def _definition(today: Baseline, model: str) -> frozenset[str] | None:
    """The model's features as every QEMU of the group defines it (their common part); None when some stack lacks it."""
    if today.stacks is None:
        return None
    defs = [q.definitions.get(model) for q in today.stacks.qemu]
    if not defs or any(d is None for d in defs):
        return None
    return frozenset.intersection(*defs)  # type: ignore[arg-type]


def wanted(spec: LevelSpec, today: Baseline, hosts: Sequence[HostCpu]) -> tuple[str, frozenset[str]]:
    """The base model and the feature set the spec names on this group; refused naming the hosts that cannot."""
    candidates = list(today.stacks.candidates) if today.stacks is not None else list(today.candidates)
    if spec.psabi:
        need = PSABI[spec.psabi]
        lacking = {h.name: sorted(need - h.features) for h in hosts if not need <= h.features}
        if lacking:
            raise LevelError(f"CPU level {spec.text}: " + "; ".join(f"{h} lacks {', '.join(f)}" for h, f in sorted(lacking.items())))
        covering = [m for m in candidates if (_definition(today, m) or frozenset()) >= need]
        if not covering:
            raise LevelError(f"CPU level {spec.text}: no named model every host of the group runs has the level's features "
                             f"({', '.join(sorted(need))})")
        model = min(covering, key=lambda m: (len(_definition(today, m) or ()), _rank(today.arch or "x86_64", m)))
    else:
        model = str(spec.model)
        if model not in candidates:
            cannot = sorted(h.name for h in hosts if model not in h.runnable)
            raise LevelError(f"CPU level {spec.text}: model {model} does not run on "
                             + (", ".join(cannot) if cannot else "every host's QEMU (it is not a model they all know)"))
    definition = _definition(today, model)
    if definition is None:
        raise LevelError(f"CPU level {spec.text}: the group's QEMU do not all define {model}")
    # What the model gives a guest on these hosts (QEMU leaves out what a host cannot migrate: the engine does the
    # same for any baseline), with the operator's changes; an added feature every host must have.
    features = ((definition & today.features) | spec.add) - spec.remove
    lacking = {h.name: sorted(features - h.features) for h in hosts if not features <= h.features}
    if lacking:
        raise LevelError(f"CPU level {spec.text}: " + "; ".join(f"{h} lacks {', '.join(f)}" for h, f in sorted(lacking.items())))
    return model, features


def chosen_baseline(spec: LevelSpec, hosts: Sequence[HostCpu], opts: BaselineOptions, registry: MapRegistry,
                    today: Baseline | None = None) -> Baseline:
    """The group's baseline held to the chosen level: the engine's own, with everything beyond the level excluded, so
    that the guest CPU is made exact on the group's stacks like any other."""
    today = today or compute_baseline(hosts, opts, registry)
    _model, features = wanted(spec, today, hosts)
    vocabulary = frozenset().union(*(h.all_features for h in hosts))
    beyond = tuple(sorted(vocabulary - features))
    held = compute_baseline(hosts, replace(opts, exclude_features=tuple(sorted({*opts.exclude_features, *beyond}))), registry)
    if held.guest is None:
        raise LevelError(f"CPU level {spec.text}: {held.guest_error}")
    return held


def levels_view(hosts: Sequence[HostCpu], today: Baseline | None, limit: int = 20) -> dict[str, Any]:
    """For the baseline report: per named model (unversioned names and aliases), how many hosts run it and the first
    ``limit`` that do not; per host, its best model and its x86-64 level. Hosts with the same models share the work."""
    arch = hosts[0].arch if hosts else "x86_64"
    best: dict[frozenset[str], str | None] = {}
    psabi: dict[frozenset[str], str | None] = {}
    by_models: dict[frozenset[str], int] = {}  # each distinct set of runnable models -> its index in ``sets``
    sets: list[frozenset[str]] = []
    sizes: list[set[str]] = []  # the names of the hosts of each set (a name listed twice counts once)
    owner: list[int] = []  # per host, the index of its set
    per_host = {}
    for h in hosts:
        if h.runnable not in best:
            own = [m for m in h.runnable if not re.search(r"-v\d+$", m)]
            best[h.runnable] = max(own, key=lambda m: _rank(arch, m)) if own else None
        if h.features not in psabi:
            psabi[h.features] = psabi_level(h.features) if h.arch == "x86_64" else None
        index = by_models.setdefault(h.runnable, len(sets))
        if index == len(sets):
            sets.append(h.runnable)
            sizes.append(set())
        sizes[index].add(h.name)
        owner.append(index)
        per_host[h.name] = {"best_model": best[h.runnable], "psabi": psabi[h.features]}
    # The models in the order the hosts first name them (ties of rank keep it), each worked out once per set of hosts.
    runs = dict.fromkeys(m for r in sets for m in r)
    names = sorted((m for m in runs if not re.search(r"-v\d+$", m)), key=lambda m: _rank(arch, m), reverse=True)
    everyone = [h.name for h in hosts]
    unique = len(set(everyone)) == len(everyone)
    models = {}
    for m in names:
        lacking = frozenset(i for i, r in enumerate(sets) if m not in r)
        have = set().union(*(sizes[i] for i, r in enumerate(sets) if m in r))
        if not lacking:
            missing = []
        elif unique:  # a host lacks the model exactly when its set does
            missing = list(itertools.compress(everyone, map(lacking.__contains__, owner)))
        else:
            missing = [n for n in everyone if n not in have]
        models[m] = {"hosts": len(have), "not_on": missing[:limit], "not_on_count": len(missing)}
    group = {"psabi": psabi_level(today.guest.features) if today is not None and today.guest is not None and
             today.arch == "x86_64" else None}
    return {"models": models, "hosts": per_host, "group": group}
