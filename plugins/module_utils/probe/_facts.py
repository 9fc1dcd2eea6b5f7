# Copyright (c) 2026 cpucompat.cluster contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Turn the replies of one QMP session into the ``cpucompat`` fact. Private to the collection.

Pure functions: no I/O, no Ansible. The schema is documented in docs/facts.md;
bump SCHEMA_VERSION on any incompatible change.
"""

from __future__ import annotations

import functools
import hashlib
import json
import re
from collections.abc import Iterator, Mapping
from typing import Any

from ..cpu import _catalog
from . import _armhost, _fingerprint
from .._errors import FactsError
from ..cpu._features import SUPPORTED_ARCHES, canonical_list, enabled_features, validate_feature_name
from ._session import Query, Session

SCHEMA_VERSION = 5
# The schemas this collection reads: schema 4 facts (per-model blocker lists) stay readable until the host is probed again.
READABLE_SCHEMAS = frozenset({4, SCHEMA_VERSION})
_MACHINE_VERSION_RE = re.compile(r"-[0-9]+(\.[0-9]+)*$")
_IDENTITY_PROPS = ("vendor", "family", "model", "stepping", "model-id")


def _expansion_model(reply: Any, where: str) -> dict[str, Any]:
    model = reply.get("model") if isinstance(reply, dict) else None
    if not isinstance(model, dict) or not isinstance(model.get("name"), str):
        raise FactsError(f"{where}: expansion reply has no model name")
    _valid(model["name"], f"{where}: expanded model name")
    props = model.get("props", {})
    if not isinstance(props, dict):
        raise FactsError(f"{where}: expansion reply has malformed props")
    return model


def _valid(name: Any, where: str) -> str:
    """A model or feature name fit for facts and XML, else FactsError naming where it came from."""
    return validate_feature_name(name, where)


def _blockers(arch: str, value: Any, where: str) -> tuple[list[str] | None, int]:
    """QEMU's unavailable-features of a model: the named blockers, and how many came without a name.

    QEMU 2.x-4.x report empty strings for blockers that have no name (a real Xeon Platinum 8268 host:
    ``Cascadelake-Server`` blocked by ``['']``): the model does not run here, blocked by an unnamed feature.
    """
    if value is None:
        return None, 0
    if not isinstance(value, list):
        raise FactsError(f"{where}: unavailable-features is not a list")
    unnamed = sum(1 for v in value if v == "")
    return canonical_list(arch, [v for v in value if v != ""], where), unnamed


def _s390x_base_features(base: str, where: str) -> set[str]:
    feats = _catalog.model_features("s390x", base)
    if feats is None:
        raise FactsError(
            f"{where}: the host expansion is a delta against {base!r}, which this collection's model catalog "
            f"(QEMU {_catalog.newest('s390x')}) does not know; probe with a QEMU that supports full expansion")
    return set(feats)


def host_features(arch: str, reply: Any, kind: str, where: str) -> tuple[set[str], str]:
    """Enabled features of a host expansion and where they came from."""
    model = _expansion_model(reply, where)
    values = enabled_features(arch, model.get("props", {}), where)
    enabled = {k for k, v in values.items() if v}
    if arch == "s390x" and kind == "static":
        # s390x static expansions are a delta against the named static base model.
        disabled = {k for k, v in values.items() if not v}
        return (_s390x_base_features(model["name"], where) | enabled) - disabled, "catalog+delta"
    return enabled, "expansion"


def _models(arch: str, session: Session, where: str) -> dict[str, dict[str, Any]] | None:
    defs = session.reply("query-cpu-definitions")
    if defs is None:
        return None
    if not isinstance(defs, list):
        raise FactsError(f"{where}: query-cpu-definitions did not return a list")
    out: dict[str, dict[str, Any]] = {}
    for entry in defs:
        if not isinstance(entry, dict) or not isinstance(entry.get("name"), str):
            raise FactsError(f"{where}: query-cpu-definitions has an entry without a name: {str(entry)[:80]!r}")
        name = _valid(entry["name"], f"{where}: query-cpu-definitions: model name")
        context = f"{where}: query-cpu-definitions: model {name}"
        unavailable, unnamed = _blockers(arch, entry.get("unavailable-features"), context)
        alias_of = entry.get("alias-of")
        if alias_of is not None:
            _valid(alias_of, f"{context}: alias-of")
        record: dict[str, Any] = {
            # An old QEMU without unavailable-features tells us nothing: unknown, not runnable.
            "runnable": None if unavailable is None else not unavailable and not unnamed,
            # Aliases repeat their target's list; keep one copy to keep facts compact.
            "unavailable_features": None if unavailable is None or alias_of else unavailable,
            "migration_safe": _opt_bool(entry.get("migration-safe")),
            "static": _opt_bool(entry.get("static")),
            "deprecated": entry.get("deprecated") is True,
            "alias_of": alias_of,
        }
        if unnamed and not alias_of:
            record["unnamed_blockers"] = unnamed
        # "host" and "max" are the host CPU itself: their features are the top-level ones.
        for expansion_type in (("static", "full") if name not in ("host", "max") else ()):
            reply = session.expansion(expansion_type, name)
            if reply is not None:
                feats, _src = host_features(arch, reply, expansion_type, f"{where}: query-cpu-model-expansion of model {name}")
                record["features"] = sorted(feats)
                break
        out[name] = record
    return dict(sorted(out.items()))


def _opt_bool(value: Any) -> bool | None:
    return value if isinstance(value, bool) else None


def _identity_value(field: str, value: Any) -> Any:
    """Identity props as facts keep them: numbers as numbers, text as printable text; anything else unknown."""
    if field in ("family", "model", "stepping"):
        return value if isinstance(value, int) and not isinstance(value, bool) and 0 <= value < 2**32 else None
    if not isinstance(value, str):
        return None
    text = "".join(c for c in value if c.isprintable()).strip()[:128]
    return text or None


def _identity(arch: str, session: Session) -> dict[str, Any]:
    ident: dict[str, Any] = {"vendor": None, "family": None, "model": None, "stepping": None, "model_id": None}
    if arch == "s390x":
        ident["vendor"] = "IBM"
    if arch != "x86_64":
        return ident
    # The identity props may sit in any host expansion of the session; the primary one first.
    for _query, reply in session.expansions():
        model = reply.get("model") if isinstance(reply, dict) else None
        props = model.get("props") if isinstance(model, dict) else None
        if not isinstance(props, dict):
            continue
        for prop in _IDENTITY_PROPS:
            field = prop.replace("-", "_")
            if ident[field] is None and prop in props:
                ident[field] = _identity_value(field, props[prop])
    return ident


def _target_arch(session: Session, where: str) -> str:
    target = session.reply("query-target")
    if not isinstance(target, dict) or not isinstance(target.get("arch"), str):
        raise FactsError(f"{where}: query-target reply is missing or has no 'arch'")
    arch = target["arch"]
    if arch not in SUPPORTED_ARCHES:
        raise FactsError(f"{where}: query-target: architecture {arch!r} is not supported (supported: {', '.join(SUPPORTED_ARCHES)})")
    return arch


def _qemu(session: Session, where: str, binary: str | None) -> dict[str, Any]:
    """QEMU's binary, version and package. A recording may lack query-version (libvirt's cputestdata never kept it):
    the version is then unknown (null), never guessed."""
    version = session.reply("query-version")
    if version is None:
        return {"binary": binary, "version": None, "package": None}
    qv = version.get("qemu") if isinstance(version, dict) else None
    try:
        number = f"{int(qv['major'])}.{int(qv['minor'])}.{int(qv['micro'])}"  # type: ignore[index]
    except (KeyError, TypeError, ValueError) as exc:
        raise FactsError(f"{where}: query-version reply has no usable major/minor/micro: {str(version)[:80]!r}") from exc
    package = version.get("package")
    return {"binary": binary, "version": number,
            "package": "".join(c for c in package if c.isprintable()).strip()[:200] if isinstance(package, str) else None}


def _accel(session: Session, where: str) -> str:
    kvm = session.reply("query-kvm")
    if not isinstance(kvm, dict) or not isinstance(kvm.get("enabled"), bool):
        raise FactsError(f"{where}: query-kvm reply is missing or has no 'enabled'")
    return "kvm" if kvm["enabled"] else "tcg"


def _primary(session: Session, arch: str, where: str) -> tuple[Query, set[str], str, dict[str, Any]]:
    """The primary host expansion, the host's features from it, where they came from, and the expanded model."""
    primary = session.primary
    if primary is None or primary not in session.replies:
        err = (session.error(primary) if primary is not None else None) or {}
        raise FactsError(f"{where}: no host CPU expansion ({primary.encode() if primary else 'none asked'}): {err.get('desc', 'no reply')}")
    reply = session.replies[primary]
    features, source = host_features(arch, reply, str(primary.expansion_type), f"{where}: {primary.encode()}")
    return primary, features, source, _expansion_model(reply, where)


def _non_migratable(session: Session, arch: str, features: set[str], where: str) -> list[str] | None:
    """x86: what the host offers only to non-migratable guests (invtsc...), from the static expansion with migratable=false."""
    if arch != "x86_64":
        return None
    for model in ("host", "max"):
        reply = session.expansion("static", model, {"migratable": False})
        if reply is not None:
            wider, _src = host_features(arch, reply, "static",
                                        f"{where}: query-cpu-model-expansion static {model} with migratable=false")
            return sorted(wider - features)
    return None


def _block_rejected(models: dict[str, dict[str, Any]] | None, rejected: frozenset[str]) -> None:
    """A model that needs a feature KVM refuses does not run here, whatever QEMU said."""
    for info in (models or {}).values():
        blocked = sorted(rejected & set(info.get("features") or []))
        if blocked and info["runnable"]:
            info["runnable"] = False
            info["unavailable_features"] = blocked
            info.pop("features")


def _model_table(records: dict[str, dict[str, Any]] | None) -> dict[str, Any]:
    """The named models as the facts keep them: flat maps and lists, not a record per model.

    A fleet's fact cache holds these for every host, and ansible-core decodes a host's entry on each use (a tagged
    JSON decoder whose cost grows with the number of objects): one small dict per model made an x86 host's facts
    ~130 objects and 25-38 KiB. ``models`` maps each model that is not an alias to what blocks it here, as a bit mask
    (hexadecimal; ``"0"``: it runs; ``null``: QEMU does not say) over ``model_blockers``, the sorted names of every
    feature that blocks some model here: each blocker name is written once, not once per model it blocks (schema 4
    wrote lists: two thirds of an x86 host's facts). :func:`read_models` gives the lists back. An alias runs when its
    target does.
    """
    if records is None:
        return {"models": None, "model_blockers": None, "model_aliases": None, "model_aliases_base": None, "model_flags": None,
                "model_features": None, "unnamed_blockers": None, "runnable_models": None}
    aliases = {m: str(r["alias_of"]) for m, r in records.items() if r.get("alias_of")}
    models = {m: None if r["runnable"] is None else ([] if r["runnable"] else list(r["unavailable_features"] or []))
              for m, r in records.items() if m not in aliases}
    runs = {m for m, blockers in models.items() if blockers == [] and not records[m].get("unnamed_blockers")}
    runs |= {alias for alias, target in aliases.items() if target in runs}
    names, masks = encode_models(models)
    base, delta = encode_aliases(aliases)
    return {
        "models": masks,
        "model_blockers": names,
        "model_aliases": delta,
        "model_aliases_base": base,
        "model_flags": {"deprecated": [m for m, r in records.items() if r.get("deprecated")],
                        "not_migration_safe": [m for m, r in records.items() if r.get("migration_safe") is False],
                        "static": [m for m, r in records.items() if r.get("static")]},
        "model_features": {m: r["features"] for m, r in records.items() if r.get("features") is not None},
        "unnamed_blockers": {m: r["unnamed_blockers"] for m, r in records.items() if r.get("unnamed_blockers")},
        "runnable_models": sorted(m for m in runs if m not in ("host", "max", "base")),
    }


def encode_models(models: Mapping[str, list[str] | None]) -> tuple[list[str], dict[str, str | None]]:
    """Schema 5's ``model_blockers`` and ``models`` for ``models`` (model -> its blocker list, or None: unknown)."""
    names = sorted({name for blockers in models.values() for name in blockers or ()})
    bit = {name: 1 << i for i, name in enumerate(names)}
    masks: dict[str, str | None] = {}
    for model, blockers in models.items():
        masks[model] = None if blockers is None else format(sum(bit[name] for name in set(blockers)), "x")
    return names, masks


def _alias_table_digest(release: _catalog.QemuRelease) -> str:
    blob = json.dumps(sorted(release.aliases.items()), separators=(",", ":")).encode()
    return hashlib.sha256(blob).hexdigest()[:12]


def _alias_table_label(release: _catalog.QemuRelease) -> str:
    """How the facts name a catalogued release's alias table: the release (for people) and a digest of the table
    itself, by which it is found again - a catalogue regenerated from another point release with the same aliases still
    reads the facts, one with other aliases never reads them differently (it refuses them)."""
    return f"{release.release}:{_alias_table_digest(release)}"


@functools.lru_cache(maxsize=1)
def _alias_tables() -> dict[str, _catalog.QemuRelease]:
    return {_alias_table_digest(r): r for r in _catalog.releases("x86_64")}


def encode_aliases(aliases: Mapping[str, str]) -> tuple[str | None, dict[str, str | None]]:
    """Schema 5's ``model_aliases_base`` and ``model_aliases``: the bundled catalogue's alias table of the QEMU release
    closest to this host's (most often equal: QEMU's aliases are fixed per release), and what differs from it (an alias
    the base lacks or points elsewhere; null: an alias of the base this QEMU does not have). No base when none helps."""
    best: tuple[int, str | None, dict[str, str | None]] = (len(aliases), None, dict(aliases))
    for release in _catalog.releases("x86_64") if aliases else ():
        base = release.aliases
        delta: dict[str, str | None] = {a: t for a, t in aliases.items() if base.get(a) != t}
        delta.update({a: None for a in base if a not in aliases})
        if len(delta) < best[0]:
            best = (len(delta), _alias_table_label(release), delta)
    return best[1], dict(sorted(best[2].items()))


def read_aliases(facts: Mapping[str, Any], where: str) -> dict[str, str]:
    """Each alias (and unversioned name) to the model it stands for, from facts of any schema this collection reads: the
    one reader of ``model_aliases`` (schema 5 keeps only what differs from a catalogued release's table)."""
    aliases = facts.get("model_aliases") or {}
    if not isinstance(aliases, Mapping):
        raise FactsError(f"{where}: field 'model_aliases' is not a mapping")
    base = facts.get("model_aliases_base") if facts.get("schema_version") != 4 else None
    if base is None:
        return aliases  # type: ignore[return-value]
    release = _alias_tables().get(base.rpartition(":")[2]) if isinstance(base, str) else None
    if release is None:
        raise FactsError(f"{where}: its facts keep model aliases relative to the alias table {base!r}, which this "
                         f"collection's model catalogue does not have; re-probe the host with this collection")
    out = dict(release.aliases)
    for alias, target in aliases.items():
        if target is None:
            out.pop(alias, None)
        else:
            out[alias] = target
    return out


def read_models(facts: Mapping[str, Any], where: str) -> Mapping[str, list[str] | None] | None:
    """What blocks each named model that is not an alias (``[]``: it runs; None: QEMU does not say), from facts of
    any schema this collection reads: the one reader of ``models`` (the engine, reports and tests see the same lists).

    None when the facts list no models. ``where`` (the host) names every error. Schema 4 kept the lists themselves;
    schema 5 keeps bit masks over ``model_blockers`` (:func:`encode_models`), checked here and turned into lists when a
    model is looked up (a fleet's facts are read far more often than any one host's blockers).
    """
    models = facts.get("models")
    if models is None:
        return None
    if not isinstance(models, Mapping):
        raise FactsError(f"{where}: field 'models' is not a mapping")
    if facts.get("schema_version") == 4:
        return models
    names = facts.get("model_blockers") or ()
    if not isinstance(names, (list, tuple)):
        raise FactsError(f"{where}: field 'model_blockers' is not a list")
    width = len(names)
    for model, mask in models.items():
        if mask is None or (isinstance(mask, str) and (width, mask) in _VALID_MASKS):
            continue
        try:
            number = int(mask, 16) if isinstance(mask, str) else -1
        except ValueError:
            number = -1
        if number < 0 or number >> width:
            raise FactsError(f"{where}: models: {model}: {mask!r} is not a bit mask over the {width} names of model_blockers")
        if len(_VALID_MASKS) > 100_000:
            _VALID_MASKS.clear()
        _VALID_MASKS.add((width, mask))
    return ModelBlockers(models, tuple(names))


# (number of blocker names, mask) pairs already checked in this process: a fleet repeats the same few hundred masks.
_VALID_MASKS: set[tuple[int, str]] = set()


class ModelBlockers(Mapping):
    """Schema 5's ``models`` as model -> list of blocking features (``[]``: runs; None: unknown), decoded on lookup."""

    __slots__ = ("_masks", "_names")

    def __init__(self, masks: Mapping[str, str | None], names: tuple[str, ...]) -> None:
        self._masks = masks
        self._names = names

    def __getitem__(self, model: str) -> list[str] | None:
        mask = self._masks[model]
        return None if mask is None else list(_decode_mask(self._names, mask))

    def __iter__(self) -> Iterator[str]:
        return iter(self._masks)

    def __len__(self) -> int:
        return len(self._masks)

    def __repr__(self) -> str:
        return repr(dict(self.items()))


@functools.lru_cache(maxsize=4096)
def _decode_mask(names: tuple[str, ...], mask: str) -> tuple[str, ...]:
    number = int(mask, 16)
    out = []
    while number:
        low = number & -number
        out.append(names[low.bit_length() - 1])
        number ^= low
    return tuple(out)


def build_facts(
    session: Session,
    *,
    where: str,
    qemu_binary: str | None,
    probe: Mapping[str, Any],
    fingerprint_inputs: Mapping[str, Any],
    rejected_features: list[str] | tuple[str, ...] = (),
    rejection_detail: str | None = None,
    host: Mapping[str, Any] | None = None,
    machine: str | None = None,
    arm_host: _armhost.ArmHost | None = None,
) -> dict[str, Any]:
    """Build the ``cpucompat`` fact from one session's replies (its ``primary`` host expansion first of all).

    ``where`` names the host or socket in every error message. Features QEMU offers but KVM refuses when a vCPU is
    created (``rejected_features``, see ``_probe.kvm_rejected_features``) are not features of this host.
    """
    arch = _target_arch(session, where)
    qemu = _qemu(session, where, qemu_binary)
    accel = _accel(session, where)
    primary, features, features_source, host_model = _primary(session, arch, where)
    rejected = frozenset(rejected_features)
    features -= rejected
    non_migratable = _non_migratable(session, arch, features | rejected, where)
    models = _models(arch, session, where)
    _block_rejected(models, rejected)
    table = _model_table(models)
    facts: dict[str, Any] = {
        "schema_version": SCHEMA_VERSION,
        "arch": arch,
        **_identity(arch, session),
        "base_model": host_model["name"] if arch == "s390x" else None,
        "accel": accel,
        "qemu": qemu,
        "host_cpu": {"expansion": primary.label, "features_source": features_source,
                     "kvm_rejected_features": sorted(rejected), "kvm_vcpu_check": rejection_detail},
        "features": sorted(features),
        "non_migratable_features": non_migratable,
        **table,
        "capabilities": {
            "comparison": session.supports("query-cpu-model-comparison"),
            "baseline": session.supports("query-cpu-model-baseline"),
            "unavailable_features": None if models is None else any(m["runnable"] is not None for m in models.values()),
        },
        "probe": dict(probe),
        "fingerprint": fingerprint(fingerprint_inputs),
        "machine": _machine(session, machine, where),
        "versions": {"qemu": qemu["version"], **_host_versions(host)},
        "libvirt": _libvirt(arch, host),
        # A TCG probe describes QEMU's emulated CPU: the host's address bits and TSC are not that CPU's. Both are x86
        # notions (/proc/cpuinfo's "address sizes", the TSC): a QMP socket of another architecture's QEMU, probed from
        # an x86 machine, must not get that machine's.
        "phys_bits": _int_or_none((host or {}).get("phys_bits")) if accel == "kvm" and arch == "x86_64" else None,
        "tsc": _tsc(host) if accel == "kvm" and arch == "x86_64" else None,
        "hyperv": _hyperv(arch, session, where),
    }
    if arch == "aarch64":  # only there: x86 and s390x facts keep their size
        facts["arm"] = _arm(session, host_model, qemu["version"], facts["machine"], arm_host)
    return facts


def _arm(session: Session, host_model: Mapping[str, Any], qemu_version: str | None, machine: Mapping[str, Any] | None,
         arm_host: _armhost.ArmHost | None) -> dict[str, Any]:
    """An arm64 host's identity: what its kernel shows under ``host_root`` (``identity``; None when that tree is not an
    arm64 host's) and what QEMU's expansion of the host CPU gives a guest (SVE lengths, pmu, pauth, kvm-*), with the
    ``virt-X.Y`` machine type guests of this QEMU get."""
    virt = machine.get("name") if machine and str(machine.get("name") or "").startswith("virt-") else None
    return {"identity": arm_host.to_facts() if arm_host is not None and arm_host.is_arm else None,
            **_armhost.expansion(host_model.get("props") or {}),
            "machine": virt or _armhost.virt_machine(qemu_version, session.reply("query-machines"))}


def _libvirt(arch: str, host: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """The libvirt the host runs and, on x86_64, the CPU map it reads; None without libvirt."""
    host = host or {}
    version = _text_or_none(host.get("libvirt"))
    cpu_map = host.get("cpu_map")
    if version is None and cpu_map is None:
        return None
    return {"version": version,
            "cpu_map": cpu_map.to_facts() if cpu_map is not None and arch == "x86_64" else None}


def _int_or_none(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else None


def _text_or_none(value: Any) -> str | None:
    if not isinstance(value, str):
        return None
    return "".join(c for c in value if c.isprintable()).strip()[:64] or None


def _host_versions(host: Mapping[str, Any] | None) -> dict[str, Any]:
    """libvirt, kernel and microcode of the probed host, from the probe's own reading (None: not known)."""
    host = host or {}
    return {k: _text_or_none(host.get(k)) for k in ("libvirt", "kernel", "microcode")}


def _tsc(host: Mapping[str, Any] | None) -> dict[str, Any] | None:
    tsc = (host or {}).get("tsc")
    if not isinstance(tsc, Mapping):
        return None
    scaling = tsc.get("scaling")
    return {"frequency": _int_or_none(tsc.get("frequency")), "scaling": scaling if isinstance(scaling, bool) else None}


def _machine(session: Session, requested: str | None, where: str) -> dict[str, Any] | None:
    """The machine type the probe ran with, by its versioned name (query-machines); None when not known (socket mode)."""
    if requested is None:
        return None
    if requested == "none":
        return {"requested": "none", "name": "none", "type": "none"}
    found = None
    machines = session.reply("query-machines")
    for entry in machines if isinstance(machines, list) else []:
        if not isinstance(entry, dict) or not isinstance(entry.get("name"), str):
            continue
        if (requested == "default" and entry.get("is-default") is True) or requested in (entry.get("name"), entry.get("alias")):
            found = _valid(entry["name"], f"{where}: query-machines: machine name")
            break
    return {"requested": requested, "name": found, "type": _MACHINE_VERSION_RE.sub("", found) if found else None}


def _hyperv(arch: str, session: Session, where: str) -> list[str] | None:
    """x86 under KVM: the Hyper-V enlightenments (hv-*) this KVM supports, from the full expansion with hv-passthrough."""
    if arch != "x86_64":
        return None
    reply = session.expansion("full", "host", {"hv-passthrough": True, "migratable": False})
    if reply is None:
        return None
    props = _expansion_model(reply, f"{where}: query-cpu-model-expansion full host with hv-passthrough").get("props", {})
    supported = sorted(_valid(k, f"{where}: query-cpu-model-expansion full host with hv-passthrough")
                       for k, v in props.items() if isinstance(k, str) and k.startswith("hv-") and k != "hv-passthrough" and v is True)
    # QEMU before 8 applies hv-passthrough only when a vCPU is created: its expansion says every hv-* is off. That is
    # "not known", not "none supported".
    return supported or None


def fingerprint(inputs: Mapping[str, Any]) -> str:
    """A stable digest of everything that can change a probe's answer."""
    return _fingerprint.digest(inputs, SCHEMA_VERSION)
