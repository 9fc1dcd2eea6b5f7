# Copyright (c) 2026 cpucompat.cluster contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Proxmox VE's ``cpu-models.conf``: read as Proxmox reads it, one section replaced, every other byte kept. Private.

Proxmox's own Perl (``PVE::SectionConfig``, ``PVE::QemuServer::CPUConfig``) does not run here; these are its rules as
we implement them:

- Section config: lines starting with ``#`` (after blanks) are comments; a section starts at a line ``TYPE: ID`` and runs
  until the first empty line; each of its lines must be ``<blanks>KEY[<blanks>VALUE]``; a key may appear once; a
  section with an unknown type, or whose properties fail their schema, is skipped (Proxmox warns and goes on).
- CPU models (type ``cpu-model``): the properties ``flags`` (``+name`` or ``-name``, separated by ``;``), ``hidden``
  (0 or 1), ``hv-vendor-id`` (1 to 12 letters or digits), ``level`` (0 to 2^32-1), ``phys-bits`` (8 to 64, or ``host``),
  ``guest-phys-bits`` (32 to 64) and ``reported-model`` (a model of Proxmox's list, ``kvm64`` when absent).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from .._errors import CpuCompatError
from ..render._proxmox import FLAG_RE, NAME_RE, model_vendor

_HEADER = re.compile(r"^(\S+):\s*(\S+)\s*$")
_PROPERTY = re.compile(r"^\s+(\S+)(\s+(.*\S))?\s*$")
SECTION_TYPE = "cpu-model"


class SectionConfigError(CpuCompatError):
    """A cpu-models.conf, or a section given to write, that Proxmox would not read as meant."""


@dataclass(frozen=True)
class Section:
    """One section: its type and ID, its properties, and the lines it spans (``start`` to ``end``, exclusive)."""

    type: str
    id: str
    properties: dict[str, str | None]
    start: int
    end: int
    errors: tuple[str, ...] = ()


def parse(text: str) -> list[Section]:
    """The sections of a section-config file, with what Proxmox would complain about in each."""
    lines = text.split("\n")
    sections: list[Section] = []
    i = 0
    while i < len(lines):
        line = lines[i]
        header = _HEADER.match(line) if line and not re.match(r"^\s*#", line) else None
        if header is None:
            i += 1
            continue
        start, props, errors = i, {}, []
        i += 1
        while i < len(lines) and lines[i] != "":
            if not re.match(r"^\s*#", lines[i]):
                prop = _PROPERTY.match(lines[i])
                if prop is None:
                    errors.append(f"line {i + 1}: not a property line: {lines[i]!r}")
                elif prop.group(1) in props:
                    errors.append(f"line {i + 1}: duplicate attribute {prop.group(1)}")
                else:
                    props[prop.group(1)] = prop.group(3)
            i += 1
        sections.append(Section(header.group(1), header.group(2), props, start, i, tuple(errors)))
    return sections


def cpu_model_errors(section: Section) -> list[str]:
    """Why Proxmox would skip or misread a ``cpu-model`` section (CPUConfig's schema), or []."""
    errors = list(section.errors)
    if section.type != SECTION_TYPE:
        return errors + [f"section type {section.type!r} is not {SECTION_TYPE}"]
    if not NAME_RE.match(section.id):
        errors.append(f"section name {section.id!r} is not one every Proxmox release accepts")
    checks = {"flags": _flags, "hidden": lambda v: v in ("0", "1"), "hv-vendor-id": lambda v: bool(re.fullmatch(r"[a-zA-Z0-9]{1,12}", v)),
              "level": lambda v: v.isdigit() and int(v) < 2 ** 32, "phys-bits": _phys_bits,
              "guest-phys-bits": lambda v: v.isdigit() and 32 <= int(v) <= 64,
              "reported-model": lambda v: model_vendor(v) is not None}
    for key, value in section.properties.items():
        if key not in checks:
            errors.append(f"unknown property {key!r}")
        elif value is None or not checks[key](value):
            errors.append(f"property {key} has an invalid value {value!r}")
    return errors


def _flags(value: str) -> bool:
    return all(FLAG_RE.match(flag) for flag in value.split(";"))


def _phys_bits(value: str) -> bool:
    return value == "host" or (bool(re.fullmatch(r"\d{1,2}", value)) and 8 <= int(value) <= 64)


def set_section(text: str, name: str, body: str | None) -> str:
    """``text`` with the ``cpu-model: name`` section(s) replaced by ``body`` (a section's text), or removed (None).

    A new section is appended after a blank line; every other line stays byte for byte."""
    if body is not None:
        given = parse(body)
        if len(given) != 1 or given[0].type != SECTION_TYPE or given[0].id != name:
            raise SectionConfigError(f"the section to write must be one '{SECTION_TYPE}: {name}' section")
        errors = cpu_model_errors(given[0])
        if errors:
            raise SectionConfigError(f"Proxmox would not read section {name} as meant: {'; '.join(errors)}")
        body = body.strip("\n") + "\n"
    lines = text.split("\n")
    ours = [s for s in parse(text) if s.type == SECTION_TYPE and s.id == name]
    for section in reversed(ours[1:]):
        end = section.end + 1 if section.end < len(lines) and lines[section.end] == "" else section.end
        del lines[section.start:end]
    if ours:
        first = ours[0]
        if body is None:
            end = first.end + 1 if first.end < len(lines) and lines[first.end] == "" else first.end
            del lines[first.start:end]
        else:
            lines[first.start:first.end] = body.rstrip("\n").split("\n")
        return "\n".join(lines)
    if body is None:
        return text
    head = text if text.endswith("\n") or not text else text + "\n"
    separator = "\n" if head and not head.endswith("\n\n") else ""
    return head + separator + body + "\n"
