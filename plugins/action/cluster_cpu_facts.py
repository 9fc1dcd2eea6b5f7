# Copyright (c) 2026 cpucompat.cluster contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Action plugin behind cpucompat.cluster.cluster_cpu_facts (documentation in plugins/modules/cluster_cpu_facts.py).

The one way the collection aggregates a group on the controller, for every report kind: facts and registered results
are read untemplated, hosts without usable facts are named, and the reports are written atomically.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from ansible.errors import AnsibleActionFail
from ansible.plugins.action import ActionBase

from ansible_collections.cpucompat.cluster.plugins.module_utils._baseline import BaselineOptions
from ansible_collections.cpucompat.cluster.plugins.module_utils._cluster import (
    GroupFacts, cluster_view, expansion_report, group_facts, migration_report)
from ansible_collections.cpucompat.cluster.plugins.module_utils._errors import CpuCompatError
from ansible_collections.cpucompat.cluster.plugins.module_utils._libvirt_map import DEFAULT_CPU_MAP
from ansible_collections.cpucompat.cluster.plugins.module_utils._planning import FAIL_ON
from ansible_collections.cpucompat.cluster.plugins.module_utils._report import write_reports

REPORT_KINDS = ("baseline", "expansion", "migration")
ARGUMENT_SPEC = {
    "report": {"type": "str", "default": "baseline", "choices": list(REPORT_KINDS)},
    "hosts": {"type": "list", "elements": "str"},
    "candidates": {"type": "list", "elements": "str", "default": []},
    "sources": {"type": "list", "elements": "str"},
    "domains_var": {"type": "str"},
    "verdicts_var": {"type": "str"},
    "requested": {"type": "list", "elements": "dict", "default": []},
    "fail_on": {"type": "str", "default": "incompatible", "choices": list(FAIL_ON)},
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


class GroupReader:
    """Hosts' variables as stored, never templated.

    Facts and registered results are data, never templates; ``hostvars[name][key]`` would walk and finalise every
    element of the facts through the templating engine (about 50 ms per host of x86_64 facts in ansible-core 2.19),
    which made the aggregation cost grow with the facts' size instead of the group's.
    """

    def __init__(self, task_vars: Mapping[str, Any]) -> None:
        self._hostvars = task_vars.get("hostvars", {})
        self._play_all = list(task_vars.get("ansible_play_hosts_all", []))
        # Hosts of the play that failed or were unreachable have left ansible_play_hosts.
        self._reachable = set(task_vars.get("ansible_play_hosts", self._play_all))

    def check_known(self, names: list[str]) -> None:
        unknown = sorted(n for n in names if n not in self._hostvars)
        if unknown:
            raise AnsibleActionFail(f"cluster_cpu_facts: not in the inventory: {', '.join(unknown)}")

    def raw(self, name: str) -> Mapping[str, Any]:
        raw_get = getattr(self._hostvars, "raw_get", None)
        return raw_get(name) if raw_get is not None else self._hostvars[name]

    def group(self, names: list[str]) -> GroupFacts:
        """The hosts' cpucompat facts, sorted into usable and not (with the reason)."""
        raw = {n: self.raw(n) for n in names}
        facts = {n: (raw[n].get("ansible_facts") or {}).get("cpucompat") for n in names}
        unreachable = [n for n in names if n not in self._reachable and n in self._play_all]
        return group_facts(facts, unreachable, {n: _probe_error(raw[n].get("cpucompat_probe_result")) for n in names})

    def registered(self, names: list[str], var: str | None, key: str, kind: type) -> dict[str, Any]:
        """``key`` of each host's registered result in ``var`` (skipped, absent or of another shape: left out)."""
        if not var:
            return {}
        out = {}
        for name in names:
            registered = self.raw(name).get(var)
            if isinstance(registered, Mapping) and isinstance(registered.get(key), kind):
                out[name] = registered[key]
        return out

    def domains(self, names: list[str], var: str | None) -> dict[str, list[Mapping[str, Any]]]:
        """The ``domains`` of each host's registered domain_cpu_info result."""
        return self.registered(names, var, "domains", list)

    def verdicts(self, names: list[str], var: str | None) -> dict[str, Mapping[str, str]]:
        """libvirt's verdicts from each host's registered hypervisor_cpu_compare result."""
        return self.registered(names, var, "verdicts", Mapping)


def _probe_error(registered: Any) -> str:
    """The reason of a failed probe, from the result the probe role registers (cpucompat_probe_result)."""
    if isinstance(registered, Mapping) and registered.get("failed"):
        return str(registered.get("msg") or "probe failed")
    return ""


def baseline_options(args: Mapping[str, Any]) -> BaselineOptions:
    return BaselineOptions(migratable_only=args["migratable_only"], allow_deprecated=args["allow_deprecated"],
                           require_features=tuple(args["require_features"]), min_model=args["min_model"],
                           exclude_features=tuple(args["exclude_features"]), vendor_neutral=args["vendor_neutral"])


def build_report(args: Mapping[str, Any], reader: GroupReader, names: list[str]) -> dict[str, Any]:
    """The report of the kind ``args['report']`` over ``names`` (the group, the cluster, or the targets)."""
    kind = args["report"]
    if kind == "baseline":
        return cluster_view(reader.group(names), baseline_options(args), args["cpu_map"], args["allow_partial"])
    if kind == "expansion":
        overlap = sorted(set(names) & set(args["candidates"]))
        if overlap:
            raise AnsibleActionFail(f"cluster_cpu_facts: hosts both in the cluster and among the candidates: {', '.join(overlap)}")
        return expansion_report(reader.group(names), reader.group(args["candidates"]), reader.domains(names, args["domains_var"]),
                                baseline_options(args), args["cpu_map"], args["fail_on"])
    sources = args["sources"] if args["sources"] is not None else names
    return migration_report(reader.group(names), reader.domains(sources, args["domains_var"]),
                            reader.verdicts(names, args["verdicts_var"]), args["requested"], args["cpu_map"])


class ActionModule(ActionBase):
    """Aggregate the cpucompat facts of a group on the controller; no module runs on the hosts."""

    TRANSFERS_FILES = False
    _requires_connection = False

    def run(self, tmp: Any = None, task_vars: dict[str, Any] | None = None) -> dict[str, Any]:
        result = super().run(tmp, task_vars)
        task_vars = task_vars or {}
        _validation, args = self.validate_argument_spec(argument_spec=ARGUMENT_SPEC)
        names = args["hosts"] if args["hosts"] is not None else list(task_vars.get("ansible_play_hosts_all", []))
        if not names:
            raise AnsibleActionFail("cluster_cpu_facts: no hosts to aggregate (the hosts option and the play are empty)")
        reader = GroupReader(task_vars)
        reader.check_known([*names, *args["candidates"], *(args["sources"] or [])])
        try:
            report = build_report(args, reader, names)
        except CpuCompatError as exc:
            raise AnsibleActionFail(f"cluster_cpu_facts ({args['report']}): {exc}") from exc
        # Plain JSON data: host names templated from the inventory carry Ansible's origin tags, which would otherwise be
        # serialised into every host's fact cache entry (run_once gives the fact to every host of the play).
        report = json.loads(json.dumps(report))
        result.update(changed=False, report=report)
        if args["report"] == "baseline":
            result["ansible_facts"] = {"cpucompat_cluster": report}
        if args["report_dir"]:
            # Reports live on the controller, where this action runs: written directly, in check mode too.
            try:
                result["report_files"] = write_reports(report, args["report_dir"], args["report"])
            except (OSError, CpuCompatError) as exc:
                raise AnsibleActionFail(f"cluster_cpu_facts: writing the reports to {args['report_dir']} failed: {exc}") from exc
        return result
