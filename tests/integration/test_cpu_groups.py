# Copyright (c) 2026 cpucompat.cluster contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The cpu_groups inventory plugin over a real jsonfile fact cache written by a real probe run."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import yaml

from integration.helpers import ROOT, run_playbook
from utils.source_tree import SOURCE_COLLECTIONS

pytestmark = pytest.mark.usefixtures("no_leftover_qemu")


def test_groups_from_the_fact_cache(tmp_path, replay) -> None:
    hosts = {
        "this-machine": {"ansible_connection": "local", "ansible_python_interpreter": sys.executable},
        "intel-gold": {"ansible_connection": "local", "ansible_python_interpreter": sys.executable,
                       "cpucompat_probe_qmp_socket": replay("x86_64-xeon-gold-6130").path},
        "z14": {"ansible_connection": "local", "ansible_python_interpreter": sys.executable,
                "cpucompat_probe_qmp_socket": replay("s390x-z14-qemu-3.0.0").path},
        "never-probed": {"ansible_connection": "local"},
    }
    inventory = tmp_path / "hosts.yml"
    inventory.write_text(yaml.safe_dump({"hypervisors": {"hosts": hosts}}))
    play = "- hosts: hypervisors:!never-probed\n  gather_facts: false\n  roles: [cpucompat.cluster.probe]\n"
    proc = run_playbook(play, tmp_path, inventory=str(inventory))
    assert proc.returncode == 0, proc.stdout[-3000:]
    cached = sorted(os.listdir(tmp_path / "facts"))
    assert [f.split("_", 1)[-1] for f in cached] == ["intel-gold", "this-machine", "z14"], f"a real jsonfile cache: {cached}"

    config = tmp_path / "cpu_groups.yml"
    config.write_text(yaml.safe_dump({"plugin": "cpucompat.cluster.cpu_groups", "features": ["avx512f", "sse2", "vx"],
                                      "keyed_groups": [{"key": "cpucompat.accel", "prefix": "accel"}]}))
    env = {**os.environ, "ANSIBLE_CONFIG": os.path.join(ROOT, "ansible.cfg"),
           "ANSIBLE_COLLECTIONS_PATH": SOURCE_COLLECTIONS,
           "ANSIBLE_CACHE_PLUGIN_CONNECTION": str(tmp_path / "facts"),
           "ANSIBLE_INVENTORY_ENABLED": "yaml,cpucompat.cluster.cpu_groups"}
    out = subprocess.run([os.path.join(os.path.dirname(sys.executable), "ansible-inventory"), "-i", str(inventory),
                          "-i", str(config), "--list"], capture_output=True, text=True, env=env, check=False)
    assert out.returncode == 0, out.stderr
    groups = {name: set(data.get("hosts", [])) for name, data in json.loads(out.stdout).items() if isinstance(data, dict)}
    assert groups["cpu_arch_x86_64"] == {"this-machine", "intel-gold"}
    assert groups["cpu_arch_s390x"] == {"z14"} and groups["cpu_vendor_IBM"] == {"z14"}
    assert "intel-gold" in groups["cpu_vendor_GenuineIntel"]
    assert groups["cpu_feature_avx512f"] == {"intel-gold"}
    assert groups["cpu_feature_vx"] == {"z14"}
    assert {"this-machine", "intel-gold"} <= groups["cpu_feature_sse2"]
    assert "intel-gold" in groups["cpu_model_Skylake_Server_IBRS"]
    assert groups["cpu_facts_missing"] == {"never-probed"}
    assert "z14" in groups["accel_kvm"]
    # composes with the other source: the hosts keep their own groups
    assert groups["hypervisors"] == set(hosts)
