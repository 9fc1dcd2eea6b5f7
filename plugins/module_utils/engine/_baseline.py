# Copyright (c) 2026 cpucompat.cluster contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The cluster CPU baseline and the host comparison, on validated :class:`HostCpu` values. Private to the collection.

The baseline is a short pipeline: :class:`Cluster` (the hosts grouped into profiles, the common and lost features),
a :class:`ModelStrategy` chosen once per architecture (x86 runnability, QEMU's s390x rules, aarch64 where QEMU reports
no runnability), then the explanation (bottlenecks, blocked models). The result is a :class:`Baseline`; ``to_dict()``
gives the report keys of docs/reports.md.

The steps live apart: ``_cluster`` (step 1), ``_model`` (step 2), ``_result`` (the result), ``_compare`` (comparison);
this module is the pipeline and keeps their public names importable from here.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from .._errors import BaselineError, CpuCompatError, FactsError
from ..cpu._guest import GuestCpu
from ..cpu._libvirt_map import MapRegistry
from ..cpu._scoring import best_model, model_rank, ranked
from . import _arm_identity
from ._cluster import BaselineOptions, Cluster
from ._compare import Comparison, compare, compare_each
from ._guest import exact, libvirt_stacks, machine_family, paravirtual, qemu_stacks
from ._hostcpu import HostCpu, host_cpus
from ._model import ModelChoice, ModelStrategy, NoRunnability, strategy_for
from ._result import Baseline, address_bits

__all__ = ["Baseline", "BaselineOptions", "Comparison", "best_model", "compare", "compare_each", "compute_baseline", "model_rank"]


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
    if cluster.arch == "aarch64" and choice.model is None:
        return _arm_passthrough(cluster)
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


def _arm_passthrough(cluster: Cluster) -> tuple[GuestCpu | None, GuestCpu | None, str | None]:
    """aarch64: host-passthrough over the identity every host shares, or why the hosts are not one group's (each host
    that differs from the identity most share, with the fields and what they do to a migrating guest)."""
    try:
        identities = {h.name: _arm_identity.identity_of(h.facts, f"host {h.name}") for h in cluster.hosts}
    except FactsError as exc:
        return None, None, f"{NoRunnability.REASON}; and {exc}"
    identity, diffs = _arm_identity.group_identity(identities)
    if identity is None:
        first = next(iter(diffs.values()))
        ref = next(h for h in sorted(identities) if h not in diffs)
        lines = "; ".join(f"{host}: " + ", ".join(d.what for d in found) for host, found in diffs.items())
        return None, None, (f"aarch64 guests get host-passthrough, so a group's hosts must be identical; they are not "
                            f"({lines}; compared with {ref}). {first[0].what}: {first[0].consequence}. Split the group by "
                            "identity (the cpu_groups inventory plugin's arm64 groups)")
    features, para = paravirtual(cluster.common)
    machine = machine_family(cluster.hosts) or ("virt" if str(identity.get("machine") or "").startswith("virt-") else None)
    guest = GuestCpu(arch="aarch64", vendor=None, model=None, features=features, machine=machine, paravirt=para, identity=identity)
    return guest, guest, None


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
