# Copyright (c) 2026 cpucompat.cluster contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Admission by observation: every host's QEMU must give a vCPU of the contract's ``<cpu>`` the same CPUID. Private.

The level and its rendering are derived from definitions (QEMU's expansions, libvirt's maps). What a guest gets is
computed by QEMU when it starts, from the ``-cpu``, the machine type's compatibility properties, the accelerator and
the host kernel; ``cpu_observe`` reads it back from a created vCPU. A contract records the words as observed on each
distinct stack of its group (QEMU release and package, machine type, kernel, accelerator: the stack key), and a host
whose words differ from the group's in any bit is refused, naming the words, the bits, the feature names where a name
maps to the bit, and what differs between its stack and the stack the group's words come from.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from .._errors import ObservationError
from ..cpu._cpuid import TCG_DEPENDENT, bit_names, diff_words
from ._tiers import SEPARATOR, named

OBSERVATION_SCHEMA = "cpucompat.observation/1"
FAILED = "the observation failed: "  # the prefix of a host's reason when cpu_observe could not start the <cpu> there


def cpu_digest(cpu: str) -> str:
    """What names the ``<cpu>`` (or ``-cpu``) an observation was made of."""
    return "sha256:" + hashlib.sha256(cpu.encode("utf-8")).hexdigest()


def _words(data: Any, where: str) -> dict[str, int]:
    if not isinstance(data, Mapping) or not all(isinstance(k, str) and isinstance(v, int) and not isinstance(v, bool)
                                                and 0 <= v < 2 ** 32 for k, v in data.items()):
        raise ObservationError(f"{where}: not a mapping of CPUID words to 32-bit integers")
    return dict(data)


@dataclass(frozen=True)
class Observation:
    """One host's observation of one ``<cpu>`` (the ``cpucompat_observation`` fact)."""

    host: str
    cpuid: Mapping[str, int]
    filtered: Mapping[str, int]
    accel: str
    machine: str | None
    qemu_version: str | None
    qemu_package: str | None
    kernel: str | None
    cpu_digest: str | None
    features: tuple[str, ...] | None = None  # non-x86: the vCPU's enabled feature properties
    microcode: str | None = None

    @property
    def stack(self) -> str:
        """The stack key: what decides the words besides the ``<cpu>``."""
        qemu = f"QEMU {self.qemu_version or '?'}" + (f" ({self.qemu_package})" if self.qemu_package else "")
        return f"{qemu} | {self.machine or '?'} | kernel {self.kernel or '?'} | {self.accel}"

    @classmethod
    def from_fact(cls, host: str, fact: Any, microcode: str | None = None) -> Observation:
        where = f"host {host}: cpucompat_observation"
        if not isinstance(fact, Mapping) or fact.get("schema") != OBSERVATION_SCHEMA:
            raise ObservationError(f"{where}: not an observation of schema {OBSERVATION_SCHEMA}")
        qemu = _qemu if isinstance(_qemu := fact.get("qemu"), Mapping) else {}
        feats = fact.get("features")
        return cls(host, _words(fact.get("cpuid"), f"{where}.cpuid"), _words(fact.get("filtered") or {}, f"{where}.filtered"),
                   str(fact.get("accel")), _str(fact.get("machine")), _str(qemu.get("version")), _str(qemu.get("package")),
                   _str(fact.get("kernel")), _str(fact.get("cpu_digest")),
                   tuple(str(f) for f in feats) if isinstance(feats, list) else None, microcode)

    def record(self) -> dict[str, Any]:
        """What a contract keeps of a stack's observation (``hosts`` is added by the caller)."""
        return {"cpuid": dict(sorted(self.cpuid.items())), "accel": self.accel, "machine": self.machine,
                "qemu": {"version": self.qemu_version, "package": self.qemu_package}, "kernel": self.kernel,
                **({"features": list(self.features)} if self.features is not None else {})}


def _str(value: Any) -> str | None:
    return str(value) if isinstance(value, (str, int)) and not isinstance(value, bool) and str(value) else None


def ignored(a_accel: str, b_accel: str) -> dict[str, str]:
    """Words that say what the accelerator implements rather than what the CPU model asks, skipped between two TCG
    observations (an emulator that gains instructions between releases is not a host that lost them); none under KVM."""
    return dict(TCG_DEPENDENT) if a_accel == "tcg" and b_accel == "tcg" else {}


def filtered_names(obs: Observation) -> list[str]:
    return [f"{n} ({k})" for k, v in sorted(obs.filtered.items()) for n in bit_names(k, v)]


@dataclass
class ObservedCheck:
    """The group's observed CPU per stack, and the hosts it refuses or could not judge."""

    reference: str | None = None  # the stack key whose words are the group's
    words: Mapping[str, int] = field(default_factory=dict)
    stacks: dict[str, dict[str, Any]] = field(default_factory=dict)  # stack key -> record with its hosts
    refused: list[dict[str, Any]] = field(default_factory=list)
    not_observed: dict[str, str] = field(default_factory=dict)

    def new_stacks(self, known: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
        return {k: v for k, v in self.stacks.items() if k not in known}

    def to_dict(self) -> dict[str, Any]:
        return {"reference": self.reference, "stacks": {k: {**v, "cpuid": {w: f"{x:#010x}" for w, x in v["cpuid"].items()}}
                                                        for k, v in sorted(self.stacks.items())},
                "refused": self.refused, "not_observed": dict(sorted(self.not_observed.items()))}


def check(pinned: Mapping[str, Mapping[str, Any]], observations: Mapping[str, Observation | str], hosts: Sequence[str],
          digests: Collection[str]) -> ObservedCheck:
    """Judge each host's observation of the contract's CPU (``digests``: of its ``<cpu>`` and of its ``-cpu``, the two
    renderings hosts observe it as) against the group's words.

    ``pinned``: the contract's ``observed`` record (empty: nothing observed yet, and the words most hosts share become
    the group's); ``observations``: host -> its observation, or why there is none.
    """
    out = ObservedCheck()
    usable: dict[str, Observation] = {}
    failed = {}
    for host in sorted(hosts):
        obs = observations.get(host, "not observed in this run")
        if isinstance(obs, str) and obs.startswith(FAILED):  # the CPU did not start there: it cannot run it
            failed[host] = obs.removeprefix(FAILED)
        elif isinstance(obs, str):
            out.not_observed[host] = obs
        elif obs.cpu_digest not in digests:
            out.not_observed[host] = "its observation is of another <cpu> (observe it again)"
        else:
            usable[host] = obs
    out.refused += [{"host": h, "stack": None, "filtered": [], "words": [], "describe": [], "differs": {}, "failed": why}
                    for h, why in failed.items()]
    if pinned:
        out.reference = sorted(pinned)[0]
        ref_words, ref_accel = _words(pinned[out.reference]["cpuid"], "contract observed"), str(pinned[out.reference].get("accel"))
        ref_hosts = [str(h) for h in pinned[out.reference].get("hosts") or []]
    elif usable:
        counts = Counter(tuple(sorted(o.cpuid.items())) for o in usable.values() if not o.filtered)
        best = counts.most_common(1)[0][0] if counts else tuple(sorted(next(iter(usable.values())).cpuid.items()))
        first = next(o for o in usable.values() if tuple(sorted(o.cpuid.items())) == best)
        out.reference, ref_words, ref_accel = first.stack, dict(best), first.accel
        ref_hosts = [h for h, o in usable.items() if o.stack == first.stack]
    else:
        return out
    out.words = ref_words
    refused: list[tuple[Observation, list[Any]]] = []
    for host, obs in usable.items():
        diffs = diff_words(ref_words, obs.cpuid, ignored(ref_accel, obs.accel))
        if obs.filtered or diffs:
            refused.append((obs, diffs))
            continue
        entry = out.stacks.setdefault(obs.stack, {**obs.record(), "hosts": []})
        entry["hosts"].append(host)
    matching = [usable[h] for st in out.stacks.values() for h in st["hosts"]] or [usable[h] for h in ref_hosts if h in usable]
    for obs, diffs in refused:
        out.refused.append({"host": obs.host, "stack": obs.stack, "filtered": filtered_names(obs),
                            "words": [d.to_dict() for d in diffs],
                            "describe": [d.describe("the group", obs.host) for d in diffs],
                            "differs": differs(obs, matching, out.reference)})
    for key, pin in pinned.items():  # the stacks the contract knows, with the hosts it recorded there
        out.stacks.setdefault(key, {**dict(pin), "hosts": []})["pinned_hosts"] = list(pin.get("hosts") or [])
    return out


def differs(obs: Observation, matching: Any, ref_stack: str | None) -> dict[str, Any]:
    """What sets a refused host's stack apart from every host whose words match the group's: QEMU point release and
    package, kernel, microcode, machine type, accelerator (a value some matching host has too explains nothing)."""
    refs = list(matching)
    out: dict[str, Any] = {"reference_stack": ref_stack}
    for label, attr in (("qemu", "qemu_version"), ("qemu_package", "qemu_package"), ("kernel", "kernel"),
                        ("microcode", "microcode"), ("machine", "machine"), ("accel", "accel")):
        theirs = sorted({str(getattr(r, attr)) for r in refs})
        mine = str(getattr(obs, attr))
        if theirs and mine not in theirs:
            out[label] = {"this_host": mine, "reference_hosts": theirs}
    if not refs:
        out["note"] = "no host of this run matches the group's words; they come from the contract's record"
    return out


def compare_move(domain: str, here: Any, target: str, there: Any) -> dict[str, Any]:
    """A requested move judged by observation: the domain's CPU on its source and the same CPU on ``target`` must give
    the same words (both observations facts, or why there is none: a failed start on the target blocks the move)."""
    if isinstance(there, str):
        failed = there.startswith(FAILED)
        return {"ok": not failed, "observed": False, "why": f"{domain} -> {target}: {there.removeprefix(FAILED)}"
                if failed else None, "note": None if failed else there}
    if isinstance(here, str):
        return {"ok": True, "observed": False, "why": None, "note": f"not observed on its source: {here}"}
    a, b = Observation.from_fact(domain, here), Observation.from_fact(target, there)
    diffs = diff_words(a.cpuid, b.cpuid, ignored(a.accel, b.accel))
    described = [d.describe("its source", target) for d in diffs] + [f"{target}'s QEMU filters {n}" for n in filtered_names(b)]
    entry: dict[str, Any] = {"ok": not described, "observed": True, "source_stack": a.stack, "target_stack": b.stack,
                             "words": [d.to_dict() for d in diffs], "describe": described, "why": None}
    if described:
        entry["why"] = (f"{domain} -> {target}: the vCPU {target} would give differs from the one its source gives: "
                        + "; ".join(described))
    return entry


def refusal_reason(entry: Mapping[str, Any], group: str) -> str:
    """One line: which host, which words, what differs."""
    if entry.get("failed"):
        return f"{entry['host']} does not start the contract CPU of {named(group)}: {entry['failed']}"
    parts = []
    if entry["filtered"]:
        parts.append(f"its QEMU filtered {', '.join(entry['filtered'])} (asked for, not given)")
    if entry["describe"]:
        parts.append("its vCPU differs from the group's in " + "; ".join(entry["describe"]))
    diff = {k: v for k, v in entry["differs"].items() if isinstance(v, Mapping)}
    if diff:
        said = [f"{k} {v['this_host']} (group: {', '.join(v['reference_hosts'])})" for k, v in diff.items()]
        parts.append("its stack differs in " + ", ".join(said))
    kind = "tier" if SEPARATOR in group else "group"
    return f"{entry['host']} does not give the contract CPU of {named(group)} as the {kind} observes it: " + "; ".join(parts)


__all__ = ["OBSERVATION_SCHEMA", "Observation", "ObservationError", "ObservedCheck", "check", "cpu_digest",
           "refusal_reason"]
