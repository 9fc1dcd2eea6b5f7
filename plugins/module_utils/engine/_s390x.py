# Copyright (c) 2026 cpucompat.cluster contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""s390x CPU model comparison and baseline with QEMU's semantics. Private to the collection.

QEMU implements ``query-cpu-model-comparison`` and ``query-cpu-model-baseline``
for s390x (target/s390x/cpu_models.c). The same rules are written here as pure
functions so that a whole cluster can be baselined from cached facts, and the
test suite checks them against a live ``qemu-system-s390x``. The model table
(release order, CPU type, generation, GA level) is QEMU's; base feature sets
come from the catalog of static ``-base`` models.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..cpu import _catalog
from .._errors import BaselineError, InputError
from ..cpu._features import compare_feature_sets


@dataclass(frozen=True)
class S390Def:
    name: str
    cpu_type: int
    gen: int
    ec_ga: int


# QEMU's s390_cpu_defs, in order of release.
DEFS: tuple[S390Def, ...] = tuple(S390Def(*d) for d in (
    ("z900", 0x2064, 7, 1), ("z900.2", 0x2064, 7, 2), ("z900.3", 0x2064, 7, 3), ("z800", 0x2066, 7, 3),
    ("z990", 0x2084, 8, 1), ("z990.2", 0x2084, 8, 2), ("z990.3", 0x2084, 8, 3), ("z890", 0x2086, 8, 3),
    ("z990.4", 0x2084, 8, 4), ("z890.2", 0x2086, 8, 4), ("z990.5", 0x2084, 8, 5), ("z890.3", 0x2086, 8, 5),
    ("z9EC", 0x2094, 9, 1), ("z9EC.2", 0x2094, 9, 2), ("z9BC", 0x2096, 9, 2), ("z9EC.3", 0x2094, 9, 3),
    ("z9BC.2", 0x2096, 9, 3), ("z10EC", 0x2097, 10, 1), ("z10EC.2", 0x2097, 10, 2), ("z10BC", 0x2098, 10, 2),
    ("z10EC.3", 0x2097, 10, 3), ("z10BC.2", 0x2098, 10, 3), ("z196", 0x2817, 11, 1), ("z196.2", 0x2817, 11, 2),
    ("z114", 0x2818, 11, 2), ("zEC12", 0x2827, 12, 1), ("zEC12.2", 0x2827, 12, 2), ("zBC12", 0x2828, 12, 2),
    ("z13", 0x2964, 13, 1), ("z13.2", 0x2964, 13, 2), ("z13s", 0x2965, 13, 2), ("z14", 0x3906, 14, 1),
    ("z14.2", 0x3906, 14, 2), ("z14ZR1", 0x3907, 14, 1), ("gen15a", 0x8561, 15, 1), ("gen15b", 0x8562, 15, 1),
    ("gen16a", 0x3931, 16, 1), ("gen16b", 0x3932, 16, 1), ("gen17a", 0x9175, 17, 1), ("gen17b", 0x9176, 17, 1),
))
BY_NAME = {d.name: d for d in DEFS}

# Base features QEMU does not require when it searches a base model: MSA
# subfunctions some machines lack, and CSSKE, deprecated on newer generations.
IGNORED_BASE_FEATURES = frozenset({
    "kmac-dea", "kmac-tdea-128", "kmac-tdea-192", "kmc-dea", "kmc-tdea-128", "kmc-tdea-192",
    "km-dea", "km-tdea-128", "km-tdea-192", "kimd-sha-1", "klmd-sha-1", "csske",
})


@dataclass(frozen=True)
class S390Model:
    """A CPU model as QEMU holds it: a definition plus a feature set."""

    definition: S390Def
    features: frozenset[str]


def definition_of(model_name: str) -> S390Def:
    """The definition behind ``z14``, ``z14-base`` or ``gen16a-base``."""
    name = model_name[:-5] if model_name.endswith("-base") else model_name
    if name not in BY_NAME:
        raise InputError(f"s390x CPU model {model_name!r} is not in this collection's s390x model table")
    return BY_NAME[name]


def base_features(definition: S390Def) -> frozenset[str]:
    entry = _catalog.model_features("s390x", f"{definition.name}-base")
    if entry is None:
        raise BaselineError(f"the base features of s390x model {definition.name} are not in the model catalog")
    return entry


def _gen_order(a: S390Def, b: S390Def) -> str:
    if a.gen == b.gen:
        if a.ec_ga == b.ec_ga:
            return "identical"
        return "subset" if a.ec_ga < b.ec_ga else "superset"
    return "subset" if a.gen < b.gen else "superset"


def compare(a: S390Model, b: S390Model) -> tuple[str, list[str]]:
    """QEMU's query-cpu-model-comparison of model a with model b: (result, responsible properties)."""
    gen_result = _gen_order(a.definition, b.definition)
    responsible: list[str] = [] if gen_result == "identical" else ["type"]
    responsible += sorted(a.features ^ b.features)
    feat_result = compare_feature_sets(a.features, b.features)
    if gen_result == feat_result or feat_result == "identical":
        return gen_result, responsible
    if gen_result == "identical":
        return feat_result, responsible
    return "incompatible", responsible


def find_definition(cpu_type: int, gen: int, ec_ga: int, features: frozenset[str] | None) -> S390Def | None:
    """QEMU's s390_find_cpu_def: the newest definition not newer than (gen, ec_ga) whose base features are present."""
    last_compatible: S390Def | None = None
    matching_type: S390Def | None = None
    if not gen:
        ec_ga = 0
    if not gen and cpu_type:
        gen = next((d.gen for d in DEFS if d.cpu_type == cpu_type), 0)
    for definition in DEFS:
        if _catalog.model_features("s390x", f"{definition.name}-base") is None:
            continue  # newer than the QEMU the catalog was taken from
        if gen:
            if definition.gen > gen:
                break
            if definition.gen == gen and ec_ga and definition.ec_ga > ec_ga:
                break
        if features is not None and (base_features(definition) - features - IGNORED_BASE_FEATURES):
            break
        if definition.cpu_type == cpu_type and definition.ec_ga == ec_ga:
            return definition
        if definition.cpu_type == cpu_type:
            matching_type = definition
        last_compatible = definition
    return matching_type or last_compatible


def baseline(a: S390Model, b: S390Model) -> S390Model:
    """QEMU's query-cpu-model-baseline of two models."""
    features = a.features & b.features
    da, db = a.definition, b.definition
    if da.gen == db.gen:
        cpu_type = da.cpu_type if da.cpu_type == db.cpu_type else 0
        gen, ec_ga = da.gen, min(da.ec_ga, db.ec_ga)
    elif da.gen > db.gen:
        cpu_type, gen, ec_ga = db.cpu_type, db.gen, db.ec_ga
    else:
        cpu_type, gen, ec_ga = da.cpu_type, da.gen, da.ec_ga
    definition = find_definition(cpu_type, gen, ec_ga, features)
    if definition is None:
        raise BaselineError("no compatible s390x CPU model: important base features (esan3) are missing")
    return S390Model(definition, features)
