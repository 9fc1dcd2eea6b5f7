# Copyright (c) 2026 cpucompat.cluster contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""A group's tiers are its hosts' variables: read from the host the task runs on when it is in the group, else from
the group's first host, also where the reader takes facts and registered results from ansible-core's own stores (which
hold no inventory variable)."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from ansible_collections.cpucompat.cluster.plugins.plugin_utils._group_reader import GroupReader
from ansible_collections.cpucompat.cluster.plugins.plugin_utils._tier_vars import tiers_of

TIERS = {"high": {"hosts": "hv2", "level": None}}


class _Manager:
    """ansible-core 2.19's variable manager as the reader uses it: the fact cache and the registered results."""

    def __init__(self) -> None:
        self._fact_cache = {"hv1": {}, "hv2": {}, "ctl": {}}
        self._nonpersistent_fact_cache: dict[str, Any] = {}


class _HostVars(Mapping[str, Mapping[str, Any]]):
    """``hostvars``: each host's variables (the inventory's group variable among them), and the variable manager."""

    def __init__(self, hosts: Mapping[str, Mapping[str, Any]]) -> None:
        self._hosts = hosts
        self._variable_manager = _Manager()

    def __getitem__(self, name: str) -> Mapping[str, Any]:
        return self._hosts[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._hosts)

    def __len__(self) -> int:
        return len(self._hosts)


def test_a_group_the_task_runs_outside_of_has_its_tiers_read_from_its_first_host() -> None:
    hostvars = _HostVars({"hv1": {"cpucompat_tiers": TIERS}, "hv2": {"cpucompat_tiers": TIERS}, "ctl": {}})
    task_vars = {"hostvars": hostvars, "inventory_hostname": "ctl", "ansible_play_hosts_all": ["ctl"]}
    reader = GroupReader(task_vars)
    found = tiers_of("cpu_contract", reader, {"g": ["hv1", "hv2"]}, {"g": ["hv1", "hv2"], "all": ["hv1", "hv2", "ctl"]},
                     task_vars)
    assert list(found) == ["g"] and found["g"].tier("high").hosts == ("hv2",), found


def test_on_a_host_of_the_group_its_own_variables_serve() -> None:
    hostvars = _HostVars({"hv1": {}, "hv2": {}})
    task_vars = {"hostvars": hostvars, "inventory_hostname": "hv1", "cpucompat_tiers": TIERS}
    found = tiers_of("cpu_contract", GroupReader(task_vars), {"g": ["hv1", "hv2"]}, {"g": ["hv1", "hv2"]}, task_vars)
    assert found["g"].tier("high").hosts == ("hv2",)
