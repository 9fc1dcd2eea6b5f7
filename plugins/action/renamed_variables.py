# Copyright (c) 2026 cpucompat.cluster contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Action plugin behind cpucompat.cluster.renamed_variables (documentation in plugins/modules/renamed_variables.py)."""

from __future__ import annotations

from typing import Any

from ansible.plugins.action import ActionBase

from ansible_collections.cpucompat.cluster.plugins.plugin_utils._settings import RENAMED, deprecations


class ActionModule(ActionBase):
    """Warn once per old variable name the host has; never changes anything."""

    TRANSFERS_FILES = False
    _requires_connection = False

    def run(self, tmp: Any = None, task_vars: dict[str, Any] | None = None) -> dict[str, Any]:
        result = super().run(tmp, task_vars)
        if self._task.args:
            self._display.warning("cpucompat.cluster.renamed_variables takes no options; they are ignored")
        found = deprecations(frozenset(task_vars or {}))
        result.update(changed=False, renamed=sorted(set(task_vars or {}) & set(RENAMED)))
        if found:
            result["deprecations"] = found
        return result
