# Copyright (c) 2026 cpucompat.cluster contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""When cached facts still stand without asking the host, and what a site run has to do per host. Private.

One rule, read by the ``cpu_probe`` action (its ``max_age`` step) and by the site playbook's once-for-the-group decision
(the ``cpu_run_groups`` filter), so that the two never disagree on which hosts a run probes.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from ._facts import SCHEMA_VERSION

PROBE_DUE = "cpucompat_probe_due"
DEPLOY_HOSTS = "cpucompat_deploy_hosts"
OBSERVE_HOSTS = "cpucompat_observe_hosts"


def fresh_by_age(facts: Any, max_age: int, now: float) -> bool:
    """Cached facts of this schema, probed less than ``max_age`` seconds before ``now`` (and not in the future)."""
    if max_age <= 0 or not isinstance(facts, Mapping) or facts.get("schema_version") != SCHEMA_VERSION:
        return False
    probed_at = (facts.get("probe") or {}).get("probed_at")
    return isinstance(probed_at, (int, float)) and not isinstance(probed_at, bool) and 0 <= now - probed_at < max_age


@dataclass(frozen=True)
class HostSettings:
    """What decides one host's work in a site run: its cached facts and its own settings."""

    name: str
    facts: Any
    max_age: int = 0
    force: bool = False
    deploy: bool = True
    observe: bool = True


def run_groups(hosts: Iterable[HostSettings], now: float) -> list[list[Any]]:
    """``[host, [groups]]`` for each host with work: the probe (facts not fresh by age; the probe role's fingerprint
    step may still keep them), the deploy, and the observation (a host probed now, or one whose facts come from a QEMU
    it started: a QMP socket's QEMU cannot observe a new ``<cpu>``)."""
    out: list[list[Any]] = []
    for host in hosts:
        due = host.force or not fresh_by_age(host.facts, host.max_age, now)
        mode = ((host.facts.get("probe") if isinstance(host.facts, Mapping) else None) or {}).get("mode") or "spawn"
        groups = ([PROBE_DUE] if due else []) + ([DEPLOY_HOSTS] if host.deploy else []) \
            + ([OBSERVE_HOSTS] if host.observe and (due or mode == "spawn") else [])
        if groups:
            out.append([host.name, groups])
    return out
