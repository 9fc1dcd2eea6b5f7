# Copyright (c) 2026 cpucompat.cluster contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: cpu_power_cycle
short_description: Plan a group's rolling power cycle onto its contract CPU, and record its batches
version_added: 0.3.0
description:
  - Runs on the controller. V(plan) takes the running guests that wait for a stop and a start to run their contract CPU
    (the C(restart-required) domains of the contract step O(carry_var), and C(above-contract) ones whose definition
    carries the contract), narrowed by O(select), in batches bounded by O(batch) and O(anti_affinity), without the
    guests an earlier run already shut down and started for the same contract; and, unless in check mode, starts a run in
    the group's progress, kept beside its contract in the contract store with the same compare-and-swap.
  - V(record) writes one batch's results (registered results of M(cpucompat.cluster.domain_power_cycle), each naming its
    host by C(host) or by the loop's C(item.key)) into the progress, and says whether the run stops (a failed health gate).
  - Both write the C(power_cycle) report (batches, each guest's CPU before and after, what it gains and loses, the
    time it was down).
extends_documentation_fragment:
  - cpucompat.cluster.attributes.contract_store
  - cpucompat.cluster.aggregate
options:
  step:
    description: V(plan) the batches, or V(record) one batch's results.
    type: str
    default: plan
    choices: [plan, record]
  group:
    description: The inventory group whose guests are cycled.
    type: str
  carry_var:
    description: Name of the host variable holding the registered result of this run's contract step (M(cpucompat.cluster.cpu_contract)).
    type: str
    required: true
  mode:
    description: V(next_shutdown) or V(now), as M(cpucompat.cluster.domain_power_cycle).
    type: str
    default: next_shutdown
    choices: [next_shutdown, now]
  select:
    description:
      - Only these guests - a comma-separated string or a list, each a host, C(host/name), a domain name, a pattern
        (C(web*)) or C(~) and a regular expression. All pending guests when omitted.
    type: raw
  batch:
    description: "At most this many guests down at once - a number (overall and per host) or C({per_host: n, overall: m})."
    type: raw
    default: 1
  anti_affinity:
    description: Lists of domains (C(name) or C(host/name)) never down together.
    type: raw
    default: []
  batch_index:
    description: With V(record), the batch's index in the plan.
    type: int
    default: 0
  results:
    description: With V(record), registered results of M(cpucompat.cluster.domain_power_cycle), each with C(host) (or C(item.key)).
    type: list
    elements: raw
    default: []
  generation:
    description: With V(record), the progress generation the plan (or the previous record) returned.
    type: int
    default: 0
  planned:
    description: With V(record), the batches V(plan) returned.
    type: list
    elements: raw
    default: []
  last:
    description: With V(record), whether this is the run's last part (it ends the run); by default, the plan's last batch.
    type: bool
  lease:
    description:
      - Seconds after its last record that a run under way keeps the group to itself; V(plan) is refused meanwhile, naming
        that run. Longer than the longest batch.
    type: float
    default: 3600
  takeover:
    description: Plan even though the progress says another run is under way (that run is gone).
    type: bool
    default: false
"""

EXAMPLES = r"""
- name: Plan the power cycle
  cpucompat.cluster.cpu_power_cycle:
    group: hypervisors
    carry_var: cpucompat_contract_result
    mode: now
    batch: {per_host: 1, overall: 2}
    anti_affinity: [[db1, db2]]
  register: plan
  run_once: true
"""

RETURN = r"""
report:
  description: The power_cycle report (schema C(cpucompat.report/1), C(docs/reports.md)).
  returned: when O(return_report=true)
  type: dict
batches:
  description: With V(plan), the batches in order, each C(index) and C(hosts) (host -> domain names).
  returned: when O(step=plan)
  type: list
  elements: dict
  sample: [{index: 0, hosts: {hv1: [web1], hv2: [db1]}}]
generation:
  description: The progress generation after this step (the next V(record) passes it).
  returned: always
  type: int
stop:
  description: With V(record), whether a health gate failed (the run stops).
  returned: when O(step=record)
  type: bool
gate_failed:
  description: With V(record), the guests (C(host/name)) whose health gate failed.
  returned: when O(step=record)
  type: list
  elements: str
why:
  description: With V(record), why the run stops (null when it does not).
  returned: when O(step=record)
  type: str
contract_files:
  description: The progress written (none in check mode).
  returned: always
  type: list
  elements: str
report_files:
  description: The report files written.
  returned: when O(report_dir) is set
  type: list
  elements: str
"""
