#!/usr/bin/env python3
# Copyright (c) 2026 cpucompat.cluster contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Regenerate plugins/module_utils/cpu/_catalog_data.py from real QEMU binaries on this machine.

The catalogue holds QEMU's definitions of its named CPU models as the hosts' guests get them: expanded under KVM
(``query-cpu-model-expansion`` needs no host that runs the model) where ``/dev/kvm`` works, so that the accelerator's
defaults are in (KVM turns x2apic, vme and the kvm* features on, svm off; TCG turns vme off), on the newest q35 machine
type. Each release records the accelerator and machine type it was taken under.

For x86 it keeps, per release:

- the definition of every model that is not an alias (versioned names, immutable by QEMU's policy);
- which model each alias and unversioned name stands for on that machine type;
- per model and dependency root (vmx, svm, arch-capabilities...): the features that appear when the root is turned on
  (``latent``: a model's vmx-* controls exist only with vmx) and that vanish when it is turned off (``hidden``).

s390x (no KVM here) keeps its static ``-base`` models under TCG, as the facts need them to read static expansions.

Usage: tools/gen_catalog.py [--x86 BINARY ...] [--s390x BINARY] [--output FILE]
Defaults: the system's qemu-system-x86_64 and, when tools/backports.sh unpacked it, the backports QEMU.
"""
from __future__ import annotations

import argparse
import os
import pprint
import sys
import textwrap
from typing import Any

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tests"))
# pylint: disable=wrong-import-position
from utils.source_tree import SOURCE_COLLECTIONS  # noqa: E402

sys.path.insert(0, SOURCE_COLLECTIONS)
from ansible_collections.cpucompat.cluster.plugins.module_utils.cpu import _features  # noqa: E402
from ansible_collections.cpucompat.cluster.plugins.module_utils.probe import _fingerprint, _probe  # noqa: E402

# Features whose state decides whether others exist (QEMU's feature_dependencies "from" side, top level).
ROOTS = ("vmx", "svm", "arch-capabilities", "core-capability", "pdcm", "intel-pt", "sgx")
BACKPORTS_QEMU = os.path.join(ROOT, ".cache", "backports", "bin", "qemu-system-x86_64")


def _enabled(arch: str, reply: dict[str, Any], where: str) -> frozenset[str]:
    feats = _features.enabled_features(arch, reply["model"].get("props", {}), where)
    return frozenset(k for k, v in feats.items() if v)


def _machine(client: Any, family: str | None) -> str | None:
    """The newest versioned machine type of ``family`` (q35 on x86), as query-machines names it."""
    if family is None:
        return None
    machines = client.execute("query-machines")
    named = [m for m in machines if m.get("alias") == family or m["name"] == family]
    return named[0]["name"] if named else None


def x86_release(binary: str) -> dict[str, Any]:
    accel = "kvm" if _fingerprint.kvm_usable() else "tcg"
    with _probe.spawn_qemu(_probe.find_binary(binary), accel, 60, machine="q35") as client:
        version = client.greeting["version"]["qemu"]
        machine = _machine(client, "q35")
        defs = client.execute("query-cpu-definitions")
        names = sorted(d["name"] for d in defs if not d.get("alias-of") and d["name"] not in ("host", "max", "base"))
        aliases = {d["name"]: d["alias-of"] for d in defs if d.get("alias-of")}
        replies = client.execute_many([("query-cpu-model-expansion", {"type": "static", "model": {"name": n}}) for n in names])
        models = {n: _enabled("x86_64", r.value, f"{binary} {n}") for n, r in zip(names, replies) if r.ok}
        toggles = [(n, root, root not in models[n]) for n in models for root in ROOTS]
        replies = client.execute_many([("query-cpu-model-expansion", {"type": "static", "model": {"name": n, "props": {r: on}}})
                                       for n, r, on in toggles])
        latent: dict[str, dict[str, frozenset[str]]] = {}
        hidden: dict[str, dict[str, frozenset[str]]] = {}
        for (name, root, on), reply in zip(toggles, replies):
            if not reply.ok:
                continue  # a root this QEMU does not know
            changed = _enabled("x86_64", reply.value, f"{binary} {name} {root}={on}")
            delta = (changed - models[name] - {root}) if on else (models[name] - changed - {root})
            if delta:
                (latent if on else hidden).setdefault(name, {})[root] = delta
    release = f"{version['major']}.{version['minor']}.{version['micro']}"
    return {"release": release, "accel": accel, "machine": machine, "models": models, "aliases": aliases,
            "latent": latent, "hidden": hidden}


def s390x_release(binary: str) -> dict[str, Any]:
    with _probe.spawn_qemu(_probe.find_binary(binary), "tcg", 60, machine="none") as client:
        version = client.greeting["version"]["qemu"]
        defs = client.execute("query-cpu-definitions")
        # s390x static "-base" models never change; the default models ("z14", "qemu") vary by release and machine.
        names = sorted(d["name"] for d in defs if not d.get("alias-of") and d["name"].endswith("-base"))
        replies = client.execute_many([("query-cpu-model-expansion", {"type": "full", "model": {"name": n}}) for n in names])
        models = {n: _enabled("s390x", r.value, f"{binary} {n}") for n, r in zip(names, replies) if r.ok}
    release = f"{version['major']}.{version['minor']}.{version['micro']}"
    return {"release": release, "accel": "tcg", "machine": "none", "models": models, "aliases": {}, "latent": {}, "hidden": {}}


class Writer:
    """The generated module: distinct feature sets once, releases referring to them by index."""

    def __init__(self) -> None:
        self.sets: dict[str, dict[frozenset[str], int]] = {}

    def ref(self, arch: str, feats: frozenset[str]) -> int:
        table = self.sets.setdefault(arch, {})
        return table.setdefault(feats, len(table))

    def release(self, arch: str, rel: dict[str, Any]) -> list[str]:
        data = {
            "accel": rel["accel"], "machine": rel["machine"], "aliases": dict(sorted(rel["aliases"].items())),
            "models": {n: self.ref(arch, f) for n, f in sorted(rel["models"].items())},
            "latent": {n: {r: self.ref(arch, f) for r, f in sorted(roots.items())} for n, roots in sorted(rel["latent"].items())},
            "hidden": {n: {r: self.ref(arch, f) for r, f in sorted(roots.items())} for n, roots in sorted(rel["hidden"].items())},
        }
        body = pprint.pformat(data, width=114, sort_dicts=False)
        return [f"RELEASES[{arch!r}][{rel['release']!r}] = (", *("    " + line for line in body.splitlines()), ")"]

    def sets_lines(self) -> list[str]:
        lines = []
        for arch, table in sorted(self.sets.items()):
            lines.append(f"SETS[{arch!r}] = (")
            for feats in sorted(table, key=table.__getitem__):
                chunks = textwrap.wrap(" ".join(sorted(feats)), 100, break_on_hyphens=False) or [""]
                lines.append("    (")
                lines.extend(f"        {chunk + ' '!r}" for chunk in chunks)
                lines.append("    ),")
            lines.append(")")
        return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--x86", nargs="*", default=None)
    parser.add_argument("--s390x", default="qemu-system-s390x")
    parser.add_argument("--output", default=os.path.join(ROOT, "plugins", "module_utils", "cpu", "_catalog_data.py"))
    args = parser.parse_args()
    binaries = args.x86 if args.x86 is not None else ["qemu-system-x86_64", *([BACKPORTS_QEMU] if os.path.exists(BACKPORTS_QEMU) else [])]
    writer = Writer()
    body: list[str] = []
    for binary in binaries:
        rel = x86_release(binary)
        print(f"x86_64: QEMU {rel['release']} ({binary}), {rel['accel']}, {rel['machine']}: {len(rel['models'])} models")
        body += ["", *writer.release("x86_64", rel)]
    rel = s390x_release(args.s390x)
    print(f"s390x: QEMU {rel['release']} ({args.s390x}), tcg: {len(rel['models'])} models")
    body += ["", *writer.release("s390x", rel)]
    lines = [
        "# Copyright (c) 2026 cpucompat.cluster contributors",
        "# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)",
        "# SPDX-License-Identifier: GPL-3.0-or-later",
        '"""QEMU\'s named CPU models, per QEMU release: data for ``_catalog``. Private to the collection.',
        "",
        "Generated by tools/gen_catalog.py from the QEMU binaries named in RELEASES; do not edit. SETS holds each distinct",
        "feature set once (QEMU's canonical names, space-separated); releases refer to them by index.",
        '"""',
        "",
        "from __future__ import annotations",
        "",
        "from typing import Any",
        "",
        "SETS: dict[str, tuple[str, ...]] = {}",
        "RELEASES: dict[str, dict[str, dict[str, Any]]] = {'x86_64': {}, 's390x': {}}",
        "",
        *writer.sets_lines(),
        *body,
    ]
    with open(args.output, "w", encoding="utf-8") as fh:
        fh.write("\n".join(lines) + "\n")
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
