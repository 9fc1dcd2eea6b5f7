# Copyright (c) 2026 cpucompat.cluster contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The cluster CPU baseline and host comparison, from ``cpucompat`` facts. Private to the collection.

Pure and typed; the filters, the action plugin and the planning roles all call
these functions. The baseline is QEMU's view: a named model every host reports
runnable plus exactly the common migratable features the model lacks.
"""

from __future__ import annotations

import functools
import itertools
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from . import _catalog, _s390x
from ._errors import BaselineError
from ._facts import SCHEMA_VERSION
from ._features import MODEL_VERSION_RE as _VERSION_RE
from ._features import FEATURE_NAME_RE, X86_KVM_SOFT_FEATURES, compare_feature_sets, validate_feature_name

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


@dataclass(slots=True)
class _Host:
    name: str
    facts: Mapping[str, Any]
    features: frozenset[str]
    all_features: frozenset[str]
    runnable: frozenset[str] = field(default_factory=frozenset)


@dataclass
class _Profile:
    """Hosts whose facts give identical answers: the engine works once per profile."""

    rep: _Host
    members: list[str]

    @property
    def size(self) -> int:
        return len(self.members)


def _hosts_from(hosts: Any) -> list[tuple[str, Any]]:
    """Accept {name: facts}, [{'name'|'host'|'inventory_hostname': n, 'facts'|'cpucompat': f}], or an aggregate."""
    if isinstance(hosts, Mapping) and "hosts" in hosts and isinstance(hosts["hosts"], (Mapping, list)) and "schema_version" not in hosts:
        hosts = hosts["hosts"]
    if isinstance(hosts, Mapping):
        return [(str(k), v) for k, v in hosts.items()]
    if isinstance(hosts, list):
        out = []
        for i, item in enumerate(hosts):
            if not isinstance(item, Mapping):
                raise BaselineError(f"host list entry {i} is not a mapping")
            name = item.get("name") or item.get("host") or item.get("inventory_hostname")
            facts = item.get("facts", item.get("cpucompat"))
            if not name:
                raise BaselineError(f"host list entry {i} has no name (use 'name' and 'facts' keys)")
            out.append((str(name), facts))
        return out
    raise BaselineError(f"expected a mapping of host name to cpucompat facts or a list of hosts, got {type(hosts).__name__}")


_EMPTY: frozenset[str] = frozenset()


def _feature_set(name: str, value: Any, key: str) -> frozenset[str]:
    if not value:
        return _EMPTY
    if not isinstance(value, (list, tuple)):  # Ansible may hand in list subclasses (lazy templated lists)
        raise BaselineError(f"host {name}: field {key!r} is not a list")
    try:
        return frozenset(value)
    except TypeError as exc:
        raise BaselineError(f"host {name}: field {key!r} holds something that is not a feature name") from exc


def _validated(raw: list[tuple[str, Any]], opts: BaselineOptions) -> list[_Host]:
    """Check every host's facts; cheap per host, since clusters reach 10,000 hosts."""
    if not raw:
        raise BaselineError("no hosts given: a baseline needs at least one host's cpucompat facts")
    seen: set[str] = set()
    hosts: list[_Host] = []
    migratable_only = opts.migratable_only
    for name, facts in raw:
        if name in seen:
            raise BaselineError(f"host {name} is listed twice")
        seen.add(name)
        if not isinstance(facts, dict):
            if not isinstance(facts, Mapping):
                raise BaselineError(f"host {name} has no cpucompat facts (probe it with cpucompat.cluster.cpu_probe first)")
        if facts.get("schema_version") != SCHEMA_VERSION:
            raise BaselineError(f"host {name}: facts have schema_version {facts.get('schema_version')!r}, this collection reads "
                                f"{SCHEMA_VERSION}; re-probe the host")
        if "features" not in facts or "arch" not in facts or "accel" not in facts:
            missing = next(k for k in ("arch", "accel", "features") if k not in facts)
            raise BaselineError(f"host {name}: facts lack the field {missing!r}")
        feats = _feature_set(name, facts["features"], "features")
        nonmig = _feature_set(name, facts.get("non_migratable_features"), "non_migratable_features")
        # Aliases stay: QEMU before 4.1 knows "Broadwell" only, newer QEMU both
        # "Broadwell" (alias of Broadwell-v1) and "Broadwell-v1". Mixed clusters meet on the alias.
        runnable = _feature_set(name, facts.get("runnable_models"), "runnable_models")
        everything = feats | nonmig if nonmig else feats
        hosts.append(_Host(name, facts, feats if migratable_only else everything, everything, runnable))
    # Names are checked once each, not once per host; the message names a host that has the bad one.
    for feature in frozenset().union(*(h.all_features for h in hosts)):
        if not isinstance(feature, str) or not FEATURE_NAME_RE.match(feature):
            culprit = next(h.name for h in hosts if feature in h.all_features)
            validate_feature_name(feature, f"host {culprit}: features")
    # Deterministic whatever the input order: where recorded hosts of different
    # QEMU releases disagree on a model's expansion, the first host by name answers.
    hosts.sort(key=lambda h: h.name)
    by_arch: dict[str, list[str]] = {}
    for h in hosts:
        by_arch.setdefault(str(h.facts["arch"]), []).append(h.name)
    if len(by_arch) > 1:
        raise BaselineError("hosts of different architectures cannot share a CPU baseline: "
                            + "; ".join(f"{a}: {', '.join(sorted(n))}" for a, n in sorted(by_arch.items())))
    tcg = sorted(h.name for h in hosts if h.facts["accel"] == "tcg")
    if tcg and len(tcg) < len(hosts):
        raise BaselineError(f"facts probed under TCG describe QEMU's emulated CPU, not the host, and cannot be mixed with KVM "
                            f"hosts: {', '.join(tcg)} (re-probe them with accel=kvm)")
    return hosts


def _profiles(hosts: list[_Host]) -> list[_Profile]:
    """Group hosts (sorted by name) whose facts answer alike; the first member by name represents them."""
    groups: dict[tuple[Any, ...], _Profile] = {}
    for h in hosts:
        qemu = h.facts.get("qemu") if isinstance(h.facts.get("qemu"), Mapping) else {}
        key = (h.features, h.all_features, h.runnable, h.facts.get("vendor"), h.facts.get("base_model"), qemu.get("version"))
        if key in groups:
            groups[key].members.append(h.name)
        else:
            groups[key] = _Profile(h, [h.name])
    return list(groups.values())


def _vendors(hosts: list[_Host], opts: BaselineOptions) -> str | None:
    by_vendor: dict[str, list[str]] = {}
    for h in hosts:
        by_vendor.setdefault(str(h.facts.get("vendor")), []).append(h.name)
    if len(by_vendor) == 1:
        vendor = next(iter(by_vendor))
        return None if vendor == "None" else vendor
    if not opts.vendor_neutral:
        raise BaselineError("hosts of different CPU vendors: "
                            + "; ".join(f"{v}: {', '.join(sorted(n))}" for v, n in sorted(by_vendor.items()))
                            + " (set vendor_neutral to fall back to a vendor-neutral model)")
    return None


@dataclass
class _ModelIndex:
    """What the hosts' QEMU said about named models, gathered once per baseline."""

    features: dict[str, frozenset[str]]
    aliases: dict[str, str]
    deprecated: set[str]
    unsafe: set[str]


def _model_index(reps: Iterable[_Host]) -> _ModelIndex:
    index = _ModelIndex({}, {}, set(), set())
    for h in reps:  # sorted by name: the first host that expanded a model answers
        for model, info in (h.facts.get("models") or {}).items():
            if not isinstance(info, dict):
                continue
            if info.get("deprecated"):
                index.deprecated.add(model)
            if info.get("migration_safe") is False:
                index.unsafe.add(model)
            if info.get("alias_of"):
                index.aliases.setdefault(model, str(info["alias_of"]))
            if model not in index.features and isinstance(info.get("features"), list):
                index.features[model] = frozenset(info["features"])
    return index


def model_features(index: _ModelIndex, arch: str, model: str) -> frozenset[str] | None:
    """A model's features as the hosts' own QEMU expanded them, else from the bundled catalog."""
    targets = [model]
    if model in index.aliases:
        targets.append(index.aliases[model])
    # Before QEMU 4.1 an unversioned model was what is now its -v1.
    if arch == "x86_64" and not _VERSION_RE.search(model):
        targets.append(f"{model}-v1")
    for name in targets:
        if name in index.features:
            return index.features[name]
    for name in targets:
        entry = _catalog_features(arch, name)
        if entry is not None:
            return entry
    return None


@functools.lru_cache(maxsize=None)
def _catalog_features(arch: str, model: str) -> frozenset[str] | None:
    entry = _catalog.MODELS.get(arch, {}).get(model)
    return frozenset(entry.split()) if entry is not None else None


def _model_key(model: str, feats: frozenset[str]) -> tuple[int, int, str]:
    version = _VERSION_RE.search(model)
    return (len(feats), int(version.group(1)) if version else 0, model)


def _choose(candidates: dict[str, frozenset[str]], common: frozenset[str], soft: frozenset[str]) -> str | None:
    """Fewest features to list beyond the model; newest (largest, highest version) on a tie."""
    best: tuple[int, tuple[int, int, str]] | None = None
    chosen = None
    for model, feats in candidates.items():
        cost = len(common - feats) + len(feats - common - soft)
        key = (-cost, _model_key(model, feats))
        if best is None or key > best:
            best, chosen = key, model
    return chosen


def _s390x_host_model(h: _Host, exclude: frozenset[str]) -> _s390x.S390Model:
    base = h.facts.get("base_model")
    if not isinstance(base, str):
        raise BaselineError(f"host {h.name}: s390x facts lack 'base_model' (the static host model); re-probe the host")
    return _s390x.S390Model(_s390x.definition_of(base), h.features - exclude)


def _s390x_fold(models: list[_s390x.S390Model | None]) -> _s390x.S390Model | None:
    out = None
    for m in models:
        if m is not None:
            out = m if out is None else _s390x.baseline(out, m)
    return out


def _s390x_cluster_model(profiles: list[_Profile], exclude: frozenset[str]) -> tuple[str, dict[str, str | None]]:
    """The cluster's s390x base model, and for each lone host the one the others alone would get."""
    models = [_s390x_host_model(p.rep, exclude) for p in profiles]
    prefix: list[_s390x.S390Model | None] = [None]
    for m in models:
        prefix.append(_s390x_fold([prefix[-1], m]))
    total = prefix[-1]
    if total is None:
        raise BaselineError("no s390x hosts to baseline")
    suffix: list[_s390x.S390Model | None] = [None]
    for m in reversed(models):
        suffix.append(_s390x_fold([m, suffix[-1]]))
    suffix.reverse()
    without: dict[str, str | None] = {}
    for i, p in enumerate(profiles):
        if p.size == 1:  # removing one of several identical hosts changes nothing
            rest = _s390x_fold([prefix[i], suffix[i + 1]])
            without[p.members[0]] = f"{rest.definition.name}-base" if rest is not None else None
    return f"{total.definition.name}-base", without


def compute_baseline(hosts_in: Any, opts: BaselineOptions | None = None) -> dict[str, Any]:
    """The best CPU every host can run, and why it is not better."""
    opts = opts or BaselineOptions()
    hosts = _validated(_hosts_from(hosts_in), opts)
    profiles = _profiles(hosts)
    reps = [p.rep for p in profiles]
    arch = str(hosts[0].facts["arch"])
    vendor = _vendors(hosts, opts)
    exclude = frozenset(opts.exclude_features)
    n = len(hosts)

    common = frozenset.intersection(*(p.rep.features for p in profiles)) - exclude
    union = frozenset.union(*(p.rep.features for p in profiles))
    lost: dict[str, list[str]] = {}
    for f in sorted(union - common - exclude):
        lacking = [p.members for p in profiles if f not in p.rep.features]
        lost[f] = lacking[0] if len(lacking) == 1 else sorted(itertools.chain.from_iterable(lacking))
    non_migratable_left_out: list[str] = []
    if opts.migratable_only:
        non_migratable_left_out = sorted(frozenset.intersection(*(p.rep.all_features for p in profiles)) - common - exclude)

    missing_required = sorted(set(opts.require_features) - common)
    if missing_required:
        raise BaselineError("the cluster falls below the required features: "
                            + "; ".join(f"{f} (lacking on {', '.join(lost.get(f) or ['every host'])})" for f in missing_required))

    soft = X86_KVM_SOFT_FEATURES if arch == "x86_64" and hosts[0].facts["accel"] == "kvm" else frozenset()
    index = _model_index(reps)
    memo: dict[str, frozenset[str] | None] = {}

    def features_of(name: str) -> frozenset[str] | None:
        if name not in memo:
            memo[name] = model_features(index, arch, name)
        return memo[name]

    runnable_everywhere = frozenset.intersection(*(p.rep.runnable for p in profiles))

    def allowed(model: str) -> bool:
        return model not in index.unsafe and (opts.allow_deprecated or model not in index.deprecated)

    candidates: dict[str, frozenset[str]] = {}
    unknown_features: list[str] = []
    for model in sorted(m for m in runnable_everywhere if allowed(m)):
        feats = features_of(model)
        if feats is None:
            unknown_features.append(model)
        else:
            candidates[model] = feats
    if opts.vendor_neutral and vendor is None and arch == "x86_64":
        # Vendor-specific models carry their vendor's CPUID identity; keep the generic ones.
        candidates = {m: f for m, f in candidates.items() if _VERSION_RE.sub("", m) in _VENDOR_NEUTRAL}

    model = _choose(candidates, common, soft)
    s390x_leave_one_out: dict[str, str | None] = {}
    if arch == "s390x":
        # QEMU's own s390x rules: fold query-cpu-model-baseline over the hosts'
        # static host models; works without unavailable-features (old QEMU).
        model, s390x_leave_one_out = _s390x_cluster_model(profiles, exclude)
        candidates = {model: _s390x.base_features(_s390x.definition_of(model))}
    if opts.min_model is not None:
        if features_of(opts.min_model) is None:
            raise BaselineError(f"min_model {opts.min_model!r}: no host and no catalog entry knows its features")
        if opts.min_model not in runnable_everywhere:
            blockers = sorted(itertools.chain.from_iterable(p.members for p in profiles if opts.min_model not in p.rep.runnable))
            raise BaselineError(f"the cluster falls below min_model {opts.min_model}: it does not run on {', '.join(blockers)}")
    mfeats = candidates.get(model, frozenset()) if model else frozenset()

    # Bottlenecks: what the baseline would gain without each host. A feature
    # (model) comes back exactly when every host but one has (runs) it.
    gain_features: dict[str, list[str]] = {}
    if n > 1:
        for f, lacking in lost.items():
            if len(lacking) == 1:
                gain_features.setdefault(lacking[0], []).append(f)
    holders: dict[str, int] = {}
    for p in profiles:
        for m in p.rep.runnable - runnable_everywhere:
            holders[m] = holders.get(m, 0) + p.size
    gain_models: dict[str, list[str]] = {}
    if n > 1:
        for m, count in holders.items():
            if count == n - 1:
                lone = next(p for p in profiles if m not in p.rep.runnable)
                gain_models.setdefault(lone.members[0], []).append(m)
    bottlenecks: dict[str, dict[str, Any]] = {}
    for name in sorted(set(gain_features) | set(gain_models) | {h for h, m in s390x_leave_one_out.items() if m not in (None, model)}):
        feats = gain_features.get(name, [])
        better: str | None = None
        if arch == "s390x":
            better = s390x_leave_one_out.get(name)
        elif gain_models.get(name):
            pool = dict(candidates)
            for m in gain_models[name]:
                mf = features_of(m)
                if mf is not None and allowed(m):
                    pool[m] = mf
            better = _choose(pool, common | frozenset(feats), soft)
        bottlenecks[name] = {"features": sorted(feats), "model": better if better and better != model else None}

    # Why not a better model: the larger models some hosts run, and who blocks them.
    blocked: dict[str, dict[str, list[str]]] = {}
    others = sorted((m for m in holders if features_of(m) is not None),
                    key=lambda m: _model_key(m, features_of(m) or frozenset()), reverse=True)
    for m in others[:5]:
        blocked[m] = {}
        for p in profiles:
            if m not in p.rep.runnable:
                info = (p.rep.facts.get("models") or {}).get(m) or {}
                missing = info.get("unavailable_features") or []
                for member in p.members:
                    blocked[m][member] = missing

    return {
        "arch": arch,
        "vendor": vendor,
        "accel": hosts[0].facts["accel"],
        "model": model,
        "candidates": sorted(candidates),
        "require": sorted(common - mfeats),
        "disable": sorted(mfeats - common),
        "features": sorted(common),
        "hosts": [h.name for h in hosts],
        "lost": lost,
        "bottlenecks": bottlenecks,
        "blocked_models": blocked,
        "non_migratable_left_out": non_migratable_left_out,
        "excluded": sorted(exclude),
        "models_without_features": unknown_features,
        "options": {"migratable_only": opts.migratable_only, "allow_deprecated": opts.allow_deprecated,
                    "vendor_neutral": opts.vendor_neutral},
    }


def _definition(cpu: Any, arch: str) -> tuple[str | None, frozenset[str]]:
    """(model, feature set) of a baseline dict."""
    if not isinstance(cpu, Mapping) or "features" not in cpu:
        raise BaselineError("expected a baseline as returned by cpu_baseline (a mapping with 'model' and 'features')")
    feats = frozenset(validate_feature_name(f, "CPU definition") for f in cpu["features"])
    return cpu.get("model"), feats


def compare(cpu: Any, host_name: str, facts: Any) -> dict[str, Any]:
    """Compare one host with a CPU definition, in the sense of QEMU's query-cpu-model-comparison.

    The result describes the host relative to the definition, as QEMU's
    comparison with modela=host and modelb=definition (and as libvirt's
    hypervisor-cpu-compare words it): ``identical``: same features;
    ``superset``: the host offers more; ``subset``: the definition asks for
    more than the host has; ``incompatible``: each has features the other
    lacks. On s390x the CPU generation counts too, as in QEMU. ``runnable`` is true when the host lacks nothing
    the definition needs and runs its named model.
    """
    hosts = _validated([(host_name, facts)], BaselineOptions())
    host = hosts[0]
    model, wanted = _definition(cpu, str(host.facts["arch"]))
    if isinstance(cpu, Mapping) and cpu.get("arch") not in (None, host.facts["arch"]):
        raise BaselineError(f"host {host_name} is {host.facts['arch']}, the CPU definition is for {cpu.get('arch')}")
    have = host.all_features
    missing = sorted(wanted - have)
    extra = sorted(have - wanted)
    result = compare_feature_sets(have, wanted)  # the host relative to the definition
    model_ok = model is None or model in host.runnable
    if host.facts["arch"] == "s390x" and model and isinstance(host.facts.get("base_model"), str):
        # QEMU's s390x rules also weigh the CPU generation ("type").
        result, _responsible = _s390x.compare(_s390x.S390Model(_s390x.definition_of(host.facts["base_model"]), have),
                                              _s390x.S390Model(_s390x.definition_of(model), wanted))
        model_ok = result in ("identical", "superset")
    models = host.facts.get("models") or {}
    blocking = list((models.get(model) or {}).get("unavailable_features") or []) if model and not model_ok else []
    return {
        "host": host_name,
        "result": result,
        "runnable": not missing and model_ok,
        "missing_features": missing,
        "extra_features": extra,
        "model": model,
        "model_runnable": model_ok,
        "model_blocked_by": blocking,
    }
