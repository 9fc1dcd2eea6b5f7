# Copyright (c) 2026 cpucompat.cluster contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""One host against a CPU definition: :func:`compare`, :func:`compare_each`, :class:`Comparison`. Private to the collection."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from .._errors import InputError
from ..cpu._features import compare_feature_sets
from . import _s390x
from ._hostcpu import HostCpu
from ._result import Baseline


@dataclass(frozen=True)
class Comparison:
    """One host against a CPU definition, in the sense of QEMU's query-cpu-model-comparison (modela=host)."""

    host: str
    result: str  # identical | superset | subset | incompatible
    missing: tuple[str, ...]
    extra: tuple[str, ...]
    model: str | None
    model_runnable: bool
    model_blocked_by: tuple[str, ...]
    phys_bits_short: bool = False  # the host has fewer physical address bits than the CPU emulates

    @property
    def runnable(self) -> bool:
        return not self.missing and self.model_runnable and not self.phys_bits_short

    def to_dict(self) -> dict[str, Any]:
        return {"host": self.host, "result": self.result, "runnable": self.runnable, "missing_features": list(self.missing),
                "extra_features": list(self.extra), "model": self.model, "model_runnable": self.model_runnable,
                "model_blocked_by": list(self.model_blocked_by), "phys_bits_short": self.phys_bits_short}


def compare(cpu: Baseline, host: HostCpu) -> Comparison:
    """How ``host`` stands to the CPU definition ``cpu``.

    ``identical``: same features; ``superset``: the host offers more; ``subset``: the definition asks for more than
    the host has; ``incompatible``: each has features the other lacks. On s390x the CPU generation counts too, as in
    QEMU. ``runnable`` is true when the host lacks nothing the definition needs and runs its named model.
    """
    if cpu.arch not in (None, host.arch):
        raise InputError(f"host {host.name} is {host.arch}, the CPU definition is for {cpu.arch}")
    have = host.all_features
    result = compare_feature_sets(have, cpu.features)
    model_ok = cpu.model is None or cpu.model in host.runnable
    if host.arch == "s390x" and cpu.model and host.base_model is not None:
        result, _responsible = _s390x.compare(_s390x.S390Model(_s390x.definition_of(host.base_model), have),
                                              _s390x.S390Model(_s390x.definition_of(cpu.model), cpu.features))
        model_ok = result in ("identical", "superset")
    blocking = tuple(host.blockers(cpu.model)) if cpu.model and not model_ok else ()
    short = cpu.maxphysaddr is not None and host.phys_bits is not None and host.phys_bits < cpu.maxphysaddr
    return Comparison(host.name, result, tuple(sorted(cpu.features - have)), tuple(sorted(have - cpu.features)),
                      cpu.model, model_ok, blocking, short)


def compare_each(cpu: Baseline, hosts: Iterable[HostCpu]) -> list[Comparison]:
    """:func:`compare` for every host, in order, worked out once per distinct CPU: hosts that share their validated
    values (:class:`SharedHostCpus`) differ only in the name."""
    out: list[Comparison] = []
    seen: dict[tuple[Any, ...], Comparison] = {}
    for host in hosts:
        # Everything compare reads but the name; the sets and mappings by identity (alive for the loop: no id is reused).
        key = (id(host.all_features), id(host.runnable), id(host.models), id(host.aliases), host.arch, host.base_model,
               host.phys_bits, type(host.phys_bits))
        known = seen.get(key)
        if known is None:
            known = seen[key] = compare(cpu, host)
            out.append(known)
        else:
            out.append(Comparison(host.name, known.result, known.missing, known.extra, known.model, known.model_runnable,
                                  known.model_blocked_by, known.phys_bits_short))
    return out
