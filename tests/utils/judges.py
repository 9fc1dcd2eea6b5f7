# Copyright (c) 2026 cpucompat.cluster contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The judges of a rendered ``<cpu>``: what QEMU and libvirt themselves make of it, on each stack.

- QEMU's view: ``query-cpu-model-expansion`` of the XML's model with the properties libvirt passes for it (its named
  features, and the features its map marks removed in that model: off on a fresh start, on for an incoming migration
  from libvirt 11.3 on), under KVM where ``/dev/kvm`` works (the expansion needs no host that runs the model, and KVM's
  defaults are what hosts give guests) and under the guests' machine type.
- libvirt's view: the map's definition of the model plus the named features, on the map's vocabulary, minus the
  model's ``added`` features (check='full' ignores those). The definition itself is checked against libvirt:
  ``virsh cpu-baseline --features`` of the bare model, by that stack's own virsh reading that stack's own map.
"""

from __future__ import annotations

import functools
import hashlib
import os
import subprocess
import tempfile
from collections.abc import Iterable, Iterator, Mapping
from contextlib import ExitStack, contextmanager
from typing import Any

from ansible_collections.cpucompat.cluster.plugins.module_utils.cpu import _features
from ansible_collections.cpucompat.cluster.plugins.module_utils.cpu._guest import is_paravirt
from ansible_collections.cpucompat.cluster.plugins.module_utils.cpu._libvirt_map import CpuMap
from ansible_collections.cpucompat.cluster.plugins.module_utils.probe import _fingerprint, _probe
from ansible_collections.cpucompat.cluster.plugins.module_utils.render._cpuspec import CpuSpec

from .stacks import Stack

ACCEL = "kvm" if _fingerprint.kvm_usable() else "tcg"

# QEMU's answers within a run: (binary digest, machine, accel, model, properties) -> the guest's features or the error.
# An expansion depends on nothing else, and the property tests ask the same ones again and again.
_EXPANSIONS: dict[tuple[str, str, str, str, tuple[tuple[str, bool], ...]], frozenset[str] | str] = {}


@functools.lru_cache(maxsize=None)
def binary_digest(path: str) -> str:
    """sha256 of a QEMU binary (of the script and the binary it runs, for the backports' wrapper)."""
    digest = hashlib.sha256()
    for name in dict.fromkeys((path, os.path.realpath(path))):
        with open(name, "rb") as fh:
            for chunk in iter(lambda fh=fh: fh.read(1 << 20), b""):
                digest.update(chunk)
    return digest.hexdigest()


class QemuJudge:
    """One QEMU of a stack, started once, asked for many expansions (pipelined, each answered once per run)."""

    def __init__(self, client: Any, stack: Stack, machine: str, accel: str = ACCEL) -> None:
        self.client = client
        self.stack = stack
        self.machine = machine
        self.accel = accel
        self._key = (binary_digest(stack.qemu), machine, accel)
        # Every feature property this QEMU has (the static expansion of "max" lists each, on or off).
        reply = client.execute("query-cpu-model-expansion", {"type": "static", "model": {"name": "max"}})
        self.known = frozenset(_features.enabled_features("x86_64", reply["model"].get("props", {}), "max"))

    def views(self, asks: list[tuple[str, Mapping[str, bool]]]) -> list[frozenset[str] | str]:
        """For each (model, properties): the features a guest gets (canonical, paravirtual ones left out), or QEMU's error."""
        keys = [(*self._key, m, tuple(sorted(p.items()))) for m, p in asks]
        missing = [k for k in dict.fromkeys(keys) if k not in _EXPANSIONS]
        replies = self.client.execute_many([("query-cpu-model-expansion", {"type": "static", "model": {"name": k[3], "props": dict(k[4])}})
                                            for k in missing]) if missing else []
        for key, reply in zip(missing, replies):
            model = key[3]
            if not reply.ok:
                _EXPANSIONS[key] = f"QEMU {self.stack.name} refused {model}: {reply.error_class}: {reply.error_desc}"
                continue
            feats = _features.enabled_features("x86_64", reply.value["model"].get("props", {}), model)
            _EXPANSIONS[key] = frozenset(f for f, on in feats.items() if on and not is_paravirt(f))
        return [_EXPANSIONS[k] for k in keys]

    def view(self, model: str, props: Mapping[str, bool]) -> frozenset[str] | str:
        return self.views([(model, props)])[0]


@contextmanager
def qemu(stack: Stack, machine: str = "q35") -> Iterator[QemuJudge]:
    with _probe.spawn_qemu(stack.qemu, ACCEL, 60, machine=machine) as client:
        yield QemuJudge(client, stack, machine)


class JudgePool:
    """The judges of a test session: one :func:`qemu` per (stack, machine type), started when first asked for and
    stopped by :meth:`close` (the ``qemu_judge`` and ``qemu_judges`` fixtures of tests/conftest.py)."""

    def __init__(self) -> None:
        self._exit = ExitStack()
        self._judges: dict[tuple[str, str, str], QemuJudge] = {}

    def get(self, stack: Stack, machine: str = "q35") -> QemuJudge:
        key = (stack.name, stack.qemu, machine)
        if key not in self._judges:
            self._judges[key] = self._exit.enter_context(qemu(stack, machine))
        return self._judges[key]

    def close(self) -> None:
        self._judges.clear()
        self._exit.close()


def libvirt_props(spec: CpuSpec, cpu_map: CpuMap, incoming: bool = False, known: frozenset[str] | None = None) -> dict[str, bool]:
    """The ``-cpu`` properties a libvirt reading ``cpu_map`` passes for ``spec`` (QEMU's names): the named features and
    the model's removed ones; a disabled feature the QEMU does not know is not passed (9.0 drops it from the
    definition, 11.3 skips its ``=off``)."""
    props = {cpu_map.qemu_name(name): policy in ("require", "force") for policy, name in spec.features}
    for name in cpu_map.removed.get(str(spec.model), ()):
        props.setdefault(cpu_map.qemu_name(name), incoming)
    return {f: on for f, on in props.items() if on or known is None or f in known}


def libvirt_view(spec: CpuSpec, cpu_map: CpuMap) -> frozenset[str] | str:
    """What check='full' expects of the guest (QEMU's names, on the map's vocabulary without the added features)."""
    try:
        expected = spec.guest_features(cpu_map)
    except Exception as exc:  # pylint: disable=broad-exception-caught  # the refusal is the verdict
        return f"libvirt {cpu_map.version} refuses the <cpu>: {exc}"
    return cpu_map.qemu_names(expected or ())


def checked_vocabulary(spec: CpuSpec, cpu_map: CpuMap) -> frozenset[str]:
    """The features check='full' compares for this model on this map (QEMU's names)."""
    return cpu_map.qemu_vocabulary - cpu_map.qemu_names(cpu_map.added.get(str(spec.model), ()))


def verdict(spec: CpuSpec, wanted: frozenset[str], judges: Iterable[QemuJudge], maps: Iterable[CpuMap]) -> list[str]:
    """Every way in which some stack gives a guest of ``spec`` something else than ``wanted``; [] when exact."""
    problems: list[str] = []
    maps = list(maps)
    for cpu_map in maps:
        unknown = [n for _p, n in spec.features if n not in cpu_map.features] + ([] if spec.model in cpu_map.models else [str(spec.model)])
        if unknown:
            problems.append(f"libvirt {cpu_map.version} does not know {', '.join(unknown)}")
            continue
        view = libvirt_view(spec, cpu_map)
        vocab = checked_vocabulary(spec, cpu_map)
        if isinstance(view, str):
            problems.append(view)
        elif view & vocab != wanted & vocab:
            problems.append(f"libvirt {cpu_map.version} expects extra {sorted((view - wanted) & vocab)}, "
                            f"missing {sorted((wanted - view) & vocab)}")
        for judge in judges:
            seens = judge.views([(str(spec.model), libvirt_props(spec, cpu_map, incoming, judge.known)) for incoming in (False, True)])
            for incoming, seen in zip((False, True), seens):
                if isinstance(seen, str):
                    problems.append(seen)
                elif seen != wanted:
                    problems.append(f"QEMU {judge.stack.name} via libvirt {cpu_map.version}{' (incoming)' if incoming else ''}: "
                                    f"extra {sorted(seen - wanted)}, missing {sorted(wanted - seen)}")
    return problems


@functools.lru_cache(maxsize=None)
def libvirt_definition(stack: Stack, model: str, vendor: str | None = None) -> tuple[str, frozenset[str], frozenset[str]] | str:
    """libvirt's own expansion of a bare model (``virsh cpu-baseline --features``): (the model it answers with, every
    feature of the CPU, the features it disables) in libvirt's names. Models libvirt does not decode guests to (the
    noTSX ones) come back as another model with features disabled; their feature set is still every required one."""
    vendor_el = f"<vendor>{vendor}</vendor>" if vendor else ""
    with tempfile.NamedTemporaryFile("w", suffix=".xml", delete=False) as fh:
        fh.write(f"<cpu><arch>x86_64</arch><model>{model}</model>{vendor_el}</cpu>\n")
        path = fh.name
    try:
        done = subprocess.run([*stack.virsh, "-c", "test:///default", "cpu-baseline", "--features", path], capture_output=True,
                              text=True, timeout=60, check=False)
    finally:
        os.unlink(path)
    if done.returncode != 0:
        return done.stderr.strip()
    spec = CpuSpec.parse(done.stdout)
    return str(spec.model), frozenset(spec.policy_names(["require"])), frozenset(spec.policy_names(["disable"]))


def domxml_to_native_cpu(domain_xml: str) -> str:
    """The ``-cpu`` value the system's libvirtd builds for a domain (``virsh domxml-to-native``)."""
    with tempfile.NamedTemporaryFile("w", suffix=".xml", delete=False) as fh:
        fh.write(domain_xml)
        path = fh.name
    try:
        done = subprocess.run(["virsh", "-c", "qemu:///system", "domxml-to-native", "qemu-argv", path], capture_output=True,
                              text=True, timeout=60, check=True)
    finally:
        os.unlink(path)
    args = done.stdout.split()
    return args[args.index("-cpu") + 1]
