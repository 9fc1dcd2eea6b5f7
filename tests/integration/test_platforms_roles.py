# Copyright (c) 2026 cpucompat.cluster contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The platform roles and the platforms playbook, run by ansible-playbook: the Proxmox model on a test path (check
mode, real run, second run; every other section kept), the KubeVirt manifests and Incus keys as files, and the whole
playbook on this machine - probe, contract, then every platform."""

from __future__ import annotations

import json
import sys

import pytest
import yaml

from ansible_collections.cpucompat.cluster.plugins.module_utils.deploy._ini import get_options
from ansible_collections.cpucompat.cluster.plugins.module_utils.deploy._proxmox_conf import cpu_model_errors, parse
from ansible_collections.cpucompat.cluster.plugins.module_utils.engine._baseline import baseline_of
from ansible_collections.cpucompat.cluster.plugins.module_utils.render import _kubevirt, _proxmox
from integration.helpers import ROOT, run_playbook
from integration.libvirt_helpers import ensure_libvirtd
from utils import judges, platform_judges
from utils.recordings import facts_of

OTHERS = """# custom CPU models of this cluster
cpu-model: legacy
\tflags +aes;-hle
\treported-model Haswell

cpu-model: avx512
\tflags +avx512f
\tphys-bits 46
\treported-model Skylake-Server-IBRS

"""

PLAY = """
- hosts: localhost
  gather_facts: false
  tasks:
    - name: The roles under test
      ansible.builtin.include_role:
        name: "cpucompat.cluster.{{ item }}"
      loop: "{{ role.split(',') }}"
      vars:
        cpucompat_guest_cpu: "{{ lookup('ansible.builtin.file', guest_file) | from_json }}"
"""


def _guest():
    return baseline_of({n: facts_of(n, lv) for n, lv in zip(("x86_64-xeon-gold-6130", "x86_64-xeon-platinum-9242"),
                                                            ("system", "backports"))}).guest


def _run(tmp_path, role: str, check: bool = False, **extra):
    path = tmp_path / "guest.json"
    path.write_text(json.dumps(_guest().to_dict()))
    return run_playbook(PLAY, tmp_path, extra={"role": role, "guest_file": str(path), **extra}, check=check, diff=True)


def test_proxmox_role_applies_idempotently_in_check_and_real_mode(tmp_path) -> None:
    conf = tmp_path / "cpu-models.conf"
    conf.write_text(OTHERS)
    extra = {"cpucompat_proxmox_path": str(conf), "cpucompat_proxmox_model_name": "cluster_cpu"}
    checked = _run(tmp_path, "proxmox", check=True, **extra)
    assert checked.returncode == 0 and "changed=1" in checked.stdout, checked.stdout[-3000:]
    assert conf.read_text() == OTHERS, "check mode wrote nothing"
    first = _run(tmp_path, "proxmox", **extra)
    assert first.returncode == 0 and "changed=1" in first.stdout, first.stdout[-3000:]
    written = conf.read_text()
    expected = _proxmox.render(_guest(), "cluster_cpu")
    assert written == OTHERS + expected.cpu_models_conf + "\n", "appended after the others, which are kept byte for byte"
    sections = {s.id: s for s in parse(written)}
    assert list(sections) == ["legacy", "avx512", "cluster_cpu"] and not cpu_model_errors(sections["cluster_cpu"])
    assert sections["cluster_cpu"].properties["reported-model"] == expected.reported_model
    assert "custom-cluster_cpu" in first.stdout and expected.qemu_args in first.stdout
    second = _run(tmp_path, "proxmox", **extra)
    assert second.returncode == 0 and "changed=0" in second.stdout, second.stdout[-3000:]
    gone = _run(tmp_path, "proxmox", cpucompat_proxmox_state="absent", **extra)
    assert gone.returncode == 0 and "changed=1" in gone.stdout
    assert [s.id for s in parse(conf.read_text())] == ["legacy", "avx512"] and conf.read_text().startswith(OTHERS)


def test_proxmox_module_replaces_a_stale_section_in_place(tmp_path) -> None:
    conf = tmp_path / "cpu-models.conf"
    stale = OTHERS.replace("cpu-model: avx512", "cpu-model: cluster_cpu")
    conf.write_text(stale)
    done = _run(tmp_path, "proxmox", cpucompat_proxmox_path=str(conf), cpucompat_proxmox_model_name="cluster_cpu")
    assert done.returncode == 0 and "changed=1" in done.stdout
    written = conf.read_text()
    assert written.startswith(OTHERS.split("cpu-model: avx512", maxsplit=1)[0]) and written.endswith("\n\n")
    assert [s.id for s in parse(written)] == ["legacy", "cluster_cpu"]
    assert parse(written)[1].properties["reported-model"] == _proxmox.render(_guest()).reported_model


def test_kubevirt_and_incus_roles_write_files_and_apply_nothing(tmp_path) -> None:
    reports = tmp_path / "reports"
    done = _run(tmp_path, "kubevirt,incus", cpucompat_report_dir=str(reports), cpucompat_incus_group="hypervisors")
    assert done.returncode == 0, done.stdout[-3000:]
    assert f"kubectl patch kubevirt kubevirt -n kubevirt --type merge --patch-file {reports}/kubevirt-cr-patch.yaml" in done.stdout
    again = _run(tmp_path, "kubevirt,incus", cpucompat_report_dir=str(reports), cpucompat_incus_group="hypervisors")
    assert again.returncode == 0 and "changed=0" in again.stdout, again.stdout[-3000:]
    preference = yaml.safe_load((reports / "kubevirt-cluster-preference.yaml").read_text())
    assert not platform_judges.kubevirt_errors("instancetype.kubevirt.io/v1beta1/VirtualMachineClusterPreference", preference)
    vm = yaml.safe_load((reports / "kubevirt-vm-cpu.yaml").read_text())
    cpu = _kubevirt.render(_guest())
    assert vm["spec"]["template"]["spec"]["domain"]["cpu"] == cpu.vm_cpu
    assert "kubectl get nodes -l " + ",".join(f"{k}=true" for k in cpu.node_selector) in done.stdout
    assert yaml.safe_load((reports / "kubevirt-cr-patch.yaml").read_text()) == cpu.kubevirt_cr_patch
    keys = yaml.safe_load((reports / "incus-hypervisors.yaml").read_text())
    assert set(keys) == {"instances.vm.cpu.x86_64.baseline", "instances.vm.cpu.x86_64.flags"}
    script = (reports / "incus-hypervisors.sh").read_text()
    assert "incus cluster group set hypervisors instances.vm.cpu.x86_64.baseline=" in script


@pytest.mark.xdist_group("libvirt")  # the platforms playbook probes this machine: its domains' machine type
@pytest.mark.usefixtures("no_leftover_qemu")
def test_platforms_playbook_from_probe_to_every_platform(tmp_path) -> None:
    """This machine as a one-host group: probed, its contract pinned, then every platform configured (Nova checked
    against this machine's libvirtd first); a second run changes nothing."""
    ensure_libvirtd()
    nova_conf = tmp_path / "nova.conf"
    nova_conf.write_text("[DEFAULT]\ndebug = true\n")
    pve = tmp_path / "cpu-models.conf"
    extra = {"cpucompat_group": "all", "cpucompat_platforms": ["proxmox", "nova", "kubevirt", "incus"],
             "cpucompat_report_dir": str(tmp_path / "reports"), "cpucompat_contract_dir": str(tmp_path / "contracts"),
             "cpucompat_proxmox_path": str(pve), "cpucompat_nova_conf": str(nova_conf), "cpucompat_nova_restart": False,
             # this machine runs only pentium-era models, which KubeVirt's default obsoleteCPUModels never labels
             "cpucompat_kubevirt_obsolete_models": ["486"]}
    if judges.ACCEL != "kvm":
        extra["cpucompat_nova_virt_type"] = "qemu"
    with open(f"{ROOT}/playbooks/platforms.yml", encoding="utf-8") as fh:
        play = fh.read()
    first = run_playbook(play, tmp_path, extra=extra)
    assert first.returncode == 0, first.stdout[-5000:]
    contract = json.loads((tmp_path / "contracts" / "all.json").read_text())
    assert [s.id for s in parse(pve.read_text())] == ["cpucompat"]
    options = get_options(nova_conf.read_text(), "libvirt")
    assert options["cpu_mode"] == "custom" and options["cpu_models"]
    assert (tmp_path / "reports" / "kubevirt-cluster-preference.yaml").exists()
    assert (tmp_path / "reports" / "incus-default.yaml").exists()
    assert contract["cpu"]["model"] if "cpu" in contract else contract
    second = run_playbook(play, tmp_path, extra=extra)
    assert second.returncode == 0 and "changed=0" in second.stdout.split("PLAY RECAP")[1], second.stdout[-5000:]


@pytest.mark.xdist_group("libvirt")  # the platforms playbook probes this machine: its domains' machine type
@pytest.mark.usefixtures("no_leftover_qemu")
def test_platforms_playbook_renders_a_two_tier_group_at_once(tmp_path) -> None:
    """This machine as a group with two tiers (the base at pentium2, tier high at pentium3 with the same flags): the
    contract pins both, and the roles take every tier at once - Nova's cpu_models lists the base's model then the
    tier's, whose flavors require its trait; one cpu-models.conf with a custom model per tier; a KubeVirt preference per
    tier and the tier's node label. The contract report shows those renderings in the group's section, not the tier's."""
    ensure_libvirtd()
    nova_conf = tmp_path / "nova.conf"
    nova_conf.write_text("[DEFAULT]\ndebug = true\n")
    pve, reports, contracts = tmp_path / "cpu-models.conf", tmp_path / "reports", tmp_path / "contracts"
    local = {"ansible_connection": "local", "ansible_python_interpreter": sys.executable}
    inv = tmp_path / "inventory.yml"
    inv.write_text(yaml.safe_dump({"all": {"children": {"hypervisors": {
        "hosts": {"this-machine": local},
        "vars": {"cpucompat_tiers": {"base": {"level": "pentium2"}, "high": {"level": "pentium3", "hosts": "this-machine"}}}}}}}))
    extra = {"cpucompat_group": "hypervisors", "cpucompat_platforms": ["proxmox", "nova", "kubevirt"],
             "cpucompat_report_dir": str(reports), "cpucompat_contract_dir": str(contracts), "cpucompat_proxmox_path": str(pve),
             "cpucompat_nova_conf": str(nova_conf), "cpucompat_nova_restart": False, "cpucompat_kubevirt_obsolete_models": ["486"]}
    if judges.ACCEL != "kvm":
        extra["cpucompat_nova_virt_type"] = "qemu"
    first = run_playbook("cpucompat.cluster.platforms", tmp_path, inventory=str(inv), extra=extra)
    assert first.returncode == 0, first.stdout[-5000:]
    assert json.loads((contracts / "hypervisors@high.json").read_text())["cpu"]["model"] == "pentium3"
    assert json.loads((contracts / "hypervisors.json").read_text())["cpu"]["model"] == "pentium2"

    options = get_options(nova_conf.read_text(), "libvirt")
    assert options["cpu_models"] == "pentium2, pentium3" and options["cpu_model_extra_flags"] == "+apic, +hypervisor, +x2apic", options
    assert "trait:HW_CPU_X86_SSE" in first.stdout, "the high tier's flavors are told the trait that picks its model"
    sections = {s.id: s for s in parse(pve.read_text())}
    assert list(sections) == ["cpucompat", "cpucompat_high"] and not any(cpu_model_errors(s) for s in sections.values())
    assert sections["cpucompat_high"].properties["reported-model"] != sections["cpucompat"].properties["reported-model"]
    high = yaml.safe_load((reports / "kubevirt-cluster-preference-high.yaml").read_text())
    assert high["metadata"]["name"] == "cpucompat-high"
    assert not platform_judges.kubevirt_errors("instancetype.kubevirt.io/v1beta1/VirtualMachineClusterPreference", high)
    vm = yaml.safe_load((reports / "kubevirt-vm-cpu-high.yaml").read_text())["spec"]["template"]["spec"]
    assert vm["nodeSelector"]["cpucompat.cluster/tier-high"] == "true" and vm["domain"]["cpu"]["model"] == "pentium3"
    labels = {"cpucompat.cluster/tier-base": "true", "cpucompat.cluster/tier-high": "true"}
    assert yaml.safe_load((reports / "kubevirt-node-labels.yaml").read_text()) == {"this-machine": labels}
    assert "kubectl label node this-machine cpucompat.cluster/tier-base=true cpucompat.cluster/tier-high=true" in first.stdout

    report = json.loads((reports / "contract.json").read_text())
    group, tier = report["groups"]["hypervisors"], report["groups"]["hypervisors@high"]
    assert group["platforms"]["nova"]["tiers"] == ["base", "high"]
    assert group["platforms"]["nova"]["rendering"]["cpu_models"] == ["pentium2", "pentium3"]
    shown = parse(group["platforms"]["proxmox"]["rendering"]["cpu_models_conf"])
    assert [(s.id, s.properties) for s in shown] == [(s.id, s.properties) for s in sections.values()], "the report shows what is written"
    assert not set(tier.get("platforms") or {}) & {"nova", "kubevirt", "proxmox"}, "said once, in the group's section"
    page = (reports / "contract.md").read_text()
    assert "### The contract for nova, every tier at once (base, high)" in page and "## Tier high of group hypervisors" in page

    second = run_playbook("cpucompat.cluster.platforms", tmp_path, inventory=str(inv), extra=extra)
    assert second.returncode == 0 and "changed=0" in second.stdout.split("PLAY RECAP")[1], second.stdout[-5000:]
