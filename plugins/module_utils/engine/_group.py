# Copyright (c) 2026 cpucompat.cluster contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""A group's hosts sorted by whether their facts can be used. Private to the collection.

Every report kind and the contract start from :func:`group_facts`, which names the hosts it cannot use (unreachable,
probe failed, no facts, another schema, an unreadable cache entry), so nothing downstream skips a host silently.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..probe._facts import READABLE_SCHEMAS
from ._hostcpu import HostCpu, SharedHostCpus


# The report keys that list hosts without usable facts, in the order the reports show them.
PROBLEM_KEYS = ("unreachable", "probe_failed", "missing_facts", "other_schema", "unreadable")


@dataclass
class GroupFacts:
    """A group's hosts: those with usable facts, and the others by reason."""

    usable: dict[str, Mapping[str, Any]] = field(default_factory=dict)
    unreachable: list[str] = field(default_factory=list)
    probe_errors: dict[str, str] = field(default_factory=dict)
    missing_facts: list[str] = field(default_factory=list)
    other_schema: list[str] = field(default_factory=list)
    unreadable: dict[str, str] = field(default_factory=dict)
    _validated: tuple[tuple[str, ...], list[HostCpu]] | None = field(default=None, init=False, repr=False, compare=False)

    def problems(self) -> dict[str, list[str]]:
        """The hosts without usable facts, under the report keys of PROBLEM_KEYS."""
        return dict(zip(PROBLEM_KEYS, (self.unreachable, sorted(self.probe_errors), self.missing_facts, self.other_schema,
                                       sorted(self.unreadable))))

    @property
    def facts_as_of(self) -> int | None:
        """When the newest facts of the group were probed (seconds since the epoch; None: none says)."""
        stamps = [(f.get("probe") or {}).get("probed_at") for f in self.usable.values() if isinstance(f, Mapping)]
        times = [s for s in stamps if isinstance(s, (int, float)) and not isinstance(s, bool)]
        return int(max(times)) if times else None

    @property
    def incomplete(self) -> list[str]:
        return sorted(n for names in self.problems().values() for n in names)

    def why(self, name: str) -> str | None:
        """Why a host's facts cannot be used, or None when they can."""
        if name in self.unreachable:
            return "unreachable or failed in this run"
        if name in self.probe_errors:
            return f"probe failed: {self.probe_errors[name]}"
        if name in self.unreadable:
            return f"its fact cache entry cannot be read: {self.unreadable[name]}"
        if name in self.missing_facts:
            return "no cpucompat facts"
        if name in self.other_schema:
            return f"facts of another schema version (this collection reads {' and '.join(map(str, sorted(READABLE_SCHEMAS)))}); re-probe it"
        return None

    def hosts(self) -> list[HostCpu]:
        """The usable hosts as validated values; validated once (a run asks for them several times: the contract, the
        baseline beside it, the host table), again only if ``usable`` changed."""
        names = tuple(self.usable)
        if self._validated is None or self._validated[0] != names:
            build = SharedHostCpus(check_names=True)  # hosts whose facts say the same about the CPU: validated once
            self._validated = (names, [build(name, facts) for name, facts in self.usable.items()])
        return list(self._validated[1])


def group_facts(facts_by_host: Mapping[str, Any], unreachable: Sequence[str] = (),
                probe_errors: Mapping[str, str] | None = None, unreadable: Mapping[str, str] | None = None) -> GroupFacts:
    """Sort a group's hosts by whether their facts can be used.

    A host whose latest probe failed (``probe_errors``) is not used even when older facts of it are cached: they may no
    longer describe it. ``unreadable``: hosts whose variables could not be read (a fact cache entry that is not JSON, a
    cache server gone), with the reason.
    """
    group = GroupFacts(unreachable=sorted(n for n in unreachable if n in facts_by_host),
                       probe_errors={k: v for k, v in sorted((probe_errors or {}).items()) if v and k in facts_by_host},
                       unreadable={k: v for k, v in sorted((unreadable or {}).items()) if k in facts_by_host})
    for name in sorted(facts_by_host):
        facts = facts_by_host[name]
        if name in group.unreachable or name in group.probe_errors or name in group.unreadable:
            continue
        if not isinstance(facts, Mapping):
            group.missing_facts.append(name)
        elif facts.get("schema_version") not in READABLE_SCHEMAS:
            group.other_schema.append(name)
        else:
            group.usable[name] = facts
    return group


def stack_axes(facts: Mapping[str, Any] | None) -> dict[str, Any]:
    """What decides a host's guest CPU besides the ``<cpu>``: QEMU's exact version (point release) and package, the
    kernel release, the microcode, libvirt's version, the machine type the host was probed with (None where unknown)."""
    facts = facts if isinstance(facts, Mapping) else {}
    qemu = _qemu if isinstance(_qemu := facts.get("qemu"), Mapping) else {}
    versions = _versions if isinstance(_versions := facts.get("versions"), Mapping) else {}
    machine = _machine if isinstance(_machine := facts.get("machine"), Mapping) else {}
    return {"qemu": qemu.get("version"), "qemu_package": qemu.get("package"), "kernel": versions.get("kernel"),
            "microcode": versions.get("microcode"), "libvirt": versions.get("libvirt"), "machine": machine.get("name")}
