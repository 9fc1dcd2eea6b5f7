#!/usr/bin/python
# Copyright (c) 2026 cpucompat.cluster contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: hypervisor_cpu_compare
short_description: Ask this host's libvirt whether it can run given guest CPUs
version_added: 0.1.0
description:
  - For each C(<cpu>) element, asks libvirt on the managed host (C(virConnectCompareHypervisorCPU), what
    C(virsh hypervisor-cpu-compare) does) whether the CPU the hypervisor provides is identical to, a superset of, or
    incompatible with it. Read-only; used as the second opinion of the pre-migration check.
extends_documentation_fragment:
  - cpucompat.cluster.libvirt
  - cpucompat.cluster.attributes.read_only
options:
  cpus:
    description: The C(<cpu>) elements to compare.
    type: list
    elements: str
    required: true
  virttype:
    description: Virtualization type; V(kvm) when usable, else V(qemu), unless given.
    type: str
  arch:
    description:
      - Guest architecture, in QEMU's naming (V(x86_64), V(s390x), V(aarch64)).
      - Defaults to the managed host's own architecture.
      - The pre-migration matrix that uses this module reads CPUs against libvirt's x86 CPU map and is x86_64-only.
    type: str
"""

EXAMPLES = r"""
- name: Can this host run the cluster CPU, according to libvirt?
  cpucompat.cluster.hypervisor_cpu_compare:
    cpus: ["{{ ansible_facts['cpucompat_cluster']['xml'] }}"]
  register: libvirt_says
"""

RETURN = r"""
verdicts:
  description: "Each given CPU to libvirt's verdict: C(identical), C(superset), C(incompatible), or C(error) followed by libvirt's message."
  returned: always
  type: dict
  sample: {"<cpu mode='custom' match='exact'>...</cpu>": superset}
"""

import platform

from ansible.module_utils.basic import AnsibleModule, missing_required_lib

from ansible_collections.cpucompat.cluster.plugins.module_utils.deploy._domain import connection
from ansible_collections.cpucompat.cluster.plugins.module_utils._errors import CpuCompatError
from ansible_collections.cpucompat.cluster.plugins.module_utils.probe._fingerprint import QEMU_ARCH_BY_MACHINE, kvm_usable
from ansible_collections.cpucompat.cluster.plugins.module_utils.deploy._libvirt_import import HAS_LIBVIRT, LIBVIRT_ARGS, LIBVIRT_IMPORT_ERROR

_RESULTS = {0: "incompatible", 1: "identical", 2: "superset"}


def main() -> None:
    module = AnsibleModule(
        argument_spec=dict(**LIBVIRT_ARGS, cpus=dict(type="list", elements="str", required=True),
                           virttype=dict(type="str"), arch=dict(type="str")),
        supports_check_mode=True,
    )
    if not HAS_LIBVIRT:
        module.fail_json(msg=missing_required_lib("libvirt-python"), exception=LIBVIRT_IMPORT_ERROR)
    import libvirt  # pylint: disable=import-outside-toplevel

    p = module.params
    virttype = p["virttype"] or ("kvm" if kvm_usable() else "qemu")
    arch = p["arch"] or QEMU_ARCH_BY_MACHINE.get(platform.machine(), platform.machine())
    verdicts = {}
    try:
        with connection(p["uri"]) as conn:
            for cpu in p["cpus"]:
                try:
                    code = conn.compareHypervisorCPU(None, arch, None, virttype, cpu, 0)
                    verdicts[cpu] = _RESULTS.get(code, f"error: unknown result {code}")
                except libvirt.libvirtError as exc:
                    verdicts[cpu] = f"error: {str(exc).strip()}"
    except CpuCompatError as exc:
        module.fail_json(msg=str(exc))
    module.exit_json(changed=False, verdicts=verdicts)


if __name__ == "__main__":
    main()
