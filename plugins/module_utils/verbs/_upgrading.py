# Copyright (c) 2026 cpucompat.cluster contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The ``upgrade`` verb: the contract said on a QEMU or libvirt about to be installed, and observed on a canary. Private."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..contract import _observed
from ..contract._domain import domains_of
from ..reports._upgrade import upgrade_group, upgrade_report
from ._common import Common, Outcome, Reader, stored_contract


def upgrade(common: Common, reader: Reader, groups: Mapping[str, list[str]], new_stack: list[str], domains_var: str | None,
            stack_file: str | None, observations: Mapping[str, Any] | None = None) -> Outcome:
    """Before a QEMU or libvirt upgrade: each group's CPU and domains on the new stack (the hosts ``new_stack``: a
    canary already upgraded, or the new QEMU and map probed as a host of their own). ``observations``: canary ->
    its observation of the group's ``<cpu>`` (``observe`` of an earlier call says which), judged against the words the
    contract records."""
    new = reader.group(new_stack)
    sections = {}
    observe: dict[str, Any] = {}
    for name, hosts in groups.items():
        _path, current = stored_contract(common, name)
        members = [h for h in hosts if h not in new_stack]
        section = sections[name] = upgrade_group(name, reader.group(members), new, current, common.policy, common.registry,
                                                 domains_of(reader.domains(members, domains_var)), common.form, stack_file)
        observe[name] = section.get("xml_both") or section.get("xml_now")
        if observations is not None and observe[name]:
            _observed_canaries(name, section, current, observations, new_stack, observe[name])
    return Outcome(upgrade_report(sections, stack_file), extra={"new_stack": dict(new.usable), "observe": observe})


def _observed_canaries(name: str, section: dict[str, Any], current: Any, observations: Mapping[str, Any],
                       canaries: list[str], xml: str) -> None:
    """The canaries' observation of the group's <cpu> against the words the contract records for the group."""
    if current is None or not current.observed:
        section["observation"] = {"skipped": f"the contract of group {name} records no observation yet (run the site "
                                             "playbook once before the upgrade)"}
        return
    judged = {h: (_observed.Observation.from_fact(h, o) if isinstance(o, Mapping) else str(o)) for h, o in observations.items()}
    result = _observed.check(current.observed, judged, canaries, {_observed.cpu_digest(xml)})
    section["observation"] = result.to_dict()
    section["reasons"] += [_observed.refusal_reason(e, name) + " - the upgrade changes what guests get"
                           for e in result.refused]
