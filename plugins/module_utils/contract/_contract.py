# Copyright (c) 2026 cpucompat.cluster contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The cluster CPU contract: the guest CPU a group keeps until an operator raises or lowers it. Private to the collection.

One JSON document per inventory group (schema ``cpucompat.contract/2``, kept by a store: ``_store``) holds the pinned level: the exact feature set
(QEMU's canonical names), the base model, the machine type family and the address bits, never XML text. Each run
renders it anew for the stacks the group has then, so that a QEMU or libvirt upgrade gets a ``<cpu>`` that means the
same set there, or a refusal that names the host. A ``cpucompat.contract/1`` file (which kept the XML) is read,
upgraded, and written back as ``/2`` on the next write, which the report says.
"""

from __future__ import annotations

import datetime
import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from .._errors import CpuCompatError, InputError
from ..cpu._guest import GuestCpu, is_paravirt, level_of
from ..engine._result import Baseline
from ..engine._hostcpu import HostCpu

CONTRACT_SCHEMA = "cpucompat.contract/2"
CONTRACT_SCHEMA_1 = "cpucompat.contract/1"


class ContractError(CpuCompatError):
    """A contract file is malformed, foreign (another group, arch or vendor) or cannot be written."""


@dataclass(frozen=True)
class Level:
    """A CPU level: a named model and the features a guest gets."""

    model: str | None
    features: frozenset[str]

    def to_dict(self) -> dict[str, Any]:
        return {"model": self.model, "features": sorted(self.features)}


@dataclass(frozen=True)
class Contract:
    """A group's pinned guest CPU (a level: no stacks, no XML)."""

    group: str
    cpu: GuestCpu
    pinned_at: str
    history: tuple[Mapping[str, Any], ...] = ()
    upgraded_from: str | None = None  # the schema of the file it was read from, when older than CONTRACT_SCHEMA
    # The level as observed: stack key (QEMU release and package, machine type, kernel, accelerator) -> what a vCPU of
    # the rendered <cpu> was given there (contract/_observed). Not part of the level, so not of its digest either.
    observed: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    # The store generation that set the level (pin, raise, lower, upgrade, rebuild): what deployed domains are stamped
    # with. A write that only records observations leaves it, so a newly observed stack restamps no domain. None: a
    # contract written before the field, whose level is its store generation's.
    level_generation: int | None = None

    @property
    def arch(self) -> str:
        return self.cpu.arch

    @property
    def vendor(self) -> str | None:
        return self.cpu.vendor

    @property
    def identity(self) -> Mapping[str, Any] | None:
        """aarch64: the host identity the contract pins (its guests get host-passthrough over it); None elsewhere. It is
        part of the level (``cpu.identity``, only when set), so of the digest domains are stamped with."""
        return self.cpu.identity

    @property
    def level(self) -> Level:
        return Level(self.cpu.model, self.cpu.features)

    @property
    def baseline(self) -> Baseline:
        """The pinned level as a CPU definition hosts are compared with."""
        return Baseline(arch=self.cpu.arch, vendor=self.cpu.vendor, accel=None, model=self.cpu.model,
                        features=self.cpu.features, maxphysaddr=self.cpu.phys_bits)

    @classmethod
    def from_dict(cls, doc: Any, where: str) -> Contract:
        if not isinstance(doc, Mapping):
            raise ContractError(f"{where}: not a cpucompat contract (a JSON object is expected)")
        schema = doc.get("schema")
        if schema not in (CONTRACT_SCHEMA, CONTRACT_SCHEMA_1):
            raise ContractError(f"{where}: not a cpucompat contract (schema {schema!r}, expected {CONTRACT_SCHEMA})")
        for key in ("group", "arch", "pinned_at", "history", "cpu" if schema == CONTRACT_SCHEMA else "baseline"):
            if key not in doc:
                raise ContractError(f"{where}: the contract lacks {key!r}")
        if not isinstance(doc["history"], list) or not all(isinstance(h, Mapping) for h in doc["history"]):
            raise ContractError(f"{where}: the contract's history is not a list of entries")
        try:
            cpu = level_of(doc["cpu"] if schema == CONTRACT_SCHEMA else _level_1(doc), f"{where}: cpu")
        except InputError as exc:
            raise ContractError(str(exc)) from None
        if cpu.arch != doc["arch"]:
            raise ContractError(f"{where}: the contract is for {doc['arch']} but its CPU for {cpu.arch}")
        return cls(str(doc["group"]), cpu, str(doc["pinned_at"]), tuple(doc["history"]),
                   None if schema == CONTRACT_SCHEMA else str(schema), _observed_of(doc.get("observed"), where),
                   _generation_of(doc.get("level_generation"), where))

    def to_dict(self) -> dict[str, Any]:
        return {"schema": CONTRACT_SCHEMA, "group": self.group, "arch": self.arch, "vendor": self.vendor,
                "cpu": self.cpu.level(), "pinned_at": self.pinned_at, "history": [dict(h) for h in self.history],
                **({"observed": {k: dict(v) for k, v in sorted(self.observed.items())}} if self.observed else {}),
                **({"level_generation": self.level_generation} if self.level_generation is not None else {})}

    def check_group(self, group: str, hosts: Sequence[HostCpu], where: str) -> None:
        """Refuse a contract of another group, architecture or vendor than the hosts'."""
        if self.group != group:
            raise ContractError(f"{where} is the contract of group {self.group!r}, not of {group!r}")
        for attr, label in (("arch", "architecture"), ("vendor", "CPU vendor")):
            wrong = sorted(h.name for h in hosts if getattr(h, attr) != getattr(self, attr))
            if wrong:
                raise ContractError(f"{where} is for {label} {getattr(self, attr)}; hosts of another {label}: {', '.join(wrong)}")

    @property
    def digest(self) -> str:
        """``sha256:`` of the pinned level's canonical JSON: what a domain stamp names, and what a rebuild checks."""
        return level_digest(self.cpu.level())

    def guest(self, stacks: GuestCpu) -> GuestCpu:
        """The pinned level on the group's stacks of today: what a renderer takes."""
        return stacks.with_level(self.cpu.level(), f"the contract of group {self.group}")


def level_digest(level: Mapping[str, Any]) -> str:
    canonical = json.dumps(level, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return "sha256:" + hashlib.sha256(canonical.encode("ascii")).hexdigest()


def versus(contract: Contract, today: GuestCpu | None, location: str) -> dict[str, Any]:
    """Today's guest CPU against the pinned one: ``equal``, ``above`` (today's hosts could all run more: a raise would
    gain ``gains``), ``below`` (some host lacks ``loses``: the contract refuses it), ``different`` (both), or
    ``unknown`` (no CPU today)."""
    out: dict[str, Any] = {"contract": location, "pinned_at": contract.pinned_at, "model": contract.cpu.model}
    if today is None:
        return {**out, "status": "unknown", "today_model": None, "gains": [], "loses": []}
    now, pinned_set = today.features, contract.cpu.features
    status = ("equal" if now == pinned_set else "above" if now > pinned_set else "below" if now < pinned_set
              else "different")
    return {**out, "status": status, "today_model": today.model, "gains": sorted(now - pinned_set),
            "loses": sorted(pinned_set - now)}


def _generation_of(data: Any, where: str) -> int | None:
    if data is None:
        return None
    if not isinstance(data, int) or isinstance(data, bool) or data < 1:
        raise ContractError(f"{where}: 'level_generation' must be a positive integer, got {data!r}")
    return data


def _observed_of(data: Any, where: str) -> dict[str, dict[str, Any]]:
    """The ``observed`` record: stack key -> an observation with ``cpuid`` (word key -> 32-bit int) and ``hosts``."""
    if data is None:
        return {}
    if not isinstance(data, Mapping):
        raise ContractError(f"{where}: 'observed' must map stacks to observations")
    out = {}
    for key, entry in data.items():
        words = entry.get("cpuid") if isinstance(entry, Mapping) else None
        valid = isinstance(words, Mapping) and all(
            isinstance(k, str) and isinstance(v, int) and not isinstance(v, bool) and 0 <= v < 2 ** 32 for k, v in words.items())
        if not valid:
            raise ContractError(f"{where}: observed[{key!r}] has no valid 'cpuid' (word -> 32-bit integer)")
        out[str(key)] = dict(entry)
    return out


def _level_1(doc: Mapping[str, Any]) -> dict[str, Any]:
    """The level of a ``cpucompat.contract/1`` file: its baseline's features (paravirtual ones were never exact)."""
    base = doc["baseline"]
    if not isinstance(base, Mapping) or not isinstance(base.get("features"), list):
        raise ContractError("the contract's baseline has no feature list")
    return {"arch": doc["arch"], "vendor": doc.get("vendor"), "model": base.get("model"),
            "features": [f for f in base["features"] if isinstance(f, str) and not is_paravirt(f)],
            "machine": None, "phys_bits": base.get("maxphysaddr")}


def now_iso() -> str:
    return datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0).isoformat().replace("+00:00", "Z")


def pinned(group: str, cpu: GuestCpu, hosts: Sequence[str], reason: str, when: str | None = None) -> Contract:
    """A new contract: the group's guest CPU of today, pinned."""
    when = when or now_iso()
    level = level_of(cpu.level(), "the pinned CPU")
    entry = {"at": when, "action": "pin", "from": None, "to": Level(cpu.model, cpu.features).to_dict(), "reason": reason,
             "hosts": list(hosts)}
    return Contract(group, level, when, (entry,))


def changed(old: Contract, action: str, cpu: GuestCpu, reason: str, hosts: list[str], when: str | None = None) -> Contract:
    """The contract after ``action`` (raise, lower or upgrade), its history extended by one entry."""
    when = when or now_iso()
    entry = {"at": when, "action": action, "from": old.level.to_dict(), "to": Level(cpu.model, cpu.features).to_dict(),
             "reason": reason, "hosts": hosts}
    return Contract(old.group, level_of(cpu.level(), "the new CPU"), when if action != "upgrade" else old.pinned_at,
                    (*old.history, entry))


def upgraded(old: Contract, cpu: GuestCpu) -> Contract:
    """A contract read from an older schema, as ``/2``: its level made exact on today's stacks (``cpu``)."""
    lost = sorted(old.cpu.features - cpu.features)
    reason = (f"upgraded from {old.upgraded_from} to {CONTRACT_SCHEMA}"
              + (f"; left out, no guest can get them exactly: {', '.join(lost)}" if lost else ""))
    return changed(replace(old, upgraded_from=None), "upgrade", cpu, reason, [])


def render_text(contract: Contract) -> str:
    return json.dumps(contract.to_dict(), indent=2, sort_keys=True) + "\n"
