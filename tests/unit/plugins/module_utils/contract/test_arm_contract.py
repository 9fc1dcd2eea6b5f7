# Copyright (c) 2026 cpucompat.cluster contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""An aarch64 group of identical hosts through the contract: pinned over its identity, admitted or refused by field (with
quarantine), rendered for every platform as host-passthrough "for identical hosts only", its domains judged by the
compliance rule, the migration matrix and the pre-migration gate. Hosts: recorded trees served beside a QMP recording."""

from __future__ import annotations

import json

from ansible_collections.cpucompat.cluster.plugins.module_utils.contract import _admission
from ansible_collections.cpucompat.cluster.plugins.module_utils.contract._change import ChangeRequest, plan_change
from ansible_collections.cpucompat.cluster.plugins.module_utils.contract._contract import Contract, render_text
from ansible_collections.cpucompat.cluster.plugins.module_utils.contract._planning_checks import migration_against
from ansible_collections.cpucompat.cluster.plugins.module_utils.cpu._libvirt_map import MapRegistry
from ansible_collections.cpucompat.cluster.plugins.module_utils.cpu._guest import identity_label as label
from ansible_collections.cpucompat.cluster.plugins.module_utils.engine._arm_identity import identity_of
from ansible_collections.cpucompat.cluster.plugins.module_utils.engine._baseline import BaselineOptions, baseline_of
from ansible_collections.cpucompat.cluster.plugins.module_utils.engine._group import group_facts
from ansible_collections.cpucompat.cluster.plugins.module_utils.engine._hostcpu import host_cpus
from ansible_collections.cpucompat.cluster.plugins.module_utils.render import _qemu
from ansible_collections.cpucompat.cluster.plugins.module_utils.render._platforms import PLATFORMS, render_platforms
from ansible_collections.cpucompat.cluster.plugins.module_utils.reports._planning import migration_matrix, plan_expansion
from ansible_collections.cpucompat.cluster.plugins.module_utils.contract._domain import domains_of
from utils.arm_hosts import facts

OPTS, REGISTRY = BaselineOptions(), MapRegistry()
N1 = ["neoverse-n1-altra-a", "neoverse-n1-altra-b"]
PASSTHROUGH = "<cpu mode='host-passthrough' check='none'/>"


def _run(names: list[str], contract: Contract | None = None, on_refusal: str = "fail") -> _admission.GroupRun:
    return _admission.group_contract("arm", group_facts({n: facts(n) for n in names}), contract, "c", OPTS, REGISTRY,
                                     domains_of({names[0]: [{"name": "vm1", "cpu_xml": PASSTHROUGH, "active": False}]}),
                                     on_refusal=on_refusal)


def _pinned() -> Contract:
    run = _run(N1)
    assert run.to_write is not None and run.section["pinned_now"] and not run.section["reasons"], run.section["reasons"]
    return Contract.from_dict(json.loads(render_text(run.to_write)), "contract c")


def test_a_group_of_identical_n1_hosts_pins_its_identity_and_admits_them() -> None:
    contract = _pinned()
    assert contract.identity == identity_of(facts(N1[0]), "h") and contract.cpu.model is None
    assert json.loads(render_text(contract))["cpu"]["identity"]["midr"] == ["0x413fd0c1"]
    run = _run(N1, contract)
    assert run.section["admission"]["ok"] and run.section["admitted"] == N1 and not run.section["reasons"]
    assert run.section["xml"].startswith(PASSTHROUGH[:-2] + ">") and "identical hosts only" in run.section["xml"]
    assert run.section["qemu_args"] == "host"
    assert run.section["domains"]["neoverse-n1-altra-a/vm1"]["status"] == "compliant"


def test_a_thunderx2_is_refused_naming_the_midr_part_and_quarantined_on_request() -> None:
    contract = _pinned()
    run = _run([*N1, "thunderx2"], contract)
    refused = run.section["admission"]["refused"]
    assert [r["host"] for r in refused] == ["thunderx2"] and run.to_write is None
    assert [d["what"] for d in refused[0]["identity_differs"]][0] == "MIDR part"
    assert any("thunderx2 is not identical" in r and "MIDR part [0x431f0af1] instead of [0x413fd0c1]" in r
               for r in run.section["reasons"])
    assert refused[0]["diagnosis"]["likely"].startswith("not identical to the group's hosts: MIDR part")
    assert not any("change_contract" in c for c in refused[0]["diagnosis"]["commands"])  # no lower makes it identical
    run = _run([*N1, "thunderx2"], contract, on_refusal="exclude")
    assert list(run.section["quarantined"]) == ["thunderx2"] and not run.section["reasons"] and run.section["admitted"] == N1


def test_a_host_with_another_kernel_is_refused_naming_the_kernel() -> None:
    contract = _pinned()
    refusals = _admission.admission(contract, host_cpus({n: facts(n) for n in [*N1, "neoverse-n1-altra-kernel-6.16"]}))
    assert [(r.host, [d.what for d in r.identity]) for r in refusals] == [("neoverse-n1-altra-kernel-6.16", ["kernel"])]
    assert "cpreg_vmstate_array_len" in refusals[0].reason(contract)


def test_a_mixed_group_has_nothing_to_pin_and_says_why() -> None:
    run = _run([*N1, "neoverse-v2-grace"])
    assert run.to_write is None
    assert any("neoverse-v2-grace: MIDR part" in r and "page size" in r for r in run.section["reasons"])


def test_every_platform_renders_host_passthrough_for_identical_hosts_only() -> None:
    guest = baseline_of({n: facts(n) for n in N1}).guest
    out = render_platforms(guest, PLATFORMS)
    assert all(v["ok"] for v in out.values()), out
    assert all("identical hosts only" in v["rendering"]["identical_hosts_only"] for v in out.values())
    assert out["qemu"]["rendering"]["args"] == "host" and _qemu.render(guest).args == "host"
    assert out["proxmox"]["rendering"]["vm_cpu"] == "host"
    assert out["nova"]["rendering"]["ini"] == "[libvirt]\ncpu_mode = host-passthrough\n"
    kubevirt = out["kubevirt"]["rendering"]
    assert kubevirt["vm_cpu"] == {"model": "host-passthrough"}
    assert kubevirt["node_selector"] == {"cpucompat.io/arm-identity": label(guest.identity)}
    assert "mode='host-passthrough'" in out["libvirt"]["rendering"]["xml"] and "migratable" not in out["libvirt"]["rendering"]["xml"]
    assert out["incus"]["rendering"]["keys"] == {}


def test_the_matrix_and_the_gate_allow_moves_only_between_hosts_of_one_identity() -> None:
    names = [*N1, "thunderx2", "neoverse-n1-altra-kernel-6.16"]
    targets = {n: facts(n) for n in names}
    domains = {N1[0]: [{"name": "vm1", "cpu_xml": PASSTHROUGH, "active": True, "live_cpu_xml": PASSTHROUGH}]}
    matrix = migration_matrix(domains, targets, REGISTRY, requested=[{"domain": f"{N1[0]}/vm1", "target": "thunderx2"},
                                                                     {"domain": f"{N1[0]}/vm1", "target": N1[1]}])
    row = matrix["matrix"][f"{N1[0]}/vm1"]
    assert row[N1[1]]["ok"] is True and row[N1[0]]["own_host"]
    assert row["thunderx2"]["ok"] is False and row["thunderx2"]["blocking"][0] == "MIDR part"
    assert row["neoverse-n1-altra-kernel-6.16"]["blocking"] == ["kernel"]
    assert matrix["verdict"] == {"ok": False, "reasons": [
        f"{N1[0]}/vm1 -> thunderx2: target is not identical to the source host (host-passthrough), it differs in "
        "MIDR part, ID registers (Features), firmware"]}
    contract = _pinned()
    gate = migration_against(contract, baseline_of({n: facts(n) for n in N1}).stacks, domains_of(domains), {})
    assert gate["domains"][f"{N1[0]}/vm1"]["status"] == "compliant"


def test_a_group_whose_hosts_all_changed_alike_raises_to_its_identity_of_today() -> None:
    """A kernel upgrade of the whole group: every host is refused until the contract is raised to the new identity."""
    contract = _pinned()
    upgraded = group_facts({"neoverse-n1-altra-kernel-6.16": facts("neoverse-n1-altra-kernel-6.16")})
    assert [r.host for r in _admission.admission(contract, upgraded.hosts())] == ["neoverse-n1-altra-kernel-6.16"]
    run = plan_change("arm", upgraded, contract, "c", ChangeRequest("raise"), OPTS, REGISTRY, {})
    assert run.section["applicable"] and [d["what"] for d in run.section["identity_change"]] == ["kernel"]
    assert run.to_write is not None and run.to_write.identity["kernel"] == "6.16.3+deb14-arm64"
    assert "kernel 6.12.48+deb13-arm64 -> 6.16.3+deb14-arm64" in run.to_write.history[-1]["reason"]
    assert _admission.admission(run.to_write, upgraded.hosts()) == []
    lower = plan_change("arm", upgraded, contract, "c", ChangeRequest("lower"), OPTS, REGISTRY, {})
    assert not lower.section["applicable"]


def test_the_expansion_plan_refuses_a_candidate_that_is_not_identical() -> None:
    current = host_cpus({n: facts(n) for n in N1})
    candidates = host_cpus({n: facts(n) for n in ("thunderx2", "neoverse-n1-altra-kernel-6.16")})
    plan = plan_expansion(current, candidates, {N1[0]: [{"name": "vm1", "cpu_xml": PASSTHROUGH}]}, OPTS, REGISTRY)
    assert plan["candidates"]["thunderx2"]["missing_features"][0] == "MIDR part"
    assert plan["candidates"]["neoverse-n1-altra-kernel-6.16"]["missing_features"] == ["kernel"]
    assert not plan["verdict"]["ok"] and "thunderx2 cannot run the current baseline (lacks MIDR part" in plan["verdict"]["reasons"][1]
    assert "identical to the group's hosts" in plan["domains_unjudged"]
