# Copyright (c) 2026 cpucompat.cluster contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Step 1 of the baseline: the hosts as a :class:`Cluster` (profiles, the common and lost features). Private to the collection."""

from __future__ import annotations

import functools
import itertools
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from .._errors import BaselineError, InputError
from ..cpu import _catalog
from ..cpu._features import MODEL_VERSION_RE as _VERSION_RE
from ._hostcpu import HostCpu


@dataclass(frozen=True)
class BaselineOptions:
    migratable_only: bool = True
    allow_deprecated: bool = False
    require_features: tuple[str, ...] = ()
    min_model: str | None = None
    exclude_features: tuple[str, ...] = ()
    vendor_neutral: bool = False


@dataclass
class _Profile:
    """Hosts whose facts give identical answers: the engine works once per profile."""

    rep: HostCpu
    members: list[str]


@dataclass
class _ModelIndex:
    """What the hosts' QEMU said about named models, gathered once per baseline."""

    features: dict[str, frozenset[str]] = field(default_factory=dict)
    aliases: dict[str, str] = field(default_factory=dict)
    deprecated: set[str] = field(default_factory=set)
    unsafe: set[str] = field(default_factory=set)

    @classmethod
    def of(cls, reps: Iterable[HostCpu]) -> _ModelIndex:
        index = cls()
        for h in reps:  # sorted by name: the first host that expanded a model answers
            flags = h.facts.get("model_flags")
            flags = flags if isinstance(flags, Mapping) else {}
            index.deprecated.update(_strs(flags.get("deprecated")))
            index.unsafe.update(_strs(flags.get("not_migration_safe")))
            for alias, target in h.aliases.items():
                index.aliases.setdefault(alias, str(target))
            expanded = h.facts.get("model_features")
            for model, feats in (expanded.items() if isinstance(expanded, Mapping) else ()):
                if model not in index.features and isinstance(feats, list):
                    index.features[model] = frozenset(feats)
        return index


def _strs(value: Any) -> list[str]:
    return [v for v in value if isinstance(v, str)] if isinstance(value, list) else []


@functools.lru_cache(maxsize=None)
def _catalog_features(arch: str, model: str) -> frozenset[str] | None:
    return _catalog.model_features(arch, model)


@dataclass
class Cluster:
    """The validated group: profiles, architecture, vendor, and which features every host keeps or some lose."""

    hosts: list[HostCpu]
    profiles: list[_Profile]
    opts: BaselineOptions
    arch: str
    vendor: str | None
    common: frozenset[str]
    lost: dict[str, list[str]]
    non_migratable_left_out: list[str]
    runnable_everywhere: frozenset[str]
    index: _ModelIndex
    _memo: dict[str, frozenset[str] | None] = field(default_factory=dict)

    @classmethod
    def of(cls, hosts: Sequence[HostCpu], opts: BaselineOptions) -> Cluster:
        if not hosts:
            raise InputError("no hosts given: a baseline needs at least one host's cpucompat facts")
        hosts = sorted(hosts, key=lambda h: h.name)  # deterministic: where hosts disagree, the first by name answers
        arch = _one_arch(hosts)
        _no_tcg_mix(hosts)
        _one_machine_type(hosts)
        profiles = _profiles(hosts, opts.migratable_only)
        exclude = frozenset(opts.exclude_features)
        usable = [p.rep.usable(opts.migratable_only) for p in profiles]
        common = frozenset.intersection(*usable) - exclude
        lost: dict[str, list[str]] = {}
        merged: dict[tuple[int, ...], list[str]] = {}  # the hosts of a set of profiles, sorted once: features share them
        for f in sorted(frozenset.union(*usable) - common - exclude):
            lacking = tuple(i for i, feats in enumerate(usable) if f not in feats)
            if len(lacking) == 1:
                lost[f] = profiles[lacking[0]].members
            elif lacking in merged:
                lost[f] = list(merged[lacking])  # each feature its own list, as before
            else:
                lost[f] = merged[lacking] = sorted(itertools.chain.from_iterable(profiles[i].members for i in lacking))
        left_out: list[str] = []
        if opts.migratable_only:
            left_out = sorted(frozenset.intersection(*(p.rep.all_features for p in profiles)) - common - exclude)
        missing = sorted(set(opts.require_features) - common)
        if missing:
            raise BaselineError("the cluster falls below the required features: "
                                + "; ".join(f"{f} (lacking on {', '.join(lost.get(f) or ['every host'])})" for f in missing))
        return cls(list(hosts), profiles, opts, arch, _vendor(hosts, opts), common, lost, left_out,
                   frozenset.intersection(*(p.rep.runnable for p in profiles)), _ModelIndex.of(p.rep for p in profiles))

    @property
    def accel(self) -> str:
        return self.hosts[0].accel

    @property
    def size(self) -> int:
        return len(self.hosts)

    def model_features(self, model: str) -> frozenset[str] | None:
        """A model's features as the hosts' own QEMU expanded them, else from the bundled catalog."""
        if model not in self._memo:
            targets = [model]
            if model in self.index.aliases:
                targets.append(self.index.aliases[model])
            if self.arch == "x86_64" and not _VERSION_RE.search(model):
                targets.append(f"{model}-v1")  # before QEMU 4.1 an unversioned model was what is now its -v1
            found = next((self.index.features[t] for t in targets if t in self.index.features), None)
            if found is None:
                found = next((f for f in (_catalog_features(self.arch, t) for t in targets) if f is not None), None)
            self._memo[model] = found
        return self._memo[model]

    def allowed(self, model: str) -> bool:
        return model not in self.index.unsafe and (self.opts.allow_deprecated or model not in self.index.deprecated)

    @functools.cached_property
    def holders(self) -> dict[str, int]:
        """Models some but not all hosts run, with how many hosts run each."""
        holders: dict[str, int] = {}
        for p in self.profiles:
            for m in p.rep.runnable - self.runnable_everywhere:
                holders[m] = holders.get(m, 0) + len(p.members)
        return holders

    def lacking_model(self, model: str) -> list[str]:
        """The hosts that cannot run ``model``."""
        return sorted(itertools.chain.from_iterable(p.members for p in self.profiles if model not in p.rep.runnable))


def _one_arch(hosts: Sequence[HostCpu]) -> str:
    by_arch: dict[str, list[str]] = {}
    for h in hosts:
        by_arch.setdefault(h.arch, []).append(h.name)
    if len(by_arch) > 1:
        raise BaselineError("hosts of different architectures cannot share a CPU baseline: "
                            + "; ".join(f"{a}: {', '.join(sorted(n))}" for a, n in sorted(by_arch.items())))
    return hosts[0].arch


def _one_machine_type(hosts: Sequence[HostCpu]) -> None:
    """QEMU resolves model aliases (and on AMD what ``host`` reports) by machine type: never mix them silently."""
    by_type: dict[str, list[str]] = {}
    for h in hosts:
        if h.machine_type is not None:
            by_type.setdefault(h.machine_type, []).append(h.name)
    if len(by_type) > 1:
        raise BaselineError("hosts were probed with different machine types, which can change the CPU models they report: "
                            + "; ".join(f"{t}: {', '.join(sorted(n))}" for t, n in sorted(by_type.items()))
                            + " (probe every host with the machine type the guests use: cpucompat_probe_machine)")


def _no_tcg_mix(hosts: Sequence[HostCpu]) -> None:
    tcg = sorted(h.name for h in hosts if h.accel == "tcg")
    if tcg and len(tcg) < len(hosts):
        raise BaselineError(f"facts probed under TCG describe QEMU's emulated CPU, not the host, and cannot be mixed with KVM "
                            f"hosts: {', '.join(tcg)} (re-probe them with accel=kvm)")


def _vendor(hosts: Sequence[HostCpu], opts: BaselineOptions) -> str | None:
    by_vendor: dict[str | None, list[str]] = {}
    for h in hosts:
        by_vendor.setdefault(h.vendor, []).append(h.name)
    if len(by_vendor) == 1:
        return next(iter(by_vendor))
    if not opts.vendor_neutral:
        raise BaselineError("hosts of different CPU vendors: "
                            + "; ".join(f"{v}: {', '.join(sorted(n))}" for v, n in sorted(by_vendor.items(), key=lambda kv: str(kv[0])))
                            + " (set vendor_neutral to fall back to a vendor-neutral model)")
    return None


def _profiles(hosts: Sequence[HostCpu], migratable_only: bool) -> list[_Profile]:
    groups: dict[tuple[Any, ...], _Profile] = {}
    for h in hosts:
        key = (h.usable(migratable_only), h.all_features, h.runnable, h.vendor, h.base_model, h.qemu_version, h.machine_name,
               h.cpu_map_digest, h.libvirt)
        if key in groups:
            groups[key].members.append(h.name)
        else:
            groups[key] = _Profile(h, [h.name])
    return list(groups.values())
