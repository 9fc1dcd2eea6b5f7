# Copyright (c) 2026 cpucompat.cluster contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""What the collection's aggregating actions share. Private.

Three actions aggregate a group on the controller, one door per kind of verb: ``cluster_cpu_facts`` (``baseline``,
``expansion``, ``migration``: they only read), ``cpu_contract`` (``contract``, ``plan``, ``rebuild``: they write the
contract store) and ``cpu_upgrade_check`` (``upgrade``). Each declares only the options its verbs read and one
:meth:`AggregateAction.verb`; :class:`AggregateAction` reads the hosts' facts and registered results where Ansible
keeps them (untemplated), opens the contract store, writes the reports and gives the small cluster fact. Each verb is
one function of ``module_utils/verbs/``.
"""

from __future__ import annotations

import copy
import json
import os
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

from ansible import constants as C
from ansible.errors import AnsibleActionFail
from ansible.plugins.action import ActionBase

from ansible_collections.cpucompat.cluster.plugins.module_utils._atomic import write_atomic
from ansible_collections.cpucompat.cluster.plugins.module_utils._errors import CpuCompatError
from ansible_collections.cpucompat.cluster.plugins.module_utils.contract._contract import now_iso
from ansible_collections.cpucompat.cluster.plugins.module_utils.contract._observed import FAILED
from ansible_collections.cpucompat.cluster.plugins.module_utils.contract._redis_store import DEFAULT_PREFIX
from ansible_collections.cpucompat.cluster.plugins.module_utils.contract._store import ContractStore, store_of
from ansible_collections.cpucompat.cluster.plugins.module_utils.contract._stored import check_group, writer
from ansible_collections.cpucompat.cluster.plugins.module_utils.cpu._exact import FORMS
from ansible_collections.cpucompat.cluster.plugins.module_utils.cpu._libvirt_map import MapRegistry
from ansible_collections.cpucompat.cluster.plugins.module_utils.engine._cluster import BaselineOptions
from ansible_collections.cpucompat.cluster.plugins.module_utils.probe._libvirt import cached_cpu_map
from ansible_collections.cpucompat.cluster.plugins.module_utils.verbs import _common
from ansible_collections.cpucompat.cluster.plugins.module_utils.reports._cluster import cluster_fact
from ansible_collections.cpucompat.cluster.plugins.module_utils.reports._files import mark_stale, write_reports
from ansible_collections.cpucompat.cluster.plugins.module_utils.reports._html import precompile
from ansible_collections.cpucompat.cluster.plugins.module_utils.reports._markdown import report_markdown
from ansible_collections.cpucompat.cluster.plugins.plugin_utils._group_reader import GroupReader
from ansible_collections.cpucompat.cluster.plugins.plugin_utils._settings import deprecations

POLICY_SPEC = {
    "migratable_only": {"type": "bool", "default": True},
    "allow_deprecated": {"type": "bool", "default": False},
    "require_features": {"type": "list", "elements": "str", "default": []},
    "min_model": {"type": "str"},
    "exclude_features": {"type": "list", "elements": "str", "default": []},
    "vendor_neutral": {"type": "bool", "default": False},
}
# The options every aggregating action has (the documentation fragment cpucompat.cluster.aggregate).
SHARED_SPEC = {
    "group": {"type": "str"},
    "domains_var": {"type": "str"},
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
    "report_dir": {"type": "str"},
    "return_report": {"type": "bool", "default": True},
}
CONSOLE_HOST_ROWS = 20

# At import, which ansible-core's controller does before it forks each task's worker: the workers inherit the pages'
# templates compiled (reports/_html.py).
precompile()


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


def common_of(args: Mapping[str, Any], task_vars: Mapping[str, Any], check_mode: bool) -> _common.Common:
    """What every verb is given; an option the action does not have takes the verbs' default."""
    policy = args["policy"]
    options = BaselineOptions(migratable_only=policy["migratable_only"], allow_deprecated=policy["allow_deprecated"],
                              require_features=tuple(policy["require_features"]), min_model=policy["min_model"],
                              exclude_features=tuple(policy["exclude_features"]), vendor_neutral=policy["vendor_neutral"])
    # The controller's map serves only hosts whose facts say nothing about libvirt, and only when asked for.
    path = args["cpu_map"]
    return _common.Common(options, MapRegistry((lambda: cached_cpu_map(path)) if path else None), args["form"],
                          args.get("allow_partial", False), contract_store(args, task_vars), check_mode, args.get("pin", False),
                          args.get("on_refusal", "fail"), args.get("level") or None, tuple(args.get("platforms", ())),
                          args.get("defer_pin", False), tuple(args.get("adopt", ())))


def group_names(name: str, kind: str, args: Mapping[str, Any]) -> list[str]:
    """The groups of a contract or upgrade step: ``groups``, else ``group``."""
    names = args["groups"] or ([args["group"]] if args["group"] else [])
    if not names:
        raise AnsibleActionFail(f"{name} ({kind}): needs group or groups")
    return names


class AggregateAction(ActionBase):
    """Aggregate the cpucompat facts of a group on the controller; no module runs on the hosts.

    A subclass names its action, its report kinds (the first the default; the option ``report`` chooses among several),
    its own options and whether it writes the contract store as class keywords, ``class ActionModule(AggregateAction,
    name=..., kinds=..., options=..., writes=...)``, and gives :meth:`verb`. Its argument spec is :data:`SHARED_SPEC`, ``report`` and its own options: no other.
    """

    TRANSFERS_FILES = False
    _requires_connection = False
    NAME: ClassVar[str] = ""
    KINDS: ClassVar[tuple[str, ...]] = ()
    WRITES: ClassVar[bool] = False  # writes the contract store: the result says which contracts (contract_files)
    ARGUMENT_SPEC: ClassVar[dict[str, Any]] = {}

    def __init_subclass__(cls, name: str = "", kinds: tuple[str, ...] = (), options: Mapping[str, Any] | None = None,
                          writes: bool = False, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if name:
            cls.NAME, cls.KINDS, cls.WRITES = name, tuple(kinds), writes
            report = {"report": {"type": "str", "default": kinds[0], "choices": list(kinds)}} if len(kinds) > 1 else {}
            cls.ARGUMENT_SPEC = {**SHARED_SPEC, **report, **(options or {})}

    @classmethod
    def verb(cls, kind: str, args: Mapping[str, Any], reader: GroupReader, task_vars: Mapping[str, Any],
             common: _common.Common) -> _common.Outcome:
        """One verb, its hosts and options taken from the task."""
        raise NotImplementedError

    def run(self, tmp: Any = None, task_vars: dict[str, Any] | None = None) -> dict[str, Any]:
        return self.aggregate(type(self), type(self).ARGUMENT_SPEC, tmp, task_vars)

    def aggregate(self, door: type[AggregateAction], spec: Mapping[str, Any], tmp: Any = None,
                  task_vars: dict[str, Any] | None = None) -> dict[str, Any]:
        """Validate the task's options against ``spec`` and run ``door``'s verb."""
        result = super().run(tmp, task_vars)
        task_vars = task_vars or {}
        found = deprecations(frozenset(task_vars))  # the roles' old variable names, warned of here (no task of their own)
        if found:
            result["deprecations"] = found
        # A copy: validation fills a dict option's default ({}) with its suboptions' defaults, in place.
        _validation, args = self.validate_argument_spec(argument_spec=copy.deepcopy(dict(spec)))
        kind = args.get("report") or door.KINDS[0]
        reader = GroupReader(task_vars, door.NAME)
        check_mode = bool(self._task.check_mode or self._play_context.check_mode)
        try:
            outcome = door.verb(kind, args, reader, task_vars, common_of(args, task_vars, check_mode))
        except CpuCompatError as exc:
            self._stale(args, kind, task_vars, str(exc))
            raise AnsibleActionFail(f"{door.NAME} ({kind}): {exc}") from exc
        # Each report made plain once (a JSON round trip of up to megabytes): written, digested and kept as it is then.
        report = _plain(outcome.report)
        side = {stem: _plain(view) for stem, view in outcome.side_reports.items()}
        result.update(report=report, changed=bool(outcome.contract_files), **_plain(outcome.extra))
        if door.WRITES:
            result["contract_files"] = outcome.contract_files
        if args["report_dir"] is not None:
            result["report_files"] = self._write(door.NAME, kind, args, task_vars, report, side)
            if "new_stack" in outcome.extra and report.get("new_stack_file"):
                result["report_files"].append(_write_json(report["new_stack_file"], _plain(outcome.extra["new_stack"])))
        members = outcome.members
        view = report if kind == "baseline" else side.get("baseline")
        if view is not None and members is not None:
            # The group's baseline of this run: every host keeps the small cpucompat_cluster fact of it.
            result.update(self._cluster_fact(args, reader, task_vars, view, members, result.get("report_files")))
        # What a play shows and tests, small at any size: a short rendering (each per-host list cut at
        # CONSOLE_HOST_ROWS) and the verdict. A task that templates the whole report (a condition on it, a filter
        # over it) pays ansible-core's walk of every element: over a second at 10,000 hosts.
        result["markdown"] = report_markdown(report, CONSOLE_HOST_ROWS)
        result["verdict"] = report.get("verdict") or {"ok": report.get("error") is None,
                                                      "reasons": [report["error"]] if report.get("error") else []}
        if not args["return_report"]:
            # A 1,000-host report in the result costs Ansible seconds (sent from the worker, copied for register,
            # walked by the callbacks): its home is the files.
            del result["report"]
        return result

    @staticmethod
    def _stale(args: Mapping[str, Any], kind: str, task_vars: Mapping[str, Any], why: str) -> None:
        """A run that failed before writing its report marks the previous report of its kind as not its own."""
        if args["report_dir"] is None:
            return
        directory = os.path.expanduser(args["report_dir"]) or beside_inventory(task_vars, "reports")
        groups = args.get("groups")
        group = args["group"] or (groups[0] if groups and len(groups) == 1 else None)
        dirs = [directory, *([os.path.join(directory, str(group))] if group and "/" not in str(group) else [])]
        mark_stale(dirs, kind, why, now_iso())

    @staticmethod
    def _write(name: str, kind: str, args: Mapping[str, Any], task_vars: Mapping[str, Any], report: Mapping[str, Any],
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
            files = write_reports(report, [directory, *([own] if own else [])], kind)
            for stem, view in side.items():
                where = os.path.join(directory, os.path.dirname(stem))
                files += write_reports(view, [where, *([own] if own and not os.path.dirname(stem) else [])],
                                       os.path.basename(stem))
        except (OSError, CpuCompatError) as exc:
            raise AnsibleActionFail(f"{name}: writing the reports to {directory} failed: {exc}") from exc
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
        group = args["group"] or (args.get("groups") or [None])[0]
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


def observations_of(reader: GroupReader, names: list[str], var: str) -> dict[str, Any]:
    """Each host's observation (its ``cpucompat_observation`` fact), or why it has none: the observe task failed (its
    message), was skipped (its reason), or the host was probed through a QMP socket (no QEMU to start there)."""
    out: dict[str, Any] = {}
    for name in names:
        registered = reader.registered_var(name, var)
        out[name] = _observation(reader, name, registered if isinstance(registered, Mapping) else {},
                                 reader.cached_fact(name, "cpucompat_observation"))
    return out


def tier_observations_of(reader: GroupReader, tiers: Mapping[str, Sequence[str]], var: str) -> dict[str, dict[str, Any]]:
    """Per tier contract (``group@tier`` -> its hosts): each host's observation of the tier's ``<cpu>``, or why it has
    none - from the host's cpu_observe call over its tiers (``var``: ``observations`` and ``failures`` by the tier's
    contract name) and its ``cpucompat_observations`` fact (the same names)."""
    out: dict[str, dict[str, Any]] = {key: {} for key in tiers}
    members = {key: set(hosts) for key, hosts in tiers.items()}  # a host's tiers found in constant time
    for name in sorted({h for hosts in tiers.values() for h in hosts}):
        registered = reader.registered_var(name, var)
        registered = registered if isinstance(registered, Mapping) else {}
        made, failures = registered.get("observations"), registered.get("failures")
        facts = reader.cached_fact(name, "cpucompat_observations")
        facts = facts if isinstance(facts, Mapping) else {}
        for key, hosts in members.items():
            if name not in hosts:
                continue
            if isinstance(failures, Mapping) and key in failures:
                here: Mapping[str, Any] = {"failed": True, "msg": failures[key]}
            elif isinstance(made, Mapping) and isinstance(made.get(key), Mapping):
                here = {"observation": made[key]}
            else:  # kept from the cache, or not observed (the call skipped, or failed as a whole: its message)
                here = {k: v for k, v in registered.items() if k in ("skipped", "skip_reason", "false_condition", "failed", "msg")}
            out[key][name] = _observation(reader, name, here, facts.get(key))
    return out


def _observation(reader: GroupReader, name: str, registered: Mapping[str, Any], fact: Any) -> Any:
    """One host's observation of one <cpu> from its registered cpu_observe result and its cached fact, or why none."""
    probe = (reader.cached_fact(name, "cpucompat") or {}).get("probe") or {}
    if registered.get("failed") or (registered.get("msg") and not registered.get("skipped") and "observation" not in registered):
        return FAILED + str(registered.get("msg") or "cpu_observe failed")
    if isinstance(registered.get("observation"), Mapping):  # observed in this run
        return dict(registered["observation"])
    if isinstance(fact, Mapping) and fact:  # observed earlier, of the same <cpu> or not (the digest says which)
        return dict(fact)
    if isinstance(probe, Mapping) and probe.get("mode") == "socket":
        return "probed through a QMP socket: no QEMU of its own to start here"
    if registered.get("skipped"):
        return "not observed: " + str(registered.get("skip_reason") or registered.get("false_condition") or "skipped")
    return "not observed in this run"


def _write_json(path: str, data: Any) -> str:
    directory = os.path.dirname(path) or "."
    os.makedirs(directory, exist_ok=True)
    return write_atomic(path, json.dumps(data, sort_keys=True), mode=0o644, prefix=".new-stack.")


def _plain(data: Any) -> Any:
    """Plain JSON data: host names templated from the inventory carry Ansible's origin tags, which would otherwise be
    serialised into every host's fact cache entry (run_once gives the fact to every host of the play)."""
    return json.loads(json.dumps(data))
