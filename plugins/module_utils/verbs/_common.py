# Copyright (c) 2026 cpucompat.cluster contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""What every verb shares: the :class:`Reader` the actions hand in, :class:`Common` options, the :class:`Outcome`. Private.

The verbs (one module per family: ``_reading`` baseline, expansion and migration, which only read; ``_contracting``
contract, plan and rebuild, which write the contract store; ``_upgrading`` the upgrade check; ``_power_cycle``) sit above
``reports``, which only builds and renders. The aggregating actions read hosts' variables where Ansible keeps them and
hand them in through :class:`Reader`; each verb returns an :class:`Outcome`: the report, the contract files written,
and what the action returns beside.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from .._errors import InputError
from ..contract import _contract
from ..contract._file_store import FileStore
from ..contract._store import ContractStore
from ..contract._stored import Stored
from ..cpu._libvirt_map import MapRegistry
from ..engine._baseline import compute_baseline
from ..engine._cluster import BaselineOptions
from ..engine._group import GroupFacts
from ..engine._hostcpu import HostCpu

VERBS = ("baseline", "expansion", "migration", "contract", "plan", "upgrade", "rebuild")


class Reader(Protocol):
    """How a verb reads the hosts (the action reads them where Ansible keeps them, untemplated)."""

    def group(self, names: list[str]) -> GroupFacts: ...

    def domains(self, names: list[str], var: str | None) -> dict[str, list[Mapping[str, Any]]]: ...

    def verdicts(self, names: list[str], var: str | None) -> dict[str, Mapping[str, str]]: ...


@dataclass(frozen=True)
class Common:
    """What every verb is given: the one policy, which CPU map serves which host, the form of the XML, the store."""

    policy: BaselineOptions
    registry: MapRegistry
    form: str = "minimal"
    allow_partial: bool = False
    store: ContractStore = field(default_factory=FileStore)
    check_mode: bool = False
    pin: bool = False  # pin a group's contract even though its domains carry the stamps of one the store lacks
    on_refusal: str = "fail"  # a host that cannot run its group's contract: fail the group, or exclude (quarantine) it
    level: str | None = None  # the level a first pin takes (engine/_level); None: the group's best of today
    platforms: tuple[str, ...] = ()  # the platforms whose rendering of the contract the contract report shows
    defer_pin: bool = False  # a first pin is written by the observation step that follows, with the observed words
    adopt: tuple[str, ...] = ()  # hosts moved on purpose from another group's contract (their domains' stamps say which)


@dataclass
class Outcome:
    """A verb's result: the report, the contract files it wrote (or would write, in check mode), and more."""

    report: dict[str, Any]
    contract_files: list[str] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)
    side_reports: dict[str, dict[str, Any]] = field(default_factory=dict)  # file stem -> report (the baseline beside)
    members: list[str] | None = None  # the one group whose baseline every host keeps as the small cluster fact


def stored_contract(common: Common, group: str | None) -> tuple[str | None, _contract.Contract | None]:
    if not group:
        return None, None
    return common.store.where(group), common.store.read(group).contract


def write_contract(common: Common, group: str, contract: _contract.Contract, stored: Stored) -> bool:
    """Write a group's contract unless in check mode (then only predicted); compare-and-swap on the generation read."""
    if common.check_mode:
        return True
    return common.store.write(group, contract, stored.generation) != stored.generation


def group_stacks(common: Common, group: GroupFacts) -> Any:
    """The group's stacks (the baseline computes them; hosts without usable facts are left out here)."""
    hosts = group.hosts()
    return compute_baseline(hosts, common.policy, common.registry).stacks if hosts else None


def extra_hosts(stacks: Mapping[str, Any]) -> list[HostCpu]:
    """The hosts of a new-stack file (host name -> cpucompat facts), validated."""
    return [HostCpu.from_facts(str(name), facts) for name, facts in sorted(stacks.items())]


def group_map(inventory: Mapping[str, Sequence[str]], names: list[str]) -> dict[str, list[str]]:
    """Each named inventory group's hosts; a host in two of them is refused by name."""
    unknown = [g for g in names if g not in inventory]
    if unknown:
        raise InputError(f"no such inventory group: {', '.join(unknown)}")
    seen: dict[str, str] = {}
    for group in names:
        for host in inventory[group]:
            if host in seen and seen[host] != group:
                raise InputError(f"host {host} is in two of the groups, {seen[host]} and {group}; each host keeps one "
                                 "group's contract")
            seen[host] = group
    return {g: list(inventory[g]) for g in names}
