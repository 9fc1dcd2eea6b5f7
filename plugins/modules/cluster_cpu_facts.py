# Copyright (c) 2026 cpucompat.cluster contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: cluster_cpu_facts
short_description: Aggregate the CPU facts of a group into a baseline, expansion or migration report
version_added: 0.1.0
description:
  - Reads C(ansible_facts['cpucompat']) of every host of a group (probed by M(cpucompat.cluster.cpu_probe)) on the
    controller, untemplated, and builds the report of kind O(report).
  - V(baseline) returns the cluster view as the fact C(cpucompat_cluster). per-host summary, grouping by
    architecture, vendor and QEMU version, the baseline from P(cpucompat.cluster.cpu_baseline#filter), each host's
    verdict against it, and the libvirt C(<cpu>) XML.
  - V(expansion) plans adding the hosts of O(candidates) to the cluster O(hosts), as
    P(cpucompat.cluster.cpu_expansion_plan#filter) does, with the domains of the cluster's hosts read from the
    registered M(cpucompat.cluster.domain_cpu_info) results named by O(domains_var).
  - V(migration) builds the migration matrix of the domains of O(sources) (O(domains_var)) against the targets
    O(hosts), as P(cpucompat.cluster.cpu_migration_matrix#filter) does, with libvirt's verdicts read from the registered
    M(cpucompat.cluster.hypervisor_cpu_compare) results named by O(verdicts_var).
  - V(contract) keeps each group's CPU contract (schema C(cpucompat.contract/1), one C(<group>.json) in O(contract_dir))
    for the groups O(groups) (or O(group)) - pins a group's baseline when it has none, otherwise admits its hosts against
    the pinned CPU (a host that cannot run it is named with the features it lacks, and the lower contract that would
    admit it); with O(domains_var), every domain's compliance. A host in two of the groups is refused. Contract files
    are written atomically and never in check mode; a malformed or foreign contract is refused, never overwritten.
  - V(plan) plans raising or lowering O(group)'s contract (O(contract_action)) and writes the new contract unless in
    check mode or refused (lower without O(allow_lower), a lost security feature without O(allow_security_loss), a
    raise some host cannot run, a what-if with O(without)).
  - With O(group), V(expansion) and V(migration) also judge against the group's contract when it has one.
  - Hosts without facts, with facts of another schema version, whose latest probe failed (the host variable
    C(cpucompat_probe_result) registered by the C(cpucompat.cluster.probe) role has C(failed=true)), or that failed or were unreachable in this play
    are listed by name in C(missing_facts), C(other_schema), C(probe_failed) and C(unreachable); they are never skipped
    silently. The
    baseline is then not computed (C(error) says why) unless O(allow_partial=true). An expansion plan is not made
    when a host of the cluster or a candidate has no usable facts (C(hosts_without_facts) names each with the
    reason); a migration target without usable facts is named in C(target_problems).
  - This is an action plugin; it runs on the controller only.
author:
  - cpucompat.cluster contributors (@cpucompat)
extends_documentation_fragment:
  - cpucompat.cluster.attributes.read_only
attributes:
  facts:
    support: full
    description: Returns C(cpucompat_cluster).
  action:
    support: full
    description: Runs on the controller.
options:
  report:
    description: The kind of report (schema C(cpucompat.report/1)).
    type: str
    default: baseline
    choices: [baseline, expansion, migration, contract, plan]
  group:
    description:
      - The inventory group whose contract V(contract) or V(plan) keeps, or whose contract V(expansion) (the cluster)
        and V(migration) (the sources) are judged against.
    type: str
  groups:
    description: With O(report=contract), several inventory groups, each with its own contract.
    type: list
    elements: str
  contract_dir:
    description:
      - Folder on the controller with one C(<group>.json) contract per group; version it with the inventory.
      - Empty is C(cpucompat-contracts) beside the first inventory source that is a file or folder, else in the current
        directory.
    type: str
    default: ""
  contract_action:
    description: With O(report=plan), V(raise) or V(lower) the contract to the group's baseline of today.
    type: str
    choices: [raise, lower]
  without:
    description: With O(report=plan), hosts to leave out (the what-if of decommissioning); such a plan is never applied.
    type: list
    elements: str
    default: []
  allow_lower:
    description: With O(report=plan), allow a lower contract.
    type: bool
    default: false
  allow_security_loss:
    description: With O(report=plan), allow a contract that loses a mitigation feature (spec-ctrl, ssbd, md-clear, ...).
    type: bool
    default: false
  reason:
    description: With O(report=plan), the reason recorded in the contract's history.
    type: str
    default: ""
  hosts:
    description:
      - The hosts to aggregate. Defaults to all hosts of the play (C(ansible_play_hosts_all)).
      - The group for V(baseline), the current cluster for V(expansion), the targets for V(migration).
    type: list
    elements: str
  candidates:
    description: With O(report=expansion), the hosts that would join the cluster.
    type: list
    elements: str
    default: []
  sources:
    description: With O(report=migration), the hosts whose domains would move. Defaults to O(hosts).
    type: list
    elements: str
  domains_var:
    description:
      - Name of the host variable holding a registered M(cpucompat.cluster.domain_cpu_info) result (its C(domains)).
      - Hosts where it is absent or skipped contribute no domains.
    type: str
  verdicts_var:
    description: With O(report=migration), name of the host variable holding a registered M(cpucompat.cluster.hypervisor_cpu_compare) result.
    type: str
  requested:
    description:
      - With O(report=migration), the migrations intended, each a dictionary with C(domain) (C(host/name)) and C(target)
        (a host); an impossible one fails the verdict.
    type: list
    elements: dict
    default: []
  fail_on:
    description: With O(report=expansion), the policy of the verdict, as in P(cpucompat.cluster.cpu_expansion_plan#filter).
    type: str
    default: incompatible
    choices: [incompatible, lowers_baseline, never]
  allow_partial:
    description: Compute the baseline from the hosts that have facts even when others do not.
    type: bool
    default: false
  migratable_only:
    description: As in P(cpucompat.cluster.cpu_baseline#filter).
    type: bool
    default: true
  allow_deprecated:
    description: As in P(cpucompat.cluster.cpu_baseline#filter).
    type: bool
    default: false
  require_features:
    description: As in P(cpucompat.cluster.cpu_baseline#filter).
    type: list
    elements: str
    default: []
  min_model:
    description: As in P(cpucompat.cluster.cpu_baseline#filter).
    type: str
  exclude_features:
    description: As in P(cpucompat.cluster.cpu_baseline#filter).
    type: list
    elements: str
    default: []
  vendor_neutral:
    description: As in P(cpucompat.cluster.cpu_baseline#filter).
    type: bool
    default: false
  cpu_map:
    description:
      - libvirt's CPU map on the controller, used to render the x86_64 XML. Use the map of the libvirt version the
        hypervisors run; M(cpucompat.cluster.domain_cpu) with O(cpucompat.cluster.domain_cpu#module:baseline) renders
        on each hypervisor with its own map instead.
    type: path
    default: /usr/share/libvirt/cpu_map
  report_dir:
    type: str
    description:
      - Directory on the controller where C(<report>.json) (the report) and C(<report>.md) (its Markdown rendering) are
        written, atomically, also in check mode since they change nothing on the hosts. Files whose content is the same
        are left alone.
      - Empty is a folder C(reports) beside the first inventory source that is a file or folder, else in the current
        directory; omitted, no report file is written.
notes:
  - With C(run_once), the action runs once and Ansible gives its C(ansible_facts) to every host of the play, so
    C(cpucompat_cluster) is the same on all of them; without C(run_once) each host computes the same view again.
  - The view follows the report schema C(cpucompat.report/1) documented in the collection's C(docs/reports.md).
seealso:
  - module: cpucompat.cluster.cpu_probe
"""

EXAMPLES = r"""
- name: Aggregate the hypervisors and compute their common CPU
  cpucompat.cluster.cluster_cpu_facts:
  run_once: true

- name: Plan adding the candidates to the hypervisors, with the domains listed before into found_domains
  cpucompat.cluster.cluster_cpu_facts:
    report: expansion
    hosts: "{{ groups['hypervisors'] }}"
    candidates: "{{ groups['candidates'] }}"
    domains_var: found_domains
    report_dir: /srv/cpucompat/reports
  register: plan
  run_once: true

- name: Show the XML
  ansible.builtin.debug:
    msg: "{{ ansible_facts['cpucompat_cluster']['xml'] }}"
"""

RETURN = r"""
report:
  description: The report of kind O(report) (schema C(cpucompat.report/1), C(docs/reports.md)).
  returned: always
  type: dict
  sample: {schema: cpucompat.report/1, kind: expansion, verdict: {ok: true, reasons: []}}
contracts:
  description: With O(report=contract), each group's contract CPU (C(model), C(xml), C(pinned_at)) and the hosts C(admitted) to it.
  returned: when O(report=contract)
  type: dict
  sample: {hypervisors: {model: EPYC-Rome, xml: "<cpu mode='custom' match='exact' check='full'>...</cpu>", admitted: [hv1, hv2]}}
contract_files:
  description: The contract files written (in check mode, the ones that would be).
  returned: when O(report=contract) or O(report=plan)
  type: list
  elements: str
  sample: [/srv/inventory/cpucompat-contracts/hypervisors.json]
report_files:
  description: The report files written.
  returned: when O(report_dir) is set
  type: list
  elements: str
  sample: [/srv/reports/baseline.json, /srv/reports/baseline.md]
ansible_facts:
  description: Facts to add to ansible_facts.
  returned: when O(report=baseline)
  type: complex
  contains:
    cpucompat_cluster:
      description: The cluster view (schema C(cpucompat.report/1)).
      returned: when O(report=baseline)
      type: dict
      sample:
        schema: cpucompat.report/1
        kind: baseline
        complete: true
        hosts: {hv1: {arch: x86_64, vendor: GenuineIntel, qemu_version: 7.2.22, features: 98}}
        unreachable: []
        probe_failed: []
        probe_errors: {}
        missing_facts: []
        other_schema: []
        by_arch: {x86_64: [hv1, hv2]}
        by_vendor: {GenuineIntel: [hv1, hv2]}
        qemu_versions: {7.2.22: [hv1, hv2]}
        baseline: {model: Skylake-Server-v4, require: [], disable: [], lost: {}, bottlenecks: {}}
        verdicts: {hv1: {result: superset, runnable: true}}
        xml: "<cpu mode='custom' match='exact' check='full'>...</cpu>"
        error: null
"""
