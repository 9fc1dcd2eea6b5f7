# Copyright (c) 2026 cpucompat.cluster contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
name: cpu_groups
short_description: Group hosts by CPU capability from cached cpucompat facts
version_added: 0.1.0
description:
  - Adds the hosts that other inventory sources already defined to groups built from their cached C(cpucompat) facts
    (Ansible's fact cache, as configured), the way node labels work in cluster schedulers.
  - "Groups: C(<prefix>arch_<arch>), C(<prefix>vendor_<vendor>), C(<prefix>model_<model>) for every named model a host
    can run (C(cpu_model_Skylake_Server_v4)), C(<prefix>feature_<feature>) for the features listed in O(features),
    C(<prefix>facts_missing) for hosts without facts and C(<prefix>facts_stale) for facts of another schema version
    or older than O(max_age)."
  - "aarch64 hosts also go to C(<prefix>arm_identity_<label>): one group per host identity (MIDR and REVIDR values,
    Features, SVE vector lengths, PMU, pointer authentication, page size, kernel, QEMU version, machine type, firmware;
    C(<label>) is the first 16 hex digits of the identity's digest), the only hosts between which a host-passthrough
    guest may migrate; C(<prefix>arm_identity_unknown) when the facts do not show the identity (probed without the host's
    C(/sys))."
  - "With O(contract_groups), also C(<prefix>quarantine) and C(<prefix>quarantine_<group>) - the hosts of those groups
    whose cached facts cannot run their group's contract (read from the contract store O(contract_store)). Target or
    exclude them in plays (C(--limit '!cpu_quarantine')); the contract report says why each is there and how to
    resolve it."
  - "Of those groups, the ones that define tiers (C(cpucompat_tiers) among the group's variables in the inventory source):
    C(<prefix>tier_<group>_<tier>) per tier - the tier's hosts that run the tier's contract (all its hosts before the
    tier's first pin; the base tier once the group's contract is pinned) - and C(<prefix>quarantine_<group>_<tier>) for
    the tier's hosts that cannot (they stay out of C(<prefix>quarantine) unless the group's own contract refuses them).
    Variables in C(group_vars) files are not read by inventory sources: define C(cpucompat_tiers) in the inventory
    source itself."
  - List this source after the sources that define the hosts, for example C(-i hosts.ini -i cpu_groups.yml).
  - The C(constructed) options (O(compose), O(groups), O(keyed_groups)) see the fact as C(cpucompat).
author:
  - cpucompat.cluster contributors (@cpucompat)
extends_documentation_fragment:
  - constructed
  - inventory_cache
options:
  plugin:
    description: The name of this plugin.
    type: str
    required: true
    choices: [cpucompat.cluster.cpu_groups]
  group_prefix:
    description: Prefix of every group this plugin creates.
    type: str
    default: cpu_
  features:
    description: Features that get a group of their own (QEMU's spelling).
    type: list
    elements: str
    default: []
  models:
    description: Create a group for each named model a host can run.
    type: bool
    default: true
  max_age:
    description: Facts probed longer ago than this many seconds go to the stale group; V(0) never.
    type: int
    default: 0
  contract_groups:
    description: Inventory groups (defined by the sources before this one) whose hosts are checked against their group's contract.
    type: list
    elements: str
    default: []
  contract_store:
    description: The contract store, as the roles' C(cpucompat_contract_store) variables name it.
    type: dict
    default: {}
    suboptions:
      type:
        description: V(file) or V(redis).
        type: str
        default: file
        choices: [file, redis]
      path:
        description: The file store's folder; empty is C(~/.local/share/cpucompat/contracts).
        type: str
        default: ""
      connection:
        description: The Redis store's server (C(host:port[:db[:password]]) or a C(redis://) URL).
        type: str
        default: ""
      prefix:
        description: The prefix of the Redis keys.
        type: str
        default: cpucompat_contract_
"""

EXAMPLES = r"""
# cpu_groups.yml, used as: ansible-inventory -i hosts.ini -i cpu_groups.yml --graph
plugin: cpucompat.cluster.cpu_groups
features: [avx512f, vmx]
max_age: 604800
keyed_groups:
  - key: cpucompat.qemu.version
    prefix: qemu

# With the contracts: the hosts of hypervisors that cannot run the group's contract are in cpu_quarantine and
# cpu_quarantine_hypervisors (ansible-playbook -i hosts.ini -i cpu_groups.yml cpucompat.cluster.site --limit '!cpu_quarantine').
# Add to the file above:
#   contract_groups: [hypervisors]
#   contract_store: {type: redis, connection: "redis.example.org:6379:0"}
"""

import re
import time
from typing import Any

from ansible import constants as C
from ansible.errors import AnsibleParserError
from ansible.plugins.inventory import BaseInventoryPlugin, Cacheable, Constructable
from ansible.plugins.loader import cache_loader

from ansible_collections.cpucompat.cluster.plugins.module_utils._errors import CpuCompatError
from ansible_collections.cpucompat.cluster.plugins.module_utils.contract._admission import admission
from ansible_collections.cpucompat.cluster.plugins.module_utils.contract._store import store_of
from ansible_collections.cpucompat.cluster.plugins.module_utils.contract._tiers import BASE, parse_tiers
from ansible_collections.cpucompat.cluster.plugins.module_utils.cpu._guest import identity_label
from ansible_collections.cpucompat.cluster.plugins.module_utils.engine._arm_identity import identity_of
from ansible_collections.cpucompat.cluster.plugins.module_utils.engine._hostcpu import HostCpu
from ansible_collections.cpucompat.cluster.plugins.module_utils.probe._facts import READABLE_SCHEMAS


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_]", "_", name)


def host_groups(facts: Any, prefix: str, features: list[str], models: bool, max_age: int, now: float) -> list[str]:
    """The groups one host belongs to, from its cpucompat fact (None when it has none)."""
    if not isinstance(facts, dict):
        return [f"{prefix}facts_missing"]
    if facts.get("schema_version") not in READABLE_SCHEMAS:
        return [f"{prefix}facts_stale"]
    groups = [f"{prefix}arch_{_safe(str(facts.get('arch')))}"]
    if facts.get("vendor"):
        groups.append(f"{prefix}vendor_{_safe(str(facts['vendor']))}")
    if max_age and now - (facts.get("probe") or {}).get("probed_at", 0) > max_age:
        groups.append(f"{prefix}facts_stale")
    if models:
        groups += [f"{prefix}model_{_safe(m)}" for m in facts.get("runnable_models") or []]
    have = set(facts.get("features") or [])
    groups += [f"{prefix}feature_{_safe(f)}" for f in features if f in have]
    if facts.get("arch") == "aarch64":
        try:
            groups.append(f"{prefix}arm_identity_{identity_label(identity_of(facts, 'host'))[:16]}")
        except CpuCompatError:
            groups.append(f"{prefix}arm_identity_unknown")
    return groups


def _refused(contract: Any, hosts: list[HostCpu]) -> set[str]:
    """The hosts (with usable facts) that cannot run the contract; none without one."""
    if contract is None:
        return set()
    return {r.host for r in admission(contract, [h for h in hosts if h.arch == contract.arch and h.vendor == contract.vendor])}


def _cached(facts_cache: Any, host: str) -> dict[str, Any]:
    try:
        return facts_cache.get(host) or {}
    except KeyError:
        return {}


class InventoryModule(BaseInventoryPlugin, Constructable, Cacheable):
    """Groups from cached cpucompat facts."""

    NAME = "cpucompat.cluster.cpu_groups"

    def verify_file(self, path: str) -> bool:
        return super().verify_file(path) and path.endswith(("cpu_groups.yml", "cpu_groups.yaml"))

    def _quarantine(self, inventory: Any, facts_cache: Any, prefix: str) -> dict[str, list[str]]:
        """The quarantine groups of the hosts that cannot run their group's contract."""
        out: dict[str, list[str]] = {}
        names = self.get_option("contract_groups")
        if not names:
            return out
        try:
            store = store_of(self.get_option("contract_store") or {})
            every: dict[str, list[str]] | None = None
            for group in names:
                if group not in inventory.groups:
                    self.display.warning(f"cpu_groups: contract group {group} is not in the inventory (list this source last)")
                    continue
                contract = store.read(group).contract
                members = sorted(h.name for h in inventory.groups[group].get_hosts())
                hosts = []
                for host in members:
                    facts = _cached(facts_cache, host).get("cpucompat")
                    try:
                        hosts.append(HostCpu.from_facts(host, facts))
                    except (CpuCompatError, KeyError, TypeError, ValueError):
                        continue  # no usable facts: facts_missing or facts_stale says so
                refused = _refused(contract, hosts)
                for host in refused:
                    out.setdefault(host, []).extend([f"{prefix}quarantine", f"{prefix}quarantine_{_safe(group)}"])
                declared = inventory.groups[group].get_vars().get("cpucompat_tiers")
                if declared is not None and every is None:  # every inventory group's hosts, once and only for tiers
                    every = {name: [h.name for h in g.get_hosts()] for name, g in inventory.groups.items()}
                tiers = parse_tiers(group, declared, members, every or {}) if declared is not None else None
                for tier in tiers.tiers if tiers is not None else ():
                    # A group per tier: the tier's hosts that run its contract (all of them before its first pin); a
                    # host that cannot is in the tier's quarantine group, not in the group's (the base may keep it).
                    of_tier = set(tier.hosts)
                    in_tier = [h for h in hosts if h.name in of_tier]
                    tier_refused = refused if tier.name == BASE else _refused(store.read(tier.key).contract, in_tier)
                    for host in tier.hosts:
                        if host in tier_refused:
                            out.setdefault(host, []).append(f"{prefix}quarantine_{_safe(group)}_{_safe(tier.name)}")
                        elif contract is not None or tier.name != BASE:
                            out.setdefault(host, []).append(f"{prefix}tier_{_safe(group)}_{_safe(tier.name)}")
        except CpuCompatError as exc:
            raise AnsibleParserError(f"cpu_groups: reading the contracts failed: {exc}") from exc
        return out

    def parse(self, inventory: Any, loader: Any, path: str, cache: bool = True) -> None:
        super().parse(inventory, loader, path, cache)
        self._read_config_data(path)
        cache_key = self.get_cache_key(path)
        use_cache = self.get_option("cache") and cache
        memberships: dict[str, list[str]] | None = None
        if use_cache:
            try:
                memberships = self._cache[cache_key]
            except KeyError:
                memberships = None
        facts_cache = cache_loader.get(C.CACHE_PLUGIN)  # Ansible's fact cache, as ansible.cfg configures it
        if facts_cache is None:
            raise AnsibleParserError(f"cpu_groups: the fact cache plugin {C.CACHE_PLUGIN!r} could not be loaded")
        if memberships is None:
            prefix = self.get_option("group_prefix")
            now = time.time()
            memberships = {}
            for host in inventory.hosts:
                try:
                    facts = _cached(facts_cache, host)
                except Exception as exc:  # pylint: disable=broad-exception-caught  # any cache backend error
                    raise AnsibleParserError(f"cpu_groups: reading the fact cache for {host} failed: {exc}") from exc
                memberships[host] = host_groups(facts.get("cpucompat"), prefix, self.get_option("features"),
                                                self.get_option("models"), self.get_option("max_age"), now)
            for host, groups in self._quarantine(inventory, facts_cache, prefix).items():
                memberships.setdefault(host, []).extend(groups)
            if self.get_option("cache"):
                self._cache[cache_key] = memberships
        strict = self.get_option("strict")
        for host, groups in memberships.items():
            if host not in inventory.hosts:
                continue  # the cache may name hosts other sources no longer define
            for group in groups:
                self.inventory.add_group(group)
                self.inventory.add_child(group, host)
            hostfacts = _cached(facts_cache, host)
            variables = {"cpucompat": hostfacts.get("cpucompat")}
            self._set_composite_vars(self.get_option("compose"), variables, host, strict=strict)
            self._add_host_to_composed_groups(self.get_option("groups"), variables, host, strict=strict)
            self._add_host_to_keyed_groups(self.get_option("keyed_groups"), variables, host, strict=strict)
