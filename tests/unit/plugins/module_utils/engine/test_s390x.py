# Copyright (c) 2026 cpucompat.cluster contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""s390x rules without QEMU (the live oracle is tests/integration/test_s390x_oracle.py)."""

from __future__ import annotations

import pytest

from ansible_collections.cpucompat.cluster.plugins.module_utils.engine import _s390x
from ansible_collections.cpucompat.cluster.plugins.module_utils._errors import BaselineError, InputError


def _z13_base_feature() -> str:
    """A base feature z13 introduced (not among those QEMU ignores when searching a base model)."""
    new = _s390x.base_features(_s390x.BY_NAME["z13"]) - _s390x.base_features(_s390x.BY_NAME["zBC12"]) - _s390x.IGNORED_BASE_FEATURES
    return sorted(new)[0]


def model(name: str, extra: tuple[str, ...] = (), drop: tuple[str, ...] = ()) -> _s390x.S390Model:
    definition = _s390x.definition_of(name)
    return _s390x.S390Model(definition, (_s390x.base_features(definition) | set(extra)) - set(drop))


@pytest.mark.parametrize("a, b, result", [
    (model("z14-base"), model("z14-base"), "identical"),
    (model("z13-base"), model("z14-base"), "subset"),
    (model("z14-base"), model("z13-base"), "superset"),
    (model("z14-base", drop=(_z13_base_feature(),)), model("z13-base"), "incompatible"),
    (model("z14-base"), model("z14ZR1-base"), "identical"),  # EC and BC of one GA compare identical
])
def test_compare(a, b, result: str) -> None:
    assert _s390x.compare(a, b)[0] == result


def test_baseline_takes_the_older_generation_and_common_features() -> None:
    out = _s390x.baseline(model("gen15a-base", extra=("vxeh2",)), model("z14-base", extra=("vxeh2",)))
    assert out.definition.name == "z14"
    assert "vxeh2" in out.features


def test_baseline_falls_back_when_base_features_are_missing() -> None:
    out = _s390x.baseline(model("z14-base", drop=(_z13_base_feature(),)), model("z14-base"))
    assert out.definition.gen < 13, "without a z13 base feature no z13 or later model fits"


def test_unknown_model_is_named() -> None:
    with pytest.raises(InputError, match="'z99-base' is not in this collection's s390x model table"):
        _s390x.definition_of("z99-base")


def test_no_base_features_at_all() -> None:
    with pytest.raises(BaselineError, match="important base features"):
        _s390x.baseline(_s390x.S390Model(_s390x.BY_NAME["z900"], frozenset()), model("z900-base"))
