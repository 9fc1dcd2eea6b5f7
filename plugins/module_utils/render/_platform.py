# Copyright (c) 2026 cpucompat.cluster contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""What the platform renderers share: the guest CPUs they take, the names each QEMU of a group knows, the first model
name a platform can say exactly, and the refusals that name why. Private to the collection.

Every platform renderer follows the rule of ``cpu/_exact`` (the libvirt ``<cpu>`` follows it too): a model name, and
every feature on which some stack of the group reads that name differently from the pinned set, named explicitly. What
differs per platform is the vocabulary (QEMU's names or libvirt's), the model names it accepts (Proxmox's list,
KubeVirt's labelled models), and the grammar its names must fit; each renderer adds those as refusals of its own.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace

from .._errors import RenderError
from ..cpu._exact import InexactError, Problem, Solution, name_order, solve
from ..cpu._features import MODEL_VERSION_RE
from ..cpu._guest import GuestCpu, QemuStack, is_paravirt

# A name every platform's grammar accepts: QEMU's -cpu (no ',' or '='), Proxmox's flags, libvirt's XML, label names.
PLAIN_NAME_RE = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9._-]{0,62}[A-Za-z0-9])?$")


@dataclass(frozen=True)
class Refusal(Problem):
    """A platform's own reason why one model name cannot be rendered (its model list, its grammar)."""

    why: str = ""

    def message(self) -> str:
        return self.why


def require_x86(guest: GuestCpu, platform: str) -> None:
    """The platform renderers are implemented for x86_64 guest CPUs with a named model."""
    if guest.arch != "x86_64":
        raise RenderError(f"{platform}: the renderer is implemented for x86_64 guest CPUs; this one is {guest.arch}")
    if guest.model is None:
        raise RenderError(f"{platform}: the guest CPU has no named model; the platform needs one")
    if not guest.qemu:
        raise InexactError(f"{platform}: the guest CPU carries no QEMU stack (render the guest of a baseline, not a "
                           "pinned level alone)")


def require_libvirt(guest: GuestCpu, platform: str) -> None:
    """Platforms that go through libvirt need the libvirt CPU maps of the group."""
    if not guest.libvirt:
        raise InexactError(f"{platform}: no host of the group has a libvirt CPU map in its facts (probe hosts that run "
                           "libvirt, or pass the CPU map of the hosts' libvirt)")


def plain_name(name: str, what: str, platform: str) -> str:
    """``name`` when every platform's grammar accepts it; names come from hosts and are not trusted."""
    if not isinstance(name, str) or not PLAIN_NAME_RE.match(name):
        raise RenderError(f"{platform}: {what} {name!r} is not a name the platform can carry (letters, digits, '.', "
                          "'_' and '-', starting and ending with a letter or digit, at most 64 characters)")
    return name


def qemu_vocabulary(stack: QemuStack, guest: GuestCpu) -> frozenset[str]:
    """The feature names a QEMU of the group is known to have: those its definitions and dependency roots mention, and
    the guest's own features (every host reported them, from its own QEMU)."""
    known: set[str] = set(guest.features)
    for definition in stack.definitions.values():
        known |= definition
    for table in (stack.latent, stack.hidden):
        for roots in table.values():
            for root, feats in roots.items():
                known.add(root)
                known |= feats
    return frozenset(known)


def qemu_name_problems(guest: GuestCpu, names: Iterable[str]) -> list[Problem]:
    """Named features some QEMU of the group may not know: QEMU refuses a ``-cpu`` with a property it lacks."""
    problems: list[Problem] = []
    names = sorted(names)
    for stack in guest.qemu:
        vocab = qemu_vocabulary(stack, guest)
        problems += [Refusal("name", f, stack.label, stack.hosts,
                             f"{stack.label} (hosts {_hosts(stack.hosts)}) may not know feature {f} (none of its "
                             "definitions mentions it), which must be named") for f in names if f not in vocab]
    return problems


def _hosts(hosts: tuple[str, ...]) -> str:
    return ", ".join(hosts[:5]) + (f" and {len(hosts) - 5} more" if len(hosts) > 5 else "") if hosts else "none named"


def same_everywhere(guest: GuestCpu, a: str, b: str) -> bool:
    """Every QEMU of the group defines ``a`` and ``b`` alike (an alias and its target)."""
    return all(q.definitions.get(a) is not None and q.definitions.get(a) == q.definitions.get(b) for q in guest.qemu)


def versioned_first(guest: GuestCpu) -> list[str]:
    """:func:`name_order`, each name preceded by the versioned name every QEMU of the group defines alike (QEMU's
    versioned models never change; an alias follows the machine type)."""
    out: list[str] = []
    for name in name_order(guest):
        if not MODEL_VERSION_RE.search(name):
            out += [v for v in sorted(guest.candidates) if MODEL_VERSION_RE.search(v) and v not in out
                    and same_everywhere(guest, v, name)]
        if name not in out:
            out.append(name)
    return out


def first_exact(guest: GuestCpu, names: Iterable[str], platform: str, *, form: str = "minimal", libvirt: bool = False,
                check: Callable[[str, Solution], list[Problem]] | None = None) -> Solution:
    """The first of ``names`` whose rendering is exact on every stack and that the platform accepts (``check``: the
    platform's own refusals of a name and its solution); :class:`InexactError` naming stacks, hosts and names when none
    is."""
    tried: list[Solution] = []
    for name in names:
        solution = solve(guest, name, form, libvirt)
        if solution.ok and check is not None:
            solution = replace(solution, problems=tuple(check(name, solution)))
        if solution.ok:
            return solution
        tried.append(solution)
    if not tried:
        raise InexactError(f"{platform}: no named CPU model runs on every host of the group")
    shown = "; ".join(s.summary() for s in tried[:3]) + (f" (and {len(tried) - 3} more models)" if len(tried) > 3 else "")
    raise InexactError(f"{platform}: no CPU model renders the guest CPU exactly on every host of the group: {shown}",
                       tried[0].problems)


def also_exact(guest: GuestCpu, name: str, policies: dict[str, bool], libvirt: bool) -> bool:
    """``name`` with these explicit features (found for another name) means exactly the guest's set on every stack too:
    its own rendering names nothing these do not, and every QEMU of the group gives exactly the set."""
    own = solve(guest, name, "minimal", libvirt)
    if not own.ok or not set(own.policies) <= set(policies):
        return False
    for stack in guest.qemu:
        view = stack.view(name, policies)
        if view is None or {f for f in view if not is_paravirt(f)} != set(guest.features):
            return False
    return True


def qemu_solution(guest: GuestCpu, names: Iterable[str], platform: str, form: str = "minimal",
                  check: Callable[[str, Solution], list[Problem]] | None = None) -> Solution:
    """:func:`first_exact` for platforms that hand QEMU its own names (no libvirt reads them): every name fits every
    platform's grammar, and every named feature is one every QEMU of the group knows (QEMU refuses an unknown property)."""
    def refusals(model: str, solution: Solution) -> list[Problem]:
        plain_name(model, "model", platform)
        for name in solution.policies:
            plain_name(name, "feature", platform)
        return [*(check(model, solution) if check else ()), *qemu_name_problems(guest, solution.policies)]
    return first_exact(guest, names, platform, form=form, libvirt=False, check=refusals)
