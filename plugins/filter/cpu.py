# Copyright (c) 2026 cpucompat.cluster contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Filters over cpucompat facts; thin adapters over module_utils (docs in the sidecar .yml files)."""

from __future__ import annotations

from typing import Any

from ansible.errors import AnsibleFilterError

from ansible_collections.cpucompat.cluster.plugins.module_utils._errors import CpuCompatError
from ansible_collections.cpucompat.cluster.plugins.module_utils._summary import probe_summary


def cpu_summary(facts: Any, host: str = "this host") -> list[str]:
    try:
        return probe_summary(facts, host)
    except CpuCompatError as exc:
        raise AnsibleFilterError(f"cpu_summary: {exc}") from exc


class FilterModule:
    """cpucompat.cluster filters."""

    def filters(self) -> dict[str, Any]:
        return {"cpu_summary": cpu_summary}
