# Copyright (c) 2026 cpucompat.cluster contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Planning questions: can these hosts join the cluster, and what would they cost? Private to the collection."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from .._errors import BaselineError, CpuCompatError, FactsError, InputError
from ..contract._domain import Domain, domains_of
from ..cpu._libvirt_map import CpuMap, MapRegistry, require_map_arch
from ..cpu import _catalog
from ..engine import _arm_identity, _s390x
from ..engine._result import Baseline
from ..engine._cluster import BaselineOptions
from ..engine._compare import compare
from ..engine._baseline import compute_baseline
from ..engine._hostcpu import HostCpu
from ..render._cpuspec import CpuSpec
from ._schema import REPORT_SCHEMA

FAIL_ON = ("incompatible", "lowers_baseline", "never")


def spec_features(spec: CpuSpec, cpu_map: CpuMap) -> frozenset[str] | None:
    """The features (QEMU's names) a domain's parsed ``<cpu>`` gives its guest under ``cpu_map``, None when it follows
    its host."""
    found = spec.guest_features(cpu_map)
    return None if found is None else cpu_map.qemu_names(found)


def _map_of(registry: MapRegistry, host: str, facts: Any) -> CpuMap:
    """The CPU map a domain of ``host`` is read with: its host's own, else the registry's fallback."""
    found = registry.from_facts(host, facts) if isinstance(facts, Mapping) else registry.fallback
    if found is None:
        raise FactsError(f"host {host}: its facts carry no libvirt CPU map to read its domains' <cpu> with; re-probe it "
                         "(libvirt must be installed there)")
    return found


# s390x: libvirt passes QEMU's names through, and QEMU itself answers whether a CPU model runs where another does
# (query-cpu-model-comparison; engine/_s390x follows its rules, checked against a live qemu-system-s390x). A domain's
# CPU can move to a target, or stay on a joined group, when it is identical to the target's CPU or a subset of it.
_RUNS = ("identical", "subset")


def s390x_guest_of(spec: CpuSpec, what: str, source: Mapping[str, Any] | None = None) -> _s390x.S390Model | None:
    """The CPU model an s390x domain's parsed ``<cpu>`` gives its guest, None for one that follows its host.

    The model's features are its static definition (the catalogue's ``-base`` models) or, for a full model name, the
    source host's own expansion of it (its facts' ``model_features``); then the ``<feature>`` policies.
    """
    if spec.follows_host:
        return None
    if not spec.model:
        raise InputError(f"{what}: names no CPU model")
    definition = _s390x.definition_of(spec.model)
    own = (source or {}).get("model_features")
    base = (own.get(spec.model) if isinstance(own, Mapping) else None) or _catalog.model_features("s390x", spec.model)
    if base is None:
        raise BaselineError(f"{what}: the features of s390x model {spec.model} are not known here (neither its source "
                            "host's facts nor the model catalogue define it)")
    feats = set(base)
    for policy, name in spec.features:
        if policy in ("force", "require"):
            feats.add(name)
        elif policy in ("disable", "forbid"):
            feats.discard(name)
    return _s390x.S390Model(definition, frozenset(feats))


def s390x_host_model(host: HostCpu) -> _s390x.S390Model:
    """A host's CPU as QEMU compares it: the definition of its static base model and its features."""
    if not host.base_model:
        raise FactsError(f"host {host.name}: its facts name no s390x base model; re-probe it")
    return _s390x.S390Model(_s390x.definition_of(host.base_model), host.features)


def s390x_verdict(guest: _s390x.S390Model, target: _s390x.S390Model) -> tuple[bool, str, list[str]]:
    """Can ``guest`` run on ``target``: QEMU's comparison result and the properties it names as responsible."""
    result, responsible = _s390x.compare(guest, target)
    return result in _RUNS, result, (responsible if result not in _RUNS else [])


def _mapping(value: Any) -> Mapping[str, Any]:
    """``value`` when it is a mapping, else an empty one: facts and domain entries come from hosts."""
    return value if isinstance(value, Mapping) else {}


def plan_expansion(current: Sequence[HostCpu], candidates: Sequence[HostCpu], domains: Mapping[str, list[Mapping[str, Any]]],
                   opts: BaselineOptions, registry: MapRegistry | None, fail_on: str = "incompatible") -> dict[str, Any]:
    """Report what adding ``candidates`` to the cluster ``current`` would do; changes nothing."""
    if fail_on not in FAIL_ON:
        raise InputError(f"fail_on must be one of {', '.join(FAIL_ON)}, got {fail_on!r}")
    overlap = sorted({h.name for h in current} & {h.name for h in candidates})
    if overlap:
        raise InputError(f"hosts listed both in the cluster and as candidates: {', '.join(overlap)}")
    now = compute_baseline(current, opts, registry)
    per_candidate: dict[str, dict[str, Any]] = {}
    identity = now.guest.identity if now.guest is not None else None
    for host in sorted(candidates, key=lambda h: h.name):
        cmp = compare(now, host)
        per_candidate[host.name] = {"runs_current_baseline": cmp.runnable, "missing_features": list(cmp.missing),
                                    "model_runnable": cmp.model_runnable, "model_blocked_by": list(cmp.model_blocked_by)}
        if identity is not None:  # aarch64: host-passthrough over the group's identity; a candidate must be identical
            try:
                found = _arm_identity.differences(identity, _arm_identity.identity_of(host.facts, f"candidate {host.name}"))
                per_candidate[host.name]["identity_differs"] = [d.to_dict() for d in found]
            except FactsError as exc:
                found, per_candidate[host.name]["identity_differs"] = [], str(exc)
            if found or isinstance(per_candidate[host.name]["identity_differs"], str):
                per_candidate[host.name]["runs_current_baseline"] = False
                per_candidate[host.name]["missing_features"] = [d.what for d in found] or ["its arm64 identity"]
    view: dict[str, Any] = {"schema": REPORT_SCHEMA, "kind": "expansion", "fail_on": fail_on, "current": now.to_dict(),
                            "candidates": per_candidate, "joined": None, "delta": None, "domains": {}, "error": None}
    view["options"] = {"own_group": _own_group(candidates, opts, registry), "without": {}}
    try:
        joined = compute_baseline([*current, *candidates], opts, registry)
    except CpuCompatError as exc:
        view["error"] = f"no common CPU with the candidates: {exc}"
        view["verdict"] = {"ok": fail_on == "never", "reasons": [view["error"]]}
        return view
    view["joined"] = joined.to_dict()
    lost = sorted(now.features - joined.features)
    names = {h.name for h in candidates}
    view["delta"] = {
        "model_before": now.model, "model_after": joined.model, "model_changes": now.model != joined.model,
        "features_lost": lost,
        "lost_because_of": {f: [h for h in joined.lost.get(f, []) if h in names] for f in lost},
    }
    view["options"]["without"] = _without_costliest(current, candidates, view["delta"]["lost_because_of"], now, opts, registry)
    if domains:
        view.update(_domains_judged(now, joined, lost, domains_of(domains), current, registry))
    reasons = []
    if fail_on in ("incompatible", "lowers_baseline"):
        reasons += [f"{n} cannot run the current baseline (lacks {', '.join(c['missing_features']) or 'its model'})"
                    for n, c in per_candidate.items() if not c["runs_current_baseline"]]
    if fail_on == "lowers_baseline" and (lost or view["delta"]["model_changes"]):
        reasons.append(f"the baseline would lose {len(lost)} feature(s)"
                       + ((f" and change model {now.model} -> {joined.model}" if joined.model else
                           f" and leave no named model every host runs ({now.model} now)") if view["delta"]["model_changes"] else ""))
    view["verdict"] = {"ok": not reasons, "reasons": reasons}
    return view


def _own_group(candidates: Sequence[HostCpu], opts: BaselineOptions, registry: MapRegistry | None) -> dict[str, Any]:
    """The option of a group of the candidates' own: the level they would share, or why they share none."""
    if not candidates:
        return {"model": None, "features": 0, "error": "no candidates"}
    try:
        own = compute_baseline(list(candidates), opts, registry)
    except CpuCompatError as exc:
        return {"model": None, "features": 0, "error": str(exc)}
    return {"model": own.model, "features": len(own.features), "error": None}


def _without_costliest(current: Sequence[HostCpu], candidates: Sequence[HostCpu], lost_because_of: Mapping[str, list[str]],
                       now: Baseline, opts: BaselineOptions, registry: MapRegistry | None,
                       limit: int = 3) -> dict[str, dict[str, Any]]:
    """The option of leaving out one costly candidate: what the cluster would lose with all the others joining.

    Only the ``limit`` candidates that cost the most features are tried, each one baseline computation."""
    cost: dict[str, int] = {}
    for hosts in lost_because_of.values():
        for host in hosts:
            cost[host] = cost.get(host, 0) + 1
    out: dict[str, dict[str, Any]] = {}
    for name in sorted(cost, key=lambda n: (-cost[n], n))[:limit]:
        others = [h for h in candidates if h.name != name]
        try:
            rest = compute_baseline([*current, *others], opts, registry)
        except CpuCompatError as exc:
            out[name] = {"error": str(exc)}
            continue
        out[name] = {"model_after": rest.model, "features_lost": sorted(now.features - rest.features), "error": None}
    return out


# A domain judge: (its <cpu>, where, its host, the host's facts) -> None when the CPU follows its host, else what the
# joined group's CPU lacks for it and what else the answer says.
_Judge = Callable[[CpuSpec, str, str, Any], "tuple[list[str], dict[str, Any]] | None"]


def _x86_judge(joined: Baseline, registry: MapRegistry) -> _Judge:
    """x86: the domain's features, read with its host's own libvirt CPU map, that the joined guest CPU lacks."""
    new_cpu = joined.guest.features if joined.guest is not None else joined.features
    maps: dict[str, CpuMap] = {}

    def judge(spec: CpuSpec, what: str, host: str, facts: Any) -> tuple[list[str], dict[str, Any]] | None:
        if host not in maps:
            maps[host] = _map_of(registry, host, facts)
        needs = spec_features(spec, maps[host])
        return None if needs is None else (sorted(needs - new_cpu), {})
    return judge


def _s390x_judge(joined: Baseline) -> _Judge:
    """s390x: QEMU's comparison of the domain's CPU with the joined one; what it holds responsible when it cannot run."""
    if not joined.model:
        raise BaselineError("the joined s390x group has no named CPU model to compare the domains' CPUs with")
    new_cpu = _s390x.S390Model(_s390x.definition_of(joined.model),
                               joined.guest.features if joined.guest is not None else joined.features)

    def judge(spec: CpuSpec, what: str, host: str, facts: Any) -> tuple[list[str], dict[str, Any]] | None:
        guest = s390x_guest_of(spec, what, facts)
        if guest is None:
            return None
        _ok, result, responsible = s390x_verdict(guest, new_cpu)
        return responsible, {"comparison": result}
    return judge


def _domains_judged(now: Baseline, joined: Baseline, lost: list[str], domains: Sequence[Domain], current: Sequence[HostCpu],
                    registry: MapRegistry | None) -> dict[str, Any]:
    """The expansion plan's ``domains`` (x86_64, s390x) or why they are not judged (``domains_unjudged``)."""
    hosts = {h.name: h for h in current}
    if registry is not None and now.arch == "x86_64":
        return {"domains": _domains_after(joined, lost, domains, hosts, _x86_judge(joined, registry))}
    if now.arch == "s390x":
        return {"domains": _domains_after(joined, lost, domains, hosts, _s390x_judge(joined))}
    if now.guest is not None and now.guest.identity is not None:
        return {"domains_unjudged": ("aarch64 domains get host-passthrough: they can move to a candidate only when it is "
                                     "identical to the group's hosts (each candidate's identity_differs says why not)")}
    return {"domains_unjudged": (f"the domains' CPUs are not judged for {now.arch}: QEMU does not say which named "
                                 f"{now.arch} models run on a host")}


def _domains_after(joined: Baseline, lost: list[str], domains: Sequence[Domain], hosts: Mapping[str, HostCpu],
                   judge: _Judge) -> dict[str, dict[str, Any]]:
    """Which domains' CPUs the joined group's guest CPU can no longer give, as ``judge`` reads each."""
    out: dict[str, dict[str, Any]] = {}
    for dom in domains:
        spec = dom.cpu
        if spec is None:
            out[dom.key] = {"status": "unknown", "why": "no <cpu> element: libvirt's default model"}
            continue
        host = hosts.get(dom.host)
        verdict = judge(spec, f"domain {dom.key}: <cpu>", dom.host, host.facts if host is not None else None)
        if verdict is None:
            out[dom.key] = {"status": "follows-host", "why": "host-model/host-passthrough CPU"}
            continue
        missing, more = verdict
        out[dom.key] = ({"status": "must-change", **more, "missing": missing, "lost_by_expansion": sorted(set(missing) & set(lost))}
                        if missing else {"status": "unchanged", **more})
    return out


def domain_cpus(domains: Mapping[str, Sequence[Mapping[str, Any]]] | Sequence[Domain]) -> list[str]:
    """The distinct CPUs the domains run (live <cpu> of running ones, else persistent), in a stable order.
    ``domains``: the listed :class:`Domain` values, or host -> domain_cpu_info entries."""
    seen: dict[str, None] = {}
    for dom in _typed(domains):
        cpu = dom.moving_cpu_xml
        if cpu:
            seen.setdefault(cpu, None)
    return list(seen)


def _typed(domains: Mapping[str, Sequence[Mapping[str, Any]]] | Sequence[Domain]) -> Sequence[Domain]:
    """The domains as :class:`Domain` values (host -> domain_cpu_info entries are read once here), hosts sorted."""
    return domains_of(domains) if isinstance(domains, Mapping) else domains


def _moving_spec(dom: Domain) -> CpuSpec | str:
    """The parsed CPU that moves with the domain (:attr:`Domain.moving_cpu_xml`), or why it does not read (naming the
    domain); a domain without one is never asked."""
    spec = dom.moving_cpu
    if spec is not None:
        return spec
    try:  # it does not read: the parser says why
        return CpuSpec.parse(str(dom.moving_cpu_xml), f"domain {dom.key}: <cpu>")
    except CpuCompatError as exc:
        return str(exc)


def _guest(dom: Domain, spec: CpuSpec | str, cpu_map: CpuMap, source: Mapping[str, Any] | None) -> _Guest:
    """What a domain carries: its CPU's features as its source host's libvirt reads them (QEMU's names)."""
    try:
        needs: frozenset[str] | None | str = spec if isinstance(spec, str) else spec_features(spec, cpu_map)
    except CpuCompatError as exc:
        needs = str(exc)
    entry = dom.entry
    hv = _mapping(entry.get("hyperv"))
    frequency = entry.get("tsc_frequency") if isinstance(entry.get("tsc_frequency"), int) else None
    if frequency is None and isinstance(needs, frozenset) and "invtsc" in needs:
        source_tsc = _mapping(source).get("tsc")
        frequency = source_tsc.get("frequency") if isinstance(source_tsc, Mapping) else None
    return _Guest(needs, hv.get("mode"), frozenset(_hyperv_name(f) for f in hv.get("features") or []), frequency)


def _target_features(targets: Mapping[str, Any]) -> tuple[dict[str, frozenset[str]], dict[str, _s390x.S390Model], dict[str, str]]:
    """Each x86 target's migratable features (QEMU's names), each s390x target's CPU as QEMU compares it, and the targets
    that cannot be judged (with why)."""
    target_sets: dict[str, frozenset[str]] = {}
    s390x_targets: dict[str, _s390x.S390Model] = {}
    problems: dict[str, str] = {}
    for name, facts in sorted(targets.items()):
        if not isinstance(facts, Mapping):
            problems[name] = "no cpucompat facts"
            continue
        try:
            host = HostCpu.from_facts(name, facts)
            if host.arch == "aarch64":  # judged by identity (_arm_targets)
                continue
            if host.arch == "s390x":
                s390x_targets[name] = s390x_host_model(host)
                continue
        except (FactsError, InputError) as exc:
            problems[name] = str(exc)
            continue
        require_map_arch(host.arch, f"the migration matrix (target {name})")
        target_sets[name] = host.features
    return target_sets, s390x_targets, problems


def _s390x_row(cpu_xml: str, spec: CpuSpec | str, key: str, source: Mapping[str, Any] | None,
               s390x_targets: Mapping[str, _s390x.S390Model], x86_targets: Sequence[str],
               verdicts: Mapping[str, Mapping[str, str]]) -> dict[str, dict[str, Any]]:
    """An s390x domain against every target: QEMU's comparison of its CPU (``spec``: parsed, or why it does not read)
    with each s390x target's, libvirt's beside."""
    try:
        guest: _s390x.S390Model | None | str = spec if isinstance(spec, str) else s390x_guest_of(spec, f"domain {key}: <cpu>", source)
    except CpuCompatError as exc:
        guest = str(exc)
    row: dict[str, dict[str, Any]] = {}
    for target, model in s390x_targets.items():
        if isinstance(guest, str):
            cell: dict[str, Any] = {"ok": None, "why": guest}
        elif guest is None:
            cell = {"ok": None, "why": "host-model/host-passthrough CPU not expanded (domain not running)"}
        else:
            ok, result, responsible = s390x_verdict(guest, model)
            cell = {"ok": ok, "blocking": responsible, "comparison": result}
        row[target] = _with_libvirt(cell, verdicts.get(target, {}).get(cpu_xml))
    for target in x86_targets:
        row[target] = {"ok": False, "why": "the target is an x86_64 host; the domain's CPU is s390x"}
    return row


# aarch64: guests get host-passthrough (KVM on arm64 runs no named model), so a domain runs on a target exactly when
# the target's identity is its source host's (engine/_arm_identity); a target that differs is named with each field and
# what it would do to the migrating guest.
def _arm_targets(targets: Mapping[str, Any]) -> tuple[dict[str, dict[str, Any]], dict[str, str]]:
    """Each aarch64 target's identity, and the aarch64 targets whose facts do not show one (with why)."""
    out: dict[str, dict[str, Any]] = {}
    problems: dict[str, str] = {}
    for name, facts in sorted(targets.items()):
        if isinstance(facts, Mapping) and facts.get("arch") == "aarch64":
            try:
                out[name] = _arm_identity.identity_of(facts, f"target {name}")
            except FactsError as exc:
                problems[name] = str(exc)
    return out, problems


def _arm_row(key: str, source: Mapping[str, Any] | None, arm_targets: Mapping[str, Mapping[str, Any]],
             other_targets: Sequence[str]) -> dict[str, dict[str, Any]]:
    """An aarch64 domain against every target: allowed only to a host of its source host's identity."""
    try:
        own: dict[str, Any] | str = _arm_identity.identity_of(source or {}, f"domain {key}: its source host")
    except FactsError as exc:
        own = str(exc)
    row: dict[str, dict[str, Any]] = {}
    for target, identity in arm_targets.items():
        if isinstance(own, str):
            row[target] = {"ok": None, "why": own}
            continue
        found = _arm_identity.differences(own, identity)
        row[target] = {"ok": not found, "blocking": [d.what for d in found],
                       **({"why": "not identical to the source host (host-passthrough): " + "; ".join(d.text() for d in found),
                           "identity_differs": [d.to_dict() for d in found]} if found else {})}
    for target in other_targets:
        row[target] = {"ok": False, "why": "the target is not an aarch64 host; the domain's CPU is aarch64"}
    return row


@dataclass(frozen=True)
class _Guest:
    """What a domain carries to its destination: the features its CPU gives, its Hyper-V enlightenments, its TSC."""

    needs: frozenset[str] | None | str  # QEMU feature names; None: follows its host; str: why it cannot be told
    hyperv_mode: str | None = None
    hyperv: frozenset[str] = frozenset()  # QEMU's hv-* names
    tsc_frequency: int | None = None  # the frequency the guest keeps (fixed, or its source's with invtsc)


def _hyperv_name(libvirt_name: str) -> str:
    """QEMU's property of a libvirt <hyperv> element (vendor_id -> hv-vendor-id)."""
    return "hv-" + libvirt_name.replace("_", "-")


def _timing_problems(guest: _Guest, target: Mapping[str, Any]) -> list[str]:
    problems = []
    if guest.hyperv_mode == "passthrough":
        problems.append("hv-passthrough: the guest's Hyper-V enlightenments are its source host's, it cannot migrate")
    target_hv = target.get("hyperv")
    if guest.hyperv and isinstance(target_hv, list):
        lacking = sorted(guest.hyperv - set(target_hv))
        if lacking:
            problems.append(f"target lacks Hyper-V enlightenments {', '.join(lacking)}")
    tsc = _mapping(target.get("tsc"))
    if guest.tsc_frequency and tsc.get("frequency") and tsc["frequency"] != guest.tsc_frequency and tsc.get("scaling") is False:
        problems.append(f"the guest keeps a TSC of {guest.tsc_frequency} Hz; the target's is {tsc['frequency']} Hz and cannot scale")
    return problems


def _cell(guest: _Guest, have: frozenset[str], target: Mapping[str, Any], libvirt_result: str | None) -> dict[str, Any]:
    """One domain on one target: our answer, and libvirt's beside it when it was asked."""
    needs = guest.needs
    if isinstance(needs, str):
        cell: dict[str, Any] = {"ok": None, "why": needs}
    elif needs is None:
        cell = {"ok": None, "why": "host-model/host-passthrough CPU not expanded (domain not running)"}
    else:
        blocking = sorted(needs - have)
        cell = {"ok": not blocking, "blocking": blocking}
    problems = _timing_problems(guest, target)
    if problems:
        cell.update(ok=False, beyond_cpuid=problems)
    return _with_libvirt(cell, libvirt_result)


def _with_libvirt(cell: dict[str, Any], libvirt_result: str | None) -> dict[str, Any]:
    """A cell with libvirt's word beside ours where it was asked, and whether the two disagree."""
    if libvirt_result is not None:
        cell["libvirt"] = libvirt_result
        if cell["ok"] is not None and cell["ok"] != (libvirt_result in ("identical", "superset")):
            cell["disagreement"] = True
    return cell


def _cpu_summary(cpu_xml: str | None, spec: CpuSpec | None) -> dict[str, Any]:
    """A domain's CPU in a few words for the report: its mode and model (``spec``: the text parsed, None when it does
    not read)."""
    if not cpu_xml:
        return {"mode": None, "model": None}
    if spec is None:
        return {"mode": "unreadable", "model": None}
    return {"mode": spec.mode, "model": spec.model}


_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.@+-]*$")
_DOMAIN = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.@+:,-]*$")  # libvirt allows ':' and ',' in a domain's name
_UNESCAPED = r"(?<!\\)"


def _unescape(text: str) -> str:
    return re.sub(r"\\([:,\\])", r"\1", text)


def parse_moves(text: Any) -> list[dict[str, str]]:
    """``web1:hv2`` or ``hv1/web1:hv2``, several separated by commas, as requested migrations ({domain, target}); the
    domain without its host is found on the source hosts. A ``:`` or ``,`` in a domain's name is written ``\\:`` or
    ``\\,``; or give a list, of such strings or of ``{domain, target}`` mappings. Every name is checked."""
    if isinstance(text, list):
        moves = []
        for item in text:
            if isinstance(item, Mapping):
                moves.append(_move(str(item.get("domain", "")), str(item.get("target", "")), repr(dict(item))))
            else:
                moves += parse_moves(item)
        if not moves:
            raise InputError("cpucompat_migrate is empty: give domain:target (or host/domain:target), comma-separated")
        return moves
    if not isinstance(text, str) or not text.strip():
        raise InputError("cpucompat_migrate is empty: give domain:target (or host/domain:target), comma-separated")
    moves = []
    for item in (p.strip() for p in re.split(_UNESCAPED + ",", text)):
        parts = re.split(_UNESCAPED + ":", item)
        if len(parts) != 2:
            raise InputError(f"cpucompat_migrate: {item!r} is not domain:target or host/domain:target "
                             "(write a ':' or ',' in a domain's name as '\\:' or '\\,')")
        moves.append(_move(_unescape(parts[0]), _unescape(parts[1]), repr(item)))
    return moves


def _move(domain: str, target: str, item: str) -> dict[str, str]:
    parts = domain.split("/")
    if len(parts) > 2 or not all(_NAME.match(p) for p in [*parts[:-1], target]) or not _DOMAIN.match(parts[-1]):
        raise InputError(f"cpucompat_migrate: {item} is not domain:target or host/domain:target "
                         "(write a ':' or ',' in a domain's name as '\\:' or '\\,')")
    return {"domain": domain, "target": target}


def resolve_moves(requested: list[Mapping[str, str]], matrix: Mapping[str, Any]) -> tuple[list[dict[str, str]], list[str]]:
    """Requested moves with each bare domain name found on its source host (left bare when it cannot be), and why
    the bare ones could not be found."""
    out, failures = [], []
    for pair in requested:
        domain = str(pair.get("domain", ""))
        found = [domain] if "/" in domain else sorted(k for k in matrix if k.split("/", 1)[1] == domain)
        out.append({**pair, "domain": found[0]} if len(found) == 1 else dict(pair))
        if not found:
            failures.append(f"{domain} -> {pair.get('target')}: no domain {domain} on the source hosts")
        elif len(found) > 1:
            failures.append(f"{domain} -> {pair.get('target')}: {domain} is on several hosts ({', '.join(found)}); "
                            "name it host/domain")
    return out, failures


def observation_plan(observed: Mapping[str, Any], requested: list[Mapping[str, str]],
                     groups: Mapping[str, Sequence[str]]) -> list[dict[str, Any]]:
    """What each target of a requested move must observe: the CPU of the domain as its source host observed it (the
    domain's live ``<cpu>``, under the machine type its source runs). ``observed``: source host -> the results of its
    cpu_observe loop over its domains (each with ``item``, the domain_cpu_info entry, and ``observation``)."""
    by_domain: dict[str, dict[str, Any]] = {}
    for host, results in observed.items():
        for result in results or []:
            item = result.get("item") if isinstance(result, Mapping) else None
            obs = result.get("observation") if isinstance(result, Mapping) else None
            if isinstance(item, Mapping) and item.get("name") is not None and isinstance(obs, Mapping):
                dom = Domain.of(host, item)
                by_domain[dom.key] = {"cpu_xml": dom.moving_cpu_xml, "machine": obs.get("machine")}
    plan = []
    for pair in requested:
        domain, target = str(pair.get("domain", "")), str(pair.get("target", ""))
        keys = [domain] if "/" in domain else sorted(k for k in by_domain if k.split("/", 1)[1] == domain)
        for key in keys[:1] if len(keys) == 1 else []:
            if key not in by_domain:
                continue
            for host in groups.get(target, [target]):
                if host != key.split("/", 1)[0]:
                    plan.append({"key": key, "target": host, **by_domain[key]})
    return plan


def _requested_failures(matrix: Mapping[str, Mapping[str, Any]], requested: Sequence[Mapping[str, str]]) -> list[str]:
    failures = []
    for pair in requested:
        if "/" not in str(pair.get("domain", "")):
            continue  # a bare name that was not found: resolve_moves says why
        cell = matrix.get(pair.get("domain", ""), {}).get(pair.get("target", ""))
        if cell is None:
            failures.append(f"{pair.get('domain')} -> {pair.get('target')}: unknown domain or target")
        elif cell.get("own_host"):
            failures.append(f"{pair['domain']} -> {pair['target']}: the domain runs on {pair['target']} already")
        elif cell["ok"] is not True:
            failures.append(f"{pair['domain']} -> {pair['target']}: "
                            + (f"target is not identical to the source host (host-passthrough), it differs in "
                               f"{', '.join(cell['blocking'])}" if cell.get("identity_differs")
                               else f"target lacks {', '.join(cell['blocking'])}" if cell.get("blocking")
                               else "; ".join(cell["beyond_cpuid"]) if cell.get("beyond_cpuid") else cell.get("why", "cannot tell")))
    return failures


def _own_host(row: dict[str, Any], host: str) -> None:
    """No move: the domain runs on ``host`` (libvirt's word on its CPU stays, a check of the XML)."""
    if host in row:
        own = {"ok": None, "own_host": True, "why": "its own host: no migration"}
        if "libvirt" in row[host]:
            own["libvirt"] = row[host]["libvirt"]
        row[host] = own


def migration_matrix(domains: Mapping[str, Sequence[Mapping[str, Any]]] | Sequence[Domain], targets: Mapping[str, Any],
                     registry: MapRegistry, libvirt_verdicts: Mapping[str, Mapping[str, str]] | None = None,
                     requested: list[Mapping[str, str]] | None = None,
                     sources: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Can each domain's current CPU run on each target? Our answer, libvirt's where it was asked, and every disagreement.

    ``domains``: the source hosts' listed :class:`Domain` values (a host's together, as :func:`domains_of` gives them),
    or source host -> domain_cpu_info entries. ``targets``: host -> cpucompat facts. x86_64: a domain's CPU is
    read with its source host's libvirt CPU map, from ``sources`` or ``targets`` facts, else the registry's fallback.
    s390x: QEMU's comparison of the domain's CPU with the target's; it runs there when identical or a subset, else the
    properties QEMU names as responsible block it. ``libvirt_verdicts``: target -> {cpu_xml: libvirt's
    compareHypervisorCPU result}. ``requested``: [{domain: "host/name", target: t}] migrations the user intends; an
    impossible one makes the verdict's ``ok`` false.
    """
    target_sets, s390x_targets, problems = _target_features(targets)
    arm_targets, arm_problems = _arm_targets(targets)
    problems.update(arm_problems)
    facts_of = {**(sources or {}), **targets}
    every_target = sorted([*target_sets, *s390x_targets, *arm_targets])
    walk = _Walk(facts_of, registry, targets, target_sets, s390x_targets, arm_targets, libvirt_verdicts or {})
    matrix: dict[str, dict[str, Any]] = {}
    about: dict[str, dict[str, Any]] = {}
    for dom in _typed(domains):
        key = dom.key
        about[key] = walk.about(dom)
        matrix[key] = walk.row(dom) if dom.moving_cpu_xml else {t: {"ok": None, "why": "no <cpu>: libvirt's default model"}
                                                                for t in every_target}
    disagreements = [{"domain": d, "target": t, "ours": c["ok"], "libvirt": c["libvirt"]}
                     for d, row in matrix.items() for t, c in row.items() if c.get("disagreement")]
    resolved, unresolved = resolve_moves(list(requested or []), matrix)
    failures = unresolved + _requested_failures(matrix, resolved)
    return {"schema": REPORT_SCHEMA, "kind": "migration", "targets": every_target, "target_problems": problems,
            "matrix": matrix, "domains": about, "disagreements": disagreements, "requested": resolved,
            "verdict": {"ok": not failures, "reasons": failures}}


class _Walk:
    """The migration matrix's walk over the listed domains, a host's together. Domains share a few distinct CPUs: each
    distinct guest's row is computed once and stands for all of them. A row depends on the CPU text, the Hyper-V and
    TSC settings, the map the source host reads the text with and (for an invariant TSC without a frequency) the
    source's TSC frequency: not on the host's name."""

    def __init__(self, facts_of: Mapping[str, Any], registry: MapRegistry, targets: Mapping[str, Any],
                 target_sets: Mapping[str, frozenset[str]], s390x_targets: Mapping[str, _s390x.S390Model],
                 arm_targets: Mapping[str, Any], verdicts: Mapping[str, Mapping[str, str]]) -> None:
        self.facts_of, self.registry, self.targets, self.verdicts = facts_of, registry, targets, verdicts
        self.target_sets, self.s390x_targets, self.arm_targets = target_sets, s390x_targets, arm_targets
        self.rows: dict[Any, dict[str, Any]] = {}
        self.summaries: dict[str | None, dict[str, Any]] = {}
        self.host: str | None = None
        self.source: Mapping[str, Any] | None = None
        self.source_map: CpuMap | None = None
        self.source_frequency: Any = None

    def _at(self, host: str) -> None:
        """The source host of the domains that follow: its facts, its TSC frequency; its CPU map when first needed."""
        if host == self.host:
            return
        found = self.facts_of.get(host)
        self.host, self.source, self.source_map = host, found if isinstance(found, Mapping) else None, None
        source_tsc = _mapping(self.source).get("tsc")
        self.source_frequency = source_tsc.get("frequency") if isinstance(source_tsc, Mapping) else None

    def row(self, dom: Domain) -> dict[str, Any]:
        """The domain's row (it has a moving ``<cpu>``): a copy of its guest's, its own host's cell set apart."""
        self._at(dom.host)
        cpu_xml = str(dom.moving_cpu_xml)
        source_arch = (self.source or {}).get("arch") or ("s390x" if self.s390x_targets and not self.target_sets else "x86_64")
        if source_arch in ("aarch64", "s390x"):
            row = _non_x86_row(self.rows, source_arch, dom, cpu_xml, self.source, self.target_sets, self.s390x_targets,
                               self.arm_targets, self.verdicts)
        else:
            if self.source_map is None:
                self.source_map = _map_of(self.registry, dom.host, self.source)
            hv = _mapping(dom.entry.get("hyperv"))
            row_key = (cpu_xml, hv.get("mode"), tuple(hv.get("features") or ()), dom.entry.get("tsc_frequency"),
                       id(self.source_map), self.source_frequency)
            if row_key not in self.rows:
                guest = _guest(dom, _moving_spec(dom), self.source_map, self.source)
                self.rows[row_key] = _x86_row(guest, cpu_xml, self.targets, self.target_sets, [*self.s390x_targets],
                                              [*self.arm_targets], self.verdicts)
            row = dict(self.rows[row_key])
        _own_host(row, dom.host)
        return row

    def about(self, dom: Domain) -> dict[str, Any]:
        """What the page says of a domain: the CPU that moves (the running guest's where it runs, else its
        definition's), and the model its next power cycle brings when the definition says another."""
        cpus, summaries = dom.cpus, self.summaries
        cpu_xml = dom.moving_cpu_xml
        if cpu_xml not in summaries:
            summaries[cpu_xml] = _cpu_summary(cpu_xml, dom.moving_cpu)
        about = {"host": dom.host, "active": dom.active, **summaries[cpu_xml], "running_cpu": dom.runs_live_cpu}
        if about["running_cpu"] and cpus.cpu_xml != cpu_xml:
            if cpus.cpu_xml not in summaries:
                summaries[cpus.cpu_xml] = _cpu_summary(cpus.cpu_xml, cpus.parsed)
            defined = summaries[cpus.cpu_xml]
            if defined.get("model") != about["model"]:
                about["next_power_cycle_model"] = defined.get("model")
        return about


def _non_x86_row(rows: dict[Any, dict[str, Any]], arch: str, dom: Domain, cpu_xml: str, source: Mapping[str, Any] | None,
                 target_sets: Mapping[str, Any], s390x_targets: Mapping[str, Any], arm_targets: Mapping[str, Any],
                 verdicts: Mapping[str, Mapping[str, str]]) -> dict[str, Any]:
    """An aarch64 domain (one row per source host: its identity) or an s390x one (one per CPU and source) against every
    target, computed once into ``rows``; a copy for the domain."""
    if arch == "aarch64":
        row_key: tuple[Any, ...] = ("aarch64", id(source))
        if row_key not in rows:
            rows[row_key] = _arm_row(dom.key, source, arm_targets, [*target_sets, *s390x_targets])
        return dict(rows[row_key])
    row_key = ("s390x", cpu_xml, id(source))
    if row_key not in rows:
        rows[row_key] = _s390x_row(cpu_xml, _moving_spec(dom), dom.key, source, s390x_targets, list(target_sets), verdicts)
        rows[row_key].update({t: {"ok": False, "why": "the target is an aarch64 host; the domain's CPU is s390x"} for t in arm_targets})
    return dict(rows[row_key])


def _x86_row(guest: Any, cpu_xml: str, targets: Mapping[str, Any], target_sets: Mapping[str, Any], s390x_targets: Sequence[str],
             arm_targets: Sequence[str], verdicts: Mapping[str, Mapping[str, str]]) -> dict[str, Any]:
    """An x86_64 guest against every target: the x86 ones judged cell by cell, the others refused by architecture."""
    row = {t: _cell(guest, have, targets[t], verdicts.get(t, {}).get(cpu_xml)) for t, have in target_sets.items()}
    row.update({t: {"ok": False, "why": "the target is an s390x host; the domain's CPU is x86_64"} for t in s390x_targets})
    row.update({t: {"ok": False, "why": "the target is an aarch64 host; the domain's CPU is x86_64"} for t in arm_targets})
    return row


def within_tiers(report: dict[str, Any], allowed: Mapping[str, tuple[str, str, Sequence[str]]]) -> dict[str, Any]:
    """The migration report with every move out of a domain's tier refused: ``allowed``: "host/domain" -> (group, tier,
    the tier's hosts) for the domains in a tier beyond their group's base (contract/_tiers). A target outside the tier
    gets ``ok`` false naming the tier (what its CPU would say stays beside it: ``cpu_ok``, ``cpu_blocking``); the
    requested moves are judged again."""
    for key, (group, tier, hosts) in allowed.items():
        row = report["matrix"].get(key)
        if row is None:
            continue
        for target, cell in row.items():
            if target in hosts or cell.get("own_host"):
                continue
            refused = {k: v for k, v in cell.items() if k not in ("ok", "blocking", "why", "beyond_cpuid")}
            refused.update(ok=False, tier=tier, cpu_ok=cell.get("ok"), cpu_blocking=list(cell.get("blocking") or ()),
                           why=f"{target} is not a host of tier {tier} of group {group} (its hosts: {', '.join(hosts)}); "
                               "a domain moves only within its tier")
            row[target] = refused
        report["domains"].get(key, {})["tier"] = tier
    resolved = report.get("requested") or []
    failures = [r for r in report["verdict"]["reasons"] if not any(r.startswith(f"{p['domain']} -> {p['target']}:") for p in resolved)]
    failures += _requested_failures(report["matrix"], resolved)
    report["verdict"] = {**report["verdict"], "ok": not failures, "reasons": failures}
    return report
