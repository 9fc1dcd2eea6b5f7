# Copyright (c) 2026 cpucompat.cluster contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
from __future__ import annotations

import pytest

from ansible_collections.cpucompat.cluster.plugins.module_utils._errors import FactsError
from ansible_collections.cpucompat.cluster.plugins.module_utils.cpu._features import canonical_name, enabled_features, is_cpu_feature, msr_features
from utils.recordings import load, names


@pytest.mark.parametrize("raw, canonical", [
    ("sse4_1", "sse4.1"), ("sse4-1", "sse4.1"), ("sse4.2", "sse4.2"), ("sse3", "pni"), ("pclmuldq", "pclmulqdq"),
    ("lahf_lm", "lahf-lm"), ("i64", "lm"), ("xd", "nx"), ("ffxsr", "fxsr-opt"), ("fxsr_opt", "fxsr-opt"),
    ("kvm_pv_eoi", "kvm-pv-eoi"), ("avx512f", "avx512f"),
])
def test_x86_canonical_names(raw: str, canonical: str) -> None:
    assert canonical_name("x86_64", raw) == canonical


def test_s390x_names_are_kept() -> None:
    assert canonical_name("s390x", "sea_esop2") == "sea_esop2"


@pytest.mark.parametrize("name, feature", [("migratable", False), ("hv-relaxed", False), ("x-force-features", False), ("avx2", True), ("kvm-pv-eoi", True)])
def test_x86_feature_filter(name: str, feature: bool) -> None:
    assert is_cpu_feature("x86_64", name) is feature


def _full_key(name: str) -> str | None:
    return next((k for k in load(name)["replies"] if k.startswith("query-cpu-model-expansion:full") and "migratable=false" not in k), None)


@pytest.mark.parametrize("name", [n for n in names("x86_64") if _full_key(n) and "query-cpu-model-expansion:static:host" in load(n)["replies"]])
def test_filtered_full_expansion_equals_static(name: str) -> None:
    """On hosts recorded with both, our filter turns QEMU's full expansion into exactly its static one."""
    replies = load(name)["replies"]
    full_key = _full_key(name)
    full = {k for k, v in enabled_features("x86_64", replies[full_key]["model"]["props"], name).items() if v}
    static = {k for k, v in enabled_features("x86_64", replies["query-cpu-model-expansion:static:host"]["model"]["props"], name).items() if v}
    assert full == static


def test_bad_name_is_rejected() -> None:
    with pytest.raises(FactsError, match="not a valid CPU feature name"):
        enabled_features("x86_64", {"a b": True}, "h")


@pytest.mark.parametrize("index, value, names", [
    (0x10A, 0x69, ["rdctl-no", "skip-l1dfl-vmentry", "mds-no", "pschange-mc-no"]),  # seen on this project's machine
    (0x10A, 0x8, ["skip-l1dfl-vmentry"]),
    (0x10A, 0x200, None),  # bit 9 has no name: never guess
    (0x345, 0x1, None),  # an MSR we cannot decode
])
def test_msr_features(index: int, value: int, names) -> None:
    assert msr_features(index, value) == names
