# Copyright (c) 2026 cpucompat.cluster contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Tiers end to end: a two-tier group of this machine and replayed hosts pins two levels, the site deploys each of two
real libvirt domains its tier's CPU, and the pre-migration gate blocks a move from the high tier to a base-only host."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import yaml

from ansible_collections.cpucompat.cluster.plugins.module_utils.contract import _observed
from ansible_collections.cpucompat.cluster.plugins.module_utils.deploy._stamp import manager
from ansible_collections.cpucompat.cluster.plugins.module_utils.probe import _fingerprint
from ansible_collections.cpucompat.cluster.plugins.module_utils.render._cpuspec import CpuSpec
from integration.helpers import ROOT, run_playbook
from integration.libvirt_helpers import cpu_element, define, ensure_libvirtd, remove, virsh
from utils.source_tree import SOURCE_COLLECTIONS

pytestmark = [pytest.mark.usefixtures("no_leftover_qemu"),
              pytest.mark.skipif(not _fingerprint.kvm_usable(), reason="recorded hosts are KVM probes; this machine needs KVM")]
AMD = "AuthenticAMD" in open("/proc/cpuinfo", encoding="utf-8").read()
# The high tier: this machine and a recorded host of its vendor; the base adds an older recorded host.
HIGH, LOW = ("x86_64-epyc-9654-qemu-10.0.0", "x86_64-epyc-7601-ibpb") if AMD else ("x86_64-xeon-gold-6130", "x86_64-xeon-e5-2650")
TIER_MARK = """<metadata>
    <cpucompat:cpu xmlns:cpucompat="https://github.com/cpucompat/cluster/xmlns/1" tier="high"/>
  </metadata>"""
OLD_CPU = "<cpu mode='custom' match='exact' check='none'><model fallback='forbid'>486</model></cpu>"


@pytest.fixture
def domains(tmp_path):
    ensure_libvirtd()
    names = {"high": define(tmp_path, cpu=OLD_CPU, prefix="cpucompat-tier-high", metadata=TIER_MARK),
             "base": define(tmp_path, cpu=OLD_CPU, prefix="cpucompat-tier-base")}
    yield names
    for name in names.values():
        remove(name)


def _inventory(tmp_path, replay, names: list[str]) -> str:
    local = {"ansible_connection": "local", "ansible_python_interpreter": sys.executable}
    hosts = {"this-machine": {**local, "cpucompat_domains": {"names": names}},
             "rec-high": {**local, "cpucompat_probe_qmp_socket": replay(HIGH).path, "cpucompat_deploy_enabled": False,
                          "cpucompat_migration_libvirt": False},
             "rec-low": {**local, "cpucompat_probe_qmp_socket": replay(LOW).path, "cpucompat_deploy_enabled": False,
                         "cpucompat_migration_libvirt": False}}
    inv = {"all": {"children": {
        "hypervisors": {"hosts": hosts, "vars": {"cpucompat_tiers": {"base": "auto", "high": {"hosts": "high_hosts"}}}},
        "high_hosts": {"hosts": {"this-machine": {}, "rec-high": {}}}}}}
    path = tmp_path / "inventory.yml"
    path.write_text(yaml.safe_dump(inv))
    return str(path)


def _cpu_of(name: str) -> tuple[str, dict]:
    xml = virsh("dumpxml", "--inactive", name, check=True).stdout
    return cpu_element(xml), manager(xml)


def test_two_tiers_pin_two_levels_deploy_each_domain_its_tier_and_keep_moves_in_the_tier(tmp_path, replay, domains) -> None:
    inv = _inventory(tmp_path, replay, list(domains.values()))
    reports = tmp_path / "reports"
    site = run_playbook("cpucompat.cluster.site", tmp_path, inventory=inv, extra={"cpucompat_report_dir": str(reports)})
    assert site.returncode == 0, site.stdout[-5000:]

    report = json.loads((reports / "contract.json").read_text())
    base, high = report["groups"]["hypervisors"], report["groups"]["hypervisors@high"]
    assert base["admitted"] == ["rec-high", "rec-low", "this-machine"] and high["admitted"] == ["rec-high", "this-machine"]
    assert set(base["features"]) < set(high["features"]), "two levels: the high tier runs more than the base"
    store = tmp_path / "data" / "cpucompat" / "contracts"
    assert json.loads((store / "hypervisors.json").read_text())["cpu"]["features"] == base["features"]
    assert json.loads((store / "hypervisors@high.json").read_text())["cpu"]["features"] == high["features"]

    # Each tier observed as the group is: this machine started the tier's <cpu> through its libvirt and read back the
    # vCPU's CPUID; the tier's contract records that stack (with its first pin: generation 1), the replayed hosts have
    # no QEMU of their own to start. The host keeps both observations, the group's and the tier's, side by side.
    tier_doc = json.loads((store / "hypervisors@high.json").read_text())
    assert tier_doc["generation"] == 1 and [h["action"] for h in tier_doc["history"]] == ["pin"]
    (stack, record), = tier_doc["observed"].items()
    assert record["hosts"] == ["this-machine"] and record["cpuid"], tier_doc["observed"]
    assert high["observation"]["recorded"] == [stack] and high["observation"]["stacks"][stack]["hosts"] == ["this-machine"]
    assert set(high["observation"]["not_observed"]) == {"rec-high"}, high["observation"]
    base_doc = json.loads((store / "hypervisors.json").read_text())
    assert [v["hosts"] for v in base_doc["observed"].values()] == [["this-machine"]]
    assert record["cpuid"] != next(iter(base_doc["observed"].values()))["cpuid"], "the tier's vCPU is not the base's"
    cached = json.loads(json.loads((tmp_path / "facts" / "s1_this-machine").read_text())["__payload__"])  # ansible-core 2.19's entry
    assert cached["cpucompat_observation"]["cpu_digest"] == _observed.cpu_digest(base["xml"]), "the group's kept"
    assert cached["cpucompat_observations"]["hypervisors@high"]["cpu_digest"] == _observed.cpu_digest(high["xml"])

    # Each domain got its tier's CPU, and its tier's stamp; the libvirt here took both definitions, and runs them.
    high_cpu, high_meta = _cpu_of(domains["high"])
    base_cpu, base_meta = _cpu_of(domains["base"])
    assert CpuSpec.parse(high_cpu).key() == CpuSpec.parse(high["xml"]).key()
    assert CpuSpec.parse(base_cpu).key() == CpuSpec.parse(base["xml"]).key()
    assert high_meta["stamp"]["group"] == "hypervisors" and high_meta["stamp"]["tier"] == "high" and high_meta["tier"] == "high"
    assert "tier" not in base_meta["stamp"] and base_meta["stamp"]["group"] == "hypervisors"
    assert high_meta["stamp"]["digest"] != base_meta["stamp"]["digest"]
    assert set(high["domains"]) == {f"this-machine/{domains['high']}"} and set(base["domains"]) == {f"this-machine/{domains['base']}"}
    assert all(d["status"] == "compliant" for s in (base, high) for d in s["domains"].values()), (base["domains"], high["domains"])
    for name in domains.values():
        started = virsh("start", "--paused", name)
        assert started.returncode == 0, started.stderr
        virsh("destroy", name)

    # cpu_groups: an inventory group per tier, from the cached facts and the two contracts.
    config = tmp_path / "cpu_groups.yml"
    config.write_text(yaml.safe_dump({"plugin": "cpucompat.cluster.cpu_groups", "models": False,
                                      "contract_groups": ["hypervisors"], "contract_store": {"path": str(store)}}))
    env = {**os.environ, "ANSIBLE_CONFIG": os.path.join(ROOT, "ansible.cfg"), "ANSIBLE_COLLECTIONS_PATH": SOURCE_COLLECTIONS,
           "ANSIBLE_CACHE_PLUGIN_CONNECTION": str(tmp_path / "facts"), "ANSIBLE_INVENTORY_ENABLED": "yaml,cpucompat.cluster.cpu_groups"}
    listed = subprocess.run([os.path.join(os.path.dirname(sys.executable), "ansible-inventory"), "-i", inv, "-i", str(config),
                             "--list"], capture_output=True, text=True, env=env, check=False)
    assert listed.returncode == 0, listed.stderr
    groups = {name: set(data.get("hosts", [])) for name, data in json.loads(listed.stdout).items() if isinstance(data, dict)}
    assert groups["cpu_tier_hypervisors_high"] == {"this-machine", "rec-high"}
    assert groups["cpu_tier_hypervisors_base"] == {"this-machine", "rec-high", "rec-low"}
    assert not any(g.startswith("cpu_quarantine") for g in groups)

    again = run_playbook("cpucompat.cluster.site", tmp_path, inventory=inv, extra={"cpucompat_report_dir": str(reports)})
    assert again.returncode == 0 and f"ok: [this-machine] => (item={domains['high']})" in again.stdout, again.stdout[-3000:]
    assert json.loads((store / "hypervisors@high.json").read_text())["generation"] == 1, "the tier is frozen"
    # A warm run observes nothing again (the tier's cached observation is of the same <cpu> on the same stack: the
    # very same record, made by the first run) and still admits the tier's hosts by it.
    tier_task = again.stdout.split("Observe each tier's contract CPU", 1)[1].split("\n\n", 1)[0]
    assert "skipping: [this-machine]" in tier_task, tier_task
    warm_fact = json.loads(json.loads((tmp_path / "facts" / "s1_this-machine").read_text())["__payload__"])
    assert warm_fact["cpucompat_observations"] == cached["cpucompat_observations"]
    assert warm_fact["cpucompat_observation"] == cached["cpucompat_observation"]
    warm = json.loads((reports / "contract.json").read_text())["groups"]["hypervisors@high"]["observation"]
    assert warm["stacks"][stack]["hosts"] == ["this-machine"] and not warm["refused"] and not warm["recorded"], warm

    # The gate: the high tier's domain may not move to the base-only host, the base domain may.
    def gate(moves: str):
        return run_playbook("cpucompat.cluster.premigration_check", tmp_path, inventory=inv,
                            extra={"cpucompat_migrate": moves, "cpucompat_report_dir": str(reports)})

    blocked = gate(f"{domains['high']}:rec-low")
    text = " ".join(blocked.stdout.split())
    assert blocked.returncode != 0
    assert (f"this-machine/{domains['high']} -> rec-low: rec-low is not a host of tier high of group hypervisors "
            "(its hosts: rec-high, this-machine)") in text, text[-3000:]
    allowed = gate(f"{domains['high']}:rec-high,{domains['base']}:rec-low")
    assert allowed.returncode == 0, allowed.stdout[-4000:]
    matrix = json.loads((reports / "migration.json").read_text())["matrix"]
    assert matrix[f"this-machine/{domains['high']}"]["rec-high"]["ok"] is True

    # Lower the high tier alone (to the base's model): its contract and its domain change, the base's stay.
    lowered = run_playbook("cpucompat.cluster.change_contract", tmp_path, inventory=inv,
                           extra={"cpucompat_group": "hypervisors", "cpucompat_contract_tier": "high",
                                  "cpucompat_contract_action": "lower", "cpucompat_contract_level": base["model"],
                                  "cpucompat_contract_allow_lower": True, "cpucompat_contract_allow_security_loss": True,
                                  "cpucompat_report_dir": str(reports)})
    assert lowered.returncode == 0, lowered.stdout[-4000:]
    plan = json.loads((reports / "plan.json").read_text())
    assert plan["tier"] == "high" and plan["applied"] and plan["tier_hosts"] == ["rec-high", "this-machine"]
    tier_doc = json.loads((store / "hypervisors@high.json").read_text())
    assert tier_doc["generation"] == 2 and [h["action"] for h in tier_doc["history"]] == ["pin", "lower"]
    assert json.loads((store / "hypervisors.json").read_text())["cpu"]["features"] == base["features"]
    assert CpuSpec.parse(_cpu_of(domains["high"])[0]).key() == CpuSpec.parse(plan["xml"]).key()
    assert _cpu_of(domains["high"])[1]["stamp"]["generation"] == 2 and _cpu_of(domains["high"])[1]["stamp"]["tier"] == "high"
    assert _cpu_of(domains["base"]) == (base_cpu, base_meta), "the base tier's domain is left as it was"


def test_a_domain_on_a_host_outside_its_tier_is_named_and_left_as_it_is(tmp_path, replay, domains) -> None:
    """this-machine is not a host of the tier it chooses: the site stops, naming the domain; nothing is lowered."""
    inv = _inventory(tmp_path, replay, list(domains.values()))
    data = yaml.safe_load(open(inv, encoding="utf-8"))
    data["all"]["children"]["high_hosts"]["hosts"] = {"rec-high": {}}
    with open(inv, "w", encoding="utf-8") as fh:
        yaml.safe_dump(data, fh)
    before = {n: virsh("dumpxml", "--inactive", n, check=True).stdout for n in domains.values()}
    site = run_playbook("cpucompat.cluster.site", tmp_path, inventory=inv, extra={"cpucompat_report_dir": str(tmp_path / "r")})
    text = " ".join(site.stdout.split())
    assert site.returncode != 0
    assert (f"domain {domains['high']} on this-machine is in tier high of group hypervisors, but this-machine is not a host "
            "of that tier (its hosts: rec-high)") in text, text[-3000:]
    assert {n: virsh("dumpxml", "--inactive", n, check=True).stdout for n in domains.values()} == before
    assert not (tmp_path / "data" / "cpucompat" / "contracts" / "hypervisors@high.json").exists(), "nothing written"
