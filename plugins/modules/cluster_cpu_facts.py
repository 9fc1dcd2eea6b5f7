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
  - With O(group), V(expansion) and V(migration) also judge against the group's contract when it has one, and
    V(baseline) says how today's baseline compares with it.
  - Hosts without facts, with facts of another schema version, whose latest probe failed (the host variable
    C(cpucompat_probe_result) registered by the C(cpucompat.cluster.probe) role has C(failed=true)), or that failed or were unreachable in this play
    are listed by name in C(missing_facts), C(other_schema), C(probe_failed) and C(unreachable); a host whose fact
    cache entry cannot be read (not JSON, a Redis server gone away) in C(unreadable), with the reason in
    C(unreadable_errors). They are never skipped silently. The
    baseline is then not computed (C(error) says why) unless O(allow_partial=true). An expansion plan is not made
    when a host of the cluster or a candidate has no usable facts (C(hosts_without_facts) names each with the
    reason); a migration target without usable facts is named in C(target_problems).
  - Read-only - it writes no contract. The verbs that write the contract store are M(cpucompat.cluster.cpu_contract)'s
    (V(contract), V(plan), V(rebuild)); the upgrade check is M(cpucompat.cluster.cpu_upgrade_check). Given O(report) of
    one of those, this action still runs it, through the new action and with a deprecation warning naming it, until
    0.4.0.
extends_documentation_fragment:
  - cpucompat.cluster.attributes.read_only
  - cpucompat.cluster.aggregate
attributes:
  facts:
    support: full
    description:
      - With O(report=baseline), returns C(cpucompat_cluster) when some host of the play would get a new value;
        not when every host holds it already (no fact cache entry is rewritten), nor when no baseline was computed or
        a host's fact cache entry could not be read (the cache is left as it is).
options:
  report:
    description: The kind of report (schema C(cpucompat.report/1)).
    type: str
    default: baseline
    choices: [baseline, expansion, migration]
  group:
    description:
      - The inventory group; the baseline's hosts when O(hosts) is not given, and the group whose contract V(expansion)
        and V(migration) judge against (read from the store, never written).
    type: str
  hosts:
    description: The hosts to aggregate (the cluster for V(expansion), the targets for V(migration)); default the play's.
    type: list
    elements: str
  candidates:
    description: With O(report=expansion), the hosts that would join.
    type: list
    elements: str
    default: []
  sources:
    description: With O(report=migration), the hosts whose domains would move (default O(hosts)).
    type: list
    elements: str
  domains_var:
    description: Name of the host variable holding a registered M(cpucompat.cluster.domain_cpu_info) result.
    type: str
  verdicts_var:
    description: Name of the host variable holding a registered M(cpucompat.cluster.hypervisor_cpu_compare) result.
    type: str
  source_observations_var:
    description:
      - With O(report=migration) and O(target_observations_var), the variable each source host registered its
        C(cpucompat.cluster.cpu_observe) loop over its domains in (each result's C(item) a C(domain_cpu_info) entry).
      - Each requested move is then judged by observation too - the domain's CPU as its source observes it and the same
        CPU as the target observes it must give the same CPUID words; a difference blocks the move, naming the words.
    type: str
  target_observations_var:
    description:
      - With O(source_observations_var), the variable each target registered its cpu_observe loop over
        C(cpucompat.cluster.cpu_observation_plan) entries in (each result's C(item) with C(key), C(host/domain)).
    type: str
  requested:
    description: With O(report=migration), the migrations to judge, as C({domain, target}) pairs.
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
notes:
  - With C(run_once), the action runs once and Ansible gives its C(ansible_facts) to every host of the play, so
    C(cpucompat_cluster) is the same on all of them; without C(run_once) each host computes the same view again.
seealso:
  - module: cpucompat.cluster.cpu_probe
  - module: cpucompat.cluster.cpu_contract
  - module: cpucompat.cluster.cpu_upgrade_check
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
report_files:
  description: The report files written.
  returned: when O(report_dir) is set
  type: list
  elements: str
  sample: [/srv/reports/baseline.json, /srv/reports/baseline.md]
markdown:
  description: A short Markdown rendering of the report, for the console (the baseline's per-host table cut at 20 rows).
  returned: always
  type: str
  sample: "# CPU baseline report\n\n1000 host(s) with facts; ..."
verdict:
  description: Whether the report is good (C(ok)) and the C(reasons) it is not.
  returned: always
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
