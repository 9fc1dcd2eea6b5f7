# Copyright (c) 2026 cpucompat.cluster contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Action plugin behind cpucompat.cluster.cpu_power_cycle (documentation in plugins/modules/cpu_power_cycle.py).

Plans a group's rolling power cycle from the contract step's domain statuses, and records each batch into the
progress kept beside the contract (``module_utils/verbs/_power_cycle.py``); the batches themselves run on the hosts
(cpucompat.cluster.domain_power_cycle).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ansible.errors import AnsibleActionFail

from ansible_collections.cpucompat.cluster.plugins.module_utils.verbs import _common, _power_cycle
from ansible_collections.cpucompat.cluster.plugins.plugin_utils._aggregate import AggregateAction
from ansible_collections.cpucompat.cluster.plugins.plugin_utils._group_reader import GroupReader

OPTIONS = {
    "step": {"type": "str", "default": "plan", "choices": ["plan", "record"]},
    "carry_var": {"type": "str", "required": True},
    "mode": {"type": "str", "default": "next_shutdown", "choices": ["next_shutdown", "now"]},
    "select": {"type": "raw"},
    "batch": {"type": "raw", "default": 1},
    "anti_affinity": {"type": "raw", "default": []},
    "batch_index": {"type": "int", "default": 0},
    "results": {"type": "list", "elements": "raw", "default": []},
    "generation": {"type": "int", "default": 0},
    "planned": {"type": "list", "elements": "raw", "default": []},
    "lease": {"type": "float", "default": 3600},
    "last": {"type": "bool"},
    "takeover": {"type": "bool", "default": False},
}


class ActionModule(AggregateAction, name="cpu_power_cycle", kinds=("power_cycle",), options=OPTIONS, writes=True):
    """Plan a group's rolling power cycle, or record a batch of it, in the progress beside the contract."""

    @classmethod
    def verb(cls, kind: str, args: Mapping[str, Any], reader: GroupReader, task_vars: Mapping[str, Any],
             common: _common.Common) -> _common.Outcome:
        group = args["group"]
        if not group:
            raise AnsibleActionFail(f"{cls.NAME}: needs group")
        section = _section(reader, args["carry_var"], task_vars, group)
        hosts = list((task_vars.get("groups") or {}).get(group) or [])
        options = {k: args[k] for k in ("mode", "select", "batch", "anti_affinity", "lease", "takeover")}
        if args["step"] == "plan":
            report, extra = _power_cycle.plan(common.store, group, section, hosts, options, common.check_mode)
        else:
            report, extra = _power_cycle.record(common.store, group, section, options, args["batch_index"], args["results"],
                                                args["generation"], args["planned"], last=args["last"])
        files = [] if common.check_mode else [str(report["progress_file"])]
        return _common.Outcome(report, files, extra)


def _section(reader: GroupReader, var: str, task_vars: Mapping[str, Any], group: str) -> Mapping[str, Any]:
    """The group's section of the contract step of this run (its registered result), read untemplated."""
    host = task_vars.get("inventory_hostname")
    registered = reader.registered_var(str(host), var) if host else None
    report = registered.get("report") if isinstance(registered, Mapping) else None
    groups = report.get("groups") if isinstance(report, Mapping) else None
    if not isinstance(groups, Mapping) or not isinstance(groups.get(group), Mapping):
        raise AnsibleActionFail(f"cpu_power_cycle: carry_var {var} is not the registered result of a contract step of group {group}")
    return groups[group]
