#!/usr/bin/python
# Copyright (c) 2026 cpucompat.cluster contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: domain_cpu_info
short_description: List libvirt domains with the CPU of their definitions
version_added: 0.1.0
description:
  - Lists the domains of a libvirt connection, with their state, the C(<cpu>) element of the persistent definition
    (the live one for transient domains) and, for running domains, the C(<cpu>) of the live definition, which is what
    the guest runs (libvirt expands C(host-model) there). Read-only.
  - Also what a guest carries across a migration beyond its CPU model - its Hyper-V enlightenments (C(hyperv), their mode and
    the features that are on) and a fixed TSC frequency (C(tsc_frequency), from C(<timer name='tsc' frequency=...>)).
  - And who else decides its CPU - C(nova) (OpenStack Nova's C(<nova:instance>) metadata) and C(opted_out) (the domain's
    own C(<cpucompat:cpu manage='no'/>) metadata), and C(excluded) (named in O(exclude)); the deploy leaves all three alone.
  - And the contract a deploy stamped into its metadata (C(stamp) - group, generation, digest, pinned level; C(stamp_error)
    when a stamp does not read), from which a lost contract store is detected and rebuilt; and the tier the domain chose
    (C(tier), the C(tier=) attribute of the collection's element in its metadata; none for the group's base tier).
extends_documentation_fragment:
  - cpucompat.cluster.libvirt
  - cpucompat.cluster.attributes.read_only
options:
  names:
    description: Only these domains (all when omitted). A name that does not exist fails the module, naming it.
    type: list
    elements: str
  pattern:
    description: Only domains whose name matches this regular expression (Python C(re.search)).
    type: str
  exclude:
    description:
      - Domains the deploy must leave alone. They stay in the result, marked C(excluded) in RV(domains), so that reports
        name them; a name here that does not exist is not an error.
    type: list
    elements: str
    default: []
"""

EXAMPLES = r"""
- name: Domains whose name starts with web
  cpucompat.cluster.domain_cpu_info:
    pattern: "^web"
  register: web_domains
"""

RETURN = r"""
machine:
  description: The machine type most of the selected domains use (the probe role probes with it); null without domains.
  returned: always
  type: str
  sample: pc-q35-7.2
domains:
  description: The selected domains, sorted by name.
  returned: always
  type: list
  elements: dict
  sample:
    - name: web1
      uuid: 6f0e2b1c-0d5e-4c8e-9f1a-2b3c4d5e6f70
      active: true
      persistent: true
      cpu_xml: "<cpu mode='host-model'/>"
      live_cpu_xml: "<cpu mode='custom' match='exact'>\n  <model>EPYC-Rome</model>\n</cpu>\n"
      hyperv: {mode: custom, features: [relaxed, spinlocks, vapic]}
      tsc_frequency: null
      machine: pc-q35-7.2
      nova: false
      opted_out: false
      excluded: false
      stamp:
        group: hypervisors
        generation: 3
        digest: "sha256:5f0e..."
        pinned_at: "2026-12-01T09:30:00Z"
        level: {arch: x86_64, vendor: AuthenticAMD, model: EPYC-Rome, features: [avx2, sse4.2], machine: pc-q35, phys_bits: null}
      stamp_error: null
      tier: null
"""

import re

from ansible.module_utils.basic import AnsibleModule, missing_required_lib

from ansible_collections.cpucompat.cluster.plugins.module_utils.deploy._domain import connection, guests_machine, list_domains
from ansible_collections.cpucompat.cluster.plugins.module_utils._errors import CpuCompatError
from ansible_collections.cpucompat.cluster.plugins.module_utils.deploy._libvirt_import import HAS_LIBVIRT, LIBVIRT_ARGS, LIBVIRT_IMPORT_ERROR


def main() -> None:
    module = AnsibleModule(
        argument_spec=dict(**LIBVIRT_ARGS, names=dict(type="list", elements="str"), pattern=dict(type="str"),
                           exclude=dict(type="list", elements="str", default=[])),
        supports_check_mode=True,
    )
    if not HAS_LIBVIRT:
        module.fail_json(msg=missing_required_lib("libvirt-python"), exception=LIBVIRT_IMPORT_ERROR)
    p = module.params
    try:
        regex = re.compile(p["pattern"]) if p["pattern"] else None
    except re.error as exc:
        module.fail_json(msg=f"pattern {p['pattern']!r} is not a valid regular expression: {exc}")
    try:
        with connection(p["uri"]) as conn:
            domains = list_domains(conn)
    except CpuCompatError as exc:
        module.fail_json(msg=str(exc))
    if p["names"] is not None:
        missing = sorted(set(p["names"]) - {d["name"] for d in domains})
        if missing:
            module.fail_json(msg=f"no such domain on {p['uri']}: {', '.join(missing)}")
        domains = [d for d in domains if d["name"] in p["names"]]
    if regex:
        domains = [d for d in domains if regex.search(d["name"])]
    for dom in domains:
        dom["excluded"] = dom["name"] in p["exclude"]
    module.exit_json(changed=False, domains=domains, machine=guests_machine(domains))


if __name__ == "__main__":
    main()
