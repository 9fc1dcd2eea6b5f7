# Copyright (c) 2026 cpucompat.cluster contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The CPUID bit names of ``_cpuid_names`` (generated from QEMU's source) proved against real QEMUs, 7.2 and 10.0, under TCG.

The judge is the vCPU itself: its ``feature-words`` and ``filtered-features`` and its boolean feature properties, which
QEMU reads from the same words. Per QEMU:

- every CPUID word the vCPU reports has a key in the table, and every boolean feature property of its CPU type is named
  in the table;
- on a ``-cpu max`` vCPU, every name the QEMU knows reads back (``qom-get``) exactly as its table bits in the words;
- toggling one feature against ``-cpu qemu64`` (on when qemu64 lacks it, off when it has it) changes exactly the
  table's bit(s) for it: in ``feature-words``, or in ``filtered-features`` when TCG cannot give it. A sample of about
  two features per word, the lowest and highest bit QEMU names there, plus well-known ones.

Each QEMU runs with -S in its own process group and is killed in a ``finally``; its socket directory is removed.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import tempfile
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import pytest
from qemu.qmp.legacy import QEMUMonitorProtocol

from ansible_collections.cpucompat.cluster.plugins.module_utils.cpu._cpuid import words_from_qom
from ansible_collections.cpucompat.cluster.plugins.module_utils.cpu._cpuid_names import CPUID_BITS, MSR_BITS, WORD_SINCE
from ansible_collections.cpucompat.cluster.plugins.module_utils.cpu._features import canonical_name, is_cpu_feature
from utils import stacks

Bit = tuple[str, int]  # (word key, bit)

# Boolean properties of QEMU's x86 CPU that are no bit of a feature word: lmce is MCG_CAP's local machine check,
# xen-vapic (10.0) a Xen HVM knob.
NOT_FEATURE_WORD_BITS = frozenset({"lmce", "xen-vapic"})
# QEMU zeroes this word unless the accelerator is KVM (cpu.c: "if (!kvm_enabled() || !cpu->expose_kvm)
# env->features[FEAT_KVM] = 0"): under TCG its features are neither given nor filtered, so toggling them shows nothing.
KVM_ONLY_WORDS = frozenset({"0x40000001.0x0.EAX"})
# On an AMD-vendor CPU (qemu64 is one) QEMU copies these 0x1 EDX bits to the same bits of 0x80000001 EDX, which it
# leaves unnamed (cpu.c: CPUID_EXT2_AMD_ALIASES).
AMD_ALIAS_WORDS = ("0x1.0x0.EDX", "0x80000001.0x0.EDX")
WELL_KNOWN = ("pni", "sse4.1", "sse4.2", "popcnt", "x2apic", "xsave", "avx", "avx2", "bmi1", "bmi2", "lahf-lm", "lm", "nx",
              "svm", "pdpe1gb", "fxsr-opt", "invtsc", "ibpb", "md-clear", "spec-ctrl", "xsaveopt")
WORKERS = 4


def _binaries() -> list[object]:
    found = [pytest.param(stacks.by_name("system").qemu, id="system")]
    if os.path.isfile(os.path.join(stacks.BACKPORTS, ".complete")):
        found.append(pytest.param(stacks.by_name("backports").qemu, id="backports"))
    else:
        found.append(pytest.param(None, id="backports", marks=pytest.mark.skip(reason="tools/backports.sh has not run")))
    return found


# Every QEMU this module starts and every socket directory it makes, so that the tests can prove none is left.
SPAWNED: list[subprocess.Popen[bytes]] = []
DIRS: list[str] = []


@contextlib.contextmanager
def _vcpu(binary: str, cpu: str) -> Iterator[tuple[QEMUMonitorProtocol, str]]:
    """A paused TCG q35 QEMU with ``-cpu cpu``: its monitor and its vCPU's QOM path. Killed and cleaned up on exit."""
    tmp = tempfile.mkdtemp(prefix="cpucompat-cpuid-")
    DIRS.append(tmp)
    sock = os.path.join(tmp, "qmp.sock")
    monitor: QEMUMonitorProtocol | None = None
    proc: subprocess.Popen[bytes] | None = None
    try:
        monitor = QEMUMonitorProtocol(sock, server=True)
        with open(os.path.join(tmp, "stderr"), "wb") as err:
            proc = subprocess.Popen(  # pylint: disable=consider-using-with
                [binary, "-machine", "q35,accel=tcg", "-S", "-nodefaults", "-no-user-config", "-display", "none",
                 "-chardev", f"socket,id=qmp,path={sock}", "-mon", "chardev=qmp,mode=control", "-cpu", cpu],
                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=err, start_new_session=True)
        SPAWNED.append(proc)
        try:
            monitor.accept(timeout=20)
        except Exception as exc:  # the monitor never answered: say what QEMU said
            with open(os.path.join(tmp, "stderr"), encoding="utf-8", errors="replace") as fh:
                raise AssertionError(f"{binary} -cpu {cpu}: no QMP monitor: {exc!r}; stderr: {fh.read()[-500:]}") from exc
        yield monitor, monitor.cmd("query-cpus-fast")[0]["qom-path"]
    finally:
        if proc is not None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)
        if monitor is not None:
            monitor.close()
        shutil.rmtree(tmp, ignore_errors=True)


@dataclass(frozen=True)
class Observed:
    words: dict[str, int]
    filtered: dict[str, int]


def _observe(binary: str, cpu: str) -> Observed:
    with _vcpu(binary, cpu) as (monitor, path):
        return Observed(words_from_qom(monitor.cmd("qom-get", path=path, property="feature-words")),
                        words_from_qom(monitor.cmd("qom-get", path=path, property="filtered-features"), "filtered-features"))


def _bits_of(name: str) -> set[Bit]:
    return {(key, bit) for key, bits in CPUID_BITS.items() for bit, named in bits.items() if named == name}


def _set(words: dict[str, int]) -> set[Bit]:
    return {(key, bit) for key, value in words.items() for bit in range(32) if value >> bit & 1}


@dataclass(frozen=True)
class Qemu:
    """One QEMU binary: its qemu64 vCPU and the boolean properties of its CPU type."""

    binary: str
    base: Observed
    props: frozenset[str]  # boolean properties of qemu64-x86_64-cpu, as QEMU spells them


@pytest.fixture(scope="module", params=_binaries())
def qemu(request: pytest.FixtureRequest) -> Iterator[Qemu]:
    binary = request.param
    with _vcpu(binary, "qemu64") as (monitor, path):
        base = Observed(words_from_qom(monitor.cmd("qom-get", path=path, property="feature-words")),
                        words_from_qom(monitor.cmd("qom-get", path=path, property="filtered-features"), "filtered-features"))
        props = monitor.cmd("device-list-properties", typename="qemu64-x86_64-cpu")
    yield Qemu(binary, base, frozenset(p["name"] for p in props if p.get("type") == "bool"))


@pytest.fixture(autouse=True)
def nothing_left() -> Iterator[None]:
    yield
    running = [p.pid for p in SPAWNED if p.poll() is None]
    dirs = [d for d in DIRS if os.path.exists(d)]
    assert not running and not dirs, f"QEMU processes {running} or socket directories {dirs} outlived their use"


def test_every_word_the_vcpu_reports_has_a_key(qemu: Qemu) -> None:
    reported = set(qemu.base.words)
    assert reported <= set(CPUID_BITS), f"words without a key: {sorted(reported - set(CPUID_BITS))}"
    assert set(CPUID_BITS) - set(WORD_SINCE) <= reported, "a word of the oldest source is missing"


def test_every_feature_property_is_named_in_the_table(qemu: Qemu) -> None:
    table = {n for bits in [*CPUID_BITS.values(), *MSR_BITS.values()] for n in bits.values()}
    features = {canonical_name("x86_64", p) for p in qemu.props} - NOT_FEATURE_WORD_BITS
    unnamed = sorted(n for n in features if is_cpu_feature("x86_64", n) and n not in table)
    assert not unnamed, f"{qemu.binary}: feature properties the table does not name: {unnamed}"


def test_every_name_reads_back_as_its_bits_on_max(qemu: Qemu) -> None:
    """The vCPU's boolean property of a feature is its bits of the words (x86_cpu_get_bit_prop): name and bits agree."""
    names = sorted({n for key, bits in CPUID_BITS.items() if key in qemu.base.words for n in bits.values()} & qemu.props)
    with _vcpu(qemu.binary, "max") as (monitor, path):
        words = words_from_qom(monitor.cmd("qom-get", path=path, property="feature-words"))
        wrong = [(name, value) for name in names
                 if (value := monitor.cmd("qom-get", path=path, property=name))
                 != all(words[key] >> bit & 1 for key, bit in _bits_of(name))]
    assert len(names) > 200 and sum(bool(words[k] >> b & 1) for n in names for k, b in _bits_of(n)) > 60
    assert not wrong, f"{qemu.binary} -cpu max: properties that disagree with their table bits: {wrong}"


def _sample(qemu: Qemu) -> list[str]:
    """The lowest- and highest-bit name of every word this QEMU reports and TCG shows, and the well-known names."""
    chosen = [n for n in WELL_KNOWN if n in qemu.props]
    for key, bits in CPUID_BITS.items():
        known = [bits[b] for b in sorted(bits) if bits[b] in qemu.props]
        if key in qemu.base.words and key not in KVM_ONLY_WORDS and known:
            chosen += [known[0], known[-1]]
    return sorted(set(chosen))


def _changed(qemu: Qemu, name: str) -> tuple[str, set[Bit]]:
    """Toggle ``name`` against qemu64: the -cpu used and the bits that changed (given, taken, or filtered)."""
    on = not all(qemu.base.words.get(key, 0) >> bit & 1 for key, bit in _bits_of(name))
    cpu = f"qemu64,{name}={'on' if on else 'off'}"
    seen = _observe(qemu.binary, cpu)
    return cpu, (_set(seen.words) ^ _set(qemu.base.words)) | (_set(seen.filtered) - _set(qemu.base.filtered))


def _unexplained(name: str, changed: set[Bit]) -> list[str]:
    """What in ``changed`` is not the table's bits of ``name``, or a bit QEMU derives from them without a name."""
    named = {(k, b) for k, b in changed if b in CPUID_BITS.get(k, {})}
    derived = {(AMD_ALIAS_WORDS[1], b) for k, b in named if k == AMD_ALIAS_WORDS[0]}
    unnamed = {(k, b) for k, b in changed - named - derived if CPUID_BITS.get(k)}  # words with no name: XSAVE components
    problems = []
    if named != _bits_of(name):
        problems.append(f"named bits changed {sorted(named)}, the table says {sorted(_bits_of(name))}")
    if unnamed:
        problems.append(f"unnamed bits of named words changed: {sorted(unnamed)}")
    return problems


def test_toggling_a_feature_changes_exactly_its_bits(qemu: Qemu) -> None:
    sample = _sample(qemu)
    with ThreadPoolExecutor(WORKERS) as pool:
        results = list(pool.map(lambda n: (n, *_changed(qemu, n)), sample))
    wrong = [f"{cpu}: {'; '.join(problems)}" for name, cpu, changed in results if (problems := _unexplained(name, changed))]
    assert len(sample) >= 35, sample
    assert not wrong, f"{qemu.binary}:\n" + "\n".join(wrong)
