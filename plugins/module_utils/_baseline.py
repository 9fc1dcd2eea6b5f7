# Copyright (c) 2026 cpucompat.cluster contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The cluster CPU baseline and host comparison, from ``cpucompat`` facts. Private to the collection.

Pure and typed; the filters, the action plugin and the planning roles all call
these functions. The baseline is QEMU's view: a named model every host reports
runnable plus exactly the common migratable features the model lacks.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from . import _catalog, _s390x
from ._errors import BaselineError
from ._facts import SCHEMA_VERSION
from ._features import MODEL_VERSION_RE as _VERSION_RE
from ._features import X86_KVM_SOFT_FEATURES, validate_feature_name

_NOT_NAMED = frozenset({"host", "max", "base"})
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
class _Host:
    name: str
    facts: Mapping[str, Any]
    features: frozenset[str]
    all_features: frozenset[str]
    runnable: frozenset[str] = field(default_factory=frozenset)


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


def _validated(raw: list[tuple[str, Any]], opts: BaselineOptions) -> list[_Host]:
    if not raw:
        raise BaselineError("no hosts given: a baseline needs at least one host's cpucompat facts")
    seen: set[str] = set()
    hosts: list[_Host] = []
    for name, facts in raw:
        if name in seen:
            raise BaselineError(f"host {name} is listed twice")
        seen.add(name)
        if not isinstance(facts, Mapping):
            raise BaselineError(f"host {name} has no cpucompat facts (probe it with cpucompat.cluster.cpu_probe first)")
        if facts.get("schema_version") != SCHEMA_VERSION:
            raise BaselineError(f"host {name}: facts have schema_version {facts.get('schema_version')!r}, this collection reads "
                                f"{SCHEMA_VERSION}; re-probe the host")
        for key in ("arch", "accel", "features"):
            if key not in facts:
                raise BaselineError(f"host {name}: facts lack the field {key!r}")
        if not isinstance(facts["features"], list):
            raise BaselineError(f"host {name}: field 'features' is not a list")
        feats = frozenset(validate_feature_name(f, f"host {name}: features") for f in facts["features"])
        nonmig = frozenset(validate_feature_name(f, f"host {name}: non_migratable_features") for f in facts.get("non_migratable_features") or [])
        wanted = feats if opts.migratable_only else feats | nonmig
        models = facts.get("models") or {}
        # Aliases stay: QEMU before 4.1 knows "Broadwell" only, newer QEMU both
        # "Broadwell" (alias of Broadwell-v1) and "Broadwell-v1". Mixed clusters meet on the alias.
        runnable = frozenset(m for m, info in models.items() if isinstance(info, Mapping) and info.get("runnable") is True
                             and m not in _NOT_NAMED)
        hosts.append(_Host(name, facts, wanted, feats | nonmig, runnable))
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


def model_features(hosts: Iterable[_Host], arch: str, model: str) -> frozenset[str] | None:
    """A model's features as the hosts' own QEMU expanded them, else from the bundled catalog."""
    hosts = list(hosts)
    targets = [model]
    for h in hosts:
        info = (h.facts.get("models") or {}).get(model)
        if isinstance(info, Mapping) and info.get("alias_of") and info["alias_of"] not in targets:
            targets.append(str(info["alias_of"]))
    # Before QEMU 4.1 an unversioned model was what is now its -v1.
    if arch == "x86_64" and not _VERSION_RE.search(model):
        targets.append(f"{model}-v1")
    for name in targets:
        for h in hosts:
            info = (h.facts.get("models") or {}).get(name)
            if isinstance(info, Mapping) and isinstance(info.get("features"), list):
                return frozenset(info["features"])
    for name in targets:
        entry = _catalog.MODELS.get(arch, {}).get(name)
        if entry is not None:
            return frozenset(entry.split())
    return None


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


def _s390x_fold(models: list[_s390x.S390Model]) -> _s390x.S390Model | None:
    out = None
    for m in models:
        out = m if out is None else _s390x.baseline(out, m)
    return out


def _s390x_cluster_model(hosts: list[_Host], exclude: frozenset[str]) -> tuple[str, dict[str, str | None]]:
    """The cluster's s390x base model, and for each host the one the others alone would get."""
    models = [_s390x_host_model(h, exclude) for h in hosts]
    total = _s390x_fold(models)
    assert total is not None  # hosts is never empty here
    prefix: list[_s390x.S390Model | None] = [None]
    for m in models:
        prefix.append(m if prefix[-1] is None else _s390x.baseline(prefix[-1], m))
    suffix: list[_s390x.S390Model | None] = [None]
    for m in reversed(models):
        suffix.append(m if suffix[-1] is None else _s390x.baseline(m, suffix[-1]))
    suffix.reverse()
    without: dict[str, str | None] = {}
    for i, h in enumerate(hosts):
        rest = _s390x_fold([m for m in (prefix[i], suffix[i + 1]) if m is not None])
        without[h.name] = f"{rest.definition.name}-base" if rest is not None else None
    return f"{total.definition.name}-base", without


def compute_baseline(hosts_in: Any, opts: BaselineOptions | None = None) -> dict[str, Any]:
    """The best CPU every host can run, and why it is not better."""
    opts = opts or BaselineOptions()
    hosts = _validated(_hosts_from(hosts_in), opts)
    arch = str(hosts[0].facts["arch"])
    vendor = _vendors(hosts, opts)
    exclude = frozenset(opts.exclude_features)

    common = frozenset.intersection(*(h.features for h in hosts)) - exclude
    union = frozenset.union(*(h.features for h in hosts))
    lost = {f: sorted(h.name for h in hosts if f not in h.features) for f in sorted(union - common - exclude)}
    non_migratable_left_out: list[str] = []
    if opts.migratable_only:
        non_migratable_left_out = sorted(frozenset.intersection(*(h.all_features for h in hosts)) - common - exclude)

    missing_required = sorted(set(opts.require_features) - common)
    if missing_required:
        raise BaselineError("the cluster falls below the required features: "
                            + "; ".join(f"{f} (lacking on {', '.join(lost.get(f) or ['every host'])})" for f in missing_required))

    soft = X86_KVM_SOFT_FEATURES if arch == "x86_64" and hosts[0].facts["accel"] == "kvm" else frozenset()
    memo: dict[str, frozenset[str] | None] = {}

    def features_of(name: str) -> frozenset[str] | None:
        if name not in memo:
            memo[name] = model_features(hosts, arch, name)
        return memo[name]

    runnable_everywhere = frozenset.intersection(*(h.runnable for h in hosts))
    deprecated = {m for h in hosts for m, i in (h.facts.get("models") or {}).items() if isinstance(i, Mapping) and i.get("deprecated")}
    unsafe = {m for h in hosts for m, i in (h.facts.get("models") or {}).items() if isinstance(i, Mapping) and i.get("migration_safe") is False}
    candidates: dict[str, frozenset[str]] = {}
    unknown_features: list[str] = []
    for model in sorted(runnable_everywhere - unsafe - (set() if opts.allow_deprecated else deprecated)):
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
        model, s390x_leave_one_out = _s390x_cluster_model(hosts, exclude)
        candidates = {model: _s390x.base_features(_s390x.definition_of(model))}
    if opts.min_model is not None:
        floor = features_of(opts.min_model)
        if floor is None:
            raise BaselineError(f"min_model {opts.min_model!r}: no host and no catalog entry knows its features")
        if opts.min_model not in runnable_everywhere:
            blockers = sorted(h.name for h in hosts if opts.min_model not in h.runnable)
            raise BaselineError(f"the cluster falls below min_model {opts.min_model}: it does not run on {', '.join(blockers)}")
    mfeats = candidates.get(model, frozenset()) if model else frozenset()
    require = sorted(common - mfeats)
    disable = sorted(mfeats - common)

    # Bottlenecks: what the baseline would gain without each host. A feature
    # (model) comes back exactly when every host but this one has (runs) it.
    n = len(hosts)
    gain_features: dict[str, list[str]] = {}
    for f, lacking in lost.items():
        if len(lacking) == 1 and n > 1:
            gain_features.setdefault(lacking[0], []).append(f)
    model_holders: dict[str, list[str]] = {}
    if n > 1:
        for h in hosts:
            for m in h.runnable - runnable_everywhere:
                model_holders.setdefault(m, []).append(h.name)
    gain_models: dict[str, list[str]] = {}
    for m, holders in model_holders.items():
        if len(holders) == n - 1:
            missing = ({h.name for h in hosts} - set(holders)).pop()
            gain_models.setdefault(missing, []).append(m)
    bottlenecks: dict[str, dict[str, Any]] = {}
    for h in hosts:
        feats = gain_features.get(h.name, [])
        models = gain_models.get(h.name, [])
        if arch == "s390x" and s390x_leave_one_out.get(h.name) not in (None, model):
            models = models or [str(s390x_leave_one_out[h.name])]
        if not feats and not models:
            continue
        entry: dict[str, Any] = {"features": sorted(feats)}
        better = None
        if models:
            pool = dict(candidates)
            for m in models:
                mf = features_of(m)
                if mf is not None and m not in unsafe and (opts.allow_deprecated or m not in deprecated):
                    pool[m] = mf
            better = _choose(pool, common | frozenset(feats), soft)
        if arch == "s390x":
            better = s390x_leave_one_out.get(h.name)
        entry["model"] = better if better and better != model else None
        bottlenecks[h.name] = entry

    # Why not a better model: the larger models some hosts run, and who blocks them.
    blocked: dict[str, dict[str, list[str]]] = {}
    others = sorted((m for m in model_holders if features_of(m) is not None),
                    key=lambda m: _model_key(m, features_of(m) or frozenset()), reverse=True)
    for m in others[:5]:
        blocked[m] = {}
        for h in hosts:
            if m not in h.runnable:
                info = (h.facts.get("models") or {}).get(m) or {}
                blocked[m][h.name] = list(info.get("unavailable_features") or [])

    return {
        "arch": arch,
        "vendor": vendor,
        "accel": hosts[0].facts["accel"],
        "model": model,
        "candidates": sorted(candidates),
        "require": require,
        "disable": disable,
        "features": sorted(common),
        "hosts": sorted(h.name for h in hosts),
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
    if not missing and not extra:
        result = "identical"
    elif not missing:
        result = "superset"
    elif not extra:
        result = "subset"
    else:
        result = "incompatible"
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
