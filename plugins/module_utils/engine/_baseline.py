# Copyright (c) 2026 cpucompat.cluster contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The cluster CPU baseline and the host comparison, on validated :class:`HostCpu` values. Private to the collection.

The baseline is a short pipeline: :class:`Cluster` (the hosts grouped into profiles, the common and lost features),
a :class:`ModelStrategy` chosen once per architecture (x86 runnability, QEMU's s390x rules, aarch64 where QEMU reports
no runnability), then the explanation (bottlenecks, blocked models). The result is a :class:`Baseline`; ``to_dict()``
gives the report keys of docs/reports.md.
"""

from __future__ import annotations

import functools
import itertools
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from .._errors import BaselineError, CpuCompatError, FactsError
from ..cpu import _catalog
from ..cpu._features import MODEL_VERSION_RE as _VERSION_RE
from ..cpu._features import X86_KVM_SOFT_FEATURES, compare_feature_sets, validate_feature_name
from ..cpu._guest import GuestCpu
from ..cpu._libvirt_map import MapRegistry
from ..cpu._scoring import best_model, model_rank, ranked
from . import _s390x
from ._guest import exact, libvirt_stacks, machine_family, paravirtual, qemu_stacks
from ._hostcpu import HostCpu, host_cpus

__all__ = ["Baseline", "BaselineOptions", "Comparison", "best_model", "compare", "compare_each", "compute_baseline", "model_rank"]

# x86 models whose definition carries no vendor's identity.
_VENDOR_NEUTRAL = frozenset({"qemu64", "kvm64", "qemu32", "kvm32", "486", "pentium", "pentium2", "pentium3"})


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


# ---------------------------------------------------------------------------------------------------- step 1: cluster
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
            raise BaselineError("no hosts given: a baseline needs at least one host's cpucompat facts")
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


# ---------------------------------------------------------------------------------------------------- step 2: model
@dataclass(frozen=True)
class ModelChoice:
    model: str | None
    candidates: dict[str, frozenset[str]]
    without_features: tuple[str, ...] = ()  # models every host runs whose features nobody knows
    leave_one_out: Mapping[str, str | None] = field(default_factory=dict)  # host -> model without it (s390x)

    @property
    def features(self) -> frozenset[str]:
        return self.candidates.get(self.model, frozenset()) if self.model else frozenset()


class ModelStrategy(Protocol):
    def choose(self, cluster: Cluster) -> ModelChoice: ...

    def better_without(self, cluster: Cluster, choice: ModelChoice, host: str, gained: list[str], models: list[str]) -> str | None: ...


class Runnability:
    """x86 (and any architecture whose QEMU reports runnability): among the models every host runs, the closest."""

    def soft(self, cluster: Cluster) -> frozenset[str]:
        return X86_KVM_SOFT_FEATURES if cluster.arch == "x86_64" and cluster.accel == "kvm" else frozenset()

    def choose(self, cluster: Cluster) -> ModelChoice:
        candidates: dict[str, frozenset[str]] = {}
        unknown: list[str] = []
        for model in sorted(m for m in cluster.runnable_everywhere if cluster.allowed(m)):
            feats = cluster.model_features(model)
            if feats is None:
                unknown.append(model)
            else:
                candidates[model] = feats
        if cluster.opts.vendor_neutral and cluster.vendor is None and cluster.arch == "x86_64":
            # Vendor-specific models carry their vendor's CPUID identity; keep the generic ones.
            candidates = {m: f for m, f in candidates.items() if _VERSION_RE.sub("", m) in _VENDOR_NEUTRAL}
        return ModelChoice(best_model(candidates, cluster.common, self.soft(cluster)), candidates, tuple(unknown))

    def better_without(self, cluster: Cluster, choice: ModelChoice, host: str, gained: list[str], models: list[str]) -> str | None:
        if not models:
            return None
        pool = dict(choice.candidates)
        for m in models:
            feats = cluster.model_features(m)
            if feats is not None and cluster.allowed(m):
                pool[m] = feats
        return best_model(pool, cluster.common | frozenset(gained), self.soft(cluster))


class S390xRules:
    """QEMU's own s390x rules: fold query-cpu-model-baseline over the hosts' static host models (no runnability needed)."""

    def choose(self, cluster: Cluster) -> ModelChoice:
        exclude = frozenset(cluster.opts.exclude_features)
        models = [self._host_model(p.rep, exclude) for p in cluster.profiles]
        prefix: list[_s390x.S390Model | None] = [None]
        for m in models:
            prefix.append(_fold([prefix[-1], m]))
        suffix: list[_s390x.S390Model | None] = [None]
        for m in reversed(models):
            suffix.append(_fold([m, suffix[-1]]))
        suffix.reverse()
        without: dict[str, str | None] = {}
        for i, p in enumerate(cluster.profiles):
            if len(p.members) == 1:  # removing one of several identical hosts changes nothing
                rest = _fold([prefix[i], suffix[i + 1]])
                without[p.members[0]] = f"{rest.definition.name}-base" if rest is not None else None
        total = prefix[-1]
        if total is None:  # Cluster.of refuses an empty group; this guards the fold
            raise BaselineError("no s390x hosts to baseline")
        model = f"{total.definition.name}-base"
        return ModelChoice(model, {model: _s390x.base_features(_s390x.definition_of(model))}, (), without)

    @staticmethod
    def _host_model(h: HostCpu, exclude: frozenset[str]) -> _s390x.S390Model:
        if h.base_model is None:
            raise BaselineError(f"host {h.name}: s390x facts lack 'base_model' (the static host model); re-probe the host")
        return _s390x.S390Model(_s390x.definition_of(h.base_model), h.features - exclude)

    def better_without(self, cluster: Cluster, choice: ModelChoice, host: str, gained: list[str], models: list[str]) -> str | None:
        return choice.leave_one_out.get(host)


class NoRunnability:
    """aarch64: QEMU reports no runnability for named models, so no named model is chosen, stated plainly."""

    REASON = ("QEMU does not report which named aarch64 CPU models run on a host (query-cpu-definitions has no "
              "unavailable-features there), so no named model is chosen; the common features are reported")

    def choose(self, cluster: Cluster) -> ModelChoice:
        return ModelChoice(None, {})

    def better_without(self, cluster: Cluster, choice: ModelChoice, host: str, gained: list[str], models: list[str]) -> str | None:
        return None


def _fold(models: list[_s390x.S390Model | None]) -> _s390x.S390Model | None:
    out = None
    for m in models:
        if m is not None:
            out = m if out is None else _s390x.baseline(out, m)
    return out


STRATEGIES: dict[str, ModelStrategy] = {"s390x": S390xRules(), "aarch64": NoRunnability()}


def strategy_for(arch: str) -> ModelStrategy:
    return STRATEGIES.get(arch, Runnability())


# ---------------------------------------------------------------------------------------------------- the result
@dataclass(frozen=True)
class Baseline:
    """The best CPU every host can run, and why it is not better."""

    arch: str | None
    vendor: str | None
    accel: str | None
    model: str | None
    features: frozenset[str]  # what the guest gets: exactly the common (migratable) features
    model_features: frozenset[str] = frozenset()  # the named model's own features (QEMU's view)
    candidates: tuple[str, ...] = ()
    hosts: tuple[str, ...] = ()
    lost: Mapping[str, list[str]] = field(default_factory=dict)
    bottlenecks: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    blocked_models: Mapping[str, Mapping[str, list[str]]] = field(default_factory=dict)
    non_migratable_left_out: tuple[str, ...] = ()
    excluded: tuple[str, ...] = ()
    models_without_features: tuple[str, ...] = ()
    options: BaselineOptions = BaselineOptions()
    phys_bits: int | None = None  # the group's fewest physical address bits (None: some host does not say)
    maxphysaddr: int | None = None  # the bits the <cpu> emulates (<maxphysaddr mode='emulate'>), where libvirt can
    phys_bits_note: str | None = None  # why there is no <maxphysaddr>
    guest: GuestCpu | None = None  # the exact guest CPU every renderer takes (None: see guest_error)
    guest_error: str | None = None
    stacks: GuestCpu | None = field(default=None, compare=False)  # the group's stacks, before exactness shaped the set

    @property
    def require(self) -> list[str]:
        """Features beyond the model (QEMU names)."""
        return sorted(self.features - self.model_features)

    @property
    def disable(self) -> list[str]:
        """Features of the model the guest must not get (QEMU names)."""
        return sorted(self.model_features - self.features)

    def to_dict(self) -> dict[str, Any]:
        return {
            "arch": self.arch, "vendor": self.vendor, "accel": self.accel, "model": self.model,
            "candidates": list(self.candidates), "require": self.require, "disable": self.disable,
            # The explanation's lists and mappings are the engine's own, built for this result: handed out, not copied.
            "features": sorted(self.features), "hosts": list(self.hosts), "lost": dict(self.lost),
            "bottlenecks": dict(self.bottlenecks), "blocked_models": dict(self.blocked_models),
            "non_migratable_left_out": list(self.non_migratable_left_out), "excluded": list(self.excluded),
            "models_without_features": list(self.models_without_features),
            "options": {"migratable_only": self.options.migratable_only, "allow_deprecated": self.options.allow_deprecated,
                        "vendor_neutral": self.options.vendor_neutral},
            "phys_bits": self.phys_bits, "maxphysaddr": self.maxphysaddr, "phys_bits_note": self.phys_bits_note,
            "guest": self.guest.to_dict() if self.guest is not None else None, "guest_error": self.guest_error,
        }

    @classmethod
    def from_dict(cls, cpu: Any, what: str = "CPU definition") -> Baseline:
        """A baseline (or any CPU definition with 'features' and optionally 'model', 'arch', 'require', 'disable')."""
        if isinstance(cpu, Baseline):
            return cpu
        if not isinstance(cpu, Mapping) or "features" not in cpu or not isinstance(cpu["features"], (list, tuple)):
            raise BaselineError(f"expected a baseline as returned by cpu_baseline (a mapping with 'model' and 'features'), "
                                f"got {type(cpu).__name__}")
        try:
            feats = frozenset(validate_feature_name(f, f"{what}: features") for f in cpu["features"])
            model = cpu.get("model")
            if model is not None:
                validate_feature_name(model, f"{what}: model", "model")
            require = frozenset(validate_feature_name(f, f"{what}: require") for f in cpu.get("require") or [])
            disable = frozenset(validate_feature_name(f, f"{what}: disable") for f in cpu.get("disable") or [])
        except FactsError as exc:
            raise BaselineError(str(exc)) from None
        return cls(arch=cpu.get("arch"), vendor=cpu.get("vendor"), accel=cpu.get("accel"), model=model, features=feats,
                   model_features=(feats - require) | disable, candidates=tuple(cpu.get("candidates") or ()),
                   hosts=tuple(cpu.get("hosts") or ()), phys_bits=_bits(cpu.get("phys_bits")),
                   maxphysaddr=_bits(cpu.get("maxphysaddr")))


def _bits(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and 0 < value <= 64 else None


# libvirt learnt <maxphysaddr mode='emulate' bits='N'/> in 8.7.0.
MAXPHYSADDR_LIBVIRT = (8, 7, 0)


def _version(text: str | None) -> tuple[int, ...] | None:
    try:
        return tuple(int(p) for p in str(text).split(".")[:3]) if text else None
    except ValueError:
        return None


def address_bits(hosts: Sequence[HostCpu]) -> tuple[int | None, int | None, str | None]:
    """(the group's fewest physical address bits, the bits to emulate in <cpu>, why none are emulated).

    A guest that booted with more address bits than its destination has can crash after migration, so the group's
    minimum is rendered as <maxphysaddr mode='emulate'> where every host's libvirt knows the element.
    """
    unknown = sorted(h.name for h in hosts if h.phys_bits is None)
    if unknown:
        return None, None, f"no physical address bits from {', '.join(unknown[:10])}{' ...' if len(unknown) > 10 else ''}"
    bits = min(h.phys_bits for h in hosts if h.phys_bits is not None)
    old = sorted(h.name for h in hosts if (_version(h.libvirt) or (0,)) < MAXPHYSADDR_LIBVIRT)
    if old:
        return bits, None, (f"libvirt older than 8.7.0 or unknown on {', '.join(old[:10])}{' ...' if len(old) > 10 else ''}: "
                            "no <maxphysaddr> in the XML")
    return bits, bits, None


# ---------------------------------------------------------------------------------------------------- the pipeline
def compute_baseline(hosts: Sequence[HostCpu], opts: BaselineOptions | None = None,
                     registry: MapRegistry | None = None) -> Baseline:
    """Cluster -> model (the architecture's strategy) -> explanation -> the exact guest CPU.

    ``registry``: which libvirt CPU map serves which host (by default each host's own, from its facts).
    """
    cluster = Cluster.of(hosts, opts or BaselineOptions())
    strategy = strategy_for(cluster.arch)
    choice = strategy.choose(cluster)
    _check_min_model(cluster)
    bits, maxphysaddr, bits_note = address_bits(cluster.hosts)
    stacks, guest, guest_error = guest_cpu(cluster, choice, maxphysaddr, registry or MapRegistry())
    return Baseline(
        arch=cluster.arch, vendor=cluster.vendor, accel=cluster.accel, model=choice.model, features=cluster.common,
        model_features=choice.features, candidates=tuple(sorted(choice.candidates)), hosts=tuple(h.name for h in cluster.hosts),
        lost=cluster.lost, bottlenecks=bottlenecks(cluster, strategy, choice), blocked_models=blocked_models(cluster),
        non_migratable_left_out=tuple(cluster.non_migratable_left_out), excluded=tuple(sorted(cluster.opts.exclude_features)),
        models_without_features=choice.without_features, options=cluster.opts, phys_bits=bits, maxphysaddr=maxphysaddr,
        phys_bits_note=bits_note, guest=guest, guest_error=guest_error, stacks=stacks)


def no_common_model(hosts: Sequence[HostCpu]) -> str:
    """Why no named model runs on every host, naming the hosts: those that report no runnable model at all (a QEMU or a
    recording without runnability), else the fewest that together leave no model in common."""
    silent = sorted(h.name for h in hosts if not h.runnable)
    if silent:
        return (f"no named CPU model runs on every host: {', '.join(silent[:10])}{' ...' if len(silent) > 10 else ''} "
                "report no runnable model (probe them again with a QEMU that reports runnability, or leave them out: "
                "--limit, or cpucompat_allow_partial with the hosts removed from the group)")
    common: set[str] = set(hosts[0].runnable) if hosts else set()
    culprits = []
    for host in sorted(hosts[1:], key=lambda h: len(h.runnable)):
        if not common & host.runnable:
            culprits.append(host.name)
        common &= host.runnable
    return (f"no named CPU model runs on every host: {', '.join(culprits) or hosts[0].name} share no model with the "
            f"others ({hosts[0].name} runs {', '.join(sorted(hosts[0].runnable)[:5])}...)")


def guest_cpu(cluster: Cluster, choice: ModelChoice, maxphysaddr: int | None,
              registry: MapRegistry) -> tuple[GuestCpu | None, GuestCpu | None, str | None]:
    """(the group's stacks as a guest CPU of its common features, the exact guest CPU, why there is none)."""
    if choice.model is None:
        return None, None, NoRunnability.REASON if cluster.arch == "aarch64" else no_common_model(cluster.hosts)
    order = [choice.model, *(m for m in ranked(choice.candidates, cluster.common) if m != choice.model)]
    members = [(p.rep, p.members) for p in cluster.profiles]
    features, para = paravirtual(cluster.common)
    guest = GuestCpu(arch=cluster.arch, vendor=cluster.vendor, model=choice.model, features=features,
                     machine=machine_family(cluster.hosts), phys_bits=maxphysaddr, candidates=tuple(order), paravirt=para,
                     qemu=qemu_stacks(cluster.arch, members, order),
                     libvirt=libvirt_stacks(members, registry) if cluster.arch == "x86_64" else ())
    try:
        return guest, exact(guest), None
    except CpuCompatError as exc:
        return guest, None, str(exc)


def baseline_of(hosts: Any, opts: BaselineOptions | None = None, registry: MapRegistry | None = None) -> Baseline:
    """The baseline of raw input ({name: facts} or a host list), validated here."""
    return compute_baseline(host_cpus(hosts), opts, registry)


def _check_min_model(cluster: Cluster) -> None:
    wanted = cluster.opts.min_model
    if wanted is None:
        return
    if cluster.model_features(wanted) is None:
        raise BaselineError(f"min_model {wanted!r}: no host and no catalog entry knows its features")
    if wanted not in cluster.runnable_everywhere:
        raise BaselineError(f"the cluster falls below min_model {wanted}: it does not run on {', '.join(cluster.lacking_model(wanted))}")


def bottlenecks(cluster: Cluster, strategy: ModelStrategy, choice: ModelChoice) -> dict[str, dict[str, Any]]:
    """What the baseline would gain without each host: a feature (model) comes back exactly when every host but one
    has (runs) it."""
    gained: dict[str, list[str]] = {}
    models: dict[str, list[str]] = {}
    if cluster.size > 1:
        for f, lacking in cluster.lost.items():
            if len(lacking) == 1:
                gained.setdefault(lacking[0], []).append(f)
        for m, count in cluster.holders.items():
            if count == cluster.size - 1:
                models.setdefault(cluster.lacking_model(m)[0], []).append(m)
    names = set(gained) | set(models) | {h for h, m in choice.leave_one_out.items() if m not in (None, choice.model)}
    out: dict[str, dict[str, Any]] = {}
    for name in sorted(names):
        better = strategy.better_without(cluster, choice, name, gained.get(name, []), models.get(name, []))
        out[name] = {"features": sorted(gained.get(name, [])), "model": better if better and better != choice.model else None}
    return out


def without(hosts: Sequence[HostCpu], leaving: Sequence[str], opts: BaselineOptions | None = None,
            registry: MapRegistry | None = None) -> Baseline:
    """The group's baseline without the hosts ``leaving``: the one what-if of retiring hosts, which the baseline page
    and change_contract (``cpucompat_contract_without``) both ask."""
    return compute_baseline([h for h in hosts if h.name not in set(leaving)], opts, registry)


def retire_what_if(hosts: Sequence[HostCpu], today: Baseline, opts: BaselineOptions | None = None,
                   registry: MapRegistry | None = None) -> dict[str, Any] | None:
    """What retiring the host that costs the group most would give (the exact guest CPU of the others), or None when no
    single host holds anything back."""
    gains = {h: len(b.get("features") or []) + (1 if b.get("model") else 0) for h, b in today.bottlenecks.items()}
    if not gains or max(gains.values()) == 0 or len(hosts) < 2:
        return None
    worst = max(gains, key=lambda h: (gains[h], h))
    rest = without(hosts, [worst], opts, registry)
    now = today.guest.features if today.guest is not None else today.features
    after = rest.guest.features if rest.guest is not None else rest.features
    return {"host": worst, "model": rest.guest.model if rest.guest is not None else rest.model, "features": len(after),
            "gained": sorted(after - now), "lost": sorted(now - after)}


def blocked_models(cluster: Cluster, limit: int = 5) -> dict[str, dict[str, list[str]]]:
    """Why not a better model: the largest models some hosts run, and what blocks them on the others."""
    known = [m for m in cluster.holders if cluster.model_features(m) is not None]
    known.sort(key=lambda m: model_rank(m, cluster.model_features(m) or frozenset()), reverse=True)
    out: dict[str, dict[str, list[str]]] = {}
    for m in known[:limit]:
        out[m] = {}
        for p in cluster.profiles:
            if m not in p.rep.runnable:
                out[m].update(dict.fromkeys(p.members, p.rep.blockers(m)))
    return out


# ---------------------------------------------------------------------------------------------------- comparison
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
        raise BaselineError(f"host {host.name} is {host.arch}, the CPU definition is for {cpu.arch}")
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
