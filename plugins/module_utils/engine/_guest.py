# Copyright (c) 2026 cpucompat.cluster contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The guest CPU of a group: its stacks, and the exact feature set every renderer can say on all of them. Private.

The stacks come from the hosts' facts, once per profile of identical hosts: each QEMU's own definitions of the models
(the probe expands them under the guests' machine type and the accelerator) or, for hosts whose facts carry none, the
catalogue's releases; and each host's libvirt CPU map (:class:`MapRegistry`). The exact set starts from the features
every host has, without the paravirtual ones; where the group's libvirt maps cannot name a feature some model needs
named, the feature (or the dependency root that brings it) is left out, and the guest CPU says why.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import replace

from ..cpu import _catalog
from ..cpu._exact import InexactError, Solution, name_order, solve
from ..cpu._guest import GuestCpu, LibvirtStack, QemuStack, is_paravirt
from ..cpu._libvirt_map import MapRegistry
from ._hostcpu import HostCpu

_MAX_ROUNDS = 6


def qemu_stacks(arch: str, members: Sequence[tuple[HostCpu, Sequence[str]]], names: Iterable[str]) -> tuple[QemuStack, ...]:
    """The QEMU definitions of ``names`` in the group: one stack per distinct QEMU (``members``: a representative host
    of each profile and the names of the hosts it stands for)."""
    names = sorted(names)
    stacks: dict[tuple[object, ...], tuple[QemuStack, list[str]]] = {}
    catalogued: dict[tuple[object, ...], list[tuple[tuple[object, ...], str, dict[str, frozenset[str]]]]] = {}
    for rep, hosts in members:
        own = rep.definitions(names)
        releases = _catalog.releases_for(arch, rep.qemu_version)
        if own:
            key: tuple[object, ...] = ("own", rep.qemu_version, rep.machine_name, rep.accel, tuple(sorted(own.items())))
            label = f"QEMU {rep.qemu_version or '?'} ({rep.accel}, {rep.machine_name or 'machine type unknown'})"
            candidates = [(key, label, own)]
        else:  # the catalogue's definitions, read once per set of releases (profiles of one QEMU series share them)
            by_release = tuple(r.release for r in releases)
            if by_release not in catalogued:
                catalogued[by_release] = [
                    (("catalogue", r.release), f"{r.label}, catalogued for hosts whose facts carry no model definitions",
                     {n: d for n in names if (d := r.definition(n)) is not None}) for r in releases]
            candidates = catalogued[by_release]
        for key, label, definitions in candidates:
            if key not in stacks:
                latent, hidden = _roots(releases, definitions)
                stacks[key] = (QemuStack(label, (), definitions, latent, hidden), [])
            stacks[key][1].extend(hosts)
    return tuple(replace(stack, hosts=tuple(sorted(hosts))) for stack, hosts in stacks.values())


def _roots(releases: Sequence[_catalog.QemuRelease], names: Iterable[str]) -> tuple[dict[str, dict[str, frozenset[str]]], ...]:
    """What the models hide behind dependency roots, from every catalogued release that can stand for the QEMU."""
    latent: dict[str, dict[str, frozenset[str]]] = {}
    hidden: dict[str, dict[str, frozenset[str]]] = {}
    for name in names:
        for release in releases:
            for table, found in ((latent, release.latent(name)), (hidden, release.hidden(name))):
                for root, feats in found.items():
                    table.setdefault(name, {})
                    table[name][root] = table[name].get(root, frozenset()) | feats
    return latent, hidden


def extended(guest: GuestCpu, extra: Sequence[HostCpu], registry: MapRegistry, names: Iterable[str] = ()) -> GuestCpu:
    """``guest`` with the stacks of hosts beyond its group as well (a new QEMU or libvirt, before an upgrade), among the
    names every one of those hosts runs too; ``names``: further models whose definitions to take (domains' models)."""
    members = [(h, [h.name]) for h in extra]
    runs = frozenset.intersection(*(h.runnable for h in extra)) if extra else frozenset(guest.candidates)
    keep = tuple(n for n in guest.candidates if n in runs)
    wanted = sorted({*keep, *names})
    return replace(guest, candidates=keep, qemu=(*guest.qemu, *qemu_stacks(guest.arch, members, wanted)),
                   libvirt=(*guest.libvirt, *(libvirt_stacks(members, registry) if guest.arch == "x86_64" else ())))


def libvirt_stacks(members: Sequence[tuple[HostCpu, Sequence[str]]], registry: MapRegistry) -> tuple[LibvirtStack, ...]:
    """One stack per distinct libvirt CPU map of the group (hosts without libvirt have none)."""
    by_map: dict[int, tuple[object, list[str]]] = {}
    for rep, hosts in members:
        cpu_map = registry.from_facts(rep.name, rep.facts)
        if cpu_map is not None:
            by_map.setdefault(id(cpu_map), (cpu_map, []))[1].extend(hosts)
    return tuple(LibvirtStack(m, tuple(sorted(h))) for m, h in by_map.values())  # type: ignore[arg-type]


def exact(guest: GuestCpu) -> GuestCpu:
    """The guest CPU whose feature set some candidate renders exactly on every libvirt of the group.

    Features no libvirt of the group can name where a model needs them named are left out (a root such as vmx is left
    out when its sub-features cannot be named), the model needing the fewest left out wins, in :func:`name_order`.
    Raises :class:`InexactError` naming the stacks and hosts when no model works at all.
    """
    brought = _brought(guest)  # the stacks' roots: the same for every shaping below
    gaps = {**_dependency_gaps(guest, brought), **_unnamed(guest)}
    guest = replace(guest, features=guest.features - frozenset(gaps), left_out={**guest.left_out, **gaps})
    best: tuple[int, int, GuestCpu] | None = None
    first_failure: Solution | None = None
    for rank, name in enumerate(name_order(guest)):
        shaped, failure = _shape(guest, name, brought)
        if shaped is None:
            first_failure = first_failure or failure
            continue
        score = (_weight(shaped, guest, brought), rank)
        if best is None or score < best[:2]:
            best = (*score, shaped)
        if score[0] == 0:  # nothing left out beyond the group's gaps: no later name (a higher rank) can do better
            break
    if best is None:
        raise InexactError("no CPU model can be said exactly on every stack of the group: "
                           + (first_failure.summary() if first_failure else "no named model runs on every host"))
    return best[2]


def _weight(shaped: GuestCpu, guest: GuestCpu, brought: Mapping[str, frozenset[str]]) -> int:
    """How much a shaping leaves out: features the guest would have had (a root and what it brings count once)."""
    left = set(shaped.left_out) - set(guest.left_out)
    return len({f for f in left if not any(f in feats and r in left for r, feats in brought.items())})


def _shape(guest: GuestCpu, name: str, brought: Mapping[str, frozenset[str]]) -> tuple[GuestCpu | None, Solution | None]:
    """``guest`` on model ``name`` with what cannot be named left out; (None, why) when leaving out cannot help."""
    left: dict[str, str] = dict(guest.left_out)
    current = replace(guest, model=name)
    for _round in range(_MAX_ROUNDS):
        solution = solve(current, name)
        if solution.ok:
            return replace(current, left_out=left), None
        drops = _drops(current, name, solution, brought)
        if drops is None:
            return None, solution
        left.update(drops)
        current = replace(current, features=current.features - frozenset(drops))
    return None, solve(current, name)


def _brought(guest: GuestCpu) -> dict[str, frozenset[str]]:
    """Per dependency root (vmx, svm...), every feature it brings with some model on some stack or in the catalogue:
    those exist in a guest only with their root. It depends on the architecture and the stacks only."""
    brought: dict[str, set[str]] = {r: set(f) for r, f in _catalog.dependents(guest.arch).items()}
    for q in guest.qemu:
        for table in (q.latent, q.hidden):
            for roots in table.values():
                for root, feats in roots.items():
                    brought.setdefault(root, set()).update(feats)
    return {root: frozenset(feats) for root, feats in brought.items()}


def _unnamed(guest: GuestCpu) -> dict[str, str]:
    """Features some libvirt of the group has no name for and no candidate model gives: no ``<cpu>`` can give them."""
    given = frozenset().union(*(d for q in guest.qemu for d in q.definitions.values()))
    out: dict[str, str] = {}
    for lv in guest.libvirt:
        for feature in sorted(guest.features - given - lv.cpu_map.qemu_vocabulary):
            if not is_paravirt(feature):
                out.setdefault(feature, f"{lv.label} (hosts {', '.join(lv.hosts[:5])}) has no name for it")
    return out


def _dependency_gaps(guest: GuestCpu, brought: Mapping[str, frozenset[str]]) -> dict[str, str]:
    """What cannot exist in a guest as the hosts report it: sub-features whose root not every host has (QEMU clears
    them; old QEMU reported npt without svm), and roots every host has while the hosts have in common none of the
    features they bring (vmx without a single vmx-* control - a host whose QEMU was too old to report them - is no
    usable nested virtualization)."""
    out: dict[str, str] = {}
    for root, feats in sorted(brought.items()):
        if root not in guest.features:
            out.update({f: f"it exists only with {root}, which not every host has" for f in sorted(feats & guest.features)})
        elif feats and not feats & guest.features:
            out[root] = f"the hosts have in common none of the {len(feats)} features it brings ({min(feats)}...)"
    return out


def _drops(guest: GuestCpu, name: str, solution: Solution, brought: Mapping[str, frozenset[str]]) -> dict[str, str] | None:
    """The features to leave out so that ``name`` can be named exactly; None when that cannot help.

    A feature some root brings goes with its root and everything else the root brings (a guest cannot have vmx-*
    controls without vmx, nor vmx with controls no libvirt of the group can name alike). ``brought``: :func:`_brought`
    of the guest's stacks.
    """
    drops: dict[str, str] = {}
    for problem in solution.problems:
        if problem.kind != "name":
            return None
        feature = problem.name
        root = next((r for r, feats in sorted(brought.items()) if feature in feats and r in guest.features), None)
        if root is not None:
            why = f"{problem.stack} (hosts {', '.join(problem.hosts[:5])}) cannot name {feature}, which it brings"
            drops.setdefault(root, why)
            drops.update({f: f"it comes with {root}, left out" for f in brought[root] & guest.features if f not in drops})
        elif feature in guest.features:
            drops[feature] = f"{problem.stack} (hosts {', '.join(problem.hosts[:5])}) has no name for it"
        else:
            return None  # the model itself gives the feature: only another model can help
    return drops or None


def paravirtual(features: frozenset[str]) -> tuple[frozenset[str], frozenset[str]]:
    """(the features a guest CPU says exactly, the paravirtual ones it leaves to the hypervisor)."""
    para = frozenset(f for f in features if is_paravirt(f))
    return features - para, para


def machine_family(hosts: Sequence[HostCpu]) -> str | None:
    """The machine type family the group was probed with (the engine refuses mixed ones)."""
    return next((h.machine_type for h in hosts if h.machine_type), None)


def registry_for(registry: MapRegistry | None) -> MapRegistry:
    return registry if registry is not None else MapRegistry()


def stacks_summary(guest: GuestCpu) -> list[dict[str, object]]:
    """What the report shows of the stacks: one line each, with its hosts' count."""
    return ([{"kind": "qemu", "label": q.label, "hosts": len(q.hosts)} for q in guest.qemu]
            + [{"kind": "libvirt", "label": lv.label, "hosts": len(lv.hosts)} for lv in guest.libvirt])
