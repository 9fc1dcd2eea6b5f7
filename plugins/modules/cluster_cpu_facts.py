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
  - V(baseline) builds the cluster view - per-host summary, grouping by architecture, vendor and QEMU version, the
    baseline from P(cpucompat.cluster.cpu_baseline#filter), each host's verdict against it, and the libvirt C(<cpu>)
    XML - and gives every host of the play the small fact C(cpucompat_cluster) (the XML, the group's identity, the
    report's digest; the same size for 10 hosts or 10,000). The per-host parts stay in the report (the result's
    C(report) and the files in O(report_dir)), never in every host's facts.
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
    are listed by name in C(missing_facts), C(other_schema), C(probe_failed) and C(unreachable); a host whose fact
    cache entry cannot be read (not JSON, a Redis server gone away) in C(unreadable), with the reason in
    C(unreadable_errors). They are never skipped silently. The
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
    description:
      - With O(report=baseline), returns C(cpucompat_cluster) when some host of the play would get a new value;
        not when every host holds it already (no fact cache entry is rewritten), nor when no baseline was computed or
        a host's fact cache entry could not be read (the cache is left as it is).
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
      - With V(baseline), the group to aggregate (unless O(hosts) is given); its name is part of C(cpucompat_cluster).
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
      - The hosts to aggregate. Defaults to the hosts of the inventory group O(group) with O(report=baseline), else to
        all hosts of the play (C(ansible_play_hosts_all)).
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
  return_report:
    description:
      - Return the whole report as C(report). With V(false), the result has C(markdown) (a short rendering, the
        per-host table cut at 20 rows) and C(verdict) instead; the whole report is in the files of O(report_dir).
      - A 1,000-host report in the result costs Ansible about 2 seconds (sent from the worker process, copied for
        C(register), walked by the callbacks); the collection's baseline role passes V(false).
    type: bool
    default: true
notes:
  - With C(run_once), the action runs once and Ansible gives its C(ansible_facts) to every host of the play, so
    C(cpucompat_cluster) is the same on all of them; without C(run_once) each host computes the same view again.
  - Facts are read where ansible-core 2.19 keeps them (the fact cache and this run's registered results), not through
    C(hostvars), whose per-host cost grows with the inventory; with another ansible-core layout it falls back to
    C(hostvars). Any fact cache plugin works (C(jsonfile), C(community.general.redis), ...); large fleets probe in
    C(--limit) slices into one shared cache and aggregate once (the collection's C(docs/fleet.md)).
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
  returned: when O(return_report=true)
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
markdown:
  description: A short Markdown rendering of the report (the baseline's per-host table cut at 20 rows).
  returned: when O(return_report=false)
  type: str
  sample: "# CPU baseline report\n\n1000 host(s) with facts; ..."
verdict:
  description: Whether the report is good (C(ok)) and the C(reasons) it is not.
  returned: when O(return_report=false)
  type: dict
  sample: {ok: false, reasons: ["the baseline is not computed from a partial group: no usable facts from hv5, hv6 ..."]}
cluster:
  description: With O(report=baseline), the value of C(cpucompat_cluster) (also when the fact itself is not returned).
  returned: when O(report=baseline)
  type: dict
  sample: {schema: cpucompat.cluster/1, group: hypervisors, hosts: 1000, model: Skylake-Server-v4, xml: "<cpu ...>...</cpu>"}
cluster_fact:
  description:
    - With O(report=baseline), what became of the fact - V(written) (returned as C(ansible_facts)), V(unchanged)
      (every receiving host holds it already), or V(withheld) (no baseline, or a host's fact cache entry could not be
      read; every host keeps what it had).
  returned: when O(report=baseline)
  type: str
  sample: written
ansible_facts:
  description: Facts to add to ansible_facts.
  returned: when O(report=baseline) and C(cluster_fact) is V(written)
  type: complex
  contains:
    cpucompat_cluster:
      description:
        - What every host keeps of the baseline (schema C(cpucompat.cluster/1)), the same size whatever the group's -
          C(group), C(hosts) (how many), C(members_digest) (C(sha256:) of the sorted host names), C(complete),
          C(unusable_hosts) (how many), C(arch), C(vendor), C(model) (libvirt's), C(xml), C(error) (cut at 300
          characters), C(report_digest) (C(sha256:) of the canonical JSON of the report) and C(report_file).
      returned: when O(report=baseline) and C(cluster_fact) is V(written)
      type: dict
      sample:
        schema: cpucompat.cluster/1
        group: hypervisors
        hosts: 2
        members_digest: "sha256:652961e6c0fc90c1b5bde7b8d5431849d0b2a05469f72dab0f3f9b1c039b7577"
        complete: true
        unusable_hosts: 0
        arch: x86_64
        vendor: GenuineIntel
        model: Skylake-Server-IBRS
        xml: "<cpu mode='custom' match='exact' check='full'>...</cpu>"
        error: null
        report_digest: "sha256:071f94ddf35874d7edc27b56fb4dc72f576e4d28bd25da2ba31a5f10543d55dd"
        report_file: /srv/inventory/reports/baseline.json
"""
