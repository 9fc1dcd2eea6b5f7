#!/usr/bin/env python3
# Copyright (c) 2026 cpucompat.cluster contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Regenerate plugins/module_utils/render/_proxmox_models.py from Proxmox's own CPUConfig.pm.

Proxmox VE's list of the CPU models it accepts (model -> vendor) is a Perl hash in qemu-server's
``src/PVE/QemuServer/CPUConfig.pm`` (``PVE/QemuServer/CPUConfig.pm`` in older trees):

- from 2026 on: ``$cpu_models_by_arch = { x86_64 => {...}, aarch64 => {...} }`` in ``initialize_cpu_models`` (since
  commit e2034ca3, May 2026, the list Proxmox falls back to when pve-qemu ships no
  ``/usr/share/kvm/cpu-models-x86_64.json``);
- before: ``my $cpu_vendor_list = {...}``, x86_64 only.

Beside it, ``$depreacated_cpu_map`` (sic) names the models Proxmox replaces before QEMU sees them. This script reads
both hashes from the file given and writes them, with the repository, path and commit they came from, as the Python
module the renderer imports. It reads the Perl as text (no Perl needed): it fails, naming the line, on anything in
those hashes that is not ``NAME => 'VALUE',`` or a comment.

Usage: tools/gen_proxmox_models.py CPUConfig.pm --commit SHA [--path-in-repo PATH] [--output FILE | --check]

  git --git-dir=<qemu-server.git> show HEAD:src/PVE/QemuServer/CPUConfig.pm > /tmp/CPUConfig.pm
  tools/gen_proxmox_models.py /tmp/CPUConfig.pm --commit "$(git --git-dir=<qemu-server.git> log -1 --format=%H)"
"""
from __future__ import annotations

import argparse
import json
import os
import re
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUTPUT = os.path.join(ROOT, "plugins", "module_utils", "render", "_proxmox_models.py")
REPOSITORY = "https://github.com/proxmox/qemu-server"
DEFAULT_PATH = "src/PVE/QemuServer/CPUConfig.pm"

_ENTRY = re.compile(r"""^\s*(?:'(?P<q1>[^']+)'|"(?P<q2>[^"]+)"|(?P<bare>[A-Za-z0-9_.-]+))\s*=>\s*"""
                    r"""(?:'(?P<v1>[^']*)'|"(?P<v2>[^"]*)")\s*,?\s*(?:#.*)?$""")
_ARCH = re.compile(r"^\s*'?(?P<arch>[A-Za-z0-9_]+)'?\s*=>\s*\{\s*(?:#.*)?$")
_CLOSE = re.compile(r"^\s*\},?\s*(?:#.*)?$")


class PerlListError(ValueError):
    """The file does not hold the hashes in a shape this script reads."""


def _block(text: str, opening: re.Pattern[str]) -> tuple[int, list[str]] | None:
    """(line number of the opening, the lines inside the braces) of the first hash ``opening`` starts, or None."""
    lines = text.split("\n")
    for start, line in enumerate(lines):
        if opening.search(line):
            depth, inside = line.count("{") - line.count("}"), []
            for number in range(start + 1, len(lines)):
                depth += lines[number].count("{") - lines[number].count("}")
                if depth <= 0:
                    return start + 1, inside
                inside.append(lines[number])
            raise PerlListError(f"line {start + 1}: the hash never closes")
    return None


def _pairs(first_line: int, lines: list[str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for offset, line in enumerate(lines, start=first_line + 1):
        if not line.strip() or line.strip().startswith("#"):
            continue
        entry = _ENTRY.match(line)
        if entry is None:
            raise PerlListError(f"line {offset}: not a 'NAME => VALUE' entry: {line.strip()!r}")
        name = entry.group("q1") or entry.group("q2") or entry.group("bare")
        if name in out:
            raise PerlListError(f"line {offset}: {name} is listed twice")
        out[name] = entry.group("v1") if entry.group("v1") is not None else entry.group("v2")
    return out


def _by_arch(first_line: int, lines: list[str]) -> dict[str, dict[str, str]]:
    """The ``ARCH => { ... }`` hashes of ``$cpu_models_by_arch``."""
    out: dict[str, dict[str, str]] = {}
    arch: str | None = None
    inside: list[str] = []
    start = first_line
    for number, line in enumerate(lines, start=first_line + 1):
        if arch is None:
            if not line.strip() or line.strip().startswith("#"):
                continue
            head = _ARCH.match(line)
            if head is None:
                raise PerlListError(f"line {number}: not an 'ARCH => {{' line: {line.strip()!r}")
            arch, inside, start = head.group("arch"), [], number
        elif _CLOSE.match(line):
            out[arch] = _pairs(start, inside)
            arch = None
        else:
            inside.append(line)
    if arch is not None:
        raise PerlListError(f"line {start}: the {arch} hash never closes")
    return out


def read_models(text: str) -> tuple[dict[str, dict[str, str]], dict[str, str]]:
    """(model -> vendor by architecture, replaced model -> replacement) from the text of a CPUConfig.pm."""
    by_arch = _block(text, re.compile(r"^\s*(?:my\s+)?\$cpu_models_by_arch\s*=\s*\{"))
    if by_arch is not None:
        models = _by_arch(*by_arch)
    else:
        flat = _block(text, re.compile(r"^\s*(?:my|our)\s+[$%]cpu_vendor_list\s*=\s*[{(]"))
        if flat is None:
            raise PerlListError("neither $cpu_models_by_arch = {...} nor $cpu_vendor_list = {...} is in the file")
        models = {"x86_64": _pairs(*flat)}
    if not models.get("x86_64"):
        raise PerlListError("the file lists no x86_64 model")
    deprecated = _block(text, re.compile(r"^\s*my\s+\$(?:depreacated|deprecated)_cpu_map\s*=\s*\{"))
    return models, (_pairs(*deprecated) if deprecated else {})


def module_text(models: dict[str, dict[str, str]], deprecated: dict[str, str], commit: str, path: str) -> str:
    """The Python module: the header, where the data came from, and the two tables in the source's order."""
    q = json.dumps
    arches = "".join(f"    {q(arch)}: {{\n" + "".join(f"        {q(m)}: {q(v)},\n" for m, v in table.items()) + "    },\n"
                     for arch, table in models.items())
    replaced = "".join(f"    {q(m)}: {q(r)},\n" for m, r in deprecated.items())
    return f'''# Copyright (c) 2026 cpucompat.cluster contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Proxmox VE's own list of the CPU models it accepts, as data. Private; written by tools/gen_proxmox_models.py.

Source: {REPOSITORY}, file ``{path}``, commit
{commit}: the model -> vendor hash of ``initialize_cpu_models``
(``$cpu_models_by_arch``; ``$cpu_vendor_list`` in older trees) and ``$depreacated_cpu_map``.
qemu-server is AGPL-3.0-or-later (Proxmox Server Solutions GmbH); what is copied here is the list of model names, their
vendors and the replacements, facts, in the source's order, not its code. Do not edit: regenerate (see the tool).
"""

from __future__ import annotations

SOURCE_REPOSITORY = "{REPOSITORY}"
SOURCE_PATH = "{path}"
SOURCE_COMMIT = "{commit}"
SOURCE_LICENSE = "AGPL-3.0-or-later"

# architecture -> model -> CPUID vendor ("default": a generic model, which takes the vendor of the host)
MODELS: dict[str, dict[str, str]] = {{
{arches}}}

# reported models Proxmox replaces before QEMU sees them (model -> replacement)
DEPRECATED: dict[str, str] = {{
{replaced}}}
'''


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("source", help="a CPUConfig.pm of proxmox/qemu-server")
    parser.add_argument("--commit", required=True, help="the qemu-server commit the file is taken from (40 hex digits)")
    parser.add_argument("--path-in-repo", default=DEFAULT_PATH,
                        help=f"the file's path in qemu-server (default {DEFAULT_PATH})")
    parser.add_argument("--output", default=OUTPUT, help="the module to write (default: the collection's)")
    parser.add_argument("--check", action="store_true", help="write nothing; fail when the module differs")
    args = parser.parse_args(argv)
    if not re.fullmatch(r"[0-9a-f]{40}", args.commit):
        parser.error(f"--commit {args.commit!r} is not a full commit SHA (40 lower-case hex digits)")
    with open(args.source, encoding="utf-8") as fh:
        models, deprecated = read_models(fh.read())
    text = module_text(models, deprecated, args.commit, args.path_in_repo)
    if args.check:
        with open(args.output, encoding="utf-8") as fh:
            same = fh.read() == text
        print(f"{args.output}: {'up to date' if same else 'differs from the source'}")
        return 0 if same else 1
    with open(args.output, "w", encoding="utf-8") as fh:
        fh.write(text)
    print(f"wrote {args.output}: " + ", ".join(f"{len(t)} {a} models" for a, t in models.items())
          + f", {len(deprecated)} replaced")
    return 0


if __name__ == "__main__":
    sys.exit(main())
