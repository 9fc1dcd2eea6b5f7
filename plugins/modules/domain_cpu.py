#!/usr/bin/python
# Copyright (c) 2026 cpucompat.cluster contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: domain_cpu
short_description: Set the CPU of a libvirt domain's persistent definition
version_added: 0.1.0
description:
  - Makes the C(<cpu>) element of a libvirt domain's persistent definition equal to the given one; every other element
    of the definition stays as it was.
  - The desired C(<cpu>) is compared, normalised, with the one in the inactive definition before anything is written,
    so check mode and the real run report the same C(changed), and a second run changes nothing.
  - A running domain gets the new persistent definition only; nothing is changed in the running guest, and
    RV(restart_required) says that the guest gets the new CPU at its next power cycle (shut down, then start) - a reboot
    inside the guest or a live migration keeps the CPU it runs.
  - Leaves alone, with RV(skipped_reason) saying why - a domain OpenStack Nova manages (its C(<nova:instance>) metadata - Nova
    rewrites the definition at every start, so give Nova the CPU in C(nova.conf)); a domain opted out in its own
    metadata (C(<cpucompat:cpu xmlns:cpucompat='https://github.com/cpucompat/cluster/xmlns/1' manage='no'/>)); and,
    unless O(convert_host_cpu), a C(host-model) or C(host-passthrough) domain, which gets its host's CPU on purpose.
  - libvirt replaces a definition atomically. When it refuses the new one, or the connection drops, the domain keeps
    exactly its old definition and the module fails naming the domain and libvirt's reason. A domain that disappears
    while it is being updated is not recreated.
extends_documentation_fragment:
  - cpucompat.cluster.libvirt
attributes:
  check_mode:
    support: full
    description: Compares and reports without defining anything.
  diff_mode:
    support: full
    description: Shows the C(<cpu>) element before and after.
options:
  name:
    description: Name of the domain.
    type: str
    required: true
  cpu_xml:
    description:
      - The C(<cpu>) element to set, for example the output of P(cpucompat.cluster.libvirt_cpu_xml#filter).
      - Model and feature names are validated; anything that is not a plain name is refused.
    type: str
  guest_cpu:
    description:
      - A guest CPU as P(cpucompat.cluster.cpu_baseline#filter) returns it under C(guest) (or the whole baseline),
        rendered as P(cpucompat.cluster.libvirt_cpu_xml#filter) does, exact on every QEMU and libvirt it carries.
      - Mutually exclusive with O(cpu_xml).
    type: dict
    aliases: [baseline]
  form:
    description: The form of the C(<cpu>) rendered from O(guest_cpu), as in P(cpucompat.cluster.libvirt_cpu_xml#filter).
    type: str
    default: minimal
    choices: [minimal, explicit]
  state:
    description:
      - V(present) sets the C(<cpu>) element; V(absent) removes it, so that the domain runs libvirt's default CPU.
    type: str
    default: present
    choices: [present, absent]
  convert_host_cpu:
    description:
      - Put C(host-model), C(host-passthrough) and C(maximum) domains on the given CPU too. By default they are left alone
        (RV(skipped_reason)) - such a guest may rely on its host's features (nested virtualisation, C(-march=native) software)
        and would lose them silently at its next power cycle.
    type: bool
    default: false
  stamp:
    description:
      - The contract the CPU comes from, written into the domain's C(<metadata>) in the same definition as the C(<cpu>)
        (C(<cpucompat:cpu group=... generation=... digest=... pinned-at=...>) with the pinned level). A lost contract store is
        detected from the stamps, and rebuilt from them (the playbook C(cpucompat.cluster.rebuild_contract)). The deploy role
        passes the group's contract; a changed stamp alone changes the definition but needs no power cycle.
    type: dict
    suboptions:
      group:
        description: The inventory group whose contract it is.
        type: str
        required: true
      generation:
        description: The contract's generation in its store.
        type: int
        required: true
      digest:
        description: C(sha256:) of the pinned level's canonical JSON.
        type: str
        required: true
      pinned_at:
        description: When the contract was pinned.
        type: str
      level:
        description: The pinned level (arch, vendor, model, features, machine, phys_bits).
        type: dict
        required: true
      tier:
        description:
          - The tier of the group whose contract it is (C(cpucompat_tiers); the contract C(<group>@<tier>)), written as
            C(tier=) beside C(group=). Omitted for the group's base tier.
        type: str
  backup:
    description: Keep the previous definition in O(backup_dir) before changing it, and return its path.
    type: bool
    default: false
  backup_dir:
    description: Where backups of previous definitions go on the managed host.
    type: path
    default: /var/lib/libvirt/cpucompat-backups
seealso:
  - module: cpucompat.cluster.domain_cpu_info
"""

EXAMPLES = r"""
- name: Put domain web1 on the cluster CPU
  cpucompat.cluster.domain_cpu:
    name: web1
    cpu_xml: "{{ cpucompat_cluster['xml'] }}"
    backup: true

- name: Back to libvirt's default CPU
  cpucompat.cluster.domain_cpu:
    name: web1
    state: absent
"""

RETURN = r"""
domain:
  description: The domain's name.
  returned: always
  type: str
  sample: web1
restart_required:
  description:
    - The domain is running and its persistent CPU changed; the guest gets the new CPU at its next power cycle (shut down,
      then start), not at a reboot inside the guest nor by a live migration.
  returned: always
  type: bool
  sample: false
skipped_reason:
  description: Why the domain was left alone (Nova manages it, it opted out, it follows its host's CPU); null when it was not.
  returned: always
  type: str
  sample: >-
    mode host-passthrough: the guest gets its host's CPU on purpose (nested virtualisation, -march=native); set
    convert_host_cpu to put it on the cluster CPU
backup_file:
  description: Path of the previous definition kept by O(backup).
  returned: when changed and O(backup) is true and not in check mode
  type: str
  sample: /var/lib/libvirt/cpucompat-backups/web1-20261125T101500.000000Z.xml
cpu_xml:
  description: The C(<cpu>) element the persistent definition has after the run (empty when absent).
  returned: always
  type: str
  sample: "<cpu mode=\"custom\" match=\"exact\" check=\"full\">...</cpu>"
"""

from ansible.module_utils.basic import AnsibleModule, missing_required_lib

from ansible_collections.cpucompat.cluster.plugins.module_utils.deploy._domain import apply_cpu, connection
from ansible_collections.cpucompat.cluster.plugins.module_utils._errors import CpuCompatError
from ansible_collections.cpucompat.cluster.plugins.module_utils.deploy._libvirt_import import HAS_LIBVIRT, LIBVIRT_ARGS, LIBVIRT_IMPORT_ERROR
from ansible_collections.cpucompat.cluster.plugins.module_utils.cpu._guest import GuestCpu
from ansible_collections.cpucompat.cluster.plugins.module_utils.render._libvirt import render


def main() -> None:
    module = AnsibleModule(
        argument_spec=dict(
            **LIBVIRT_ARGS,
            name=dict(type="str", required=True),
            cpu_xml=dict(type="str"),
            guest_cpu=dict(type="dict", aliases=["baseline"]),
            form=dict(type="str", default="minimal", choices=["minimal", "explicit"]),
            state=dict(type="str", default="present", choices=["present", "absent"]),
            backup=dict(type="bool", default=False),
            backup_dir=dict(type="path", default="/var/lib/libvirt/cpucompat-backups"),
            convert_host_cpu=dict(type="bool", default=False),
            stamp=dict(type="dict", options=dict(group=dict(type="str", required=True), generation=dict(type="int", required=True),
                                                 digest=dict(type="str", required=True), pinned_at=dict(type="str"),
                                                 level=dict(type="dict", required=True), tier=dict(type="str"))),
        ),
        mutually_exclusive=[("cpu_xml", "guest_cpu")],
        required_if=[("state", "present", ("cpu_xml", "guest_cpu"), True)],
        supports_check_mode=True,
    )
    if not HAS_LIBVIRT:
        module.fail_json(msg=missing_required_lib("libvirt-python"), exception=LIBVIRT_IMPORT_ERROR)
    p = module.params
    try:
        cpu_xml = None
        if p["state"] == "present":
            if p["guest_cpu"] is not None:
                cpu_xml = render(GuestCpu.from_dict(p["guest_cpu"], "guest_cpu"), p["form"]).xml
            else:
                cpu_xml = p["cpu_xml"]
        with connection(p["uri"]) as conn:
            change = apply_cpu(conn, p["name"], cpu_xml, check_mode=module.check_mode,
                               backup_dir=p["backup_dir"] if p["backup"] else None, convert_host_cpu=p["convert_host_cpu"],
                               stamp=p["stamp"])
    except CpuCompatError as exc:
        module.fail_json(msg=f"setting the CPU of domain {p['name']} failed: {exc}", domain=p["name"])
    result = dict(changed=change.changed, domain=change.domain, restart_required=change.restart_required, cpu_xml=change.after,
                  skipped_reason=change.skipped)
    if change.backup:
        result["backup_file"] = change.backup
    if module._diff:  # pylint: disable=protected-access
        result["diff"] = dict(before=change.before, after=change.after,
                              before_header=f"{p['name']} <cpu> (persistent)", after_header=f"{p['name']} <cpu> (persistent)")
    module.exit_json(**result)


if __name__ == "__main__":
    main()
