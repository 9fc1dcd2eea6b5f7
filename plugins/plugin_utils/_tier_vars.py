# Copyright (c) 2026 cpucompat.cluster contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The groups' tiers from the inventory's variables, for the aggregating actions (module_utils/contract/_tiers). Private."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from ansible.errors import AnsibleActionFail

from ansible_collections.cpucompat.cluster.plugins.module_utils.contract._tiers import TierError, Tiers, parse_tiers
from ansible_collections.cpucompat.cluster.plugins.plugin_utils._group_reader import GroupReader


def tiers_of(action: str, reader: GroupReader, groups: Mapping[str, list[str]], inventory: Mapping[str, Any],
             task_vars: Mapping[str, Any]) -> dict[str, Tiers]:
    """Each group's tiers (``cpucompat_tiers``, a group variable: read from this host's variables when it is in the group,
    else from the group's first host's) with the operator's ``cpucompat_domain_tiers``; groups without tiers are left out."""
    out = {}
    me = task_vars.get("inventory_hostname")
    for name, hosts in groups.items():
        if me in hosts or not hosts:
            value, chosen = task_vars.get("cpucompat_tiers") if hosts else None, task_vars.get("cpucompat_domain_tiers")
        else:
            value = reader.host_var(hosts[0], "cpucompat_tiers")
            chosen = reader.host_var(hosts[0], "cpucompat_domain_tiers") or task_vars.get("cpucompat_domain_tiers")
        try:
            found = parse_tiers(name, value, hosts, inventory, chosen)
        except TierError as exc:
            raise AnsibleActionFail(f"{action}: {exc}") from None
        if found is not None:
            out[name] = found
    return out


def group_tiers(action: str, reader: GroupReader, group: str | None, task_vars: Mapping[str, Any],
                extra: Sequence[str] = ()) -> Tiers | None:
    """One inventory group's tiers (None: it has none, or is no inventory group) over its hosts and ``extra`` hosts
    (an expansion's candidates, which a tier's hosts may name already)."""
    inventory = task_vars.get("groups") or {}
    if not group or group not in inventory:
        return None
    return tiers_of(action, reader, {group: [*inventory[group], *extra]}, inventory, task_vars).get(group)
