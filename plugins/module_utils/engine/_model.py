# Copyright (c) 2026 cpucompat.cluster contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Step 2 of the baseline: the named model, by a :class:`ModelStrategy` per architecture. Private to the collection."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Protocol

from .._errors import BaselineError, FactsError
from ..cpu._features import MODEL_VERSION_RE as _VERSION_RE
from ..cpu._features import X86_KVM_SOFT_FEATURES
from ..cpu._scoring import best_model
from . import _s390x
from ._cluster import Cluster
from ._hostcpu import HostCpu


# x86 models whose definition carries no vendor's identity.
_VENDOR_NEUTRAL = frozenset({"qemu64", "kvm64", "qemu32", "kvm32", "486", "pentium", "pentium2", "pentium3"})


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
            raise FactsError(f"host {h.name}: s390x facts lack 'base_model' (the static host model); re-probe the host")
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
