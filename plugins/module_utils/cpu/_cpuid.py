# Copyright (c) 2026 cpucompat.cluster contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The CPUID a vCPU presents, as QEMU reports it, and the difference between two of them. Private to the collection.

QEMU's x86 vCPU object reports its CPUID feature words in the QOM property ``feature-words`` (and what it was asked
for and could not give in ``filtered-features``): a list of ``{"cpuid-input-eax": leaf, "cpuid-input-ecx": subleaf
(absent when the leaf has none), "cpuid-register": "EAX".."EDX", "features": 32-bit value}``. Here a word is keyed
``"<leaf>.<subleaf>.<register>"`` in lower-case hex (``"0x7.0x0.EBX"``; subleaf ``0x0`` when there is none), and its
bits are named with QEMU's canonical names (``_cpuid_names``, generated from QEMU's source), ``bit N`` when QEMU names
none.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from .._errors import ObservationError
from ._cpuid_names import CPUID_BITS, MSR_BITS

REGISTERS = ("EAX", "EBX", "ECX", "EDX")
_WORD_KEY_RE = re.compile(r"^(0x[0-9a-f]{1,8})\.(0x[0-9a-f]{1,8})\.(EAX|EBX|ECX|EDX)$", re.IGNORECASE)
_U32 = 1 << 32

# Words (key -> why) whose value depends on the accelerator: under TCG QEMU presents them differently from KVM for
# the same -cpu, so a comparison between a TCG observation and a KVM one skips them (``diff_words(..., ignore=...)``).
# Measured (tests/integration/test_observe_stacks.py): the bare rendering of each of the 53 models both stacks know,
# observed on QEMU 7.2 and 10.0 under TCG and pc-q35-7.2, differs only in bits one TCG filters and in these words.
TCG_DEPENDENT: dict[str, str] = {
    "0xd.0x0.EAX": "XSAVE state components: QEMU 7.2 under TCG still reports the components of features TCG filtered "
                   "out (the AVX-512 opmask and ZMM states, bits 5-7, for models with avx512f); QEMU 10.0 derives them "
                   "from the features the vCPU is given (8 of 53 models)",
}

_NOTHING_IGNORED: Mapping[str, str] = MappingProxyType({})


def word_key(leaf: int, subleaf: int | None, register: str) -> str:
    """The key of one CPUID word: ``word_key(7, 0, "EBX") == "0x7.0x0.EBX"``; ``subleaf`` None for a leaf without one."""
    for what, value in (("leaf", leaf), ("subleaf", 0 if subleaf is None else subleaf)):
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < _U32:
            raise ObservationError(f"CPUID {what} {value!r} is not a 32-bit unsigned integer")
    if not isinstance(register, str) or register.upper() not in REGISTERS:
        raise ObservationError(f"CPUID register {register!r} is not one of {', '.join(REGISTERS)}")
    return f"{leaf:#x}.{0 if subleaf is None else subleaf:#x}.{register.upper()}"


def parse_word_key(key: str) -> tuple[int, int, str]:
    """``(leaf, subleaf, register)`` of a word key; the inverse of :func:`word_key` (hex in any case accepted)."""
    match = _WORD_KEY_RE.match(key) if isinstance(key, str) else None
    if not match:
        raise ObservationError(f"{key!r} is not a CPUID word key such as '0x7.0x0.EBX'")
    return int(match.group(1), 16), int(match.group(2), 16), match.group(3).upper()


_ENTRY_FIELDS = frozenset({"cpuid-input-eax", "cpuid-input-ecx", "cpuid-register", "features"})
_ENTRY_REQUIRED = frozenset({"cpuid-input-eax", "cpuid-register", "features"})


def _entry_key(entry: Any, where: str) -> str:
    if not isinstance(entry, Mapping):
        raise ObservationError(f"{where}: not an object")
    problems = [f"missing {name}" for name in sorted(_ENTRY_REQUIRED - set(entry))]
    problems += [f"unknown field {name!r}" for name in sorted(set(entry) - _ENTRY_FIELDS, key=str)]
    if problems:
        raise ObservationError(f"{where}: {'; '.join(problems)}")
    try:
        return word_key(entry["cpuid-input-eax"], entry.get("cpuid-input-ecx"), entry["cpuid-register"])
    except ObservationError as exc:
        raise ObservationError(f"{where}: {exc}") from None


def words_from_qom(feature_words: Any, where: str = "feature-words") -> dict[str, int]:
    """Word key -> value of QEMU's ``feature-words`` (or ``filtered-features``) property, validated.

    Raises ObservationError naming the bad entry (its index and content) when the reply is not a list of QEMU's
    word objects, a value is not a 32-bit unsigned integer, or a word appears twice.
    """
    if not isinstance(feature_words, list):
        raise ObservationError(f"{where}: expected a list of CPUID words, got {type(feature_words).__name__}")
    words: dict[str, int] = {}
    for index, entry in enumerate(feature_words):
        at = f"{where}[{index}] {entry!r}"
        key = _entry_key(entry, at)
        value = entry["features"]
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < _U32:
            raise ObservationError(f"{at}: features {value!r} is not a 32-bit unsigned integer")
        if key in words:
            raise ObservationError(f"{at}: word {key} appears twice")
        words[key] = value
    return words


def _names_of(key: str) -> Mapping[int, str]:
    if key.startswith("msr."):
        return MSR_BITS.get(key.lower(), {})
    try:
        return CPUID_BITS.get(word_key(*parse_word_key(key)), {})
    except ObservationError:
        return {}


def bit_names(key: str, mask: int) -> list[str]:
    """QEMU's name of each bit set in ``mask`` of word ``key``, lowest bit first; ``bit N`` where QEMU names none.

    Two bits with one name (QEMU's ``kvmclock`` is bits 0 and 3 of 0x40000001 EAX) give the name twice.
    """
    if isinstance(mask, bool) or not isinstance(mask, int) or mask < 0:
        raise ObservationError(f"{key}: mask {mask!r} is not a non-negative integer")
    names = _names_of(key)
    return [names.get(bit, f"bit {bit}") for bit in range(mask.bit_length()) if mask >> bit & 1]


@dataclass(frozen=True)
class WordDiff:
    """One CPUID word on which two vCPUs differ: both values and the names of the bits only one side has.

    ``only_a``/``only_b`` name each such bit once, lowest first (``bit N`` when unnamed); a name QEMU gives to two bits
    of the word (``kvmclock``) appears once.
    """

    key: str
    a: int
    b: int
    only_a: tuple[str, ...]
    only_b: tuple[str, ...]

    @classmethod
    def of(cls, key: str, a: int, b: int) -> WordDiff:
        return cls(key, a, b, tuple(dict.fromkeys(bit_names(key, a & ~b))), tuple(dict.fromkeys(bit_names(key, b & ~a))))

    @property
    def only_a_mask(self) -> int:
        return self.a & ~self.b

    @property
    def only_b_mask(self) -> int:
        return self.b & ~self.a

    def describe(self, a_label: str = "A", b_label: str = "B") -> str:
        """``0x7.0x0.EBX: 0x1 only on A (fsgsbase), 0x20 only on B (avx2)``."""
        sides = ((self.only_a_mask, a_label, self.only_a), (self.only_b_mask, b_label, self.only_b))
        parts = [f"{mask:#x} only on {label} ({', '.join(names)})" for mask, label, names in sides if mask]
        return f"{self.key}: {', '.join(parts)}"

    def to_dict(self) -> dict[str, Any]:
        return {"key": self.key, "a": self.a, "b": self.b, "only_a": list(self.only_a), "only_b": list(self.only_b)}


def _order(key: str) -> tuple[int, int, int, int, str]:
    """Words in CPUID order (leaf, subleaf, register), keys that are not CPUID word keys after them."""
    try:
        leaf, subleaf, register = parse_word_key(key)
    except ObservationError:
        return (1, 0, 0, 0, key)
    return (0, leaf, subleaf, REGISTERS.index(register), key)


def diff_words(a: Mapping[str, int], b: Mapping[str, int],
               ignore: Mapping[str, str] = _NOTHING_IGNORED) -> list[WordDiff]:
    """The words on which ``a`` and ``b`` differ, in CPUID order.

    A word one side does not report counts as 0 on that side (an older QEMU that lacks a leaf presents nothing
    there). Keys of ``ignore`` (key -> why, e.g. TCG_DEPENDENT) are skipped.
    """
    for side, words in (("A", a), ("B", b)):
        for key, value in words.items():
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ObservationError(f"word {key} on {side}: {value!r} is not a non-negative integer")
    keys = sorted((set(a) | set(b)) - set(ignore), key=_order)
    return [WordDiff.of(key, a.get(key, 0), b.get(key, 0)) for key in keys if a.get(key, 0) != b.get(key, 0)]
