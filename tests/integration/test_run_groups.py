# Copyright (c) 2026 cpucompat.cluster contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The site's decision (the cpu_run_groups filter) through ansible-playbook: each host's own variables, templated where
the inventory wrote a template, over a real jsonfile fact cache."""

from __future__ import annotations

import json
import time

from ansible_collections.cpucompat.cluster.plugins.module_utils.probe._facts import SCHEMA_VERSION

from integration.helpers import run_playbook

PLAY = """
- hosts: hypervisors
  gather_facts: false
  tasks:
    - name: Decide
      ansible.builtin.debug:
        msg: "RUN_GROUPS={{ ansible_play_hosts | cpucompat.cluster.cpu_run_groups(hostvars) | to_json }}"
      run_once: true
"""

INVENTORY = """
hypervisors:
  vars:
    cpucompat_probe_max_age: "{{ 60 * 60 }}"
  hosts:
    hv1:
      cpucompat_deploy_enabled: "{{ 1 == 2 }}"
    hv2:
      cpucompat_deploy_enabled: false
    hv3: {}
    hv4:
      cpucompat_probe_max_age: 10
    hv5:
      cpucompat_probe_force: "{{ 'yes' }}"
      cpucompat_deploy_enabled: "{{ false }}"
      cpucompat_observe_enabled: false
"""


def _seed(folder, probed_at: int) -> None:
    folder.mkdir()
    facts = {"cpucompat": {"schema_version": SCHEMA_VERSION, "fingerprint": "f", "probe": {"mode": "socket", "probed_at": probed_at}}}
    for host in ("hv1", "hv2", "hv3", "hv4", "hv5"):
        (folder / f"s1_{host}").write_text(json.dumps({"__payload__": json.dumps(facts)}))


def test_each_host_decides_by_its_own_variables_templated_where_the_inventory_wrote_templates(tmp_path) -> None:
    """A templated variable is templated (hv1 deploys nothing, every host's max age is an hour), a literal is taken as
    written (hv2), a host's own value beats its group's (hv4's 10 s makes its 100-second-old facts due), and a
    templated probe_force forces hv5's probe."""
    _seed(tmp_path / "facts", int(time.time()) - 100)
    (tmp_path / "inventory.yml").write_text(INVENTORY)
    proc = run_playbook(PLAY, tmp_path, inventory=str(tmp_path / "inventory.yml"))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    line = next(x for x in proc.stdout.splitlines() if "RUN_GROUPS=" in x)
    found = dict(json.loads(line.split("RUN_GROUPS=", 1)[1].rstrip('"').replace('\\"', '"')))
    assert found == {"hv3": ["cpucompat_deploy_hosts"],
                     "hv4": ["cpucompat_probe_due", "cpucompat_deploy_hosts", "cpucompat_observe_hosts"],
                     "hv5": ["cpucompat_probe_due"]}, proc.stdout
