# Copyright (c) 2026 cpucompat.cluster contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The cluster CPU contract's life cycle on this machine's real libvirtd, with replayed recorded hosts of its vendor.

pin -> a weaker host is refused (nothing changes) -> lower planned in check mode -> lower applied (domains carry it,
start paused with check='full', a guest survives save/restore) -> a second run changes nothing -> without the weak
host the report says the group could raise.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import yaml

from ansible_collections.cpucompat.cluster.plugins.module_utils.probe import _fingerprint, _probe
from ansible_collections.cpucompat.cluster.plugins.module_utils.engine import _level
from ansible_collections.cpucompat.cluster.plugins.module_utils.engine._baseline import baseline_of
from ansible_collections.cpucompat.cluster.plugins.module_utils.render._cpuspec import CpuSpec
from ansible_collections.cpucompat.cluster.plugins.module_utils.deploy._domain import domain_cpu
from utils.source_tree import SOURCE_COLLECTIONS
from integration.helpers import ROOT, contract_file, run_playbook
from integration.libvirt_helpers import cpu_element, define, ensure_libvirtd, remove, virsh
from utils.engine import compare
from utils.recordings import facts_of

pytestmark = [pytest.mark.usefixtures("no_leftover_qemu"),
              pytest.mark.skipif(not _fingerprint.kvm_usable(), reason="recorded hosts are KVM probes; this machine needs KVM to join them")]
VENDOR = "AuthenticAMD" if "AuthenticAMD" in open("/proc/cpuinfo", encoding="utf-8").read() else "GenuineIntel"
STRONG = ["x86_64-epyc-7502", "x86_64-epyc-9654-qemu-10.0.0"] if VENDOR == "AuthenticAMD" else ["x86_64-xeon-gold-6130", "x86_64-xeon-platinum-9242"]
OLDER = (["x86_64-epyc-7601-ibpb", "x86_64-ryzen-7-1800x", "x86_64-opteron-6234"] if VENDOR == "AuthenticAMD"
         else ["x86_64-xeon-e5-2650-v4", "x86_64-xeon-e5-2650", "x86_64-xeon-e7540"])
SITE = open(os.path.join(ROOT, "playbooks", "site.yml"), encoding="utf-8").read()
CHANGE = open(os.path.join(ROOT, "playbooks", "change_contract.yml"), encoding="utf-8").read()
LOCAL = {"ansible_connection": "local", "ansible_python_interpreter": sys.executable}


@pytest.fixture(scope="module")
def cast() -> dict:
    """Who is strong and who is weak here: this machine's KVM may expose less than any recorded host (nested KVM).

    Case "machine-weak": the contract is pinned on recorded hosts, and this machine is the host that cannot run it.
    Case "recording-weak": the contract is pinned with this machine in the group, and an older recording cannot run it.
    """
    me = _probe.probe(_probe.ProbeRequest(machine="q35"))
    strong = {f"rec-{n}": facts_of(n) for n in STRONG}
    pinned_alone = baseline_of(strong).to_dict()
    if not compare(pinned_alone, "this-machine", me)["runnable"]:
        return {"case": "machine-weak", "first": list(strong), "weak": "this-machine", "me": me}
    pinned_with_me = baseline_of({**strong, "this-machine": me}).to_dict()
    for name in OLDER:
        if not compare(pinned_with_me, name, facts_of(name))["runnable"]:
            return {"case": "recording-weak", "first": [*strong, "this-machine"], "weak": f"rec-{name}", "me": me}
    pytest.skip("no recorded host of this vendor is weaker than this machine's KVM and the recorded group")


@pytest.fixture
def domains(tmp_path):
    ensure_libvirtd()
    names = {"stopped": define(tmp_path, cpu="<cpu mode='custom' match='exact' check='none'><model fallback='forbid'>486</model></cpu>",
                               prefix="cpucompat-contract-stopped"),
             "running": define(tmp_path, cpu="<cpu mode='custom' match='exact' check='none'><model fallback='forbid'>486</model></cpu>",
                               prefix="cpucompat-contract-running")}
    yield names
    for name in names.values():
        remove(name)
    for leftover in tmp_path.glob("*.save"):
        leftover.unlink()


def _inventory(tmp_path, replay, members: list[str], domains: dict) -> str:
    hosts: dict = {}
    for member in members:
        if member == "this-machine":
            hosts[member] = {**LOCAL, "cpucompat_domains": {"names": sorted(domains.values())}}
        else:
            hosts[member] = {**LOCAL, "cpucompat_probe_qmp_socket": replay(member[len("rec-"):]).path, "cpucompat_deploy_enabled": False}
    path = tmp_path / "inventory.yml"
    path.write_text(yaml.safe_dump({"hypervisors": {"hosts": hosts}}))
    return str(path)


def _run(tmp_path, play: str, inv: str, check: bool = False, **extra):
    return run_playbook(play, tmp_path, inventory=inv, check=check, diff=True,
                        extra={"cpucompat_report_dir": str(tmp_path / "reports"), **extra})


def _report(tmp_path, kind: str) -> dict:
    return json.loads((tmp_path / "reports" / f"{kind}.json").read_text())


def _definitions(domains: dict) -> dict[str, str]:
    return {n: virsh("dumpxml", "--inactive", n, check=True).stdout for n in domains.values()}


def _start_paused(name: str) -> None:
    started = virsh("start", "--paused", name)
    assert started.returncode == 0, f"{name} does not start on its CPU: {started.stderr}"


def test_contract_life_cycle(tmp_path, replay, cast, domains) -> None:  # pylint: disable=too-many-locals,too-many-statements
    stored = contract_file(tmp_path)
    everyone = sorted({*cast["first"], cast["weak"], "this-machine"})

    # 1. pin: the first run writes the contract (and deploys it where this machine is in the group)
    proc = _run(tmp_path, SITE, _inventory(tmp_path, replay, cast["first"], domains))
    assert proc.returncode == 0, proc.stdout[-4000:]
    pinned = json.loads(stored.read_text())
    assert pinned["schema"] == "cpucompat.contract/2" and pinned["group"] == "hypervisors" and "xml" not in pinned
    assert [h["action"] for h in pinned["history"]] == ["pin"]
    assert _report(tmp_path, "contract")["groups"]["hypervisors"]["pinned_at"] == pinned["pinned_at"] == pinned["history"][0]["at"]

    # 2. a weaker host joins: refused by name with the features it lacks; no file, no domain changed
    _start_paused(domains["running"])
    before_domains, before_contract = _definitions(domains), stored.read_text()
    inv = _inventory(tmp_path, replay, everyone, domains)
    proc = _run(tmp_path, SITE, inv)
    assert proc.returncode != 0
    assert f"{cast['weak']} cannot run the contract CPU of group hypervisors (lacks" in proc.stdout
    section = _report(tmp_path, "contract")["groups"]["hypervisors"]
    refused = section["admission"]["refused"]
    assert [r["host"] for r in refused] == [cast["weak"]] and refused[0]["missing_features"]
    assert section["admission"]["lower_contract"]["direction"] == "lower"
    assert stored.read_text() == before_contract and _definitions(domains) == before_domains

    # 3. lower, planned in check mode: this machine's domains listed, the running one must restart; nothing changes
    proc = _run(tmp_path, CHANGE, inv, check=True, cpucompat_contract_action="lower", cpucompat_contract_allow_lower=True,
                cpucompat_contract_allow_security_loss=True)
    assert proc.returncode == 0, proc.stdout[-4000:]
    plan = _report(tmp_path, "plan")
    assert plan["applied"] is False and plan["check_mode"] is True and plan["change"]["direction"] == "lower"
    assert plan["domains"][f"this-machine/{domains['running']}"]["restart_required"] is True
    assert plan["domains"][f"this-machine/{domains['stopped']}"]["restart_required"] is False
    assert stored.read_text() == before_contract and _definitions(domains) == before_domains

    # 4. lower, applied: the contract gains a history entry, the domains carry it and start with check='full'
    proc = _run(tmp_path, CHANGE, inv, cpucompat_contract_action="lower", cpucompat_contract_allow_lower=True,
                cpucompat_contract_allow_security_loss=True)
    assert proc.returncode == 0, proc.stdout[-4000:]
    lowered = json.loads(stored.read_text())
    assert [h["action"] for h in lowered["history"]] == ["pin", "lower"] and cast["weak"] in lowered["history"][1]["hosts"]
    xml = _report(tmp_path, "plan")["xml"]
    want = CpuSpec.parse(xml).key()
    for name in domains.values():
        assert domain_cpu(virsh("dumpxml", "--inactive", name, check=True).stdout, name).key() == want, name
    assert "check='full'" in xml
    virsh("destroy", domains["running"])
    for name in domains.values():
        _start_paused(name)
    # the migration stream: a guest on the contract CPU is saved and restored (a migration blocker would fail here)
    saved = tmp_path / "guest.save"
    assert virsh("save", domains["running"], str(saved)).returncode == 0
    restored = virsh("restore", str(saved), "--paused")
    assert restored.returncode == 0, restored.stderr

    # 5. the first site run on the lowered level records how the hosts observe it (the level itself unchanged); a second
    # site run changes nothing: same contract bytes, no domain change, every domain compliant
    proc = _run(tmp_path, SITE, inv)
    assert proc.returncode == 0, proc.stdout[-4000:]
    observed = json.loads(stored.read_text())
    assert observed["cpu"] == lowered["cpu"] and observed["history"] == lowered["history"]
    stamp = stored.stat().st_mtime_ns
    before_domains = _definitions(domains)
    proc = _run(tmp_path, SITE, inv)
    assert proc.returncode == 0, proc.stdout[-4000:]
    assert stored.stat().st_mtime_ns == stamp and _definitions(domains) == before_domains
    statuses = {k: v["status"] for k, v in _report(tmp_path, "contract")["groups"]["hypervisors"]["domains"].items()}
    assert statuses == {f"this-machine/{n}": "compliant" for n in domains.values()}, statuses

    # 6. the weak host leaves: the report says the group could raise, and changes nothing
    proc = _run(tmp_path, SITE, _inventory(tmp_path, replay, [m for m in everyone if m != cast["weak"]], domains))
    assert proc.returncode == 0, proc.stdout[-4000:]
    could = _report(tmp_path, "contract")["groups"]["hypervisors"]["could_raise"]
    assert could and could["features_gained"]
    assert stored.stat().st_mtime_ns == stamp


def test_bad_contracts_are_refused_and_kept(tmp_path, replay, cast, domains) -> None:
    inv = _inventory(tmp_path, replay, cast["first"], domains)
    stored = contract_file(tmp_path)
    stored.parent.mkdir(parents=True)
    for text, message in (("{not json", "is not JSON"), (json.dumps({"schema": "cpucompat.contract/2", "group": "other"}), "lacks 'arch'")):
        stored.write_text(text)
        proc = _run(tmp_path, SITE, inv)
        assert proc.returncode != 0 and message in proc.stdout, proc.stdout[-3000:]
        assert stored.read_text() == text, "a malformed contract is never overwritten"


def test_a_host_in_two_listed_groups_is_refused(tmp_path, replay, cast, domains) -> None:
    first = cast["first"][0]
    inventory = {"left": {"hosts": {first: {**LOCAL, "cpucompat_probe_qmp_socket": replay(first[len("rec-"):]).path,
                                            "cpucompat_deploy_enabled": False}}},
                 "right": {"hosts": {first: {}}}}
    path = tmp_path / "inventory.yml"
    path.write_text(yaml.safe_dump(inventory))
    proc = _run(tmp_path, SITE, str(path), cpucompat_group=["left", "right"])
    assert proc.returncode != 0 and f"host {first} is in two of the groups, left and right" in proc.stdout, proc.stdout[-3000:]
    assert not contract_file(tmp_path).parent.exists()


def test_one_policy_shapes_the_baseline_and_the_contract_and_old_names_still_work(tmp_path, replay) -> None:
    """The exclusion given under its old name shapes the contract as well as the baseline report (with a deprecation
    warning naming the new name); later, the baseline report says how today's baseline compares with the contract."""
    vendor_hosts = list(STRONG)
    hosts = {f"rec-{n}": {**LOCAL, "cpucompat_probe_qmp_socket": replay(n).path, "cpucompat_deploy_enabled": False}
             for n in vendor_hosts}
    inv = tmp_path / "inventory.yml"
    inv.write_text(yaml.safe_dump({"hypervisors": {"hosts": hosts}}))
    proc = _run(tmp_path, SITE, str(inv), cpucompat_baseline_exclude_features=["sse4.2"])
    assert proc.returncode == 0, proc.stdout[-4000:]
    out = " ".join((proc.stdout + proc.stderr).split())  # warnings go to stderr, wrapped
    assert "[DEPRECATION WARNING]: The variable cpucompat_baseline_exclude_features is renamed: set" in out
    assert "cpucompat_policy_exclude_features instead" in out
    pinned = json.loads((contract_file(tmp_path)).read_text())
    assert "sse4.2" not in pinned["cpu"]["features"], "the contract follows the policy"
    baseline = _report(tmp_path, "baseline")
    assert "sse4.2" not in baseline["baseline"]["features"] and baseline["contract"]["status"] == "equal"

    proc = _run(tmp_path, SITE, str(inv))  # the exclusion dropped: today's baseline is above the contract
    assert proc.returncode == 0, proc.stdout[-4000:]
    assert "DEPRECATION" not in proc.stdout + proc.stderr
    versus = _report(tmp_path, "baseline")["contract"]
    assert versus["status"] == "above" and "sse4.2" in versus["gains"], versus
    assert "Against the contract:** today's baseline is above the pinned contract" in (tmp_path / "reports" / "baseline.md").read_text()
    assert json.loads((contract_file(tmp_path)).read_text()) == pinned, "the contract stands"


def test_a_host_that_cannot_run_the_contract_is_quarantined_and_the_rest_proceed(tmp_path, replay, cast, domains) -> None:
    """on_refusal=exclude: the weak host is named, with what to check and the commands; the others are deployed; the
    cpu_groups inventory plugin puts it in cpu_quarantine."""
    proc = _run(tmp_path, SITE, _inventory(tmp_path, replay, cast["first"], domains))
    assert proc.returncode == 0, proc.stdout[-4000:]
    everyone = sorted({*cast["first"], cast["weak"], "this-machine"})
    inv = _inventory(tmp_path, replay, everyone, domains)
    before = _definitions(domains)
    refused = _run(tmp_path, SITE, inv)
    text = " ".join(refused.stdout.split())
    assert refused.returncode != 0 and "Deploy the rest with -e cpucompat_contract_on_refusal=exclude" in text, text[-3000:]

    proc = _run(tmp_path, SITE, inv, cpucompat_contract_on_refusal="exclude")
    assert proc.returncode == 0, proc.stdout[-4000:]
    section = _report(tmp_path, "contract")["groups"]["hypervisors"]
    assert list(section["quarantined"]) == [cast["weak"]] and cast["weak"] not in section["admitted"]
    diagnosis = section["quarantined"][cast["weak"]]["diagnosis"]
    assert diagnosis["likely"] and any("cpucompat_contract_action=lower" in c for c in diagnosis["commands"])
    assert any(f"remove {cast['weak']} from group hypervisors" in c for c in diagnosis["commands"])
    markdown = (tmp_path / "reports" / "contract.md").read_text()
    assert f"**{cast['weak']} quarantined:**" in markdown and "cpucompat_contract_on_refusal=exclude" in markdown
    if cast["weak"] == "this-machine":
        assert _definitions(domains) == before, "a quarantined host's domains are left as they are"
        assert "this-machine is not admitted to the contract of group hypervisors" in proc.stdout
    else:
        assert all("check='full'" in cpu_element(x) for x in _definitions(domains).values()), "the rest is deployed"

    config = tmp_path / "cpu_groups.yml"
    config.write_text(yaml.safe_dump({"plugin": "cpucompat.cluster.cpu_groups", "contract_groups": ["hypervisors"]}))
    env = {**os.environ, "ANSIBLE_CONFIG": os.path.join(ROOT, "ansible.cfg"), "ANSIBLE_COLLECTIONS_PATH": SOURCE_COLLECTIONS,
           "ANSIBLE_CACHE_PLUGIN_CONNECTION": str(tmp_path / "facts"), "XDG_DATA_HOME": str(tmp_path / "data"),
           "ANSIBLE_INVENTORY_ENABLED": "yaml,cpucompat.cluster.cpu_groups"}
    out = subprocess.run([os.path.join(os.path.dirname(sys.executable), "ansible-inventory"), "-i", inv, "-i", str(config),
                          "--list"], capture_output=True, text=True, env=env, check=False)
    assert out.returncode == 0, out.stderr
    groups = json.loads(out.stdout)
    assert groups["cpu_quarantine"]["hosts"] == [cast["weak"]]
    assert groups["cpu_quarantine_hypervisors"]["hosts"] == [cast["weak"]]


def test_the_operator_chooses_the_level_and_the_baseline_report_shows_the_choices(tmp_path, replay) -> None:
    hosts = {f"rec-{n}": {**LOCAL, "cpucompat_probe_qmp_socket": replay(n).path, "cpucompat_deploy_enabled": False} for n in STRONG}
    inv = tmp_path / "inventory.yml"
    inv.write_text(yaml.safe_dump({"hypervisors": {"hosts": hosts}}))
    refused = _run(tmp_path, SITE, str(inv), cpucompat_contract_level="x86-64-v3,+no-such-feature")
    assert refused.returncode != 0 and "cannot be pinned at the chosen level" in refused.stdout, refused.stdout[-3000:]
    assert not contract_file(tmp_path).exists()
    proc = _run(tmp_path, SITE, str(inv), cpucompat_contract_level="x86-64-v3")
    assert proc.returncode == 0, proc.stdout[-4000:]
    pinned = json.loads(contract_file(tmp_path).read_text())
    assert pinned["history"][0]["reason"] == "first pin at the level x86-64-v3"
    assert _level.psabi_level(frozenset(pinned["cpu"]["features"])) == "x86-64-v3"
    baseline = _report(tmp_path, "baseline")
    assert baseline["contract"]["status"] == "above", "the group runs more than the chosen level"
    assert all(h["psabi"] == "x86-64-v4" or h["psabi"] == "x86-64-v3" for h in baseline["levels"]["hosts"].values())
    assert baseline["levels"]["models"], "every model some host runs, with the hosts that do not"
    assert "## Levels to choose from (cpucompat_contract_level)" in (tmp_path / "reports" / "baseline.md").read_text()

    raised = _run(tmp_path, CHANGE, str(inv), cpucompat_contract_action="raise")
    assert raised.returncode == 0, raised.stdout[-4000:]
    after = json.loads(contract_file(tmp_path).read_text())
    assert after["generation"] == 2 and set(pinned["cpu"]["features"]) < set(after["cpu"]["features"])
