# Copyright (c) 2026 cpucompat.cluster contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""One variable per concept across the roles, and the names they replace. Private.

Each role's ``defaults/main.yml`` resolves a new name from the old ones it replaces (``{{ old | default(...) }}``), so the
old names keep working for one release; ``cpucompat.cluster.renamed_variables`` warns about each old name in use. A
unit test keeps the defaults of every role in step with :data:`RENAMED`.
"""

from __future__ import annotations

REMOVED_IN = "0.4.0"

# old name -> new name ("cpucompat_domains.names": a key of the domain selector)
RENAMED: dict[str, str] = {
    "cpucompat_baseline_group": "cpucompat_group",
    "cpucompat_expansion_cluster_group": "cpucompat_group",
    "cpucompat_baseline_allow_partial": "cpucompat_allow_partial",
    "cpucompat_contract_allow_partial": "cpucompat_allow_partial",
    "cpucompat_baseline_migratable_only": "cpucompat_policy_migratable_only",
    "cpucompat_baseline_allow_deprecated": "cpucompat_policy_allow_deprecated",
    "cpucompat_baseline_require_features": "cpucompat_policy_require_features",
    "cpucompat_baseline_min_model": "cpucompat_policy_min_model",
    "cpucompat_baseline_exclude_features": "cpucompat_policy_exclude_features",
    "cpucompat_contract_exclude_features": "cpucompat_policy_exclude_features",
    "cpucompat_baseline_vendor_neutral": "cpucompat_policy_vendor_neutral",
    "cpucompat_contract_vendor_neutral": "cpucompat_policy_vendor_neutral",
    "cpucompat_deploy_uri": "cpucompat_libvirt_uri",
    "cpucompat_contract_uri": "cpucompat_libvirt_uri",
    "cpucompat_expansion_uri": "cpucompat_libvirt_uri",
    "cpucompat_migration_uri": "cpucompat_libvirt_uri",
    "cpucompat_probe_cpu_map": "cpucompat_cpu_map",
    "cpucompat_deploy_domains": "cpucompat_domains.names",
    "cpucompat_migration_domains": "cpucompat_domains.names",
    "cpucompat_deploy_pattern": "cpucompat_domains.pattern",
}


def deprecations(names: set[str] | frozenset[str]) -> list[dict[str, str]]:
    """One deprecation per old name in ``names`` (the variables a host has), sorted, in Ansible's result format."""
    out = []
    for old in sorted(set(names) & set(RENAMED)):
        new = RENAMED[old]
        where = f"the key {new.split('.', 1)[1]} of {new.split('.', 1)[0]}" if "." in new else new
        out.append({"msg": f"The variable {old} is renamed: set {where} instead (one name for the concept in every role "
                           f"of cpucompat.cluster)", "version": REMOVED_IN, "collection_name": "cpucompat.cluster"})
    return out


# The shared variables' defaults (Jinja literals) when neither the new nor an old name is set.
DEFAULTS: dict[str, str] = {
    "cpucompat_group": "'hypervisors'",
    "cpucompat_allow_partial": "false",
    "cpucompat_policy_migratable_only": "true",
    "cpucompat_policy_allow_deprecated": "false",
    "cpucompat_policy_require_features": "[]",
    "cpucompat_policy_min_model": "''",
    "cpucompat_policy_exclude_features": "[]",
    "cpucompat_policy_vendor_neutral": "false",
    "cpucompat_libvirt_uri": "'qemu:///system'",
    "cpucompat_cpu_map": "'/usr/share/libvirt/cpu_map'",
    "cpucompat_domains.names": "[]",
    "cpucompat_domains.pattern": "''",
}


def default_expression(new: str) -> str:
    """The value a role's defaults give ``new``: the first old name set, else the default (``{{ a | default(b |
    default(x)) }}``)."""
    olds = [old for old, target in RENAMED.items() if target == new]
    text = DEFAULTS[new]
    for old in reversed(olds):
        text = f"{old} | default({text})"
    return "{{ " + text + " }}"
