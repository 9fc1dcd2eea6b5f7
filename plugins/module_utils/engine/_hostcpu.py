# Copyright (c) 2026 cpucompat.cluster contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""One host's CPU as a typed value, validated once from its ``cpucompat`` facts. Private to the collection.

The engine (baseline, comparison, planning) works on :class:`HostCpu` values only; facts dicts are turned into them
at the edge, once, and nothing downstream validates again.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, fields
from operator import attrgetter
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from typing import TypeGuard

from .._errors import FactsError, InputError
from ..probe._facts import READABLE_SCHEMAS, read_aliases, read_models
from ..cpu._features import FEATURE_NAME_RE, validate_feature_name

_EMPTY: frozenset[str] = frozenset()
_NO_MODEL: Mapping[str, Any] = {}
# Names already checked against FEATURE_NAME_RE in this process: fleets repeat the same few hundred names.
_VALID_NAMES: set[str] = set()


@dataclass(frozen=True, slots=True)
class HostCpu:
    """What one host's QEMU said about its CPU, checked."""

    name: str
    arch: str
    accel: str
    vendor: str | None
    base_model: str | None
    qemu_version: str | None
    features: frozenset[str]  # migratable host features
    all_features: frozenset[str]  # including the non-migratable ones
    runnable: frozenset[str]  # named models QEMU reports runnable (aliases included)
    models: Mapping[str, Any]  # model (not an alias) -> what blocks it here, as in the facts (docs/facts.md)
    facts: Mapping[str, Any]  # the facts themselves, for reports
    machine_type: str | None = None  # the machine type family the probe ran with (pc-q35, pc-i440fx, ...)
    phys_bits: int | None = None
    libvirt: str | None = None
    aliases: Mapping[str, str] = field(default_factory=dict)  # alias -> the model it stands for
    machine_name: str | None = None  # the versioned machine type (pc-q35-7.2): QEMU's definitions depend on it
    cpu_map_digest: str | None = None  # the digest of the libvirt CPU map the host's libvirt reads (None: no map)

    @classmethod
    def from_facts(cls, name: str, facts: Any, check_names: bool = True) -> HostCpu:
        """Validate ``facts`` (the ``cpucompat`` fact of host ``name``); every error names the host.

        ``check_names=False`` leaves the feature names to the caller, who checks a whole fleet's at once
        (:func:`host_cpus`).
        """
        if not _is_map(facts):
            raise FactsError(f"host {name} has no cpucompat facts (probe it with cpucompat.cluster.cpu_probe first)")
        if facts.get("schema_version") not in READABLE_SCHEMAS:
            raise FactsError(f"host {name}: facts have schema_version {facts.get('schema_version')!r}, this collection "
                             f"reads {' and '.join(map(str, sorted(READABLE_SCHEMAS)))}; re-probe the host")
        for key in ("arch", "accel", "features"):
            if key not in facts:
                raise FactsError(f"host {name}: facts lack the field {key!r}")
        feats = _names(name, facts["features"], "features")
        nonmig = _names(name, facts.get("non_migratable_features"), "non_migratable_features")
        # Aliases stay: QEMU before 4.1 knows "Broadwell" only, newer QEMU both "Broadwell" (alias of Broadwell-v1)
        # and "Broadwell-v1". Mixed clusters meet on the alias.
        runnable = _names(name, facts.get("runnable_models"), "runnable_models")
        models = read_models(facts, f"host {name}") or _NO_MODEL
        aliases = read_aliases(facts, f"host {name}") or _NO_MODEL
        qemu = facts.get("qemu") or _NO_MODEL
        vendor, base, version = facts.get("vendor"), facts.get("base_model"), qemu.get("version") if _is_map(qemu) else None
        machine = _machine if _is_map(_machine := facts.get("machine")) else _NO_MODEL
        versions = _versions if _is_map(_versions := facts.get("versions")) else _NO_MODEL
        bits = facts.get("phys_bits")
        libvirt = _libvirt if _is_map(_libvirt := facts.get("libvirt")) else _NO_MODEL
        cpu_map = _map if _is_map(_map := libvirt.get("cpu_map")) else _NO_MODEL
        host = cls(name, str(facts["arch"]), str(facts["accel"]), None if vendor is None else str(vendor),
                   None if base is None else str(base), None if version is None else str(version),
                   feats, feats | nonmig if nonmig else feats, runnable, models, facts,
                   machine.get("type") if isinstance(machine.get("type"), str) else None,
                   bits if isinstance(bits, int) and not isinstance(bits, bool) else None,
                   versions.get("libvirt") if isinstance(versions.get("libvirt"), str) else None, aliases,
                   machine.get("name") if isinstance(machine.get("name"), str) else None,
                   cpu_map.get("digest") if isinstance(cpu_map.get("digest"), str) else None)
        if check_names:
            check_feature_names([host])
        return host

    def for_host(self, name: str, facts: Mapping[str, Any]) -> HostCpu:
        """This CPU on another host, whose facts say the same about it (:class:`SharedHostCpus`): every value shared."""
        values = list(_FIELDS(self))
        values[_NAME_AT], values[_FACTS_AT] = name, facts
        return HostCpu(*values)

    def usable(self, migratable_only: bool) -> frozenset[str]:
        """The features a baseline may use from this host."""
        return self.features if migratable_only else self.all_features

    def definition(self, model: str) -> frozenset[str] | None:
        """This host's QEMU's definition of ``model`` (an alias: of the model it stands for), as the probe expanded it
        under the host's machine type and accelerator; None when the facts carry none (recorded hosts)."""
        expanded = self.facts.get("model_features")
        feats = expanded.get(self.aliases.get(model, model)) if _is_map(expanded) else None
        return frozenset(feats) if isinstance(feats, list) else None

    def definitions(self, models: Iterable[str]) -> dict[str, frozenset[str]]:
        """:meth:`definition` of each of ``models`` the facts carry one of (none without expansions: recorded hosts)."""
        expanded = self.facts.get("model_features")
        if not expanded or not _is_map(expanded):
            return {}
        return {m: d for m in models if (d := self.definition(m)) is not None}

    def blockers(self, model: str) -> list[str]:
        """The features QEMU says keep ``model`` (or the model an alias stands for) from running here."""
        blockers = self.models.get(self.aliases.get(model, model))
        return list(blockers) if isinstance(blockers, list) else []


_FIELD_NAMES = tuple(f.name for f in fields(HostCpu))
_FIELDS = attrgetter(*_FIELD_NAMES)
_NAME_AT, _FACTS_AT = _FIELD_NAMES.index("name"), _FIELD_NAMES.index("facts")


def _is_map(value: Any) -> TypeGuard[Mapping[str, Any]]:
    """isinstance(value, Mapping), with the fast check first: fleets of 10,000 hosts ask it tens of thousands of times."""
    return isinstance(value, dict) or isinstance(value, Mapping)


def _names(host: str, value: Any, key: str) -> frozenset[str]:
    if not value:
        return _EMPTY
    if not isinstance(value, (list, tuple)):  # Ansible may hand in list subclasses (lazy templated lists)
        raise FactsError(f"host {host}: field {key!r} is not a list")
    try:
        return frozenset(value)
    except TypeError as exc:
        raise FactsError(f"host {host}: field {key!r} holds something that is not a name") from exc


def check_feature_names(hosts: Iterable[HostCpu]) -> None:
    """Every feature name of every host is a valid name; the error names a host that has the bad one.

    Each name is checked once per process, not once per host: fleets repeat the same few hundred names.
    """
    hosts = list(hosts) if not isinstance(hosts, list) else hosts
    # Hosts built by SharedHostCpus share their sets: each distinct set once.
    unchecked = frozenset().union(*{id(h.all_features): h.all_features for h in hosts}.values()) - _VALID_NAMES
    for feature in unchecked:
        if not isinstance(feature, str) or not FEATURE_NAME_RE.match(feature):
            host = next(h.name for h in hosts if feature in h.all_features)
            try:
                validate_feature_name(feature, f"host {host}: features")
            except FactsError as exc:
                raise FactsError(str(exc)) from None
        _VALID_NAMES.add(feature)


def hosts_from(hosts: Any) -> list[tuple[str, Any]]:
    """(name, facts) pairs from {name: facts}, [{'name'|'host'|'inventory_hostname': n, 'facts'|'cpucompat': f}],
    or a cluster_cpu_facts aggregate."""
    if isinstance(hosts, Mapping) and "hosts" in hosts and isinstance(hosts["hosts"], (Mapping, list)) and "schema_version" not in hosts:
        hosts = hosts["hosts"]
    if isinstance(hosts, Mapping):
        return [(str(k), v) for k, v in hosts.items()]
    if isinstance(hosts, list):
        out = []
        for i, item in enumerate(hosts):
            if not isinstance(item, Mapping):
                raise InputError(f"host list entry {i} is not a mapping")
            name = item.get("name") or item.get("host") or item.get("inventory_hostname")
            if not name:
                raise InputError(f"host list entry {i} has no name (use 'name' and 'facts' keys)")
            out.append((str(name), item.get("facts", item.get("cpucompat"))))
        return out
    raise InputError(f"expected a mapping of host name to cpucompat facts or a list of hosts, got {type(hosts).__name__}")


def host_cpus(hosts: Any) -> list[HostCpu]:
    """Validated hosts, sorted by name; a name listed twice is an error."""
    out: dict[str, HostCpu] = {}
    build = SharedHostCpus()
    for name, facts in hosts_from(hosts):
        if name in out:
            raise InputError(f"host {name} is listed twice")
        out[name] = build(name, facts)
    hosts = [out[n] for n in sorted(out)]
    check_feature_names(hosts)
    return hosts


# Every top-level facts key HostCpu.from_facts reads. Hosts whose facts hold equal values under all of them get equal
# HostCpu values but for the name and the facts, so the second and later share the first one's validated fields. Keep
# this in step with from_facts (tests/unit/test_hostcpu_sharing.py records the keys from_facts reads).
CPU_FACTS_SCALARS = ("schema_version", "arch", "accel", "vendor", "base_model", "phys_bits")
CPU_FACTS_LISTS = ("features", "non_migratable_features", "runnable_models", "model_blockers")
CPU_FACTS_MAPS = ("models", "model_aliases", "model_aliases_base", "qemu", "machine", "versions", "libvirt")


def _shape(value: Any) -> Any:
    """A cheap stand-in for a list of names in the key (its type, length, middle and last names); the list itself is
    compared when the key matches. Anything else stands for itself."""
    if isinstance(value, list):
        return (type(value), len(value), value[len(value) // 2], value[-1]) if value else (type(value), 0)
    return value


class SharedHostCpus:
    """Builds HostCpu values, validating each distinct CPU content once: a fleet of 10,000 hosts holds a few dozen.

    Call it with (name, facts); a host whose facts say the same about the CPU as an earlier one's (equal values under
    every key from_facts reads, compared with their types where 1 == True would hide a difference) gets that host's
    validated fields, with its own name and facts. Facts that cannot be keyed (not a mapping, unhashable where a list
    of names belongs) are validated on their own, so every error still names its host. ``built`` counts validations.
    """

    __slots__ = ("_seen", "built", "check_names")

    def __init__(self, check_names: bool = False) -> None:
        self._seen: dict[tuple[Any, ...], list[tuple[tuple[Any, ...], HostCpu]]] = {}
        self.built = 0
        self.check_names = check_names  # as HostCpu.from_facts: a shared host's names were checked with the first one

    def __call__(self, name: str, facts: Any) -> HostCpu:
        if not _is_map(facts):
            return self._build(name, facts, None, ())
        get = facts.get
        scalars = (get("schema_version"), get("arch"), get("accel"), get("vendor"), get("base_model"), get("phys_bits"))
        feats, nonmig, runnable = get("features"), get("non_migratable_features"), get("runnable_models")
        key = (scalars, tuple(map(type, scalars)), _shape(feats), _shape(nonmig), _shape(runnable))
        # Compared, not hashed: the lists of names (equal lists of the same type give equal sets) and the mappings.
        maps = (feats, nonmig, runnable, get("model_blockers"), get("models"), get("model_aliases"), get("model_aliases_base"),
                get("qemu"), get("machine"), get("versions"), get("libvirt"))
        try:
            seen = self._seen.get(key)
        except TypeError:  # something unhashable where names belong: from_facts says what
            return self._build(name, facts, None, ())
        for known, core in seen or ():
            if known == maps:
                return core.for_host(name, facts)
        return self._build(name, facts, key, maps)

    def _build(self, name: str, facts: Any, key: tuple[Any, ...] | None, maps: tuple[Any, ...]) -> HostCpu:
        host = HostCpu.from_facts(name, facts, self.check_names)
        self.built += 1
        if key is not None:
            self._seen.setdefault(key, []).append((maps, host))
        return host
