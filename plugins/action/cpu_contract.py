# Copyright (c) 2026 cpucompat.cluster contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Action plugin behind cpucompat.cluster.cpu_contract (documentation in plugins/modules/cpu_contract.py).

The verbs that write the contract store: ``contract``, ``plan`` and ``rebuild``; what every aggregating action does
is in ``plugin_utils/_aggregate.py``, each verb in ``module_utils/verbs/``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from ansible.errors import AnsibleActionFail

from ansible_collections.cpucompat.cluster.plugins.module_utils.contract._change import ChangeRequest
from ansible_collections.cpucompat.cluster.plugins.module_utils.contract._tiers import BASE, tier_key
from ansible_collections.cpucompat.cluster.plugins.module_utils.verbs import _common, _contracting
from ansible_collections.cpucompat.cluster.plugins.plugin_utils._aggregate import (AggregateAction, group_names, observations_of,
                                                                                   tier_observations_of)
from ansible_collections.cpucompat.cluster.plugins.plugin_utils._group_reader import GroupReader
from ansible_collections.cpucompat.cluster.plugins.plugin_utils._tier_vars import group_tiers, tiers_of

CHANGE_SPEC = {
    "action": {"type": "str", "required": True, "choices": ["raise", "lower"]},
    "without": {"type": "list", "elements": "str", "default": []},
    "allow_lower": {"type": "bool", "default": False},
    "allow_security_loss": {"type": "bool", "default": False},
    "reason": {"type": "str", "default": ""},
    "level": {"type": "str"},
}


OPTIONS = {
    "change": {"type": "dict", "options": CHANGE_SPEC},
    "groups": {"type": "list", "elements": "str"},
    "carry_var": {"type": "str"},
    "observations_var": {"type": "str"},
    "tier_observations_var": {"type": "str"},
    "extra_stacks": {"type": "list", "elements": "path", "default": []},
    "allow_partial": {"type": "bool", "default": False},
    "pin": {"type": "bool", "default": False},
    "defer_pin": {"type": "bool", "default": False},
    "adopt": {"type": "list", "elements": "str", "default": []},
    "on_refusal": {"type": "str", "default": "fail", "choices": ["fail", "exclude"]},
    "level": {"type": "str"},
    "tier": {"type": "str"},
    "platforms": {"type": "list", "elements": "str", "default": [],
                  "choices": ["libvirt", "qemu", "proxmox", "nova", "kubevirt", "incus"]},
}


class ActionModule(AggregateAction, name="cpu_contract", kinds=("contract", "plan", "rebuild"), options=OPTIONS, writes=True):
    """Pin, admit against, change or rebuild each group's CPU contract, in the contract store."""

    @classmethod
    def verb(cls, kind: str, args: Mapping[str, Any], reader: GroupReader, task_vars: Mapping[str, Any],
             common: _common.Common) -> _common.Outcome:
        inventory = task_vars.get("groups") or {}
        if kind == "contract":
            groups = _common.group_map(inventory, group_names(cls.NAME, kind, args))
            carried, as_of = _carried(reader, args["carry_var"], task_vars)
            observations = None
            if args["observations_var"]:
                # Without carry_var: no host observes in this run; the observations made before it (their cached
                # facts) are judged in this same step.
                observations = observations_of(reader, [h for hosts in groups.values() for h in hosts], args["observations_var"])
            of_groups = tiers_of(cls.NAME, reader, groups, inventory, task_vars)
            by_tier = None
            if observations is not None and args["tier_observations_var"]:
                # Each tier's hosts by their observation of the tier's <cpu> (keyed by the tier's contract name).
                by_tier = tier_observations_of(reader, {t.key: t.hosts for found in of_groups.values() for t in found.extra},
                                               args["tier_observations_var"])
            return _contracting.contract(common, reader, groups, args["domains_var"], carried, _extra(args["extra_stacks"]),
                                         observations, of_groups, by_tier, as_of)
        if kind == "rebuild":
            if not args["group"]:
                raise AnsibleActionFail(f"{cls.NAME}: report=rebuild needs group")
            hosts = _common.group_map(inventory, [args["group"]])[args["group"]]
            # A tier's contract is rebuilt from the stamps of the tier's domains on the group's hosts.
            key = tier_key(args["group"], args["tier"] or BASE)
            return _contracting.rebuild(common, reader, key, hosts, args["domains_var"])
        if not args["group"] or not args["change"]:
            raise AnsibleActionFail(f"{cls.NAME}: report=plan needs group and change (action: raise or lower)")
        change = args["change"]
        request = ChangeRequest(change["action"], tuple(change["without"]), change["allow_lower"],
                                change["allow_security_loss"], change["reason"], change["level"] or None)
        hosts = _common.group_map(inventory, [args["group"]])[args["group"]]
        tiers = group_tiers(cls.NAME, reader, args["group"], task_vars)
        return _contracting.plan(common, reader, args["group"], hosts, request, args["domains_var"], tiers, args["tier"] or None)


def _carried(reader: GroupReader, var: str | None, task_vars: Mapping[str, Any]) -> tuple[dict[str, Any] | None, int | None]:
    """The group sections of an earlier contract step of this run (its registered result), read untemplated, and the
    age of the facts it read."""
    if not var:
        return None, None
    host = task_vars.get("inventory_hostname")
    registered = reader.registered_var(str(host), var) if host else None
    report = registered.get("report") if isinstance(registered, Mapping) else None
    if not isinstance(report, Mapping) or not isinstance(report.get("groups"), Mapping):
        raise AnsibleActionFail(f"cpu_contract: carry_var {var} is not the registered result of a contract step")
    as_of = report.get("facts_as_of")
    return dict(report["groups"]), as_of if isinstance(as_of, int) else None


def _extra(paths: list[str]) -> list[Any]:
    """The hosts of the new-stack files an upgrade check wrote (host name -> cpucompat facts)."""
    hosts = []
    for path in paths:
        try:
            with open(path, encoding="utf-8") as fh:
                hosts += _common.extra_hosts(json.load(fh))
        except (OSError, ValueError) as exc:
            raise AnsibleActionFail(f"cpu_contract: extra stack file {path} cannot be read: {exc}") from exc
    return hosts
