# Copyright (c) 2026 cpucompat.cluster contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""libvirt's CPU map read as libvirt reads it, its compact facts form, and the registry of which map serves which host."""

from __future__ import annotations

import base64
import importlib.util
import json
import os
import zlib

import pytest

from ansible_collections.cpucompat.cluster.plugins.module_utils._errors import CpuMapError
from ansible_collections.cpucompat.cluster.plugins.module_utils.cpu import _libvirt_maps_data
from ansible_collections.cpucompat.cluster.plugins.module_utils.cpu._libvirt_map import CpuMap, MapRegistry, is_shipped, parse_cpu_map
from ansible_collections.cpucompat.cluster.plugins.module_utils.probe import _libvirt
from utils import stacks
from utils.source_tree import ROOT

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
    with pytest.raises(CpuMapError, match=message):
        _parse(models)


@pytest.mark.parametrize("stack", stacks.NAMES)
def test_the_facts_form_round_trips_a_real_map(stack: str) -> None:
    real = stacks.by_name(stack).cpu_map
    again = CpuMap.from_facts({"format": 2, "digest": real.digest, "data": real.encode_data()}, real.version, "t")
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
    with pytest.raises(CpuMapError, match=message) as caught:
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


def _generator():
    spec = importlib.util.spec_from_file_location("gen_libvirt_maps", os.path.join(ROOT, "tools", "gen_libvirt_maps.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_shipped_maps_are_what_the_generator_makes_from_both_stacks() -> None:
    """tools/gen_libvirt_maps.py re-generates the shipped module byte for byte from libvirt 9.0's and 11.3's maps."""
    gen = _generator()
    sources = [(stacks.by_name(n).cpu_map_dir, stacks.by_name(n).libvirt_version) for n in stacks.NAMES]
    fresh = gen.generate(sources, {})
    assert fresh == _libvirt_maps_data.MAPS, "regenerate with tools/gen_libvirt_maps.py"
    assert {e["libvirt"] for e in fresh.values()} == {"9.0.0", "11.3.0"}
    with open(os.path.join(ROOT, "plugins", "module_utils", "cpu", "_libvirt_maps_data.py"), encoding="utf-8") as fh:
        assert gen.render(_libvirt_maps_data.MAPS) == fh.read()


@pytest.mark.parametrize("digest", sorted(_libvirt_maps_data.MAPS))
def test_each_shipped_entry_is_the_map_of_its_digest(digest: str) -> None:
    entry = _libvirt_maps_data.MAPS[digest]
    decoded = CpuMap.from_facts({"format": 2, "digest": digest}, entry["libvirt"], "t")
    assert decoded.encode_data() == entry["data"], "the entry's data is a canonical encoding of its map"
    source = next((s for s in map(stacks.by_name, stacks.NAMES) if s.cpu_map.digest == digest), None)
    assert source is not None, f"{digest} is the digest of no map on this machine"
    files = _libvirt.cpu_map_files(source.cpu_map_dir)
    parsed = parse_cpu_map(files, source.cpu_map_dir, _libvirt.cpu_map_digest(files), source.libvirt_version)
    assert parsed.digest == digest and entry["libvirt"] == source.libvirt_version
    assert (decoded.features, decoded.models, decoded.removed, decoded.added) == (parsed.features, parsed.models, parsed.removed, parsed.added)
    assert decoded.vendors == parsed.vendors and decoded.qemu_aliases == parsed.qemu_aliases


@pytest.mark.parametrize("stack", stacks.NAMES)
def test_a_shipped_map_is_neither_parsed_nor_compressed_on_the_host(monkeypatch, stack: str) -> None:
    path = stacks.by_name(stack).cpu_map_dir

    def refuse(*_args, **_kwargs):
        raise AssertionError("a shipped map was parsed or compressed")

    monkeypatch.setattr(_libvirt, "parse_cpu_map", refuse)
    monkeypatch.setattr(CpuMap, "encode_data", refuse)
    found = _libvirt.read_cpu_map(path, "9.9.9")
    assert is_shipped(found.digest) and found.to_facts() == {"format": 2, "digest": found.digest}
    assert found.version == "9.9.9" and found.origin == path
    monkeypatch.undo()
    assert found.models == stacks.by_name(stack).cpu_map.models, "its content is decoded when read"


def test_an_unknown_map_travels_in_full() -> None:
    unknown = _parse("<model name='P'><feature name='a'/></model><model name='Q'><model name='P'/><feature name='d'/></model>")
    assert not is_shipped(unknown.digest)
    facts = unknown.to_facts()
    assert facts["digest"] == "sha256:t" and facts["data"]
    back = MapRegistry().from_facts("hv3", {"libvirt": {"version": "11.3.0", "cpu_map": facts}})
    assert back.models == unknown.models and back.origin == "host hv3"
