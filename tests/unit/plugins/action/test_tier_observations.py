# Copyright (c) 2026 cpucompat.cluster contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Each tier's observations as the contract step reads them: per tier contract, each host's observation of the tier's
<cpu> from its cpu_observe call over its tiers (by the tier's contract name) or its cpucompat_observations fact, or why it has none; the
group's own observation (cpucompat_observation) is another fact, never read for a tier."""

from __future__ import annotations

from ansible_collections.cpucompat.cluster.plugins.plugin_utils._aggregate import observations_of, tier_observations_of
from ansible_collections.cpucompat.cluster.plugins.plugin_utils._group_reader import GroupReader

SCHEMA = "cpucompat.observation/1"


def _obs(digest: str) -> dict:
    return {"schema": SCHEMA, "cpuid": {"0x1.0x0.ECX": 1}, "accel": "kvm", "cpu_digest": digest}


def test_each_tier_reads_its_own_observation_of_each_host() -> None:
    loop = "cpucompat_observe_tier_result"
    hostvars = {
        # observed in this run
        "hv1": {"ansible_facts": {"cpucompat_observation": _obs("group"), "cpucompat_observations": {}},
                loop: {"observations": {"g@high": _obs("high-now")}, "failures": {}, "kept": []}},
        # kept (its cached observation is of the same <cpu>): the fact under the tier's name
        "hv2": {"ansible_facts": {"cpucompat_observation": _obs("group"), "cpucompat_observations": {"g@high": _obs("high-cached")}},
                loop: {"observations": {}, "failures": {}, "kept": ["g@high"]}},
        # the tier's <cpu> did not start there
        "hv3": {"ansible_facts": {}, loop: {"observations": {}, "failures": {"g@high": "CPU observation failed: libvirt: no avx512f"}}},
        # probed through a QMP socket: the call was skipped
        "hv4": {"ansible_facts": {"cpucompat": {"probe": {"mode": "socket"}}}, loop: {"skipped": True, "false_condition": "spawn"}},
    }
    reader = GroupReader({"hostvars": hostvars, "ansible_play_hosts_all": list(hostvars), "ansible_play_hosts": list(hostvars)})
    found = tier_observations_of(reader, {"g@high": ["hv1", "hv2", "hv3", "hv4"], "g@low": ["hv1"]}, loop)
    high = found["g@high"]
    assert high["hv1"]["cpu_digest"] == "high-now" and high["hv2"]["cpu_digest"] == "high-cached"
    assert high["hv3"] == "the observation failed: CPU observation failed: libvirt: no avx512f"
    assert high["hv4"] == "probed through a QMP socket: no QEMU of its own to start here"
    assert found["g@low"] == {"hv1": "not observed in this run"}, "a tier the call did not observe is not the group's"
    assert observations_of(reader, ["hv1"], "cpucompat_observe_result")["hv1"]["cpu_digest"] == "group", "the group's kept"
