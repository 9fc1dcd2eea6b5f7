#!/usr/bin/python
# Copyright (c) 2026 cpucompat.cluster contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: nova_cpu_check
short_description: Ask a compute host's libvirt what OpenStack Nova asks before it starts on a custom CPU
version_added: 0.3.0
description:
  - Makes the libvirt calls OpenStack Nova's libvirt driver makes at start-up with C(cpu_mode = custom), for every model
    of O(cpu_models) with all of O(cpu_model_extra_flags) - so that nova-compute is never restarted on a CPU its host
    refuses (Nova refuses to start then).
  - Looks each model up case-insensitively among libvirt's model names for the host's architecture
    (C(getCPUModelNames)); then, when O(virt_type) is V(kvm), builds the C(<cpu mode='custom' match='exact'>) Nova would
    give an instance (the model as libvirt spells it, every flag lower-cased, C(+name) or C(name) require, C(-name)
    disable, features sorted by name) and asks C(compareHypervisorCPU) about it, as Nova does (no emulator, architecture,
    machine type or virtualization type given).
  - Fails, naming the model and libvirt's answer, unless every model passes as Nova needs (identical or superset; an
    error other than "not supported" fails too). Read-only.
extends_documentation_fragment:
  - cpucompat.cluster.libvirt
  - cpucompat.cluster.attributes.read_only
options:
  cpu_models:
    description:
      - The models of C([libvirt] cpu_models), in order, for example C(cpu_models) of P(cpucompat.cluster.cpu_nova#filter).
    type: list
    elements: str
    required: true
  cpu_model_extra_flags:
    description: The flags of C([libvirt] cpu_model_extra_flags) (C(+name), C(-name) or C(name)).
    type: list
    elements: str
    default: []
  virt_type:
    description:
      - Nova's C([libvirt] virt_type) on the host. Nova compares the CPU with the host only for V(kvm); with V(qemu) only
        the model names are checked.
    type: str
    default: kvm
    choices: [kvm, qemu]
"""

EXAMPLES = r"""
- name: Check the cluster CPU as Nova will, before nova.conf says it
  cpucompat.cluster.nova_cpu_check:
    cpu_models: "{{ nova_cpu['cpu_models'] }}"
    cpu_model_extra_flags: "{{ nova_cpu['cpu_model_extra_flags'] }}"
  vars:
    nova_cpu: "{{ baseline | cpucompat.cluster.cpu_nova }}"
"""

RETURN = r"""
models:
  description: Each model as Nova checks it on this host.
  returned: always
  type: list
  elements: dict
  sample:
    - model: Skylake-Server-IBRS
      libvirt_model: Skylake-Server-IBRS
      xml: "<cpu mode=\"custom\" match=\"exact\">...</cpu>"
      result: superset
      ok: true
      message: ""
  contains:
    model:
      description: The model as configured.
      type: str
    libvirt_model:
      description: The model as libvirt spells it; null when libvirt does not know it.
      type: str
    xml:
      description: The C(<cpu>) Nova builds for it.
      type: str
    result:
      description: V(identical), V(superset), V(incompatible), V(error), V(unknown model) or V(not compared).
      type: str
    ok:
      description: Whether Nova starts with this model.
      type: bool
    message:
      description: Why not, as Nova would say it.
      type: str
arch:
  description: The host CPU's architecture, as libvirt's capabilities give it.
  returned: always
  type: str
  sample: x86_64
"""

from ansible.module_utils.basic import AnsibleModule, missing_required_lib

from ansible_collections.cpucompat.cluster.plugins.module_utils._errors import CpuCompatError
from ansible_collections.cpucompat.cluster.plugins.module_utils.deploy._domain import connection
from ansible_collections.cpucompat.cluster.plugins.module_utils.deploy._libvirt_import import HAS_LIBVIRT, LIBVIRT_ARGS, LIBVIRT_IMPORT_ERROR
from ansible_collections.cpucompat.cluster.plugins.module_utils.deploy._nova_check import check, host_arch


def main() -> None:
    module = AnsibleModule(
        argument_spec=dict(**LIBVIRT_ARGS, cpu_models=dict(type="list", elements="str", required=True),
                           cpu_model_extra_flags=dict(type="list", elements="str", default=[]),
                           virt_type=dict(type="str", default="kvm", choices=["kvm", "qemu"])),
        supports_check_mode=True,
    )
    if not HAS_LIBVIRT:
        module.fail_json(msg=missing_required_lib("libvirt-python"), exception=LIBVIRT_IMPORT_ERROR)
    import libvirt  # pylint: disable=import-outside-toplevel

    p = module.params
    if not p["cpu_models"]:
        module.fail_json(msg="cpu_models is empty: Nova needs at least one model with cpu_mode = custom")
    try:
        with connection(p["uri"]) as conn:
            arch = host_arch(conn)
            results = check(conn, p["cpu_models"], p["cpu_model_extra_flags"], p["virt_type"], libvirt.libvirtError)
    except (CpuCompatError, libvirt.libvirtError) as exc:
        module.fail_json(msg=f"cannot check the CPU models as Nova would: {str(exc).strip()}")
    refused = [r for r in results if not r.ok]
    out = {"changed": False, "arch": arch, "models": [r.to_dict() for r in results]}
    if refused:
        module.fail_json(msg="Nova would refuse to start on this host: " + "; ".join(r.message for r in refused), **out)
    module.exit_json(**out)


if __name__ == "__main__":
    main()
