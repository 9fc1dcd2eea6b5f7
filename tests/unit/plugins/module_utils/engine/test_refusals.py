# Copyright (c) 2026 cpucompat.cluster contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Refusals that name who and what (issue 29): the unknown level, the model (not 'feature'), the hosts."""

from __future__ import annotations

import pytest

from ansible_collections.cpucompat.cluster.plugins.module_utils._errors import CpuCompatError
from ansible_collections.cpucompat.cluster.plugins.module_utils.engine._baseline import baseline_of
from ansible_collections.cpucompat.cluster.plugins.module_utils.engine._level import parse_level
from ansible_collections.cpucompat.cluster.plugins.module_utils.render._cpuspec import CpuSpec
from utils.recordings import facts_of


def test_an_unknown_x86_64_level_is_called_so() -> None:
    with pytest.raises(CpuCompatError, match="unknown x86-64 level x86-64-v9"):
        parse_level("x86-64-v9")


def test_a_bad_model_name_is_called_a_model() -> None:
    with pytest.raises(CpuCompatError, match="not a valid CPU model name"):
        CpuSpec.parse("<cpu mode='custom' match='exact'><model>Sky;lake</model></cpu>")


def test_no_common_model_names_the_host_that_reports_no_runnability() -> None:
    gold = facts_of("x86_64-xeon-gold-6130")
    mute = {**gold, "runnable_models": []}
    base = baseline_of({"gold": gold, "mute": mute})
    assert base.guest is None and "mute report no runnable model" in str(base.guest_error) and "--limit" in str(base.guest_error)
