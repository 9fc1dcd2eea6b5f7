# Copyright (c) 2026 cpucompat.cluster contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Filters over cpucompat facts; thin adapters over module_utils (docs in the sidecar .yml files)."""

from __future__ import annotations

import time
from dataclasses import replace
from typing import Any

from ansible.errors import AnsibleFilterError
from ansible.module_utils.parsing.convert_bool import boolean
from ansible.template import is_trusted_as_template

from ansible_collections.cpucompat.cluster.plugins.module_utils._errors import CpuCompatError
from ansible_collections.cpucompat.cluster.plugins.module_utils.cpu._guest import GuestCpu, LibvirtStack
from ansible_collections.cpucompat.cluster.plugins.module_utils.cpu._libvirt_map import MapRegistry
from ansible_collections.cpucompat.cluster.plugins.module_utils.engine._result import Baseline
from ansible_collections.cpucompat.cluster.plugins.module_utils.engine._cluster import BaselineOptions
from ansible_collections.cpucompat.cluster.plugins.module_utils.engine._baseline import baseline_of
from ansible_collections.cpucompat.cluster.plugins.module_utils.engine._compare import compare
from ansible_collections.cpucompat.cluster.plugins.module_utils.engine._hostcpu import HostCpu, host_cpus
from ansible_collections.cpucompat.cluster.plugins.module_utils.probe._freshness import HostSettings, run_groups
from ansible_collections.cpucompat.cluster.plugins.module_utils.probe._libvirt import cached_cpu_map
from ansible_collections.cpucompat.cluster.plugins.module_utils.render._libvirt import render
from ansible_collections.cpucompat.cluster.plugins.module_utils.reports._html import report_html
from ansible_collections.cpucompat.cluster.plugins.module_utils.reports._planning import (
    domain_cpus, migration_matrix, observation_plan, parse_moves, plan_expansion)
from ansible_collections.cpucompat.cluster.plugins.module_utils.reports._markdown import report_markdown
from ansible_collections.cpucompat.cluster.plugins.module_utils.reports._summary import summary_lines


def _names(value: Any, option: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str) or not all(isinstance(v, str) for v in value):
        raise AnsibleFilterError(f"cpu_baseline: {option} must be a list of feature names, got {value!r}")
    return tuple(value)


def _registry(cpu_map: str | None) -> MapRegistry:
    """Each host's own libvirt CPU map from its facts; ``cpu_map`` only for facts that say nothing of libvirt."""
    return MapRegistry((lambda: cached_cpu_map(cpu_map)) if cpu_map else None)


def cpu_baseline(hosts: Any, migratable_only: bool = True, allow_deprecated: bool = False, require_features: Any = None,
                 min_model: str | None = None, exclude_features: Any = None, vendor_neutral: bool = False,
                 cpu_map: str | None = None) -> dict[str, Any]:
    opts = BaselineOptions(
        migratable_only=bool(migratable_only), allow_deprecated=bool(allow_deprecated),
        require_features=_names(require_features, "require_features"), min_model=min_model,
        exclude_features=_names(exclude_features, "exclude_features"), vendor_neutral=bool(vendor_neutral))
    try:
        return baseline_of(hosts, opts, _registry(cpu_map)).to_dict()
    except CpuCompatError as exc:
        raise AnsibleFilterError(f"cpu_baseline: {exc}") from exc


def cpu_compare(cpu: Any, facts: Any, host: str = "host") -> dict[str, Any]:
    try:
        return compare(Baseline.from_dict(cpu), HostCpu.from_facts(host, facts)).to_dict()
    except CpuCompatError as exc:
        raise AnsibleFilterError(f"cpu_compare: {exc}") from exc


def cpu_summary(facts: Any, host: str = "this host") -> list[str]:
    try:
        return summary_lines(facts, host)
    except CpuCompatError as exc:
        raise AnsibleFilterError(f"cpu_summary: {exc}") from exc


def libvirt_cpu_xml(guest: Any, form: str = "minimal", cpu_map: str | None = None) -> str:
    try:
        cpu = GuestCpu.from_dict(guest, "libvirt_cpu_xml input")
        if cpu.arch == "x86_64" and not cpu.libvirt and cpu_map:
            # No host of the group carries a libvirt map: the caller names the map the hosts' libvirt reads.
            cpu = replace(cpu, libvirt=(LibvirtStack(cached_cpu_map(cpu_map), ()),))
        return render(cpu, form).xml
    except CpuCompatError as exc:
        raise AnsibleFilterError(f"libvirt_cpu_xml: {exc}") from exc


def cpu_expansion_plan(current: Any, candidates: Any, domains: Any = None, fail_on: str = "incompatible",
                       cpu_map: str | None = None, migratable_only: bool = True, vendor_neutral: bool = False,
                       exclude_features: Any = None) -> dict[str, Any]:
    if not isinstance(current, dict) or not isinstance(candidates, dict):
        raise AnsibleFilterError("cpu_expansion_plan: current and candidates must be mappings of host name to cpucompat facts")
    opts = BaselineOptions(migratable_only=bool(migratable_only), vendor_neutral=bool(vendor_neutral),
                           exclude_features=_names(exclude_features, "exclude_features"))
    try:
        return plan_expansion(host_cpus(current), host_cpus(candidates), domains or {}, opts, _registry(cpu_map), fail_on)
    except CpuCompatError as exc:
        raise AnsibleFilterError(f"cpu_expansion_plan: {exc}") from exc


def cpu_migration_matrix(domains: Any, targets: Any, libvirt_verdicts: Any = None, requested: Any = None,
                         cpu_map: str | None = None) -> dict[str, Any]:
    if not isinstance(domains, dict) or not isinstance(targets, dict):
        raise AnsibleFilterError("cpu_migration_matrix: domains and targets must be mappings keyed by host name")
    try:
        return migration_matrix(domains, targets, _registry(cpu_map), libvirt_verdicts or {}, list(requested or []))
    except CpuCompatError as exc:
        raise AnsibleFilterError(f"cpu_migration_matrix: {exc}") from exc


def cpu_domain_cpus(domains: Any) -> list[str]:
    if not isinstance(domains, dict):
        raise AnsibleFilterError("cpu_domain_cpus: expected a mapping of host name to domain_cpu_info domains")
    return domain_cpus(domains)


def cpu_moves(text: Any) -> list[dict[str, str]]:
    try:
        return parse_moves(text)
    except CpuCompatError as exc:
        raise AnsibleFilterError(f"cpu_moves: {exc}") from exc


def cpu_observation_plan(observed: Any, requested: Any, groups: Any) -> list[dict[str, Any]]:
    if not isinstance(observed, dict) or not isinstance(requested, list) or not isinstance(groups, dict):
        raise AnsibleFilterError("cpu_observation_plan: expected source host -> cpu_observe loop results, the requested "
                                 "moves and the inventory's groups")
    return observation_plan(observed, requested, groups)


def cpu_report_markdown(report: Any) -> str:
    try:
        return report_markdown(report)
    except CpuCompatError as exc:
        raise AnsibleFilterError(f"cpu_report_markdown: {exc}") from exc


def cpu_report_html(report: Any) -> str:
    try:
        return report_html(report)
    except CpuCompatError as exc:
        raise AnsibleFilterError(f"cpu_report_html: {exc}") from exc


class _Settings:
    """One host's variables as ansible-core keeps them (``hostvars.raw_get``: built, not templated); a value that is a
    template of the inventory's is asked of ``hostvars``, which templates it. The facts are data, never templated.
    Templating every value of every host cost the decision a fifth of its time at 1,000 hosts."""

    def __init__(self, hostvars: Any, name: str) -> None:
        raw_get = getattr(hostvars, "raw_get", None)
        self._hostvars, self._name = hostvars, name
        self._raw = raw_get(name) if raw_get is not None else hostvars[name]

    def get(self, key: str, default: Any = None) -> Any:
        value = self._raw.get(key, default)
        if isinstance(value, str) and is_trusted_as_template(value) and ("{{" in value or "{%" in value):
            return self._hostvars[self._name].get(key, default)
        return value


def cpu_run_groups(hosts: Any, hostvars: Any, now: Any = None) -> list[list[Any]]:
    if isinstance(hosts, str) or not all(isinstance(h, str) for h in hosts or ()):
        raise AnsibleFilterError(f"cpu_run_groups: expected a list of host names (ansible_play_hosts), got {hosts!r}")
    try:
        when = float(now) if now is not None else time.time()
        settings = []
        for name in hosts:
            v = _Settings(hostvars, name)
            settings.append(HostSettings(
                name, (v.get("ansible_facts") or {}).get("cpucompat"), int(v.get("cpucompat_probe_max_age") or 0),
                boolean(v.get("cpucompat_probe_force", False), strict=True), boolean(v.get("cpucompat_deploy_enabled", True), strict=True),
                boolean(v.get("cpucompat_observe_enabled", True), strict=True)))
    except (KeyError, TypeError, ValueError) as exc:
        raise AnsibleFilterError(f"cpu_run_groups: host {name}: {exc}") from exc
    return run_groups(settings, when)


class FilterModule:
    """cpucompat.cluster filters."""

    def filters(self) -> dict[str, Any]:
        return {"cpu_summary": cpu_summary, "cpu_baseline": cpu_baseline, "cpu_compare": cpu_compare, "libvirt_cpu_xml": libvirt_cpu_xml,
                "cpu_report_markdown": cpu_report_markdown, "cpu_expansion_plan": cpu_expansion_plan,
                "cpu_migration_matrix": cpu_migration_matrix, "cpu_domain_cpus": cpu_domain_cpus, "cpu_report_html": cpu_report_html,
                "cpu_moves": cpu_moves, "cpu_observation_plan": cpu_observation_plan, "cpu_run_groups": cpu_run_groups}
