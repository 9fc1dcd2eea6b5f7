# Copyright (c) 2026 cpucompat.cluster contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Action plugin behind cpucompat.cluster.cpu_upgrade_check (documentation in plugins/modules/cpu_upgrade_check.py).

The ``upgrade`` verb: each group against a new QEMU or libvirt; what every aggregating action does is in
``plugin_utils/_aggregate.py``, the verb in ``module_utils/verbs/``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from ansible.errors import AnsibleActionFail

from ansible_collections.cpucompat.cluster.plugins.module_utils.verbs import _common, _upgrading
from ansible_collections.cpucompat.cluster.plugins.plugin_utils._aggregate import AggregateAction, beside_inventory, group_names, observations_of
from ansible_collections.cpucompat.cluster.plugins.plugin_utils._group_reader import GroupReader


OPTIONS = {
    "new_stack": {"type": "list", "elements": "str", "default": []},
    "groups": {"type": "list", "elements": "str"},
    "observations_var": {"type": "str"},
}


class ActionModule(AggregateAction, name="cpu_upgrade_check", kinds=("upgrade",), options=OPTIONS):
    """Judge each group's contract and domains against a new QEMU or libvirt; writes no contract."""

    @classmethod
    def verb(cls, kind: str, args: Mapping[str, Any], reader: GroupReader, task_vars: Mapping[str, Any],
             common: _common.Common) -> _common.Outcome:
        groups = _common.group_map(task_vars.get("groups") or {}, group_names(cls.NAME, kind, args))
        if not args["new_stack"]:
            raise AnsibleActionFail(f"{cls.NAME}: new_stack is needed (the hosts that stand for the new stack)")
        reader.check_known(args["new_stack"])
        observed = observations_of(reader, args["new_stack"], args["observations_var"]) if args["observations_var"] else None
        return _upgrading.upgrade(common, reader, groups, args["new_stack"], args["domains_var"], _stack_file(args, task_vars), observed)


def _stack_file(args: Mapping[str, Any], task_vars: Mapping[str, Any]) -> str | None:
    """Where an upgrade check keeps the new stack's facts, for a later site run to render for it too."""
    if args["report_dir"] is None:
        return None
    return os.path.join(os.path.expanduser(args["report_dir"]) or beside_inventory(task_vars, "reports"), "new-stack.json")
