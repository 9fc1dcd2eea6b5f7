# Copyright (c) 2026 cpucompat.cluster contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""libvirt's CPU map read as libvirt reads it, its compact facts form, and the registry of which map serves which host."""

from __future__ import annotations

import base64
import json
import zlib

import pytest

from ansible_collections.cpucompat.cluster.plugins.module_utils._errors import BaselineError
from ansible_collections.cpucompat.cluster.plugins.module_utils.cpu._libvirt_map import CpuMap, MapRegistry, parse_cpu_map
from utils import stacks

FEATURES = "".join(f"<feature name='{f}'><cpuid eax_in='0x1' ecx='0x{i + 1:x}'/></feature>" for i, f in enumerate(("a", "b", "c", "d")))


def _parse(models: str) -> CpuMap:
    return parse_cpu_map({"x86_features.xml": f"<cpus>{FEATURES}</cpus>".encode(), "x86_m.xml": f"<cpus>{models}</cpus>".encode()},
                         "test", "sha256:t", "11.3.0")


def test_removed_and_added_features_are_apart_and_ancestors_resolved() -> None:
    cpu_map = _parse("<model name='P'><feature name='a'/><feature name='b' removed='yes'/><feature name='c' added='yes'/></model>"
                     "<model name='P-v1'><model name='P'/></model><model name='Q'><model name='P'/><feature name='d'/></model>")
    assert cpu_map.models["P"] == {"a"} and cpu_map.removed["P"] == {"b"} and cpu_map.added["P"] == {"c"}
    assert cpu_map.models["P-v1"] == {"a"} and "P-v1" not in cpu_map.removed, "a -vN model has no removed features of its own"
    assert cpu_map.models["Q"] == {"a", "d"}


@pytest.mark.parametrize("models, message", [
    ("<model name='P'><feature name='z'/></model>", "feature z of model P is not defined"),
    ("<model name='P'><model name='Nope'/></model>", "'Nope' is missing"),
    ("", "defines no x86 model"),
])
def test_a_broken_map_is_named(models: str, message: str) -> None:
    with pytest.raises(BaselineError, match=message):
        _parse(models)


@pytest.mark.parametrize("stack", stacks.NAMES)
def test_the_facts_form_round_trips_a_real_map(stack: str) -> None:
    real = stacks.by_name(stack).cpu_map
    again = CpuMap.from_facts(real.to_facts(), real.version, "t")
    assert again.models == dict(real.models) and again.removed == dict(real.removed) and again.added == dict(real.added)
    assert again.vendors == dict(real.vendors) and again.features == real.features and again.digest == real.digest
    assert again.libvirt_name("lahf-lm") == "lahf_lm" and again.qemu_name("pclmuldq") == "pclmulqdq"


def _blob(inner: dict) -> str:
    return base64.b64encode(zlib.compress(json.dumps(inner).encode())).decode()


@pytest.mark.parametrize("data, message", [
    ({"format": 1}, "not a CPU map of format 2"),
    ({"format": 2, "data": "!!"}, "malformed"),
    ({"format": 2, "data": _blob({"features": "a b", "models": {"M": "ff"}})}, "more features than the vocabulary"),
    ({"format": 2, "data": _blob({"features": "a x'/><y", "models": {}})}, "not a valid CPU model or feature name"),
    ({"format": 2, "data": base64.b64encode(zlib.compress(b"0" * (2 << 20))).decode()}, "larger than"),
], ids=["format", "base64", "mask", "name", "bomb"])
def test_a_map_from_facts_is_validated_and_names_the_host(data: dict, message: str) -> None:
    with pytest.raises(BaselineError, match=message) as caught:
        CpuMap.from_facts(data, "9.0.0", "host hv7")
    assert "host hv7" in str(caught.value)


def test_the_registry_shares_one_map_per_digest_and_assumes_none() -> None:
    real = stacks.by_name("system").cpu_map
    facts = {"libvirt": {"version": real.version, "cpu_map": real.to_facts()}}
    registry = MapRegistry()
    assert registry.from_facts("a", facts) is registry.from_facts("b", facts)
    assert registry.from_facts("c", {"libvirt": None}) is None, "a host without libvirt has no map"
    assert registry.from_facts("d", {}) is None, "facts that say nothing: no map unless the caller names one"
    assert MapRegistry(lambda: real).from_facts("d", {}) is real
