# Copyright (c) 2026 cpucompat.cluster contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Reading a group's hosts where ansible-core keeps them, for the controller-side plugins. Private to the collection."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ansible.errors import AnsibleActionFail

from ansible_collections.cpucompat.cluster.plugins.module_utils.engine._group import GroupFacts, group_facts


class GroupReader:
    """Hosts' variables as stored, never templated.

    Facts and registered results are data, never templates; ``hostvars[name][key]`` would walk and finalise every
    element of the facts through the templating engine (about 50 ms per host of x86_64 facts in ansible-core 2.19),
    which made the aggregation cost grow with the facts' size instead of the group's. ``hostvars.raw_get`` is cheaper
    but still builds every variable of the host, magic variables included, whose group and play host lists make each
    call grow with the inventory: 10,000 calls over 10,000 hosts took 65 s. So the variables the actions read (the
    host's facts, from the fact cache, and what was registered for it in this run) are read where the variable manager
    keeps them, and ``raw_get`` serves where it keeps them elsewhere (other ansible-core versions, tests).
    """

    def __init__(self, task_vars: Mapping[str, Any], action: str = "cluster_cpu_facts") -> None:
        self._action = action  # the action that reads, named in its errors
        self._hostvars = task_vars.get("hostvars", {})
        self._play_all = list(task_vars.get("ansible_play_hosts_all", []))
        # Hosts of the play that failed or were unreachable have left ansible_play_hosts.
        self._reachable = set(task_vars.get("ansible_play_hosts", self._play_all))
        self._raw: dict[str, Mapping[str, Any]] = {}
        self._unreadable: dict[str, str] = {}
        manager = getattr(self._hostvars, "_variable_manager", None)
        fact_cache = getattr(manager, "_fact_cache", None)
        registered = getattr(manager, "_nonpersistent_fact_cache", None)
        # The variable manager's own stores (ansible-core 2.19), when at hand; else hostvars serves.
        self._stores: tuple[Any, Mapping[str, Any]] | None = \
            (fact_cache, registered) if hasattr(fact_cache, "get") and isinstance(registered, Mapping) else None

    def _read(self, name: str) -> Mapping[str, Any]:
        """A host's facts and registered variables (only these: the inventory's variables are not read here)."""
        if self._stores is not None:
            fact_cache, registered = self._stores
            try:
                facts = fact_cache.get(name)
            except KeyError:
                facts = None
            return {**registered.get(name, {}), "ansible_facts": facts or {}}
        raw_get = getattr(self._hostvars, "raw_get", None)
        return raw_get(name) if raw_get is not None else self._hostvars[name]

    def check_known(self, names: list[str]) -> None:
        unknown = sorted(n for n in names if n not in self._hostvars)
        if unknown:
            raise AnsibleActionFail(f"{self._action}: not in the inventory: {', '.join(unknown)}")

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

    def registered_var(self, name: str, var: str) -> Any:
        """What the host registered in ``var`` in this run (None: nothing); its cache entry is not read for it (a
        contract step that reads only the domains or the carried result decodes no host's facts)."""
        if name not in self._raw and self._stores is not None:
            return (self._stores[1].get(name) or {}).get(var)
        return self.raw(name).get(var)

    def host_var(self, name: str, key: str) -> Any:
        """A variable of the host as its plays see it (the inventory's and the run's, templated), asked of ``hostvars``
        for this one host: :meth:`raw` holds only its facts and registered results."""
        return self._hostvars[name].get(key)

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
            registered = self.registered_var(name, var)
            if isinstance(registered, Mapping) and isinstance(registered.get(key), kind):
                out[name] = registered[key]
        return out

    def domains(self, names: list[str], var: str | None) -> dict[str, list[Mapping[str, Any]]]:
        """The ``domains`` of each host's registered domain_cpu_info result."""
        return self.registered(names, var, "domains", list)

    def verdicts(self, names: list[str], var: str | None) -> dict[str, Mapping[str, str]]:
        """libvirt's verdicts from each host's registered hypervisor_cpu_compare result."""
        return self.registered(names, var, "verdicts", Mapping)


def _reason(error: BaseException) -> str:
    """One line: the exception and the ones it was raised from (the cache plugin's own words are often the cause)."""
    parts: list[str] = []
    exc: BaseException | None = error
    while exc is not None and len(parts) < 3:
        parts.append(f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}".rstrip(": "))
        exc = exc.__cause__ or exc.__context__
    return " <- ".join(parts)


def _probe_error(registered: Any) -> str:
    """The reason of a failed probe, from the result the probe role registers (cpucompat_probe_result)."""
    if isinstance(registered, Mapping) and registered.get("failed"):
        return str(registered.get("msg") or "probe failed")
    return ""
