# Copyright (c) 2026 cpucompat.cluster contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Action plugin behind cpucompat.cluster.cluster_cpu_facts (documentation in plugins/modules/cluster_cpu_facts.py)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from ansible.errors import AnsibleActionFail
from ansible.plugins.action import ActionBase

from ansible_collections.cpucompat.cluster.plugins.module_utils._baseline import BaselineOptions
from ansible_collections.cpucompat.cluster.plugins.module_utils._cluster import cluster_view
from ansible_collections.cpucompat.cluster.plugins.module_utils._errors import CpuCompatError
from ansible_collections.cpucompat.cluster.plugins.module_utils._libvirt_xml import DEFAULT_CPU_MAP, load_cpu_map
from ansible_collections.cpucompat.cluster.plugins.module_utils._report import write_reports

ARGUMENT_SPEC = {
    "hosts": {"type": "list", "elements": "str"},
    "allow_partial": {"type": "bool", "default": False},
    "migratable_only": {"type": "bool", "default": True},
    "allow_deprecated": {"type": "bool", "default": False},
    "require_features": {"type": "list", "elements": "str", "default": []},
    "min_model": {"type": "str"},
    "exclude_features": {"type": "list", "elements": "str", "default": []},
    "vendor_neutral": {"type": "bool", "default": False},
    "cpu_map": {"type": "path", "default": DEFAULT_CPU_MAP},
    "report_dir": {"type": "path"},
}


def _raw_vars(hostvars: Any, name: str) -> Mapping[str, Any]:
    """A host's variables as stored, not templated.

    Facts and registered results are data, never templates; ``hostvars[name][key]`` would walk and finalise every
    element of the facts through the templating engine (about 50 ms per host of x86_64 facts in ansible-core 2.19),
    which made the aggregation cost grow with the facts' size instead of the baseline's.
    """
    raw_get = getattr(hostvars, "raw_get", None)
    return raw_get(name) if raw_get is not None else hostvars[name]


def _probe_error(registered: Any) -> str:
    """The reason of a failed probe, from the result the probe role registers (cpucompat_probe_result)."""
    if isinstance(registered, Mapping) and registered.get("failed"):
        return str(registered.get("msg") or "probe failed")
    return ""


class ActionModule(ActionBase):
    """Aggregate the cpucompat facts of a group on the controller; no module runs on the hosts."""

    TRANSFERS_FILES = False
    _requires_connection = False

    def run(self, tmp: Any = None, task_vars: dict[str, Any] | None = None) -> dict[str, Any]:
        result = super().run(tmp, task_vars)
        task_vars = task_vars or {}
        _validation, args = self.validate_argument_spec(argument_spec=ARGUMENT_SPEC)
        hostvars = task_vars.get("hostvars", {})
        names = args["hosts"] if args["hosts"] is not None else list(task_vars.get("ansible_play_hosts_all", []))
        if not names:
            raise AnsibleActionFail("cluster_cpu_facts: no hosts to aggregate (the hosts option and the play are empty)")
        reachable = set(task_vars.get("ansible_play_hosts", names))
        unknown = sorted(n for n in names if n not in hostvars)
        if unknown:
            raise AnsibleActionFail(f"cluster_cpu_facts: not in the inventory: {', '.join(unknown)}")
        raw = {n: _raw_vars(hostvars, n) for n in names}
        facts_by_host = {n: (raw[n].get("ansible_facts") or {}).get("cpucompat") for n in names}
        # Hosts of the play that failed or were unreachable have left ansible_play_hosts.
        unreachable = sorted(n for n in names if n not in reachable and n in task_vars.get("ansible_play_hosts_all", []))
        opts = BaselineOptions(
            migratable_only=args["migratable_only"], allow_deprecated=args["allow_deprecated"],
            require_features=tuple(args["require_features"]), min_model=args["min_model"],
            exclude_features=tuple(args["exclude_features"]), vendor_neutral=args["vendor_neutral"])
        try:
            cpu_map = load_cpu_map(args["cpu_map"])
        except CpuCompatError:
            cpu_map = None  # s390x/aarch64 need none; for x86_64 the view says the XML could not be rendered
        probe_errors = {n: _probe_error(raw[n].get("cpucompat_probe_result")) for n in names}
        view = cluster_view(facts_by_host, unreachable, opts, cpu_map, args["allow_partial"], probe_errors)
        if view["baseline"] is not None and view["xml"] is None:
            view["error"] = f"libvirt's CPU map not found at {args['cpu_map']} on the controller: the XML was not rendered"
        # Plain JSON data: host names templated from the inventory carry Ansible's origin tags, which would otherwise be
        # serialised into every host's fact cache entry (run_once gives the fact to every host of the play).
        view = json.loads(json.dumps(view))
        result.update(changed=False, ansible_facts={"cpucompat_cluster": view})
        if args["report_dir"]:
            # Reports live on the controller, where this action runs: written directly, in check mode too.
            try:
                result["report_files"] = write_reports(view, args["report_dir"], "baseline")
            except (OSError, CpuCompatError) as exc:
                raise AnsibleActionFail(f"cluster_cpu_facts: writing the reports to {args['report_dir']} failed: {exc}") from exc
        return result
