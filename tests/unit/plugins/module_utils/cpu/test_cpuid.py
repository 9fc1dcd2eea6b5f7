# Copyright (c) 2026 cpucompat.cluster contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""CPUID words: keys, QEMU's feature-words replies, bit names, the difference of two vCPUs; the generated table.

tests/integration/test_cpuid_names.py proves the table's names against real QEMUs.
"""
from __future__ import annotations

import dataclasses
import importlib.util
import os
import sys
from collections.abc import Iterator
from typing import Any

import pytest

from ansible_collections.cpucompat.cluster.plugins.module_utils._errors import CpuCompatError, ObservationError
from ansible_collections.cpucompat.cluster.plugins.module_utils.cpu._cpuid import (
    TCG_DEPENDENT, WordDiff, bit_names, diff_words, parse_word_key, word_key, words_from_qom)
from ansible_collections.cpucompat.cluster.plugins.module_utils.cpu._cpuid_names import CPUID_BITS, MSR_BITS, OLDER_NAMES, WORD_SINCE
from ansible_collections.cpucompat.cluster.plugins.module_utils.cpu._features import canonical_name, msr_features, validate_feature_name

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))))


def _entry(eax: int, reg: str, features: int, ecx: int | None = None) -> dict[str, Any]:
    entry: dict[str, Any] = {"cpuid-input-eax": eax, "cpuid-register": reg, "features": features}
    if ecx is not None:
        entry["cpuid-input-ecx"] = ecx
    return entry


# --- keys ---

@pytest.mark.parametrize("leaf, subleaf, register, key", [
    (7, 0, "EBX", "0x7.0x0.EBX"),
    (1, None, "ECX", "0x1.0x0.ECX"),
    (0xD, 1, "eax", "0xd.0x1.EAX"),
    (0x80000001, None, "EDX", "0x80000001.0x0.EDX"),
    (0xFFFFFFFF, 0xFFFFFFFF, "EDX", "0xffffffff.0xffffffff.EDX"),
])
def test_word_key_round_trip(leaf: int, subleaf: int | None, register: str, key: str) -> None:
    assert word_key(leaf, subleaf, register) == key
    assert parse_word_key(key) == (leaf, subleaf or 0, register.upper())


def test_parse_word_key_accepts_either_case() -> None:
    assert parse_word_key("0xD.0X1.eax") == (0xD, 1, "EAX")


@pytest.mark.parametrize("leaf, subleaf, register, message", [
    (-1, 0, "EAX", "leaf -1"), (1 << 32, 0, "EAX", "leaf 4294967296"), (True, 0, "EAX", "leaf True"),
    ("7", 0, "EBX", "leaf '7'"), (7, -1, "EBX", "subleaf -1"), (7, 0, "ESP", "register 'ESP'"), (7, 0, 3, "register 3"),
])
def test_word_key_rejects(leaf: Any, subleaf: Any, register: Any, message: str) -> None:
    with pytest.raises(ObservationError, match=message):
        word_key(leaf, subleaf, register)


@pytest.mark.parametrize("key", ["0x7.EBX", "7.0.EBX", "0x7.0x0.ESP", "0x7.0x0.EBX.", "msr.0x10a", "0x123456789.0x0.EAX", 7])
def test_parse_word_key_rejects(key: Any) -> None:
    with pytest.raises(ObservationError, match="is not a CPUID word key"):
        parse_word_key(key)


# --- QEMU's feature-words ---

def test_words_from_qom() -> None:
    reply = [_entry(7, "EBX", 0x20, ecx=0), _entry(1, "ECX", 0x80002001), _entry(0x80000001, "EDX", 1 << 29), _entry(0xD, "EAX", 0, ecx=1)]
    assert words_from_qom(reply) == {"0x7.0x0.EBX": 0x20, "0x1.0x0.ECX": 0x80002001, "0x80000001.0x0.EDX": 1 << 29, "0xd.0x1.EAX": 0}


def test_words_from_qom_of_an_empty_list() -> None:
    assert not words_from_qom([])


@pytest.mark.parametrize("reply, message", [
    ({"cpuid-input-eax": 7}, "feature-words: expected a list of CPUID words, got dict"),
    (None, "expected a list of CPUID words, got NoneType"),
    ([_entry(1, "EDX", 1), "EBX"], r"feature-words\[1\] 'EBX': not an object"),
    ([{"cpuid-input-eax": 7, "cpuid-register": "EBX"}], r"feature-words\[0\] .*: missing features"),
    ([{"cpuid-register": "EBX", "features": 0}], "missing cpuid-input-eax"),
    ([{**_entry(7, "EBX", 0), "cpuid-input-edx": 0}], "unknown field 'cpuid-input-edx'"),
    ([_entry(7, "ESP", 0)], r"feature-words\[0\] .*: CPUID register 'ESP' is not one of EAX, EBX, ECX, EDX"),
    ([_entry("7", "EBX", 0)], "CPUID leaf '7' is not a 32-bit unsigned integer"),
    ([_entry(7, "EBX", 0, ecx=-1)], "CPUID subleaf -1"),
    ([_entry(7, "EBX", -1)], "features -1 is not a 32-bit unsigned integer"),
    ([_entry(7, "EBX", 1 << 32)], "features 4294967296 is not a 32-bit"),
    ([_entry(7, "EBX", True)], "features True is not"),
    ([_entry(7, "EBX", "0x20")], "features '0x20' is not"),
    ([_entry(7, "EBX", 1, ecx=0), _entry(7, "EBX", 2, ecx=0)], r"feature-words\[1\] .*: word 0x7.0x0.EBX appears twice"),
])
def test_words_from_qom_names_the_bad_entry(reply: Any, message: str) -> None:
    with pytest.raises(ObservationError, match=message) as caught:
        words_from_qom(reply)
    assert isinstance(caught.value, CpuCompatError)


def test_words_from_qom_says_which_property() -> None:
    with pytest.raises(ObservationError, match=r"^filtered-features\[0\] "):
        words_from_qom([_entry(7, "EBX", -1)], where="filtered-features")


# --- names ---

@pytest.mark.parametrize("key, mask, names", [
    ("0x1.0x0.ECX", 1, ["pni"]),
    ("0x1.0x0.ECX", 1 << 19 | 1 << 20, ["sse4.1", "sse4.2"]),
    ("0x7.0x0.EBX", 0x21, ["fsgsbase", "avx2"]),
    ("0x7.0x0.EBX", 1 << 12 | 1 << 5, ["avx2", "bit 12"]),
    ("0x80000001.0x0.ECX", 1, ["lahf-lm"]),
    ("0x80000001.0x0.EDX", 1 << 29 | 1 << 0, ["bit 0", "lm"]),  # bit 0 repeats fpu on AMD: QEMU names it in 0x1 EDX only
    ("0xd.0x0.EAX", 0x7, ["bit 0", "bit 1", "bit 2"]),  # XSAVE components: no names
    ("0x40000001.0x0.EAX", 0x9, ["kvmclock", "kvmclock"]),
    ("0x7.0x0.EBX", 0, []),
    ("0x7.0x0.ebx", 0x20, ["avx2"]),
    ("0x99.0x0.EAX", 0x5, ["bit 0", "bit 2"]),  # a word QEMU does not know
    ("msr.0x10a", 1 << 27, ["rfds-no"]),
])
def test_bit_names(key: str, mask: int, names: list[str]) -> None:
    assert bit_names(key, mask) == names


@pytest.mark.parametrize("mask", [-1, True, "1"])
def test_bit_names_rejects_a_bad_mask(mask: Any) -> None:
    with pytest.raises(ObservationError, match="0x7.0x0.EBX: mask"):
        bit_names("0x7.0x0.EBX", mask)


# --- the difference of two vCPUs ---

def test_the_example_of_the_brief() -> None:
    diff = diff_words({"0x7.0x0.EBX": 0x1}, {"0x7.0x0.EBX": 0x20})
    assert diff == [WordDiff("0x7.0x0.EBX", 0x1, 0x20, ("fsgsbase",), ("avx2",))]
    assert diff[0].describe() == "0x7.0x0.EBX: 0x1 only on A (fsgsbase), 0x20 only on B (avx2)"
    assert diff[0].describe("gold", "epyc") == "0x7.0x0.EBX: 0x1 only on gold (fsgsbase), 0x20 only on epyc (avx2)"
    assert diff[0].to_dict() == {"key": "0x7.0x0.EBX", "a": 1, "b": 0x20, "only_a": ["fsgsbase"], "only_b": ["avx2"]}


@pytest.mark.parametrize("a, b, expected", [
    ({}, {}, []),
    ({"0x7.0x0.EBX": 0x21}, {"0x7.0x0.EBX": 0x21}, []),
    # A word one side lacks counts as 0 there: a lacking side with a zero word is no difference.
    ({"0x7.0x0.EBX": 0}, {}, []),
    ({}, {"0x7.0x1.EDX": 0}, []),
    ({"0x7.0x1.EDX": 1 << 4}, {}, ["0x7.0x1.EDX: 0x10 only on A (avx-vnni-int8)"]),
    ({}, {"0x24.0x0.EBX": 1 << 17}, ["0x24.0x0.EBX: 0x20000 only on B (avx10-256)"]),
    # Both sides have bits the other lacks, named and unnamed.
    ({"0x1.0x0.ECX": 1 << 0 | 1 << 11}, {"0x1.0x0.ECX": 1 << 28}, ["0x1.0x0.ECX: 0x801 only on A (pni, bit 11), 0x10000000 only on B (avx)"]),
    # kvmclock is two bits of one word: named once.
    ({"0x40000001.0x0.EAX": 0x9}, {}, ["0x40000001.0x0.EAX: 0x9 only on A (kvmclock)"]),
    # CPUID order, not string order: 0xd before 0x12, 0x7.0x1 before 0x80000001.
    ({"0x12.0x0.EAX": 1, "0xd.0x1.EAX": 1, "0x80000001.0x0.EDX": 1 << 29, "0x7.0x1.EAX": 1 << 4},
     {"0x1.0x0.EDX": 1},
     ["0x1.0x0.EDX: 0x1 only on B (fpu)", "0x7.0x1.EAX: 0x10 only on A (avx-vnni)", "0xd.0x1.EAX: 0x1 only on A (xsaveopt)",
      "0x12.0x0.EAX: 0x1 only on A (sgx1)", "0x80000001.0x0.EDX: 0x20000000 only on A (lm)"]),
])
def test_diff_words(a: dict[str, int], b: dict[str, int], expected: list[str]) -> None:
    assert [d.describe() for d in diff_words(a, b)] == expected


def test_diff_words_skips_ignored_words() -> None:
    a = {"0x7.0x0.EBX": 0x20, "0xd.0x0.EAX": 0x7, "0x1.0x0.ECX": 1}
    b = {"0x7.0x0.EBX": 0x20, "0xd.0x0.EAX": 0x3}
    assert [d.key for d in diff_words(a, b)] == ["0x1.0x0.ECX", "0xd.0x0.EAX"]
    assert [d.key for d in diff_words(a, b, ignore={"0xd.0x0.EAX": "XCR0 follows the accelerator"})] == ["0x1.0x0.ECX"]
    assert not diff_words(a, b, ignore={"0xd.0x0.EAX": "x", "0x1.0x0.ECX": "y"})


def test_word_diff_values() -> None:
    diff = diff_words({"0x7.0x0.EBX": 0b1011}, {"0x7.0x0.EBX": 0b0110})[0]
    assert (diff.a, diff.b, diff.only_a_mask, diff.only_b_mask) == (0b1011, 0b0110, 0b1001, 0b0100)
    assert (diff.only_a, diff.only_b) == (("fsgsbase", "bmi1"), ("sgx",))
    with pytest.raises(dataclasses.FrozenInstanceError):
        diff.a = 0  # type: ignore[misc]


@pytest.mark.parametrize("a, b, message", [
    ({"0x7.0x0.EBX": -1}, {}, "word 0x7.0x0.EBX on A: -1"),
    ({}, {"0x7.0x0.EBX": "0x20"}, "word 0x7.0x0.EBX on B: '0x20'"),
    ({}, {"0x7.0x0.EBX": None}, "on B: None is not a non-negative integer"),
])
def test_diff_words_rejects_bad_values(a: dict[str, Any], b: dict[str, Any], message: str) -> None:
    with pytest.raises(ObservationError, match=message):
        diff_words(a, b)


def test_tcg_dependent_is_ignore_shaped() -> None:
    """The maintainer's measured words: each a CPUID word key with a reason (empty until measured)."""
    assert isinstance(TCG_DEPENDENT, dict)
    for key, why in TCG_DEPENDENT.items():
        assert word_key(*parse_word_key(key)) == key and isinstance(why, str) and why.strip()


# --- the generated table ---

@pytest.mark.parametrize("key", [
    "0x1.0x0.ECX", "0x1.0x0.EDX", "0x6.0x0.EAX", "0x7.0x0.EBX", "0x7.0x0.ECX", "0x7.0x0.EDX", "0x7.0x1.EAX", "0x7.0x1.EDX",
    "0x7.0x2.EDX", "0xd.0x0.EAX", "0xd.0x0.EDX", "0xd.0x1.EAX", "0xd.0x1.ECX", "0xd.0x1.EDX", "0x12.0x0.EAX", "0x12.0x0.EBX",
    "0x12.0x1.EAX", "0x14.0x0.ECX", "0x24.0x0.EBX", "0x40000001.0x0.EAX", "0x40000001.0x0.EDX", "0x80000001.0x0.ECX",
    "0x80000001.0x0.EDX", "0x80000007.0x0.EBX", "0x80000007.0x0.EDX", "0x80000008.0x0.EBX", "0x8000000a.0x0.EDX",
    "0x80000021.0x0.EAX", "0x80000021.0x0.EBX", "0x80000022.0x0.EAX", "0xc0000001.0x0.EDX",
])
def test_the_table_has_every_word(key: str) -> None:
    assert key in CPUID_BITS


def test_the_table_has_no_other_word() -> None:
    """QEMU 10.0 reports 31 CPUID words in feature-words (24 in 7.2): the table has a key for each, and no MSR word."""
    assert len(CPUID_BITS) == 31 and not any(k.startswith("msr.") for k in CPUID_BITS)


@pytest.mark.parametrize("key, bit, name", [
    ("0x1.0x0.ECX", 0, "pni"), ("0x1.0x0.ECX", 1, "pclmulqdq"), ("0x1.0x0.ECX", 19, "sse4.1"), ("0x1.0x0.ECX", 20, "sse4.2"),
    ("0x1.0x0.ECX", 31, "hypervisor"), ("0x1.0x0.EDX", 0, "fpu"), ("0x1.0x0.EDX", 26, "sse2"), ("0x1.0x0.EDX", 28, "ht"),
    ("0x7.0x0.EBX", 0, "fsgsbase"), ("0x7.0x0.EBX", 5, "avx2"), ("0x7.0x0.EBX", 16, "avx512f"), ("0x7.0x0.EBX", 29, "sha-ni"),
    ("0x7.0x0.ECX", 3, "pku"), ("0x7.0x0.EDX", 10, "md-clear"), ("0x7.0x0.EDX", 26, "spec-ctrl"),
    ("0x7.0x0.EDX", 29, "arch-capabilities"), ("0x7.0x1.EAX", 4, "avx-vnni"), ("0xd.0x1.EAX", 0, "xsaveopt"),
    ("0x80000001.0x0.ECX", 0, "lahf-lm"), ("0x80000001.0x0.ECX", 2, "svm"), ("0x80000001.0x0.EDX", 20, "nx"),
    ("0x80000001.0x0.EDX", 25, "fxsr-opt"), ("0x80000001.0x0.EDX", 29, "lm"), ("0x80000007.0x0.EDX", 8, "invtsc"),
    ("0x80000008.0x0.EBX", 12, "ibpb"), ("0x8000000a.0x0.EDX", 0, "npt"), ("0x40000001.0x0.EAX", 3, "kvmclock"),
])
def test_well_known_bits(key: str, bit: int, name: str) -> None:
    assert CPUID_BITS[key][bit] == name


def test_unnamed_bits_stay_unnamed() -> None:
    """QEMU leaves osxsave (CR4-dependent) and the AMD copies of the 0x1 EDX bits unnamed; so does the table."""
    assert 27 not in CPUID_BITS["0x1.0x0.ECX"] and 0 not in CPUID_BITS["0x80000001.0x0.EDX"] and not CPUID_BITS["0xd.0x0.EAX"]


@pytest.mark.parametrize("table", [CPUID_BITS, MSR_BITS, OLDER_NAMES], ids=["CPUID_BITS", "MSR_BITS", "OLDER_NAMES"])
def test_table_names_are_canonical(table: dict[str, dict[int, str]]) -> None:
    for key, bits in table.items():
        for bit, name in bits.items():
            assert 0 <= bit < (64 if key.startswith("msr.") else 32), (key, bit)
            assert canonical_name("x86_64", name) == name == validate_feature_name(name, key), (key, bit, name)


def test_table_keys_are_word_keys() -> None:
    for key in [*CPUID_BITS, *WORD_SINCE]:
        assert word_key(*parse_word_key(key)) == key
    assert set(WORD_SINCE) <= set(CPUID_BITS) and set(OLDER_NAMES) <= set(CPUID_BITS)


def test_msr_0x10a_agrees_with_the_features_vocabulary() -> None:
    """_features decodes IA32_ARCH_CAPABILITIES by a hand-written table: QEMU's source says the same."""
    ours = MSR_BITS["msr.0x10a"]
    for bit in range(64):
        decoded = msr_features(0x10A, 1 << bit)
        assert decoded is None or decoded == [ours.get(bit)], (bit, decoded, ours.get(bit))


# --- the generator's reading of QEMU's source ---

_SNIPPET = r'''
#define CPUID_LEAF_X 0x8000001FU
#define MSR_IA32_THING 0x10a
FeatureWordInfo feature_word_info[FEATURE_WORDS] = {
    [FEAT_1_EDX] = {
        .type = CPUID_FEATURE_WORD,
        .feat_names = {
            "fpu", NULL /* vme */, "pn" /* Intel psn */, // a comment
            "lahf_lm", "sse4_1",
        },
        .cpuid = {.eax = 1, .reg = R_EDX, },
    },
    [FEAT_X] = {
        .type = CPUID_FEATURE_WORD,
        .feat_names = { [16] = "avx10-128", "avx10-256" },
        .cpuid = { .eax = CPUID_LEAF_X, .needs_ecx = true, .ecx = 2, .reg = R_EBX, },
    },
    [FEAT_NOECX] = {
        .type = CPUID_FEATURE_WORD,
        .cpuid = { .eax = 0xD, .needs_ecx = false, .ecx = 1, .reg = R_EAX },
    },
    [FEAT_M] = {
        .type = MSR_FEATURE_WORD,
        .feat_names = { [62] = "its-no" },
        .msr = { .index = MSR_IA32_THING, },
    },
};
'''


@pytest.fixture(scope="module", name="gen")
def fixture_gen() -> Iterator[Any]:
    """tools/gen_cpuid_names.py as a module (registered while it is used: its dataclasses need their module)."""
    spec = importlib.util.spec_from_file_location("gen_cpuid_names", os.path.join(ROOT, "tools", "gen_cpuid_names.py"))
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    try:
        spec.loader.exec_module(module)
        yield module
    finally:
        del sys.modules[spec.name]


def test_the_generator_reads_qemus_table(gen: Any) -> None:
    """Comments, designated slots, macros, legacy spellings canonicalised, no subleaf without needs_ecx, MSR words keyed apart."""
    words = gen.parse_words(_SNIPPET, gen.defines_of([_SNIPPET]), "snippet")
    assert [(w.feat, w.key, w.names) for w in words] == [
        ("FEAT_1_EDX", "0x1.0x0.EDX", {0: "fpu", 2: "pn", 3: "lahf-lm", 4: "sse4.1"}),
        ("FEAT_X", "0x8000001f.0x2.EBX", {16: "avx10-128", 17: "avx10-256"}),
        ("FEAT_NOECX", "0xd.0x0.EAX", {}),
        ("FEAT_M", "msr.0x10a", {62: "its-no"}),
    ]


@pytest.mark.parametrize("snippet, message", [
    ("int x;", "no feature_word_info"),
    (_SNIPPET.replace("R_EDX", "R_ESP"), "register 'R_ESP'"),
    (_SNIPPET.replace("CPUID_LEAF_X,", "UNDEFINED_LEAF,"), "cannot resolve 'UNDEFINED_LEAF'"),
    (_SNIPPET.replace("[16] = ", "[31] = "), "a CPUID word names bit 32"),
])
def test_the_generator_refuses_what_it_cannot_read(gen: Any, snippet: str, message: str) -> None:
    with pytest.raises(gen.SourceError, match=message):
        gen.parse_words(snippet, gen.defines_of([snippet]), "snippet")
