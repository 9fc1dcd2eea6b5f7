# Copyright (c) 2026 cpucompat.cluster contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: renamed_variables
short_description: Warn about the collection's renamed variables
version_added: 0.3.0
description:
  - The collection has one variable per concept across its roles (C(cpucompat_libvirt_uri), C(cpucompat_cpu_map),
    C(cpucompat_domains), C(cpucompat_group), C(cpucompat_allow_partial) and the C(cpucompat_policy_*) baseline policy). The
    names they replace keep working for one release; this action emits a deprecation warning for each old name the host
    has, naming the new one.
  - The roles without an aggregating action (C(probe), C(deploy)) run it first; the aggregating actions
    (C(cluster_cpu_facts), C(cpu_contract), C(cpu_upgrade_check), C(cpu_power_cycle)) warn the same way themselves. A
    playbook rarely needs it.
  - Runs on the controller and changes nothing.
extends_documentation_fragment:
  - cpucompat.cluster.attributes
  - cpucompat.cluster.attributes.read_only
attributes:
  action:
    support: full
    description: Runs on the controller.
options: {}
"""

EXAMPLES = r"""
- name: Warn about renamed variables
  cpucompat.cluster.renamed_variables:
"""

RETURN = r"""
renamed:
  description: The old variable names the host has (each also in a deprecation warning).
  returned: always
  type: list
  elements: str
  sample: [cpucompat_deploy_uri]
"""

from ansible.module_utils.basic import AnsibleModule


def main() -> None:
    module = AnsibleModule(argument_spec={}, supports_check_mode=True)
    module.fail_json(msg="cpucompat.cluster.renamed_variables runs as an action plugin on the controller")


if __name__ == "__main__":
    main()
