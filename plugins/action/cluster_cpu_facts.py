# Copyright (c) 2026 cpucompat.cluster contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Action plugin behind cpucompat.cluster.cluster_cpu_facts (documentation in plugins/modules/cluster_cpu_facts.py).

The verbs that only read: ``baseline``, ``expansion`` and ``migration``. The writing verbs have their own actions
(``cpu_contract``, ``cpu_upgrade_check``); given here they still run, through those, with a deprecation warning, until
0.4.0. What every aggregating action does is in ``plugin_utils/_aggregate.py``, each verb in
``module_utils/verbs/``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ansible.errors import AnsibleActionFail

from ansible_collections.cpucompat.cluster.plugins.action.cpu_contract import ActionModule as ContractAction
from ansible_collections.cpucompat.cluster.plugins.action.cpu_upgrade_check import ActionModule as UpgradeCheckAction
from ansible_collections.cpucompat.cluster.plugins.module_utils.contract._observed import FAILED
from ansible_collections.cpucompat.cluster.plugins.module_utils.verbs import _common, _reading
from ansible_collections.cpucompat.cluster.plugins.module_utils.reports._planning import FAIL_ON
from ansible_collections.cpucompat.cluster.plugins.plugin_utils._aggregate import AggregateAction
from ansible_collections.cpucompat.cluster.plugins.plugin_utils._group_reader import GroupReader
from ansible_collections.cpucompat.cluster.plugins.plugin_utils._tier_vars import group_tiers

# The writing verbs this action took before 0.3.0 -> the action that has them now.
MOVED: dict[str, type[AggregateAction]] = {**{kind: ContractAction for kind in ContractAction.KINDS},
                                           **{kind: UpgradeCheckAction for kind in UpgradeCheckAction.KINDS}}
REMOVED_IN = "0.4.0"


OPTIONS = {
    "fail_on": {"type": "str", "default": "incompatible", "choices": list(FAIL_ON)},
    "hosts": {"type": "list", "elements": "str"},
    "candidates": {"type": "list", "elements": "str", "default": []},
    "sources": {"type": "list", "elements": "str"},
    "verdicts_var": {"type": "str"},
    "source_observations_var": {"type": "str"},
    "target_observations_var": {"type": "str"},
    "requested": {"type": "list", "elements": "dict", "default": []},
    "allow_partial": {"type": "bool", "default": False},
}


class ActionModule(AggregateAction, name="cluster_cpu_facts", kinds=("baseline", "expansion", "migration"), options=OPTIONS):
    """Aggregate the cpucompat facts of a group on the controller into a baseline, expansion or migration report."""

    def run(self, tmp: Any = None, task_vars: dict[str, Any] | None = None) -> dict[str, Any]:
        kind = self._task.args.get("report")
        door = MOVED.get(kind) if isinstance(kind, str) else None
        if door is None:
            return super().run(tmp, task_vars)
        self._display.deprecated(
            msg=f"cpucompat.cluster.cluster_cpu_facts with report={kind} writes; use cpucompat.cluster.{door.NAME} "
                f"({'report: ' + kind if 'report' in door.ARGUMENT_SPEC else 'no report option'}) instead",
            version=REMOVED_IN, collection_name="cpucompat.cluster")
        return self.aggregate(door, {**door.ARGUMENT_SPEC, "report": {"type": "str", "choices": [kind]}}, tmp, task_vars)

    @classmethod
    def verb(cls, kind: str, args: Mapping[str, Any], reader: GroupReader, task_vars: Mapping[str, Any],
             common: _common.Common) -> _common.Outcome:
        names = _names(kind, args, task_vars)
        reader.check_known([*names, *args["candidates"], *(args["sources"] or [])])
        if kind == "baseline":
            return _reading.baseline(common, reader, names, args["group"])
        if kind == "expansion":
            return _reading.expansion(common, reader, names, args["candidates"], args["domains_var"], args["fail_on"],
                                      args["group"], group_tiers(cls.NAME, reader, args["group"], task_vars, args["candidates"]))
        sources = args["sources"] if args["sources"] is not None else names
        observed = None
        if args["source_observations_var"] and args["target_observations_var"]:
            observed = (loop_observations(reader, sources, args["source_observations_var"], lambda h, item: f"{h}/{item.get('name')}"),
                        loop_observations(reader, names, args["target_observations_var"], lambda h, item: (item.get("key"), h)))
        return _reading.migration(common, reader, names, sources, args["domains_var"], args["verdicts_var"], args["requested"],
                                  args["group"], observed, group_tiers(cls.NAME, reader, args["group"], task_vars))


def _names(kind: str, args: Mapping[str, Any], task_vars: Mapping[str, Any]) -> list[str]:
    """The hosts to aggregate: the hosts option, else the baseline's inventory group, else the play's hosts."""
    if args["hosts"] is not None:
        names = list(args["hosts"])
    elif args["group"] and kind == "baseline":
        names = _common.group_map(task_vars.get("groups") or {}, [args["group"]])[args["group"]]
    else:
        names = list(task_vars.get("ansible_play_hosts_all", []))
    if not names:
        raise AnsibleActionFail("cluster_cpu_facts: no hosts to aggregate (the hosts option and the play are empty)")
    return names


def loop_observations(reader: GroupReader, names: list[str], var: str, key: Any) -> dict[Any, Any]:
    """The observations a cpu_observe loop registered on each host (``key(host, item)`` names each), or why none."""
    out: dict[Any, Any] = {}
    for name in names:
        registered = reader.registered_var(name, var)
        for result in (registered.get("results") or []) if isinstance(registered, Mapping) else []:
            if not isinstance(result, Mapping) or not isinstance(result.get("item"), Mapping) or result.get("skipped"):
                continue
            if isinstance(result.get("observation"), Mapping):
                out[key(name, result["item"])] = dict(result["observation"])
            else:
                out[key(name, result["item"])] = FAILED + str(result.get("msg") or "cpu_observe failed")
    return out
