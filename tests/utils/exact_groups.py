# Copyright (c) 2026 cpucompat.cluster contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The property test's groups, for the test and the benchmark alike: for every model that QEMU 7.2 and 10.0 and
libvirt 9.0 and 11.3 all know, a host whose CPU is the union of every definition of it, and for each feature the
definitions disagree on, a second host without it. QEMU itself makes each CPU consistent (a root brings its
sub-features, a feature's removal takes what depends on it)."""

from __future__ import annotations

from collections.abc import Iterator

from ansible_collections.cpucompat.cluster.plugins.module_utils.cpu import _catalog
from ansible_collections.cpucompat.cluster.plugins.module_utils.cpu._guest import is_paravirt
from ansible_collections.cpucompat.cluster.plugins.module_utils.cpu._libvirt_map import LIBVIRT_VENDOR

from . import stacks
from .judges import QemuJudge

VENDOR_ID = {v: k for k, v in LIBVIRT_VENDOR.items()}


def models_both_know() -> list[str]:
    system, backports = stacks.by_name("system"), stacks.by_name("backports")
    qemu_names = [r.names() for r in _catalog.releases("x86_64")]
    return sorted(frozenset.intersection(*qemu_names) & set(system.cpu_map.models) & set(backports.cpu_map.models))


def synthetic(model: str, features: frozenset[str], stack: stacks.Stack, judge: QemuJudge, libvirt: bool = True) -> dict:
    """The facts a host whose CPU has exactly ``features`` gives, probed with ``stack`` (its QEMU expands the model)."""
    cpu_map = stack.cpu_map
    vendor = VENDOR_ID.get(str(cpu_map.vendors.get(model)), "GenuineIntel")
    definition = judge.view(model, {})
    if isinstance(definition, str):
        raise RuntimeError(definition)
    version = ".".join(str(judge.client.greeting["version"]["qemu"][k]) for k in ("major", "minor", "micro"))
    return {"schema_version": 5, "arch": "x86_64", "vendor": vendor, "accel": "kvm", "base_model": None,
            "qemu": {"version": version}, "features": sorted(features), "non_migratable_features": [],
            "models": {model: "0"}, "model_blockers": [], "model_aliases": {}, "model_flags": {"deprecated": [], "not_migration_safe": [], "static": []},
            "model_features": {model: sorted(definition | {f for f in features if is_paravirt(f)})},
            "runnable_models": [model], "machine": {"requested": "q35", "name": "pc-q35-" + ".".join(version.split(".")[:2]), "type": "pc-q35"},
            "versions": {"libvirt": stack.libvirt_version}, "phys_bits": None,
            "libvirt": {"version": stack.libvirt_version, "cpu_map": cpu_map.to_facts()} if libvirt else None}


def cases(old: QemuJudge, models: list[str] | None = None) -> Iterator[tuple[str, str | None, frozenset[str], frozenset[str]]]:
    """(model, the feature the second host lacks or None, the first host's CPU, the second host's CPU), for ``models``
    (default: every model both know)."""
    maps = (stacks.by_name("system").cpu_map, stacks.by_name("backports").cpu_map)
    for model in models_both_know() if models is None else models:
        defs = [old.view(model, {}), *(m.definition(model) for m in maps)]
        union = frozenset().union(*defs)
        host = old.view(model, {f: True for f in union})
        if isinstance(host, str):
            raise RuntimeError(host)
        yield model, None, host, host
        for lacking in sorted(frozenset.union(*defs) - frozenset.intersection(*defs)):
            if lacking not in host:
                continue
            weaker = old.view(model, {f: f in host and f != lacking for f in host | {lacking}})
            if isinstance(weaker, str):
                raise RuntimeError(weaker)
            yield model, lacking, host, weaker
