#!/usr/bin/python
# Copyright (c) 2026 cpucompat.cluster contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: proxmox_cpu_model
short_description: Set a custom CPU model in Proxmox VE's cpu-models.conf
version_added: 0.3.0
description:
  - Makes the C(cpu-model) section named O(name) in Proxmox VE's custom CPU models file equal to the given one, or removes it;
    every other section, comment and blank line of the file stays byte for byte.
  - The file is read as Proxmox reads it (C(PVE::SectionConfig) - a section runs from its header line, type and ID, to the next
    empty line). The section to write is checked against Proxmox's rules for custom CPU models
    (C(PVE::QemuServer::CPUConfig) - property names, C(flags) syntax, C(phys-bits), C(reported-model) in Proxmox's model
    list) as this collection implements them, and refused when Proxmox would skip or misread it.
  - The new text is compared with the file before anything is written, so check mode and the real run report the same
    C(changed), and a second run changes nothing. C(/etc/pve) is Proxmox's cluster file system - run the task once for
    the cluster (C(run_once)). VMs whose C(cpu) is C(custom-NAME) get the model at their next start.
extends_documentation_fragment:
  - cpucompat.cluster.attributes
  - cpucompat.cluster.attributes.file_writer
attributes:
  platform:
    platforms: posix
    support: full
    description: A Proxmox VE node (or any path given in O(path)).
options:
  name:
    description: The custom model's name (the section's ID; VMs use C(custom-NAME)).
    type: str
    required: true
  section:
    description:
      - The section to write, for example C(cpu_models_conf) of P(cpucompat.cluster.cpu_proxmox#filter). Required with
        O(state=present).
    type: str
  state:
    description: V(present) writes the section; V(absent) removes it.
    type: str
    default: present
    choices: [present, absent]
  path:
    description: The custom CPU models file. Its directory must exist (Proxmox makes it).
    type: path
    default: /etc/pve/virtual-guest/cpu-models.conf
"""

EXAMPLES = r"""
- name: Write the cluster CPU as a custom CPU model, once for the Proxmox cluster
  cpucompat.cluster.proxmox_cpu_model:
    name: "{{ pve_cpu['name'] }}"
    section: "{{ pve_cpu['cpu_models_conf'] }}"
  vars:
    pve_cpu: "{{ baseline | cpucompat.cluster.cpu_proxmox }}"
  run_once: true
"""

RETURN = r"""
path:
  description: The file.
  returned: always
  type: str
  sample: /etc/pve/virtual-guest/cpu-models.conf
vm_cpu:
  description: What a VM's C(cpu:) says to use the model.
  returned: always
  type: str
  sample: custom-cpucompat
warnings_in_file:
  description: What Proxmox would complain about in the other sections of the file (they are left as they are).
  returned: always
  type: list
  elements: str
  sample: []
"""

import os
import tempfile

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.cpucompat.cluster.plugins.module_utils.deploy._proxmox_conf import SectionConfigError, parse, set_section


def main() -> None:
    module = AnsibleModule(
        argument_spec=dict(name=dict(type="str", required=True), section=dict(type="str"),
                           state=dict(type="str", default="present", choices=["present", "absent"]),
                           path=dict(type="path", default="/etc/pve/virtual-guest/cpu-models.conf")),
        required_if=[("state", "present", ["section"])],
        supports_check_mode=True,
    )
    p = module.params
    path = p["path"]
    directory = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(directory):
        module.fail_json(msg=f"{directory} does not exist: is this a Proxmox VE node (its cluster file system mounted)?")
    before = ""
    if os.path.exists(path):
        with open(path, encoding="utf-8") as fh:
            before = fh.read()
    try:
        after = set_section(before, p["name"], p["section"] if p["state"] == "present" else None)
    except SectionConfigError as exc:
        module.fail_json(msg=str(exc))
    others = [f"section {s.id}: {e}" for s in parse(before) if s.id != p["name"] for e in s.errors]
    changed = after != before
    result = {"changed": changed, "path": path, "vm_cpu": f"custom-{p['name']}", "warnings_in_file": others}
    if module._diff:  # pylint: disable=protected-access
        result["diff"] = {"before": before, "after": after, "before_header": path, "after_header": path}
    if changed and not module.check_mode:
        fd, tmp = tempfile.mkstemp(dir=directory, prefix=".cpu-models.conf.")
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(after)
        module.atomic_move(tmp, path, unsafe_writes=True)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
