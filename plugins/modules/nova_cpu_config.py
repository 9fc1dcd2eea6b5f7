#!/usr/bin/python
# Copyright (c) 2026 cpucompat.cluster contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: nova_cpu_config
short_description: Set OpenStack Nova's [libvirt] CPU options in nova.conf
version_added: 0.3.0
description:
  - Sets C(cpu_mode = custom), C(cpu_models) and C(cpu_model_extra_flags) in the C([libvirt]) section of a Nova
    configuration file; every other line of the file stays byte for byte.
  - The file is read as oslo.config reads it - sections may repeat, C(key = value) or the same with a colon, indented lines
    continue a value. Every assignment of the three options (and of C(cpu_model), the old name of C(cpu_models)) in every
    C([libvirt]) section is replaced by one line each, where the first was; without a C([libvirt]) section, one is added
    at the end.
  - The new text is compared with the file before anything is written, so check mode and the real run report the same
    C(changed), and a second run changes nothing. Nova reads the options when nova-compute starts - notify a handler that
    restarts it, after M(cpucompat.cluster.nova_cpu_check) has passed.
extends_documentation_fragment:
  - cpucompat.cluster.attributes
  - ansible.builtin.files
  - cpucompat.cluster.attributes.file_writer
attributes:
  platform:
    platforms: posix
    support: full
    description: Any POSIX host with a Nova configuration file.
options:
  path:
    description: The Nova configuration file.
    type: path
    default: /etc/nova/nova.conf
  cpu_models:
    description: The models, in order, for example C(cpu_models) of P(cpucompat.cluster.cpu_nova#filter).
    type: list
    elements: str
    required: true
  cpu_model_extra_flags:
    description: The extra flags (C(+name), C(-name)), for example C(cpu_model_extra_flags) of P(cpucompat.cluster.cpu_nova#filter).
    type: list
    elements: str
    default: []
  create:
    description: Create the file when it does not exist; otherwise a missing file fails.
    type: bool
    default: false
"""

EXAMPLES = r"""
- name: Write the cluster CPU into nova.conf
  cpucompat.cluster.nova_cpu_config:
    cpu_models: "{{ nova_cpu['cpu_models'] }}"
    cpu_model_extra_flags: "{{ nova_cpu['cpu_model_extra_flags'] }}"
  vars:
    nova_cpu: "{{ baseline | cpucompat.cluster.cpu_nova }}"
  notify: Restart nova-compute
"""

RETURN = r"""
options:
  description: The options as written.
  returned: always
  type: dict
  sample: {"cpu_mode": custom, "cpu_models": "Skylake-Server-IBRS", "cpu_model_extra_flags": "+pku, -mpx"}
path:
  description: The file.
  returned: always
  type: str
  sample: /etc/nova/nova.conf
"""

import os
import re
import tempfile

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.cpucompat.cluster.plugins.module_utils.deploy._ini import set_options

_MODEL = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
_FLAG = re.compile(r"^[+-]?[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


def main() -> None:
    module = AnsibleModule(
        argument_spec=dict(path=dict(type="path", default="/etc/nova/nova.conf"),
                           cpu_models=dict(type="list", elements="str", required=True),
                           cpu_model_extra_flags=dict(type="list", elements="str", default=[]),
                           create=dict(type="bool", default=False)),
        add_file_common_args=True,
        supports_check_mode=True,
    )
    p = module.params
    path = p["path"]
    bad = [n for n in p["cpu_models"] if not _MODEL.match(n)] + [f for f in p["cpu_model_extra_flags"] if not _FLAG.match(f)]
    if not p["cpu_models"] or bad:
        module.fail_json(msg=f"cpu_models must not be empty, and every model and flag must be a plain name; refused: {bad}")
    options = {"cpu_mode": "custom", "cpu_models": ", ".join(p["cpu_models"]),
               "cpu_model_extra_flags": ", ".join(p["cpu_model_extra_flags"])}
    if not os.path.exists(path) and not p["create"]:
        module.fail_json(msg=f"{path} does not exist (set create to make it)")
    before = ""
    if os.path.exists(path):
        with open(path, encoding="utf-8") as fh:
            before = fh.read()
    after = set_options(before, "libvirt", options, drop=("cpu_model",))
    changed = after != before
    result = {"changed": changed, "options": options, "path": path}
    if module._diff:  # pylint: disable=protected-access
        result["diff"] = {"before": before, "after": after, "before_header": path, "after_header": path}
    if changed and not module.check_mode:
        fd, tmp = tempfile.mkstemp(dir=os.path.dirname(os.path.abspath(path)) or ".", prefix=".nova.conf.")
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(after)
        module.atomic_move(tmp, path)
    file_args = module.load_file_common_arguments(p)
    if os.path.exists(path):
        result["changed"] = module.set_fs_attributes_if_different(file_args, result["changed"])
    module.exit_json(**result)


if __name__ == "__main__":
    main()
