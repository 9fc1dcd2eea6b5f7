# Copyright (c) 2026 cpucompat.cluster contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Set options of one section of an oslo.config file (nova.conf), every other byte kept. Private to the collection.

Read as oslo.config's parser reads it (``oslo_config/iniparser.py``): ``[name]`` starts a section (names are
case-sensitive and may repeat; their options merge, the last value of an option winning), ``key = value`` or
``key: value`` (whichever comes first) assigns, a line starting with a space or a tab continues the value above, ``#``
and ``;`` start comments, a blank line ends a value. :func:`set_options` removes every assignment of the given keys
(and of their deprecated names) from every section of that name, with their continuation lines, and writes the new
ones where the first was, or at the top of the first such section, or in a new section at the end.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping


def _key(line: str) -> str | None:
    """The key a line assigns, or None (blank, comment, continuation, section header)."""
    if not line.strip() or line[0] in " \t[#;":
        return None
    colon, equal = line.find(":"), line.find("=")
    if colon < 0 and equal < 0:
        return None
    cut = equal if colon < 0 or 0 <= equal < colon else colon
    return line[:cut].strip()


def _section(line: str) -> str | None:
    stripped = line.rstrip()
    return stripped[1:-1] if stripped.startswith("[") and stripped.endswith("]") and len(stripped) > 2 else None


def set_options(text: str, section: str, options: Mapping[str, str], drop: Iterable[str] = ()) -> str:
    """``text`` with ``options`` (key -> value) set in ``section``; keys in ``drop`` are removed there too."""
    gone = set(options) | set(drop)
    lines = text.splitlines(keepends=True)
    out: list[str] = []
    current: str | None = None
    skipping = False
    insert_at: int | None = None
    for line in lines:
        if skipping and line[:1] in (" ", "\t") and line.strip():
            continue  # a continuation of a removed value
        skipping = False
        header = _section(line)
        if header is not None:
            current = header
            out.append(line)
            if header == section and insert_at is None:
                insert_at = -len(out)  # just after the header (negative: not yet a removed assignment's place)
            continue
        if current == section and _key(line) in gone:
            if insert_at is None or insert_at < 0:
                insert_at = len(out)
            skipping = True
            continue
        out.append(line)
    block = [f"{k} = {v}".rstrip() + "\n" for k, v in options.items()]
    if insert_at is None:
        if out and not out[-1].endswith("\n"):
            out[-1] += "\n"
        out += (["\n"] if out and out[-1].strip() else []) + [f"[{section}]\n", *block]
    else:
        at = -insert_at if insert_at < 0 else insert_at
        out[at:at] = block
    return "".join(out)


def get_options(text: str, section: str) -> dict[str, str]:
    """Each key's last value in the sections named ``section`` (continuation lines joined by a newline)."""
    found: dict[str, str] = {}
    current = None
    key = None
    for line in text.splitlines():
        if key is not None and line[:1] in (" ", "\t") and line.strip():
            found[key] += "\n" + line.strip()
            continue
        key = None
        header = _section(line)
        if header is not None:
            current = header
            continue
        name = _key(line)
        if current == section and name is not None:
            cut = min(i for i in (line.find("="), line.find(":")) if i >= 0)
            found[name] = line[cut + 1:].strip()
            key = name
    return found
