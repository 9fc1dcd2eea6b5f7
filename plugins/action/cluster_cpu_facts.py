# Copyright (c) 2026 cpucompat.cluster contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Action plugin behind cpucompat.cluster.cluster_cpu_facts (documentation in plugins/modules/cluster_cpu_facts.py).

The one way the collection aggregates a group on the controller, for every report kind. This adapter reads the hosts'
facts and registered results where Ansible keeps them (untemplated), and writes the reports; each verb is one function
of ``module_utils/reports/_verbs.py``.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Mapping
from typing import Any

from ansible import constants as C
from ansible.errors import AnsibleActionFail
from ansible.plugins.action import ActionBase

from ansible_collections.cpucompat.cluster.plugins.module_utils._errors import CpuCompatError
from ansible_collections.cpucompat.cluster.plugins.module_utils.contract._admission import ChangeRequest
from ansible_collections.cpucompat.cluster.plugins.module_utils.contract._observed import FAILED
from ansible_collections.cpucompat.cluster.plugins.module_utils.contract._contract import now_iso
from ansible_collections.cpucompat.cluster.plugins.module_utils.contract._store import DEFAULT_PREFIX, ContractStore, check_group, store_of, writer
from ansible_collections.cpucompat.cluster.plugins.module_utils.cpu._exact import FORMS
from ansible_collections.cpucompat.cluster.plugins.module_utils.cpu._libvirt_map import MapRegistry
from ansible_collections.cpucompat.cluster.plugins.module_utils.engine._baseline import BaselineOptions
from ansible_collections.cpucompat.cluster.plugins.module_utils.probe._libvirt import cached_cpu_map
from ansible_collections.cpucompat.cluster.plugins.module_utils.reports import _verbs
from ansible_collections.cpucompat.cluster.plugins.module_utils.reports._cluster import cluster_fact
from ansible_collections.cpucompat.cluster.plugins.module_utils.reports._planning import FAIL_ON
from ansible_collections.cpucompat.cluster.plugins.module_utils.reports._report import mark_stale, report_markdown, write_reports
from ansible_collections.cpucompat.cluster.plugins.plugin_utils._group_reader import GroupReader

POLICY_SPEC = {
    "migratable_only": {"type": "bool", "default": True},
    "allow_deprecated": {"type": "bool", "default": False},
    "require_features": {"type": "list", "elements": "str", "default": []},
    "min_model": {"type": "str"},
    "exclude_features": {"type": "list", "elements": "str", "default": []},
    "vendor_neutral": {"type": "bool", "default": False},
}
CHANGE_SPEC = {
    "action": {"type": "str", "required": True, "choices": ["raise", "lower"]},
    "without": {"type": "list", "elements": "str", "default": []},
    "allow_lower": {"type": "bool", "default": False},
    "allow_security_loss": {"type": "bool", "default": False},
    "reason": {"type": "str", "default": ""},
    "level": {"type": "str"},
}
ARGUMENT_SPEC = {
    "report": {"type": "str", "default": "baseline", "choices": list(_verbs.VERBS)},
    "group": {"type": "str"},
    "groups": {"type": "list", "elements": "str"},
    "hosts": {"type": "list", "elements": "str"},
    "candidates": {"type": "list", "elements": "str", "default": []},
    "sources": {"type": "list", "elements": "str"},
    "domains_var": {"type": "str"},
    "verdicts_var": {"type": "str"},
    "carry_var": {"type": "str"},
    "observations_var": {"type": "str"},
    "source_observations_var": {"type": "str"},
    "target_observations_var": {"type": "str"},
    "new_stack": {"type": "list", "elements": "str", "default": []},
    "extra_stacks": {"type": "list", "elements": "path", "default": []},
    "requested": {"type": "list", "elements": "dict", "default": []},
    "fail_on": {"type": "str", "default": "incompatible", "choices": list(FAIL_ON)},
    "change": {"type": "dict", "options": CHANGE_SPEC},
    "allow_partial": {"type": "bool", "default": False},
    "policy": {"type": "dict", "default": {}, "options": POLICY_SPEC},
    "form": {"type": "str", "default": "minimal", "choices": list(FORMS)},
    "cpu_map": {"type": "path"},
    "contract_dir": {"type": "str", "default": ""},
    "contract_store": {"type": "dict", "default": {}, "options": {
        "type": {"type": "str", "default": "file", "choices": ["file", "redis"]},
        "path": {"type": "str", "default": ""},
        "connection": {"type": "str", "default": ""},
        "prefix": {"type": "str", "default": DEFAULT_PREFIX},
    }},
    "pin": {"type": "bool", "default": False},
    "defer_pin": {"type": "bool", "default": False},
    "adopt": {"type": "list", "elements": "str", "default": []},
    "on_refusal": {"type": "str", "default": "fail", "choices": ["fail", "exclude"]},
    "level": {"type": "str"},
    "platforms": {"type": "list", "elements": "str", "default": [],
                  "choices": ["libvirt", "qemu", "proxmox", "nova", "kubevirt", "incus"]},
    "report_dir": {"type": "str"},
    "return_report": {"type": "bool", "default": True},
}
CONSOLE_HOST_ROWS = 20


def beside_inventory(task_vars: Mapping[str, Any], name: str) -> str:
    """``name`` beside the first inventory source that is a file or a folder (never inside an inventory folder, where
    the next run would read its JSON files as inventory sources); else in the current directory."""
    for source in task_vars.get("ansible_inventory_sources") or []:
        source = os.path.abspath(str(source))
        if os.path.isdir(source) or os.path.isfile(source):
            return os.path.join(os.path.dirname(source.rstrip(os.sep)), name)
    return os.path.join(os.getcwd(), name)


def former_contract_dirs(task_vars: Mapping[str, Any]) -> tuple[str, ...]:
    """Where releases before 0.3.0 kept contracts: ``cpucompat-contracts`` beside (or inside) the inventory source."""
    out = []
    for source in (task_vars.get("ansible_inventory_sources") or [])[:1]:
        source = os.path.abspath(str(source))
        if os.path.isdir(source):
            out.append(os.path.join(source, "cpucompat-contracts"))
        if os.path.isdir(source) or os.path.isfile(source):
            out.append(os.path.join(os.path.dirname(source.rstrip(os.sep)), "cpucompat-contracts"))
    return tuple(out)


def contract_store(args: Mapping[str, Any], task_vars: Mapping[str, Any]) -> ContractStore:
    """The store the task names: contract_store (type, path, connection, prefix); contract_dir is the file store's
    path. A Redis store without a connection uses the fact cache's when the fact cache is Redis."""
    options = dict(args["contract_store"] or {})
    options.setdefault("type", "file")
    if options["type"] == "file":
        options["path"] = os.path.expanduser(options.get("path") or args["contract_dir"] or "")
    elif not options.get("connection") and str(C.CACHE_PLUGIN or "").endswith("redis"):
        options["connection"] = C.CACHE_PLUGIN_CONNECTION
    return store_of(options, former_contract_dirs(task_vars))


def common_of(args: Mapping[str, Any], task_vars: Mapping[str, Any], check_mode: bool) -> _verbs.Common:
    policy = args["policy"]
    options = BaselineOptions(migratable_only=policy["migratable_only"], allow_deprecated=policy["allow_deprecated"],
                              require_features=tuple(policy["require_features"]), min_model=policy["min_model"],
                              exclude_features=tuple(policy["exclude_features"]), vendor_neutral=policy["vendor_neutral"])
    # The controller's map serves only hosts whose facts say nothing about libvirt, and only when asked for.
    path = args["cpu_map"]
    return _verbs.Common(options, MapRegistry((lambda: cached_cpu_map(path)) if path else None), args["form"], args["allow_partial"],
                         contract_store(args, task_vars), check_mode, args["pin"], args["on_refusal"], args["level"] or None,
                         tuple(args["platforms"]), args["defer_pin"], tuple(args["adopt"]))


class ActionModule(ActionBase):
    """Aggregate the cpucompat facts of a group on the controller; no module runs on the hosts."""

    TRANSFERS_FILES = False
    _requires_connection = False

    def run(self, tmp: Any = None, task_vars: dict[str, Any] | None = None) -> dict[str, Any]:
        result = super().run(tmp, task_vars)
        task_vars = task_vars or {}
        _validation, args = self.validate_argument_spec(argument_spec=ARGUMENT_SPEC)
        reader = GroupReader(task_vars)
        check_mode = bool(self._task.check_mode or self._play_context.check_mode)
        try:
            outcome = self._verb(args, reader, task_vars, common_of(args, task_vars, check_mode))
        except CpuCompatError as exc:
            self._stale(args, task_vars, str(exc))
            raise AnsibleActionFail(f"cluster_cpu_facts ({args['report']}): {exc}") from exc
        # Each report made plain once (a JSON round trip of up to megabytes): written, digested and kept as it is then.
        report = _plain(outcome.report)
        side = {stem: _plain(view) for stem, view in outcome.side_reports.items()}
        result.update(report=report, changed=bool(outcome.contract_files), **_plain(outcome.extra))
        if args["report"] in ("contract", "plan", "rebuild"):
            result["contract_files"] = outcome.contract_files
        if args["report_dir"] is not None:
            result["report_files"] = self._write(args, task_vars, report, side)
            if "new_stack" in outcome.extra and report.get("new_stack_file"):
                result["report_files"].append(_write_json(report["new_stack_file"], _plain(outcome.extra["new_stack"])))
        members = outcome.members
        view = report if args["report"] == "baseline" else side.get("baseline")
        if view is not None and members is not None:
            # The group's baseline of this run: every host keeps the small cpucompat_cluster fact of it.
            result.update(self._cluster_fact(args, reader, task_vars, view, members, result.get("report_files")))
        if not args["return_report"]:
            # A 1,000-host report in the result costs Ansible seconds (sent from the worker, copied for register,
            # walked by the callbacks): its home is the files; the result keeps the verdict and a short rendering.
            result["markdown"] = report_markdown(report, CONSOLE_HOST_ROWS)
            result["verdict"] = report.get("verdict") or {"ok": report.get("error") is None,
                                                          "reasons": [report["error"]] if report.get("error") else []}
            del result["report"]
        return result

    def _verb(self, args: Mapping[str, Any], reader: GroupReader, task_vars: Mapping[str, Any],
              common: _verbs.Common) -> _verbs.Outcome:
        """One verb, its hosts and options taken from the task."""
        kind = args["report"]
        inventory = task_vars.get("groups") or {}
        if kind in ("contract", "upgrade"):
            names = args["groups"] or ([args["group"]] if args["group"] else [])
            if not names:
                raise AnsibleActionFail(f"cluster_cpu_facts: report={kind} needs group or groups")
            groups = _verbs.group_map(inventory, names)
            if kind == "upgrade":
                if not args["new_stack"]:
                    raise AnsibleActionFail("cluster_cpu_facts: report=upgrade needs new_stack (the hosts that stand for it)")
                reader.check_known(args["new_stack"])
                observed = observations_of(reader, args["new_stack"], args["observations_var"]) if args["observations_var"] else None
                return _verbs.upgrade(common, reader, groups, args["new_stack"], args["domains_var"], self._stack_file(args, task_vars),
                                      observed)
            carried = self._carried(reader, args["carry_var"], task_vars)
            observations = None
            if args["observations_var"]:
                if carried is None:
                    raise AnsibleActionFail("cluster_cpu_facts: observations_var needs carry_var (the contract step whose <cpu> "
                                            "the hosts observed)")
                observations = observations_of(reader, [h for hosts in groups.values() for h in hosts], args["observations_var"])
            return _verbs.contract(common, reader, groups, args["domains_var"], carried, _extra(args["extra_stacks"]),
                                   observations)
        if kind == "rebuild":
            if not args["group"]:
                raise AnsibleActionFail("cluster_cpu_facts: report=rebuild needs group")
            hosts = _verbs.group_map(inventory, [args["group"]])[args["group"]]
            return _verbs.rebuild(common, reader, args["group"], hosts, args["domains_var"])
        if kind == "plan":
            if not args["group"] or not args["change"]:
                raise AnsibleActionFail("cluster_cpu_facts: report=plan needs group and change (action: raise or lower)")
            change = args["change"]
            request = ChangeRequest(change["action"], tuple(change["without"]), change["allow_lower"],
                                    change["allow_security_loss"], change["reason"], change["level"] or None)
            hosts = _verbs.group_map(inventory, [args["group"]])[args["group"]]
            return _verbs.plan(common, reader, args["group"], hosts, request, args["domains_var"])
        names = self._names(args, task_vars)
        reader.check_known([*names, *args["candidates"], *(args["sources"] or [])])
        if kind == "baseline":
            return _verbs.baseline(common, reader, names, args["group"])
        if kind == "expansion":
            return _verbs.expansion(common, reader, names, args["candidates"], args["domains_var"], args["fail_on"], args["group"])
        sources = args["sources"] if args["sources"] is not None else names
        observed = None
        if args["source_observations_var"] and args["target_observations_var"]:
            observed = (loop_observations(reader, sources, args["source_observations_var"], lambda h, item: f"{h}/{item.get('name')}"),
                        loop_observations(reader, names, args["target_observations_var"], lambda h, item: (item.get("key"), h)))
        return _verbs.migration(common, reader, names, sources, args["domains_var"], args["verdicts_var"], args["requested"],
                                args["group"], observed)

    @staticmethod
    def _stack_file(args: Mapping[str, Any], task_vars: Mapping[str, Any]) -> str | None:
        """Where an upgrade check keeps the new stack's facts, for a later site run to render for it too."""
        if args["report_dir"] is None:
            return None
        return os.path.join(os.path.expanduser(args["report_dir"]) or beside_inventory(task_vars, "reports"), "new-stack.json")

    @staticmethod
    def _carried(reader: GroupReader, var: str | None, task_vars: Mapping[str, Any]) -> dict[str, Any] | None:
        """The group sections of an earlier contract step of this run (its registered result), read untemplated."""
        if not var:
            return None
        host = task_vars.get("inventory_hostname")
        registered = reader.raw(str(host)).get(var) if host else None
        report = registered.get("report") if isinstance(registered, Mapping) else None
        if not isinstance(report, Mapping) or not isinstance(report.get("groups"), Mapping):
            raise AnsibleActionFail(f"cluster_cpu_facts: carry_var {var} is not the registered result of a contract step")
        return dict(report["groups"])

    @staticmethod
    def _stale(args: Mapping[str, Any], task_vars: Mapping[str, Any], why: str) -> None:
        """A run that failed before writing its report marks the previous report of its kind as not its own."""
        if args["report_dir"] is None:
            return
        directory = os.path.expanduser(args["report_dir"]) or beside_inventory(task_vars, "reports")
        group = args["group"] or (args["groups"][0] if args["groups"] and len(args["groups"]) == 1 else None)
        dirs = [directory, *([os.path.join(directory, str(group))] if group and "/" not in str(group) else [])]
        mark_stale(dirs, args["report"], why, now_iso())

    @staticmethod
    def _write(args: Mapping[str, Any], task_vars: Mapping[str, Any], report: Mapping[str, Any],
               side: Mapping[str, Mapping[str, Any]]) -> list[str]:
        """The report and the reports beside it, on the controller, where this action runs (in check mode too); each
        page says when it was written and by which play."""
        written = {"at": now_iso(), "by": writer(), "play": str(task_vars.get("ansible_play_name") or "") or None}
        report = {**report, "written": written}
        side = {stem: {**view, "written": written} for stem, view in side.items()}
        directory = os.path.expanduser(args["report_dir"]) or beside_inventory(task_vars, "reports")
        args["report_dir"] = directory  # type: ignore[index]
        groups = list(report.get("groups") or {}) if isinstance(report.get("groups"), Mapping) else []
        group = report.get("group") or args["group"] or (groups[0] if len(groups) == 1 else None)
        try:
            # One group's reports also in <dir>/<group>/: a run for another group leaves them as they are.
            own = os.path.join(directory, str(group)) if group and check_group(str(group)) else None
            files = write_reports(report, [directory, *([own] if own else [])], args["report"])
            for stem, view in side.items():
                where = os.path.join(directory, os.path.dirname(stem))
                files += write_reports(view, [where, *([own] if own and not os.path.dirname(stem) else [])],
                                       os.path.basename(stem))
        except (OSError, CpuCompatError) as exc:
            raise AnsibleActionFail(f"cluster_cpu_facts: writing the reports to {directory} failed: {exc}") from exc
        return files

    def _cluster_fact(self, args: Mapping[str, Any], reader: GroupReader, task_vars: Mapping[str, Any],
                      report: Mapping[str, Any], names: list[str], report_files: list[str] | None) -> dict[str, Any]:
        """``cluster`` (always) and, when some host would get a new value, ``ansible_facts.cpucompat_cluster``.

        The fact every host keeps (run_once gives it to each host of the play, and a fact cache stores it in each
        entry) is small and the same size whatever the group's; the whole report is in its files. When every receiving
        host already holds the same value, no fact is returned: Ansible would otherwise rewrite every host's cache
        entry to store what is there already. ``cluster_fact`` says which it was: ``written``, ``unchanged``, or
        ``withheld`` (no baseline, or some host's cache entry could not be read).
        """
        group = args["group"] or (args["groups"] or [None])[0]
        report_file = os.path.join(args["report_dir"], "baseline.json") if report_files else None
        fact = _plain(cluster_fact(report, group, names, report_file))
        if report.get("baseline") is None or report.get("unreadable"):
            # No baseline, or the fact cache failed to give some host's entry: the cache is left as it is (the hosts
            # keep their last fact; the report names the hosts and says why).
            return {"cluster": fact, "cluster_fact": "withheld"}
        receivers = list(task_vars.get("ansible_play_batch") or names) if self._task.run_once else \
            [h for h in [task_vars.get("inventory_hostname")] if h]
        if receivers and all(reader.cached_fact(host, "cpucompat_cluster") == fact for host in receivers):
            return {"cluster": fact, "cluster_fact": "unchanged"}
        return {"cluster": fact, "cluster_fact": "written", "ansible_facts": {"cpucompat_cluster": fact}}

    @staticmethod
    def _names(args: Mapping[str, Any], task_vars: Mapping[str, Any]) -> list[str]:
        """The hosts to aggregate: the hosts option, else the baseline's inventory group, else the play's hosts."""
        if args["hosts"] is not None:
            names = list(args["hosts"])
        elif args["group"] and args["report"] == "baseline":
            names = _verbs.group_map(task_vars.get("groups") or {}, [args["group"]])[args["group"]]
        else:
            names = list(task_vars.get("ansible_play_hosts_all", []))
        if not names:
            raise AnsibleActionFail("cluster_cpu_facts: no hosts to aggregate (the hosts option and the play are empty)")
        return names


def observations_of(reader: GroupReader, names: list[str], var: str) -> dict[str, Any]:
    """Each host's observation (its ``cpucompat_observation`` fact), or why it has none: the observe task failed (its
    message), was skipped (its reason), or the host was probed through a QMP socket (no QEMU to start there)."""
    out: dict[str, Any] = {}
    for name in names:
        registered = reader.raw(name).get(var)
        registered = registered if isinstance(registered, Mapping) else {}
        fact = reader.cached_fact(name, "cpucompat_observation")
        probe = (reader.cached_fact(name, "cpucompat") or {}).get("probe") or {}
        if registered.get("failed") or (registered.get("msg") and not registered.get("skipped") and "observation" not in registered):
            out[name] = FAILED + str(registered.get("msg") or "cpu_observe failed")
        elif isinstance(registered.get("observation"), Mapping):  # observed in this run
            out[name] = dict(registered["observation"])
        elif isinstance(fact, Mapping) and fact:  # observed earlier, of the same <cpu> or not (the digest says which)
            out[name] = dict(fact)
        elif isinstance(probe, Mapping) and probe.get("mode") == "socket":
            out[name] = "probed through a QMP socket: no QEMU of its own to start here"
        elif registered.get("skipped"):
            out[name] = "not observed: " + str(registered.get("skip_reason") or registered.get("false_condition") or "skipped")
        else:
            out[name] = "not observed in this run"
    return out


def loop_observations(reader: GroupReader, names: list[str], var: str, key: Any) -> dict[Any, Any]:
    """The observations a cpu_observe loop registered on each host (``key(host, item)`` names each), or why none."""
    out: dict[Any, Any] = {}
    for name in names:
        registered = reader.raw(name).get(var)
        for result in (registered.get("results") or []) if isinstance(registered, Mapping) else []:
            if not isinstance(result, Mapping) or not isinstance(result.get("item"), Mapping) or result.get("skipped"):
                continue
            if isinstance(result.get("observation"), Mapping):
                out[key(name, result["item"])] = dict(result["observation"])
            else:
                out[key(name, result["item"])] = FAILED + str(result.get("msg") or "cpu_observe failed")
    return out


def _extra(paths: list[str]) -> list[Any]:
    """The hosts of the new-stack files an upgrade check wrote (host name -> cpucompat facts)."""
    hosts = []
    for path in paths:
        try:
            with open(path, encoding="utf-8") as fh:
                hosts += _verbs.extra_hosts(json.load(fh))
        except (OSError, ValueError) as exc:
            raise AnsibleActionFail(f"cluster_cpu_facts: extra stack file {path} cannot be read: {exc}") from exc
    return hosts


def _write_json(path: str, data: Any) -> str:
    directory = os.path.dirname(path) or "."
    os.makedirs(directory, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=".new-stack.")
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        json.dump(data, fh, sort_keys=True)
    os.chmod(tmp, 0o644)
    os.replace(tmp, path)
    return path


def _plain(data: Any) -> Any:
    """Plain JSON data: host names templated from the inventory carry Ansible's origin tags, which would otherwise be
    serialised into every host's fact cache entry (run_once gives the fact to every host of the play)."""
    return json.loads(json.dumps(data))
