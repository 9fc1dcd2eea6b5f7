# Copyright (c) 2026 cpucompat.cluster contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""aarch64 groups of identical hosts, judged by the real programs.

- the collection's own cpu_probe module (through ansible-playbook) probes replayed arm64 hosts: QEMU's side served over
  QMP from a recording of a real host, the host's identity read from a recorded tree of its /sys and /proc
  (tests/fixtures/arm64-hosts, PROVENANCE.md there) with ``host_root``;
- from those facts a group of identical Neoverse-N1 hosts pins and admits; a ThunderX2 and a Neoverse-V1 are refused
  naming the MIDR part, a host with another kernel naming the kernel; the migration matrix blocks every cross-identity
  move;
- this machine's libvirt (9.0) defines the rendered ``<cpu>`` in an aarch64 domain (qemu-system-aarch64, TCG, virt) and
  keeps it; what libvirt refuses is measured too: ``migratable='on'`` at define time (so the renderer leaves it out), and
  host-passthrough itself when a TCG domain starts (it needs KVM on an arm64 host).
"""

from __future__ import annotations

import json
import uuid

import pytest

from ansible_collections.cpucompat.cluster.plugins.module_utils.contract import _admission
from ansible_collections.cpucompat.cluster.plugins.module_utils.cpu._libvirt_map import MapRegistry
from ansible_collections.cpucompat.cluster.plugins.module_utils.engine._baseline import BaselineOptions, baseline_of
from ansible_collections.cpucompat.cluster.plugins.module_utils.engine._group import group_facts
from ansible_collections.cpucompat.cluster.plugins.module_utils.engine._hostcpu import host_cpus
from ansible_collections.cpucompat.cluster.plugins.module_utils.probe import _probe
from ansible_collections.cpucompat.cluster.plugins.module_utils.render._libvirt import render
from ansible_collections.cpucompat.cluster.plugins.module_utils.reports._planning import migration_matrix

from integration.helpers import run_playbook
from integration.libvirt_helpers import domain_xml, ensure_libvirtd, remove, virsh
from utils.arm_hosts import HOSTS, recording, tree
from utils.qmp_replay import ReplayServer

pytestmark = pytest.mark.usefixtures("no_leftover_qemu")
N1 = ["neoverse-n1-altra-a", "neoverse-n1-altra-b"]
PROBE_ALL = """
- hosts: localhost
  gather_facts: false
  tasks:
    - name: probe each recorded arm64 host
      cpucompat.cluster.cpu_probe:
        qmp_socket: "{{{{ item.socket }}}}"
        host_root: "{{{{ item.root }}}}"
      loop: {hosts}
      register: probed
    - name: dump
      ansible.builtin.copy:
        content: "{{{{ dict(probed.results | map(attribute='item.name') | zip(probed.results | map(attribute='ansible_facts.cpucompat'))) | to_json }}}}"
        dest: "{out}"
"""


@pytest.fixture(scope="module")
def module_facts(tmp_path_factory) -> dict:
    """Every recorded host's facts as the cpu_probe module returns them through ansible-playbook."""
    tmp = tmp_path_factory.mktemp("arm-probe")
    servers = [ReplayServer(recording(n), str(tmp / f"{i}.sock")).start() for i, n in enumerate(HOSTS)]
    try:
        hosts = [{"name": n, "socket": s.path, "root": tree(n)} for n, s in zip(HOSTS, servers)]
        out = tmp / "facts.json"
        proc = run_playbook(PROBE_ALL.format(hosts=json.dumps(hosts), out=out), tmp)
        assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
        return json.loads(out.read_text())
    finally:
        for server in servers:
            server.stop()


def test_the_probe_module_reads_each_hosts_identity_under_host_root(module_facts: dict) -> None:
    assert sorted(module_facts) == HOSTS
    midr = {n: f["arm"]["identity"]["midr"] for n, f in module_facts.items()}
    assert midr["neoverse-n1-altra-a"] == ["0x413fd0c1"] and midr["thunderx2"] == ["0x431f0af1"]
    assert midr["neoverse-v2-grace"] == ["0x410fd4f0"] and midr["neoverse-v1-graviton3"] == ["0x411fd401"]
    grace = module_facts["neoverse-v2-grace"]["arm"]
    assert grace["identity"]["page_size"] == 65536 and grace["sve_lengths"] == [128] and "sve2" in grace["identity"]["features"]
    for facts in module_facts.values():
        assert facts["arm"]["machine"] == "virt-8.2" and facts["qemu"]["version"] == "8.2.0"
        assert len(json.dumps(facts)) < 8 * 1024  # the facts budget: the arm block is ~600 bytes


def test_identical_n1_hosts_pin_and_admit_and_the_others_are_refused_by_field(module_facts: dict) -> None:
    run = _admission.group_contract("arm", group_facts({n: module_facts[n] for n in N1}), None, "c", BaselineOptions(),
                                    MapRegistry(), None)
    assert run.to_write is not None and not run.section["reasons"], run.section["reasons"]
    contract = run.to_write
    hosts = host_cpus(module_facts)
    refused = {r.host: [d.what for d in r.identity] for r in _admission.admission(contract, hosts)}
    assert set(refused) == set(HOSTS) - set(N1)
    assert refused["thunderx2"][0] == "MIDR part" and refused["neoverse-v1-graviton3"][0] == "MIDR part"
    assert refused["neoverse-n1-altra-kernel-6.16"] == ["kernel"]
    assert "SVE vector lengths" in refused["neoverse-v2-grace"] and "page size" in refused["neoverse-v2-grace"]


def test_the_matrix_blocks_every_cross_identity_move(module_facts: dict) -> None:
    xml = render(baseline_of({n: module_facts[n] for n in N1}).guest).xml
    domains = {n: [{"name": "vm", "cpu_xml": xml, "active": False}] for n in HOSTS}
    matrix = migration_matrix(domains, module_facts, MapRegistry())["matrix"]
    for source in HOSTS:
        for target in HOSTS:
            cell = matrix[f"{source}/vm"][target]
            if source == target:
                assert cell.get("own_host")
            elif {source, target} <= set(N1):
                assert cell["ok"] is True, (source, target, cell)
            else:
                assert cell["ok"] is False and cell["blocking"], (source, target, cell)


def _aarch64_domain(tmp_path, cpu: str) -> tuple[str, str]:
    name = f"cpucompat-test-aarch64-{uuid.uuid4().hex[:8]}"
    path = tmp_path / f"{name}.xml"
    path.write_text(domain_xml(name, cpu, arch="aarch64", machine="virt", emulator=_probe.find_binary("qemu-system-aarch64"),
                               virttype="qemu"))
    return name, str(path)


def test_libvirt_defines_the_rendered_aarch64_cpu_and_refuses_what_it_leaves_out(tmp_path, module_facts: dict) -> None:
    ensure_libvirtd()
    rendered = render(baseline_of({n: module_facts[n] for n in N1}).guest).xml
    name, path = _aarch64_domain(tmp_path, rendered)
    try:
        defined = virsh("define", path)
        assert defined.returncode == 0, defined.stderr
        kept = virsh("dumpxml", "--inactive", name, check=True).stdout
        assert "<cpu mode='host-passthrough' check='none'" in kept and "machine='virt-" in kept
        # Under TCG on this x86_64 machine libvirt refuses host-passthrough when the domain starts (it needs KVM on an
        # arm64 host): the define-time judge is what this machine can give.
        started = virsh("start", "--paused", name)
        assert started.returncode != 0 and "host-passthrough" in started.stderr and "not supported" in started.stderr
    finally:
        remove(name)
    # libvirt 9.0 refuses migratable='on' for every aarch64 domain (QEMU_CAPS_CPU_MIGRATABLE comes from x86's max CPU).
    name, path = _aarch64_domain(tmp_path, "<cpu mode='host-passthrough' migratable='on'/>")
    try:
        refused = virsh("define", path)
        assert refused.returncode != 0 and "Migratable attribute for host-passthrough CPU is not supported" in refused.stderr
    finally:
        remove(name)
