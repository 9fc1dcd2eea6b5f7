# Copyright (c) 2026 cpucompat.cluster contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: cpu_upgrade_check
short_description: Judge each group's CPU contract and domains against a new QEMU or libvirt before the upgrade
version_added: 0.3.0
description:
  - Judges each group O(groups) (or O(group)) against a new QEMU or libvirt (the hosts O(new_stack) stand for it) -
    whether its contract runs there and can be said exactly on the old and the new stack at once, which domains' CPU
    would change at their next power cycle, and what to do; the new stack's facts are written to C(new-stack.json) in
    O(report_dir) for the C(extra_stacks) option of M(cpucompat.cluster.cpu_contract).
  - Reads the contract store, never writes it; reads the facts on the controller, untemplated, as
    M(cpucompat.cluster.cluster_cpu_facts) does. Report kind C(upgrade).
extends_documentation_fragment:
  - cpucompat.cluster.attributes.read_only
  - cpucompat.cluster.aggregate
options:
  group:
    description: The inventory group whose contract to judge (or O(groups)).
    type: str
  groups:
    description: Several groups, each judged against its own contract.
    type: list
    elements: str
  domains_var:
    description: Name of the host variable holding a registered M(cpucompat.cluster.domain_cpu_info) result (the domains to judge).
    type: str
  new_stack:
    description:
      - The hosts that stand for the new stack - a canary already upgraded, or the host the
        C(cpucompat.cluster.upgrade_check) playbook adds for a QEMU binary and CPU map probed by path. Required.
    type: list
    elements: str
    default: []
  observations_var:
    description:
      - The variable the canaries (O(new_stack)) registered their cpu_observe result in, an observation of the
        C(<cpu>) an earlier call returned in C(observe); a canary whose words differ from those the contract records for
        the group fails the check.
    type: str
seealso:
  - module: cpucompat.cluster.cpu_contract
"""

EXAMPLES = r"""
- name: Would the canary's new QEMU change what the hypervisors' guests get?
  cpucompat.cluster.cpu_upgrade_check:
    group: hypervisors
    new_stack: [hv1]
    domains_var: found_domains
    report_dir: /srv/cpucompat/reports
  register: upgrade
  run_once: true
"""

RETURN = r"""
report:
  description: The upgrade report (kind C(upgrade), C(docs/reports.md)).
  returned: when O(return_report=true)
  type: dict
  sample: {schema: cpucompat.report/1, kind: upgrade, verdict: {ok: true, reasons: []}}
new_stack:
  description: The new stack's facts (host name to C(cpucompat) facts), as written to C(new-stack.json).
  returned: always
  type: dict
  sample: {hv1@new-stack: {schema_version: 5, arch: x86_64}}
observe:
  description: Each group's C(<cpu>) for the canaries to observe (then given back through O(observations_var)).
  returned: always
  type: dict
  sample: {hypervisors: "<cpu mode='custom' match='exact' check='full'>...</cpu>"}
report_files:
  description: The report files and C(new-stack.json).
  returned: when O(report_dir) is set
  type: list
  elements: str
  sample: [/srv/reports/upgrade.json, /srv/reports/new-stack.json]
markdown:
  description: The upgrade report in short Markdown, for the console.
  returned: always
  type: str
  sample: "# Upgrade check\n..."
verdict:
  description: C(ok) when no group would be hurt, else the C(reasons).
  returned: always
  type: dict
  sample: {ok: false, reasons: ["hold the upgrade"]}
"""
