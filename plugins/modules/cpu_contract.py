# Copyright (c) 2026 cpucompat.cluster contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: cpu_contract
short_description: Pin, check, change or rebuild each group's CPU contract in the contract store
version_added: 0.3.0
description:
  - The collection's only action that writes the contract store (O(contract_store)); it reads the groups' facts on the
    controller, untemplated, as M(cpucompat.cluster.cluster_cpu_facts) does, and writes a report of kind O(report).
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
  - V(rebuild) rebuilds O(group)'s lost contract from the stamps its domains carry (O(domains_var)) - the newest
    generation, its digest checked - into the store, unless in check mode; refused when the store holds one as new.
  - Hosts without usable facts are named in the report (as by M(cpucompat.cluster.cluster_cpu_facts)); nothing is pinned
    or admitted from a partial group unless O(allow_partial=true).
attributes:
  facts:
    support: full
    description:
      - With V(contract) for one group, returns C(cpucompat_cluster) (the group's baseline of this run) when some host of
        the play would get a new value.
extends_documentation_fragment:
  - cpucompat.cluster.attributes.contract_store
  - cpucompat.cluster.aggregate
options:
  report:
    description: What to do with the contracts, and the kind of the report written.
    type: str
    default: contract
    choices: [contract, plan, rebuild]
  group:
    description: The inventory group whose contract V(plan) and V(rebuild) change, or V(contract) keeps (or O(groups)).
    type: str
  groups:
    description: With V(contract), several groups, each with its own contract.
    type: list
    elements: str
  domains_var:
    description:
      - Name of the host variable holding a registered M(cpucompat.cluster.domain_cpu_info) result - the domains whose
        compliance V(contract) reports, whose stamps V(rebuild) reads, and that V(plan) checks against the store.
    type: str
  carry_var:
    description:
      - With V(contract), the registered result of an earlier contract step of this run - its admission and
        C(<cpu>) stand, and only the domains' compliance is computed (no second baseline).
    type: str
  adopt:
    description:
      - With V(contract), hosts whose domains carry the stamp of another group's contract that this run may take
        into the group's contract on purpose. Without it such a host stops the group (a host belongs to one group's
        contract; the domains' stamps say which, whatever the inventory and the controller), naming both groups.
    type: list
    elements: str
    default: []
  defer_pin:
    description:
      - With V(contract), a group's first pin is not written by this step but by the observation step that follows
        (O(carry_var) and O(observations_var)), once, with the words the hosts observe. The site playbook sets it.
    type: bool
    default: false
  observations_var:
    description:
      - With V(contract), the variable each host registered its C(cpucompat.cluster.cpu_observe)
        result in. Each admitted host's observation of the carried C(<cpu>) (its C(cpucompat_observation) fact) is compared
        with the group's observed CPU, and a host whose vCPU differs in any CPUID word, or whose QEMU filtered a feature,
        or where the C(<cpu>) did not start, is refused (quarantined with O(on_refusal=exclude)), naming the words and
        what differs between its stack and the group's. The contract records the observation of every new stack.
      - Hosts without an observation (probed through a QMP socket, observation disabled) are listed, not refused.
      - Without O(carry_var), no host observes in this run - the observations made before it (each host's cached
        C(cpucompat_observation) fact) are judged in this same step, and a deferred first pin (O(defer_pin)) is written
        by it. The site playbook does this when no host of the run has a C(<cpu>) to observe, in one step instead of two.
    type: str
  tier_observations_var:
    description:
      - With O(observations_var), the variable each host registered its loop of C(cpucompat.cluster.cpu_observe) over its
        tiers' C(<cpu>) in (one result per tier contract, C(group@tier), with O(cpucompat.cluster.cpu_observe#module:name)).
        Each tier's hosts are judged by their observation of the tier's C(<cpu>) (their C(cpucompat_observations) fact
        under the tier's name) as a group's are, and the tier's contract records its observed stacks.
    type: str
  extra_stacks:
    description:
      - With V(contract), files of stacks beyond the group's (C(new-stack.json) of an upgrade check) - the
        C(<cpu>) is rendered exact on them too, and a host is refused when it cannot be.
    type: list
    elements: path
    default: []
  change:
    description: With V(plan), the change to plan.
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
    description: Pin or admit from the hosts that have facts even when others of the group do not.
    type: bool
    default: false
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
  tier:
    description:
      - With V(plan), the tier of O(group) whose contract changes (the group's C(cpucompat_tiers); its contract is
        C(<group>@<tier>), over the tier's hosts and the domains in the tier). Empty or V(base) is the group's own
        contract; its change leaves the other tiers' domains out.
      - With V(contract), each group's tiers are read from its C(cpucompat_tiers) variable and the operator's
        C(cpucompat_domain_tiers); each tier beyond the base is pinned, admitted and reported as a contract of its own.
    type: str
  pin:
    description:
      - With V(contract), pin a group's contract even though its domains carry the stamps of one the store does not hold
        (a lost or older store). By default the group is refused, naming the rebuild command.
    type: bool
    default: false
seealso:
  - module: cpucompat.cluster.cluster_cpu_facts
  - module: cpucompat.cluster.cpu_upgrade_check
"""

EXAMPLES = r"""
- name: Pin the hypervisors' contract, or check their hosts against it
  cpucompat.cluster.cpu_contract:
    group: hypervisors
    report_dir: /srv/cpucompat/reports
  run_once: true

- name: Plan raising the contract to the group's best CPU of today (written unless in check mode or refused)
  cpucompat.cluster.cpu_contract:
    report: plan
    group: hypervisors
    change:
      action: raise
      reason: new hosts of one generation
  run_once: true
"""

RETURN = r"""
report:
  description: The contract, plan or rebuild report (schema C(cpucompat.report/1), C(docs/reports.md)).
  returned: when O(return_report=true)
  type: dict
  sample: {schema: cpucompat.report/1, kind: contract, check_mode: false, verdict: {ok: true, reasons: []}}
contracts:
  description:
    - With V(contract), each group's contract - C(model), C(cpu) (the pinned level), C(xml) (its C(<cpu>) for
      today's stacks), C(pinned_at) - and the hosts C(admitted) to it.
  returned: when O(report=contract)
  type: dict
  sample: {hypervisors: {model: EPYC-Rome, xml: "<cpu mode='custom' match='exact' check='full'>...</cpu>", admitted: [hv1, hv2]}}
contract_files:
  description: The contracts written to the store (in check mode, the ones that would be).
  returned: always
  type: list
  elements: str
  sample: [/home/ops/.local/share/cpucompat/contracts/hypervisors.json]
report_files:
  description: The report files written (for V(contract), also the baseline report beside).
  returned: when O(report_dir) is set
  type: list
  elements: str
  sample: [/srv/reports/contract.json, /srv/reports/contract.md, /srv/reports/baseline.json]
markdown:
  description: The report in short Markdown, for the console (each per-host and per-domain list cut at 20 rows, the report files list them all).
  returned: always
  type: str
  sample: "# CPU contract report\n..."
verdict:
  description: C(ok) and the C(reasons) the contract, plan or rebuild was refused.
  returned: always
  type: dict
  sample: {ok: false, reasons: ["host hv3 cannot run the contract of group hypervisors: it lacks avx512f"]}
cluster:
  description: With V(contract) for one group, the value of C(cpucompat_cluster) of the group's baseline.
  returned: when O(report=contract) for one group
  type: dict
  sample: {schema: cpucompat.cluster/1, group: hypervisors, hosts: 3, model: EPYC-Rome}
"""
