# Copyright (c) 2026 cpucompat.cluster contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Domain stamps: the contract each deployed domain carries, and what they say about a lost store. Private.

The deploy writes into every domain it puts on a contract CPU the group, the contract's generation, the digest of its
level and the level itself (``deploy/_stamp.py``, its one format). From them a run knows when the store it reads is not the one the
fleet was deployed from - lost (an AWX job's ephemeral folder), moved, or restored from an older copy - and refuses to
pin a new contract over domains that run another; and a lost contract is rebuilt from them.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from .._errors import InputError
from ..cpu._guest import level_of
from ._contract import Contract, ContractError, Level, level_digest, now_iso
from ..deploy._stamp import base_group
from ._domain import Domain
from ._tiers import contract_args
from ._stored import Stored

REBUILD = "ansible-playbook -i <inventory> cpucompat.cluster.rebuild_contract"


@dataclass(frozen=True)
class Stamp:
    """A stamp of a group's contract found on a domain (deploy/_stamp.Stamp, with where it was found)."""

    host: str
    domain: str
    generation: int
    digest: str
    pinned_at: str | None
    level: Mapping[str, Any]


def found(group: str, domains: Sequence[Domain]) -> list[Stamp]:
    """The stamps of ``group`` on the listed domains (other groups' stamps are theirs)."""
    return [Stamp(d.host, d.name, d.stamp.generation, d.stamp.digest, d.stamp.pinned_at, d.stamp.level)
            for d in domains if d.stamp is not None and d.stamp.owner == group]


def rebuild_command(key: str) -> str:
    """The command that rebuilds the contract ``key`` (a group, or a tier's ``group@tier``) from the stamps."""
    return f"{REBUILD} {contract_args(key)}"


def held_elsewhere(group: str, domains: Sequence[Domain], adopt: Sequence[str] = ()) -> list[str]:
    """Why hosts of ``group`` cannot take its contract: their domains carry the stamp of another group's contract (a host
    belongs to one group's contract, whatever the inventory says, and across controllers: the stamps say). ``adopt``:
    hosts the operator moves on purpose."""
    others: dict[tuple[str, str], list[str]] = {}
    for dom in domains:
        # A tier's stamp (group g, tier t: the contract g@t, contract/_tiers) is its group's.
        if dom.stamp is not None and dom.stamp.group not in (None, base_group(group)) and dom.host not in adopt:
            others.setdefault((dom.host, str(dom.stamp.group)), []).append(dom.name)
    return [f"{host} is held by the contract of group {other}: its domains {', '.join(sorted(names)[:5])}"
            f"{' ...' if len(names) > 5 else ''} carry that contract's stamp, and a host belongs to one group's contract "
            f"(group {group} leaves them as they are). To move {host} to group {group} on purpose: take it out of group "
            f"{other} in the inventory, then run ansible-playbook -i <inventory> cpucompat.cluster.site -e cpucompat_group="
            f"{group} -e '{{\"cpucompat_contract_adopt\": [\"{host}\"]}}'"
            for (host, other), names in sorted(others.items())]


def summary(stamps: Sequence[Stamp]) -> dict[str, Any]:
    generations = Counter(s.generation for s in stamps)
    return {"domains": len(stamps), "generations": {str(g): n for g, n in sorted(generations.items())},
            "hosts": sorted({s.host for s in stamps})}


def _hosts(stamps: Sequence[Stamp]) -> str:
    hosts = sorted({s.host for s in stamps})
    return ", ".join(hosts[:5]) + (f" and {len(hosts) - 5} more" if len(hosts) > 5 else "")


def edited(group: str, stored: Stored, stamps: Sequence[Stamp], where: str) -> str | None:
    """Why the store's contract was changed outside the tool: its level no longer matches the digest written beside it,
    or domains deployed from its generation carry another level. None when neither."""
    current = stored.contract
    if current is None:
        return None
    generation = current.level_generation or stored.generation
    same = [s for s in stamps if s.generation == generation]
    if stored.written_digest is not None and stored.written_digest != current.digest:
        why = f"its level no longer matches the digest written with it ({stored.written_digest[:19]}...)"
    elif any(s.digest != current.digest for s in same):
        why = (f"{len([s for s in same if s.digest != current.digest])} of its domains (on {_hosts(same)}) were deployed "
               f"from generation {generation} with another level")
    else:
        return None
    against = ""
    if same:
        stamped = frozenset(same[0].level.get("features") or ())
        added, removed = sorted(current.cpu.features - stamped), sorted(stamped - current.cpu.features)
        against = (" Against the domains' stamps it" + (f" adds {', '.join(added)}" if added else "")
                   + (" and" if added and removed else "") + (f" removes {', '.join(removed)}" if removed else "")
                   + ("" if added or removed else " differs in its model or address bits") + ".")
    return (f"the contract of group {group} ({where}) was changed outside cpucompat.cluster: {why}.{against} Restore it "
            f"from a copy, or rebuild it from the domains' stamps ({rebuild_command(group)}); a contract is changed "
            "with cpucompat.cluster.change_contract (its gates: allow_lower, security)")


def refusal(group: str, stored: Stored, stamps: Sequence[Stamp], where: str, pin: bool) -> str | None:
    """Why the store's contract (or its absence) cannot be trusted, given the stamps; None when it can, or ``pin``."""
    changed_behind = edited(group, stored, stamps, where)
    if changed_behind:
        return changed_behind
    if pin or not stamps:
        return None
    newest = max(s.generation for s in stamps)
    rebuild = rebuild_command(group)
    if stored.contract is None and stored.moved_from is None:
        return (f"group {group} has no contract in the store ({where}), but {len(stamps)} of its domains (on {_hosts(stamps)}) "
                f"carry the stamp of its contract, generation {newest}: the store was lost or this run reads another one. "
                f"Rebuild the contract from the stamps ({rebuild}), point the run at the right store, or pin a new one "
                "anyway with -e cpucompat_contract_pin=true")
    current = stored.contract
    if current is not None and newest > stored.generation:
        newer = [s for s in stamps if s.generation == newest]
        if any(s.digest != current.digest for s in newer):
            return (f"the store holds generation {stored.generation} of group {group}'s contract ({where}), but "
                    f"{len(newer)} of its domains (on {_hosts(newer)}) carry generation {newest}, another level: the store "
                    f"was restored from an older copy or this run reads another one. Rebuild it from the stamps "
                    f"({rebuild}), or keep the store's with -e cpucompat_contract_pin=true (the next deploy stamps the "
                    "domains anew)")
    return None


def rebuilt(group: str, stamps: Sequence[Stamp], stored: Stored, where: str) -> tuple[Contract, int, list[str]]:
    """The contract the newest stamps name, its generation, and notes; refused when the store holds as new a one."""
    if not stamps:
        raise ContractError(f"no domain of group {group} carries a contract stamp: nothing to rebuild from (pin a new "
                            "contract with cpucompat.cluster.site)")
    newest = max(s.generation for s in stamps)
    if stored.contract is not None and stored.generation >= newest:
        raise ContractError(f"the store holds generation {stored.generation} of group {group}'s contract ({where}), as "
                            f"new as the domains' stamps (generation {newest}): nothing to rebuild")
    chosen = [s for s in stamps if s.generation == newest]
    digests = sorted({s.digest for s in chosen})
    if len(digests) > 1:
        raise ContractError(f"the domains of group {group} carry generation {newest} with {len(digests)} different levels "
                            f"({', '.join(digests)}): the stamps disagree, rebuild refused")
    stamp = chosen[0]
    if level_digest(stamp.level) != stamp.digest:
        raise ContractError(f"the stamp of domain {stamp.domain} on {stamp.host} does not match its digest: rebuild refused")
    try:
        cpu = level_of(stamp.level, f"the stamp of domain {stamp.domain} on {stamp.host}")
    except InputError as exc:
        raise ContractError(str(exc)) from None
    when = now_iso()
    notes = [f"rebuilt from the stamps of {len(chosen)} domain(s) on {_hosts(chosen)}, generation {newest}"]
    older = sorted({s.generation for s in stamps if s.generation < newest})
    if older:
        notes.append(f"domains still on older generations ({', '.join(map(str, older))}) get the contract at the next deploy")
    entry = {"at": when, "action": "rebuild", "from": None, "to": Level(cpu.model, cpu.features).to_dict(),
             "reason": notes[0] + "; the history before it was lost with the store", "hosts": sorted({s.host for s in chosen})}
    return Contract(group, cpu, str(stamp.pinned_at or when), (entry,)), newest, notes
