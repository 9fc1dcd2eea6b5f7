# Copyright (c) 2026 cpucompat.cluster contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Action plugin behind cpucompat.cluster.cluster_cpu_facts (documentation in plugins/modules/cluster_cpu_facts.py).

The one way the collection aggregates a group on the controller, for every report kind: facts and registered results
are read untemplated, hosts without usable facts are named, and the reports are written atomically.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from typing import Any

from ansible.errors import AnsibleActionFail
from ansible.plugins.action import ActionBase

from ansible_collections.cpucompat.cluster.plugins.module_utils.engine._baseline import BaselineOptions
from ansible_collections.cpucompat.cluster.plugins.module_utils.reports._cluster import (
    GroupFacts, cluster_fact, cluster_view, expansion_report, group_facts, migration_report)
from ansible_collections.cpucompat.cluster.plugins.module_utils.contract import _contract
from ansible_collections.cpucompat.cluster.plugins.module_utils._errors import CpuCompatError
from ansible_collections.cpucompat.cluster.plugins.module_utils.cpu._libvirt_map import DEFAULT_CPU_MAP, MAP_ARCHES, cached_cpu_map
from ansible_collections.cpucompat.cluster.plugins.module_utils.reports._report import REPORT_SCHEMA
from ansible_collections.cpucompat.cluster.plugins.module_utils.reports._planning import FAIL_ON
from ansible_collections.cpucompat.cluster.plugins.module_utils.reports._report import report_markdown, write_reports

REPORT_KINDS = ("baseline", "expansion", "migration", "contract", "plan")
ARGUMENT_SPEC = {
    "report": {"type": "str", "default": "baseline", "choices": list(REPORT_KINDS)},
    "group": {"type": "str"},
    "groups": {"type": "list", "elements": "str"},
    "contract_dir": {"type": "str", "default": ""},
    "contract_action": {"type": "str", "choices": ["raise", "lower"]},
    "without": {"type": "list", "elements": "str", "default": []},
    "allow_lower": {"type": "bool", "default": False},
    "allow_security_loss": {"type": "bool", "default": False},
    "reason": {"type": "str", "default": ""},
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
    "report_dir": {"type": "str"},
    "return_report": {"type": "bool", "default": True},
}
CONSOLE_HOST_ROWS = 20


class GroupReader:
    """Hosts' variables as stored, never templated.

    Facts and registered results are data, never templates; ``hostvars[name][key]`` would walk and finalise every
    element of the facts through the templating engine (about 50 ms per host of x86_64 facts in ansible-core 2.19),
    which made the aggregation cost grow with the facts' size instead of the group's. ``hostvars.raw_get`` is cheaper
    but still builds every variable of the host, magic variables included, whose group and play host lists make each
    call grow with the inventory: 10,000 calls over 10,000 hosts took 65 s. So the variables this action reads (the
    host's facts, from the fact cache, and what was registered for it in this run) are read where the variable manager
    keeps them, and ``raw_get`` serves where it keeps them elsewhere (other ansible-core versions, tests).
    """

    def __init__(self, task_vars: Mapping[str, Any]) -> None:
        self._hostvars = task_vars.get("hostvars", {})
        self._play_all = list(task_vars.get("ansible_play_hosts_all", []))
        # Hosts of the play that failed or were unreachable have left ansible_play_hosts.
        self._reachable = set(task_vars.get("ansible_play_hosts", self._play_all))
        self._raw: dict[str, Mapping[str, Any]] = {}
        self._unreadable: dict[str, str] = {}
        manager = getattr(self._hostvars, "_variable_manager", None)
        self._fact_cache = getattr(manager, "_fact_cache", None)
        self._registered = getattr(manager, "_nonpersistent_fact_cache", None)

    def _read(self, name: str) -> Mapping[str, Any]:
        """A host's facts and registered variables (only these: the inventory's variables are not read here)."""
        if self._fact_cache is not None and isinstance(self._registered, Mapping) and hasattr(self._fact_cache, "get"):
            try:
                facts = self._fact_cache.get(name)
            except KeyError:
                facts = None
            return {**self._registered.get(name, {}), "ansible_facts": facts or {}}
        raw_get = getattr(self._hostvars, "raw_get", None)
        return raw_get(name) if raw_get is not None else self._hostvars[name]

    def check_known(self, names: list[str]) -> None:
        unknown = sorted(n for n in names if n not in self._hostvars)
        if unknown:
            raise AnsibleActionFail(f"cluster_cpu_facts: not in the inventory: {', '.join(unknown)}")

    def raw(self, name: str) -> Mapping[str, Any]:
        """The host's variables, read once per action run; an unreadable host reads as empty (and is remembered)."""
        if name not in self._raw:
            try:
                self._raw[name] = self._read(name)
            # The fact cache is a plugin (jsonfile, redis, ...) and raises what its backend raises: a corrupt entry, a
            # server gone away. Any of them makes this one host's facts unusable, named with the reason.
            except Exception as exc:  # pylint: disable=broad-exception-caught
                self._unreadable[name] = _reason(exc)
                self._raw[name] = {}
        return self._raw[name]

    def cached_fact(self, name: str, key: str) -> Any:
        """``ansible_facts[key]`` of a host as it stands (None when absent or unreadable)."""
        facts = self.raw(name).get("ansible_facts")
        return facts.get(key) if isinstance(facts, Mapping) else None

    def group(self, names: list[str]) -> GroupFacts:
        """The hosts' cpucompat facts, sorted into usable and not (with the reason)."""
        raw = {n: self.raw(n) for n in names}
        facts = {n: (raw[n].get("ansible_facts") or {}).get("cpucompat") for n in names}
        unreachable = [n for n in names if n not in self._reachable and n in self._play_all]
        return group_facts(facts, unreachable, {n: _probe_error(raw[n].get("cpucompat_probe_result")) for n in names},
                           {n: self._unreadable[n] for n in names if n in self._unreadable})

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


def _reason(exc: BaseException) -> str:
    """One line: the exception and the ones it was raised from (the cache plugin's own words are often the cause)."""
    parts = []
    while exc is not None and len(parts) < 3:
        parts.append(f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}".rstrip(": "))
        exc = exc.__cause__ or exc.__context__
    return " <- ".join(parts)


def _probe_error(registered: Any) -> str:
    """The reason of a failed probe, from the result the probe role registers (cpucompat_probe_result)."""
    if isinstance(registered, Mapping) and registered.get("failed"):
        return str(registered.get("msg") or "probe failed")
    return ""


def baseline_options(args: Mapping[str, Any]) -> BaselineOptions:
    return BaselineOptions(migratable_only=args["migratable_only"], allow_deprecated=args["allow_deprecated"],
                           require_features=tuple(args["require_features"]), min_model=args["min_model"],
                           exclude_features=tuple(args["exclude_features"]), vendor_neutral=args["vendor_neutral"])


def build_report(args: Mapping[str, Any], reader: GroupReader, names: list[str],
                 contract: _contract.Contract | None = None) -> dict[str, Any]:
    """The report of the kind ``args['report']`` over ``names`` (the group, the cluster, or the targets).

    ``contract``: the pinned contract of ``args['group']``; the planning checks judge against it when there is one.
    """
    kind = args["report"]
    if kind == "baseline":
        return cluster_view(reader.group(names), baseline_options(args), args["cpu_map"], args["allow_partial"])
    if kind == "expansion":
        overlap = sorted(set(names) & set(args["candidates"]))
        if overlap:
            raise AnsibleActionFail(f"cluster_cpu_facts: hosts both in the cluster and among the candidates: {', '.join(overlap)}")
        cluster, candidates = reader.group(names), reader.group(args["candidates"])
        report = expansion_report(cluster, candidates, reader.domains(names, args["domains_var"]), baseline_options(args),
                                  args["cpu_map"], args["fail_on"])
        if contract is not None and not report["hosts_without_facts"]:
            new = candidates.hosts()
            report["contract"] = _contract.expansion_against(contract, new, [*cluster.hosts(), *new], baseline_options(args))
            refused = [n for n, c in report["contract"]["candidates"].items() if c["would_be_refused"]]
            if refused and args["fail_on"] != "never":
                report["verdict"]["ok"] = False
                report["verdict"]["reasons"].append(f"the group's contract would refuse {', '.join(refused)}")
        return report
    sources = args["sources"] if args["sources"] is not None else names
    domains = reader.domains(sources, args["domains_var"])
    targets = reader.group(names)
    report = migration_report(targets, domains, reader.verdicts(names, args["verdicts_var"]), args["requested"], args["cpu_map"])
    if contract is not None:
        report["contract"] = _contract.migration_against(contract, domains, _cpu_map_for(targets, args["cpu_map"]))
    return report


def beside_inventory(task_vars: Mapping[str, Any], name: str) -> str:
    """``name`` in the folder of the first inventory source that is a file or a folder; else in the current directory."""
    for source in task_vars.get("ansible_inventory_sources") or []:
        source = str(source)
        if os.path.isdir(source):
            return os.path.join(source, name)
        if os.path.isfile(source):
            return os.path.join(os.path.dirname(os.path.abspath(source)), name)
    return os.path.join(os.getcwd(), name)


def _group_map(task_vars: Mapping[str, Any], names: list[str]) -> dict[str, list[str]]:
    """Each named inventory group's hosts; a host in two of them is refused by name."""
    inventory = task_vars.get("groups") or {}
    unknown = [g for g in names if g not in inventory]
    if unknown:
        raise AnsibleActionFail(f"cluster_cpu_facts: no such inventory group: {', '.join(unknown)}")
    seen: dict[str, str] = {}
    for group in names:
        for host in inventory[group]:
            if host in seen and seen[host] != group:
                raise AnsibleActionFail(f"cluster_cpu_facts: host {host} is in two of the groups, {seen[host]} and {group}; "
                                        "each host keeps one group's contract")
            seen[host] = group
    return {g: list(inventory[g]) for g in names}


def _cpu_map_for(group: GroupFacts, path: str) -> Any:
    arches = {f.get("arch") for f in group.usable.values()}
    return cached_cpu_map(path) if arches & set(MAP_ARCHES) else None


def contract_report(args: Mapping[str, Any], reader: GroupReader, task_vars: Mapping[str, Any],
                    check_mode: bool) -> tuple[dict[str, Any], list[str], dict[str, Any]]:
    """Pin or admit every listed group (report kind ``contract``); the contract files written; each group's CPU."""
    names = args["groups"] or ([args["group"]] if args["group"] else [])
    if not names:
        raise AnsibleActionFail("cluster_cpu_facts: report=contract needs group or groups")
    directory = os.path.expanduser(args["contract_dir"]) or beside_inventory(task_vars, "cpucompat-contracts")
    sections, written, contracts = {}, [], {}
    for name, hosts in _group_map(task_vars, names).items():
        path = _contract.contract_path(directory, name)
        group = reader.group(hosts)
        run = _contract.group_contract(name, group, _contract.load(path), path, baseline_options(args),
                                       _cpu_map_for(group, args["cpu_map"]),
                                       reader.domains(hosts, args["domains_var"]) if args["domains_var"] else None,
                                       args["allow_partial"])
        if run.to_write is not None and not run.section["reasons"]:
            # In check mode the contract is only predicted: the file stays as it is.
            if check_mode or _contract.save(path, run.to_write):
                written.append(path)
        sections[name] = run.section
        contracts[name] = {"model": run.section["model"], "xml": run.section["xml"], "pinned_at": run.section["pinned_at"],
                           "admitted": run.section["admitted"]}
    reasons = [r for section in sections.values() for r in section["reasons"]]
    report = {"schema": REPORT_SCHEMA, "kind": "contract", "contract_dir": directory, "groups": sections,
              "contract_files_changed": written, "check_mode": check_mode, "verdict": {"ok": not reasons, "reasons": reasons}}
    return report, written, contracts


def plan_report(args: Mapping[str, Any], reader: GroupReader, task_vars: Mapping[str, Any],
                check_mode: bool) -> tuple[dict[str, Any], list[str]]:
    """Plan a raise or lower of one group's contract (report kind ``plan``), and apply it unless in check mode."""
    if not args["group"] or not args["contract_action"]:
        raise AnsibleActionFail("cluster_cpu_facts: report=plan needs group and contract_action (raise or lower)")
    hosts = _group_map(task_vars, [args["group"]])[args["group"]]
    directory = os.path.expanduser(args["contract_dir"]) or beside_inventory(task_vars, "cpucompat-contracts")
    path = _contract.contract_path(directory, args["group"])
    group = reader.group(hosts)
    req = _contract.ChangeRequest(args["contract_action"], tuple(args["without"]), args["allow_lower"],
                                  args["allow_security_loss"], args["reason"])
    run = _contract.plan_change(args["group"], group, _contract.load(path), path, req, baseline_options(args),
                                _cpu_map_for(group, args["cpu_map"]), reader.domains(hosts, args["domains_var"]))
    written = []
    if run.to_write is not None and (check_mode or _contract.save(path, run.to_write)):
        written.append(path)  # in check mode only planned: the file stays as it is
    report = {"schema": REPORT_SCHEMA, "kind": "plan", **run.section, "applied": bool(written) and not check_mode,
              "check_mode": check_mode, "verdict": {"ok": not run.section["reasons"], "reasons": run.section["reasons"]}}
    return report, written


class ActionModule(ActionBase):
    """Aggregate the cpucompat facts of a group on the controller; no module runs on the hosts."""

    TRANSFERS_FILES = False
    _requires_connection = False

    def run(self, tmp: Any = None, task_vars: dict[str, Any] | None = None) -> dict[str, Any]:
        result = super().run(tmp, task_vars)
        task_vars = task_vars or {}
        _validation, args = self.validate_argument_spec(argument_spec=ARGUMENT_SPEC)
        reader = GroupReader(task_vars)
        try:
            result.update(self._report(args, reader, task_vars))
        except CpuCompatError as exc:
            raise AnsibleActionFail(f"cluster_cpu_facts ({args['report']}): {exc}") from exc
        report = result["report"]
        if args["report_dir"] is not None:
            args["report_dir"] = os.path.expanduser(args["report_dir"]) or beside_inventory(task_vars, "reports")
            # Reports live on the controller, where this action runs: written directly, in check mode too.
            try:
                result["report_files"] = write_reports(report, args["report_dir"], args["report"])
            except (OSError, CpuCompatError) as exc:
                raise AnsibleActionFail(f"cluster_cpu_facts: writing the reports to {args['report_dir']} failed: {exc}") from exc
        names = result.pop("hosts", None)
        if args["report"] == "baseline":
            result.update(self._cluster_fact(args, reader, task_vars, report, names, result.get("report_files")))
        if not args["return_report"]:
            # A 1,000-host report in the result costs Ansible seconds (sent from the worker, copied for register,
            # walked by the callbacks): its home is the files; the result keeps the verdict and a short rendering.
            result["markdown"] = report_markdown(report, CONSOLE_HOST_ROWS)
            result["verdict"] = report.get("verdict") or {"ok": report.get("error") is None,
                                                          "reasons": [report["error"]] if report.get("error") else []}
            del result["report"]
        return result

    def _cluster_fact(self, args: Mapping[str, Any], reader: GroupReader, task_vars: Mapping[str, Any],
                      report: Mapping[str, Any], names: list[str], report_files: list[str] | None) -> dict[str, Any]:
        """``cluster`` (always) and, when some host would get a new value, ``ansible_facts.cpucompat_cluster``.

        The fact every host keeps (run_once gives it to each host of the play, and a fact cache stores it in each
        entry) is small and the same size whatever the group's; the whole report is the result's ``report`` and its
        files. When every receiving host already holds the same value, no fact is returned: Ansible would otherwise
        rewrite every host's cache entry to store what is there already. ``cluster_fact`` says which it was:
        ``written``, ``unchanged``, or ``withheld`` (no baseline, or some host's cache entry could not be read).
        """
        report_file = os.path.join(args["report_dir"], "baseline.json") if report_files else None
        fact = _plain(cluster_fact(report, args["group"], names, report_file))
        if report.get("baseline") is None or report.get("unreadable"):
            # No baseline, or the fact cache failed to give some host's entry: the cache is left as it is (the hosts
            # keep their last fact; the report names the hosts and says why).
            return {"cluster": fact, "cluster_fact": "withheld"}
        receivers = list(task_vars.get("ansible_play_batch") or names) if self._task.run_once else \
            [h for h in [task_vars.get("inventory_hostname")] if h]
        if receivers and all(reader.cached_fact(host, "cpucompat_cluster") == fact for host in receivers):
            return {"cluster": fact, "cluster_fact": "unchanged"}
        return {"cluster": fact, "cluster_fact": "written", "ansible_facts": {"cpucompat_cluster": fact}}

    def _report(self, args: dict[str, Any], reader: GroupReader, task_vars: dict[str, Any]) -> dict[str, Any]:
        """The report of the kind asked, and what the result says besides it."""
        check_mode = bool(self._task.check_mode or self._play_context.check_mode)
        if args["report"] == "contract":
            report, written, contracts = contract_report(args, reader, task_vars, check_mode)
            return {"report": _plain(report), "changed": bool(written), "contract_files": written, "contracts": _plain(contracts)}
        if args["report"] == "plan":
            report, written = plan_report(args, reader, task_vars, check_mode)
            return {"report": _plain(report), "changed": bool(written), "contract_files": written}
        names = self._names(args, task_vars)
        reader.check_known([*names, *args["candidates"], *(args["sources"] or [])])
        contract = None
        if args["group"] and args["report"] in ("expansion", "migration"):
            directory = os.path.expanduser(args["contract_dir"]) or beside_inventory(task_vars, "cpucompat-contracts")
            contract = _contract.load(_contract.contract_path(directory, args["group"]))
        return {"report": _plain(build_report(args, reader, names, contract)), "changed": False, "hosts": names}

    @staticmethod
    def _names(args: Mapping[str, Any], task_vars: Mapping[str, Any]) -> list[str]:
        """The hosts to aggregate: the hosts option, else the baseline's inventory group, else the play's hosts."""
        if args["hosts"] is not None:
            names = list(args["hosts"])
        elif args["group"] and args["report"] == "baseline":
            names = _group_map(task_vars, [args["group"]])[args["group"]]
        else:
            names = list(task_vars.get("ansible_play_hosts_all", []))
        if not names:
            raise AnsibleActionFail("cluster_cpu_facts: no hosts to aggregate (the hosts option and the play are empty)")
        return names


def _plain(data: Any) -> Any:
    """Plain JSON data: host names templated from the inventory carry Ansible's origin tags, which would otherwise be
    serialised into every host's fact cache entry (run_once gives the fact to every host of the play)."""
    return json.loads(json.dumps(data))
