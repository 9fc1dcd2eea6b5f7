# Copyright (c) 2026 cpucompat.cluster contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""libvirt's own CPU-baseline test cases over real hosts (tests/fixtures/cpu-data/libvirt-baseline-cases).

For each case whose inputs are recorded real hosts, our baseline of those
hosts must run on every one of them and keep at least the features of
libvirt's expected result (libvirt 11.3's answer, expanded with the CPU map
installed here). One difference is by design: a feature some input host's
QEMU had no property for (vmx-* on hosts recorded before QEMU knew them)
is unknown for that host, and we keep only what every host reported, where
libvirt assumes its model definition.
"""

from __future__ import annotations

import json
import os
import xml.etree.ElementTree as ET

import pytest

from ansible_collections.cpucompat.cluster.plugins.module_utils.cpu import _libvirt_map
from ansible_collections.cpucompat.cluster.plugins.module_utils.probe._libvirt import load_cpu_map
from ansible_collections.cpucompat.cluster.plugins.module_utils.cpu._features import enabled_features
from utils.engine import baseline, compare
from utils.recordings import FIXTURES, facts_of, load

CASES_DIR = os.path.join(FIXTURES, "libvirt-baseline-cases")
with open(os.path.join(CASES_DIR, "cases.json"), encoding="utf-8") as _fh:
    CASES = [c for c in json.load(_fh)["cases"] if c.get("input_hosts")]


def expected_features(case: dict, cpu_map: _libvirt_map.CpuMap) -> tuple[str, set[str]]:
    root = ET.parse(os.path.join(CASES_DIR, case["expected"])).getroot()
    model = root.findtext("model")
    if model not in cpu_map.models:
        pytest.skip(f"libvirt's expected model {model} is not in the CPU map of the libvirt installed here")
    feats = set(cpu_map.models[model])
    for elem in root.findall("feature"):
        name = elem.get("name", "")
        if elem.get("policy") == "disable":
            feats.discard(name)
        else:
            feats.add(name)
    return model, feats


@pytest.mark.parametrize("case", CASES, ids=[c["name"] for c in CASES])
def test_our_baseline_keeps_what_libvirt_keeps(case: dict) -> None:
    cpu_map = load_cpu_map()
    hosts = {name: facts_of(name) for name in case["input_hosts"]}
    ours = baseline(hosts)
    for name, facts in hosts.items():
        assert compare(ours, name, facts)["runnable"], name
    model, expected = expected_features(case, cpu_map)

    def libvirt(names) -> set[str]:
        """libvirt's spelling, through the collection's one vocabulary (QEMU names libvirt lacks stay as they are)."""
        return {cpu_map.libvirt_name(f) or f for f in names}

    kept = libvirt(ours["features"])
    unknown: set[str] = set()
    for name in hosts:
        known: set[str] = set()
        for key, reply in load(name)["replies"].items():
            if key.startswith("query-cpu-model-expansion"):
                known |= libvirt(enabled_features("x86_64", reply["model"].get("props", {}), name))
        unknown |= expected - known
    assert not {f for f in unknown if not f.startswith("vmx-")}, "only QEMU's late vmx-* vocabulary is unknown to old hosts"
    missing = sorted(expected - kept - unknown)
    assert not missing, f"libvirt keeps {missing} over {model} that our baseline drops"
