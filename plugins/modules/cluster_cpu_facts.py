# Copyright (c) 2026 cpucompat.cluster contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: cluster_cpu_facts
short_description: Aggregate the CPU facts of a group into a baseline, contract, planning or upgrade report
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
  - V(contract) keeps each group's CPU contract (schema C(cpucompat.contract/2), one per group in the store O(contract_store) -
    the exact guest CPU, never XML) for the groups O(groups) (or O(group)) - pins a group's guest CPU when it has none,
    otherwise admits its hosts against the pinned one (a host that cannot run it, or on whose QEMU and libvirt it cannot
    be said exactly, is named with what it lacks, and the lower contract that would admit it); renders the C(<cpu>)
    for the stacks the group has (and those of O(extra_stacks)); writes the group's baseline report beside, from the
    same baseline; with O(domains_var), every domain's compliance. A host in two of the groups is refused. Contracts
    are written atomically, with compare-and-swap on their generation, and never in check mode; a malformed or foreign
    contract is refused, never overwritten; a C(cpucompat.contract/1) file is upgraded on this write, and the report
    says so. When the store has no contract for a group (or an older one) but its domains (O(domains_var)) carry the
    stamp of one, the group is refused, naming the command that rebuilds it, unless O(pin).
  - V(plan) plans raising or lowering O(group)'s contract (O(change)) and writes the new contract unless in check mode
    or refused (lower without C(allow_lower), a lost security feature without C(allow_security_loss), a raise some host
    cannot run, a what-if with C(without)).
  - V(upgrade) judges each group against a new QEMU or libvirt (the hosts O(new_stack) stand for it) - whether its
    contract runs there and can be said exactly on the old and the new stack at once, which domains' CPU would change
    at their next power cycle, and what to do; the new stack's facts are written to C(new-stack.json) in O(report_dir)
    for O(extra_stacks).
  - V(rebuild) rebuilds O(group)'s lost contract from the stamps its domains carry (O(domains_var)) - the newest
    generation, its digest checked - into the store, unless in check mode; refused when the store holds one as new.
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
  - This is an action plugin; it runs on the controller only.
author:
  - cpucompat.cluster contributors (@cpucompat)
extends_documentation_fragment:
  - cpucompat.cluster.attributes.read_only
attributes:
  facts:
    support: full
    description:
      - With O(report=baseline) (and O(report=contract) for one group), returns C(cpucompat_cluster) when some host of the play would get a new value;
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
    choices: [baseline, expansion, migration, contract, plan, upgrade, rebuild]
  group:
    description:
      - The inventory group; the baseline's hosts when O(hosts) is not given, the contract's group for V(contract),
        V(plan) and V(upgrade), and the group whose contract V(expansion) and V(migration) judge against.
    type: str
  groups:
    description: With O(report=contract) or O(report=upgrade), several groups, each with its own contract.
    type: list
    elements: str
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
  carry_var:
    description:
      - With O(report=contract), the registered result of an earlier contract step of this run - its admission and
        C(<cpu>) stand, and only the domains' compliance is computed (no second baseline).
    type: str
  adopt:
    description:
      - With O(report=contract), hosts whose domains carry the stamp of another group's contract that this run may take
        into the group's contract on purpose. Without it such a host stops the group (a host belongs to one group's
        contract; the domains' stamps say which, whatever the inventory and the controller), naming both groups.
    type: list
    elements: str
    default: []
  defer_pin:
    description:
      - With O(report=contract), a group's first pin is not written by this step but by the observation step that follows
        (O(carry_var) and O(observations_var)), once, with the words the hosts observe. The site playbook sets it.
    type: bool
    default: false
  observations_var:
    description:
      - With O(report=contract) and O(carry_var), the variable each host registered its C(cpucompat.cluster.cpu_observe)
        result in. Each admitted host's observation of the carried C(<cpu>) (its C(cpucompat_observation) fact) is compared
        with the group's observed CPU, and a host whose vCPU differs in any CPUID word, or whose QEMU filtered a feature,
        or where the C(<cpu>) did not start, is refused (quarantined with O(on_refusal=exclude)), naming the words and
        what differs between its stack and the group's. The contract records the observation of every new stack.
      - Hosts without an observation (probed through a QMP socket, observation disabled) are listed, not refused.
      - With O(report=upgrade), the variable the canaries (O(new_stack)) registered their cpu_observe result in, an
        observation of the C(<cpu>) an earlier call returned in C(observe); a canary whose words differ from those the
        contract records for the group fails the check.
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
  new_stack:
    description:
      - With O(report=upgrade), the hosts that stand for the new stack - a canary already upgraded, or the host the
        C(cpucompat.cluster.upgrade_check) playbook adds for a QEMU binary and CPU map probed by path.
    type: list
    elements: str
    default: []
  extra_stacks:
    description:
      - With O(report=contract), files of stacks beyond the group's (C(new-stack.json) of an upgrade check) - the
        C(<cpu>) is rendered exact on them too, and a host is refused when it cannot be.
    type: list
    elements: path
    default: []
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
  change:
    description: With O(report=plan), the change to plan.
    type: dict
    suboptions:
      action:
        description: V(raise) or V(lower).
        type: str
        required: true
        choices: [raise, lower]
      without:
        description: Hosts to leave out (what-if of decommissioning); the plan is then never applied.
        type: list
        elements: str
        default: []
      allow_lower:
        description: Allow a lower.
        type: bool
        default: false
      allow_security_loss:
        description: Allow losing a security feature.
        type: bool
        default: false
      reason:
        description: The history entry's reason.
        type: str
        default: ""
      level:
        description: The level to raise or lower to, as O(level); empty is the group's best CPU of today.
        type: str
  allow_partial:
    description: Compute the baseline (and pin or admit) from the hosts that have facts even when others do not.
    type: bool
    default: false
  policy:
    description: What shapes the baseline, as the options of P(cpucompat.cluster.cpu_baseline#filter).
    type: dict
    default: {}
    suboptions:
      migratable_only:
        description: Keep only migratable features.
        type: bool
        default: true
      allow_deprecated:
        description: Allow models QEMU deprecates.
        type: bool
        default: false
      require_features:
        description: Features the group must keep; fails naming the hosts that lack them.
        type: list
        elements: str
        default: []
      min_model:
        description: A model every host must run.
        type: str
      exclude_features:
        description: Features to leave out although every host has them.
        type: list
        elements: str
        default: []
      vendor_neutral:
        description: Allow hosts of different vendors, on a vendor-neutral model.
        type: bool
        default: false
  form:
    description: The form of the libvirt C(<cpu>), as in P(cpucompat.cluster.libvirt_cpu_xml#filter).
    type: str
    default: minimal
    choices: [minimal, explicit]
  cpu_map:
    description:
      - Directory of a libvirt CPU map on the controller for hosts whose facts say nothing about libvirt (facts built by
        hand). Each probed host's facts carry the map its own libvirt reads, and that is the one used.
    type: path
  contract_dir:
    description:
      - The file store's folder on the controller, one C(<group>.json) per group (and a C(.<group>.lock) for writers).
      - Empty is C($XDG_DATA_HOME/cpucompat/contracts) (C(~/.local/share/cpucompat/contracts)), outside any inventory
        folder. A contract found only in C(cpucompat-contracts) beside the inventory (the default before 0.3.0) is read
        from there and moved into the store on the next write.
    type: str
    default: ""
  contract_store:
    description:
      - Where the contracts live. Every contract carries a generation; a write compares it with the one this run read, so
        two runs (two controllers, two AWX jobs) that change one group at once never overwrite each other - the later
        fails, naming the winner's generation, and writes nothing.
    type: dict
    default: {}
    suboptions:
      type:
        description:
          - V(file), a folder on the controller (O(contract_dir); writes hold a lock); V(redis), one key per group in a
            Redis server shared by the controllers (the compare-and-swap is one server-side script).
        type: str
        default: file
        choices: [file, redis]
      path:
        description: The file store's folder; overrides O(contract_dir).
        type: str
        default: ""
      connection:
        description:
          - The Redis server, as C(host:port[:db[:password]]) (the form of the C(community.general.redis) fact cache) or a
            C(redis://) URL. Empty is the fact cache's connection when the fact cache is Redis.
        type: str
        default: ""
      prefix:
        description: The prefix of the keys (C(<prefix><group>)).
        type: str
        default: cpucompat_contract_
  on_refusal:
    description:
      - With V(contract), what a host that cannot run its group's contract does to the run. V(fail) - the group is
        refused (nothing pinned, admitted or deployed). V(exclude) - the host is quarantined (C(quarantined) names it
        with what to check and the commands that resolve it; it is not admitted, so its domains are left as they are)
        and the rest of the group and the other groups proceed. A host on whose stack the contract cannot be said
        exactly stops the group either way.
    type: str
    default: fail
    choices: [fail, exclude]
  platforms:
    description:
      - With V(contract), the platforms whose rendering of each group's contract the report shows beside the libvirt
        C(<cpu>) (C(platforms) per group - the rendering, or why the platform cannot say the contract exactly).
    type: list
    elements: str
    default: []
    choices: [libvirt, qemu, proxmox, nova, kubevirt, incus]
  level:
    description:
      - The level the operator chooses (as VMware's EVC mode) for a V(contract)'s first pin; for V(plan), O(change.level).
        A model with features added or removed (C(Skylake-Server), C(Skylake-Server,+pku,-hle)) or an x86-64 psABI level
        (C(x86-64-v2), C(x86-64-v3), C(x86-64-v4) - the oldest model every host runs that has the level's features).
        Validated against every host - a host that lacks a feature of it, or cannot run the model, is named. Empty is the
        best CPU every host runs today.
    type: str
  pin:
    description:
      - With V(contract), pin a group's contract even though its domains carry the stamps of one the store does not hold
        (a lost or older store). By default the group is refused, naming the rebuild command.
    type: bool
    default: false
  report_dir:
    type: str
    description:
      - Directory on the controller where C(<report>.json) (the report), C(<report>.md) and C(<report>.html) are
        written, atomically, also in check mode since they change nothing on the hosts. Files whose content is the same
        are left alone. V(contract) also writes the baseline report of each group (C(<group>/baseline.*) for several).
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
  description:
    - With O(report=contract), each group's contract - C(model), C(cpu) (the pinned level), C(xml) (its C(<cpu>) for
      today's stacks), C(pinned_at) - and the hosts C(admitted) to it.
  returned: when O(report=contract)
  type: dict
  sample: {hypervisors: {model: EPYC-Rome, xml: "<cpu mode='custom' match='exact' check='full'>...</cpu>", admitted: [hv1, hv2]}}
new_stack:
  description: With O(report=upgrade), the new stack's facts (host name to C(cpucompat) facts), as written to C(new-stack.json).
  returned: when O(report=upgrade)
  type: dict
  sample: {hv1@new-stack: {schema_version: 5, arch: x86_64}}
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
  returned: when O(report=baseline), or O(report=contract) for one group
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
