#!/usr/bin/python
# Copyright (c) 2026 cpucompat.cluster contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: cpu_probe
short_description: Probe a hypervisor's CPU capabilities through QEMU's QMP monitor
version_added: 0.1.0
description:
  - Starts a throwaway C(qemu-system-<arch>) with the guests' machine type (O(machine); the architecture's usual one when omitted),
    or attaches to an existing QMP socket, and asks QEMU which named CPU models run on this host, which features block
    the others, which features the host CPU model exposes, and how QEMU defines each model that runs here under this
    accelerator and machine type.
  - Reads the CPU map of the host's libvirt (O(cpu_map)) meanwhile; the facts keep it, so that the controller renders a
    C(<cpu>) this host's own libvirt reads as intended.
  - Under KVM on x86_64 a second throwaway QEMU creates one vCPU of the host model, concurrently, to find features
    KVM refuses although QEMU offers them (nested hypervisors); they are left out of the facts.
  - Returns the answers as the cacheable fact C(ansible_facts['cpucompat']), whose schema is documented in the
    collection's C(docs/facts.md).
  - The throwaway QEMU listens on nothing and runs no guest; it is killed, and its private socket directory removed,
    on every exit path, including timeouts.
author:
  - cpucompat.cluster contributors (@cpucompat)
extends_documentation_fragment:
  - cpucompat.cluster.qmp
attributes:
  check_mode:
    support: full
    description: The module only reads; it runs the same way in check mode.
  diff_mode:
    support: none
    description: Nothing is changed, so there is nothing to diff.
  facts:
    support: full
    description: Returns the C(cpucompat) fact, which Ansible's fact cache keeps between runs.
options:
  expand_models:
    description:
      - Also ask QEMU for the feature sets of the named models that run here, so a baseline can compare models by their
        features. Costs a few milliseconds.
    type: bool
    default: true
  machine:
    description:
      - Machine type of the throwaway QEMU. QEMU resolves unversioned model names (aliases) by machine type, and newer
        QEMU changes what C(host) reports on AMD by machine type, so probe with the machine type your guests use
        (for example V(q35) or V(pc-q35-7.2)).
      - Omitted, the machine type most guests of the architecture use - C(q35) on x86_64 (QEMU's own default is
        i440fx, which libvirt, OpenStack, Proxmox and KubeVirt no longer create), C(virt) on aarch64 (which has no
        default), QEMU's default elsewhere. The C(cpucompat.cluster.probe) role passes the machine type most of the host's
        domains use. V(none) probes without a machine, as before.
      - The facts record the versioned name (C(machine.name)); a baseline refuses to mix hosts probed with different
        machine types.
      - Ignored with O(qmp_socket) (the running QEMU's machine is not known).
    type: str
  cpu_map:
    description:
      - Directory of the CPU map of the libvirt that runs this host's guests. The facts keep its identity (digest and
        libvirt's version), its feature vocabulary and its definitions of the models QEMU runs here, so that the
        controller renders a C(<cpu>) every host's own libvirt reads the same way, whatever libvirt the controller has.
      - A host without this directory has no libvirt as far as the facts are concerned (Proxmox VE, plain QEMU).
      - Its digest is part of the fingerprint, so a libvirt upgrade that changes the map is probed again.
    type: path
    default: /usr/share/libvirt/cpu_map
  libvirt_version:
    description:
      - The version of the libvirt that reads O(cpu_map), when it is not the installed one (C(libvirtd --version)); for
        a map unpacked beside the system's, as the C(cpucompat.cluster.upgrade_check) playbook does with a new stack.
    type: str
  cached_fingerprint:
    description:
      - The C(fingerprint) of cached C(cpucompat) facts the caller already has.
      - When it equals the fingerprint of this host as it is now, QEMU is not started and no facts are returned
        (RV(probed=false)); the cached facts are still valid.
      - The module's action plugin first computes the fingerprint with a small standard-library Python script on the
        host (no module is sent, a few tens of milliseconds); the module runs only when the fingerprint differs or the
        script cannot tell (for example before the host's Python interpreter has been discovered).
      - Has no effect with O(qmp_socket), whose answer can only be known by asking.
      - With O(reuse_cached), defaults to the fingerprint of the host's cached facts.
    type: str
  reuse_cached:
    description:
      - Judge this host's cached C(ansible_facts['cpucompat']) (Ansible's fact cache) for freshness, in the one order
        the action plugin applies - O(force), then O(max_age), then the fingerprint script on the host, then the module
        with the cached fingerprint - and probe only when they no longer describe the host.
      - The cached facts are read as stored, never templated; facts of another schema version are never reused.
    type: bool
    default: false
  max_age:
    description:
      - With O(reuse_cached), cached facts probed less than this many seconds ago are kept without contacting the host.
      - V(0) always checks the fingerprint on the host.
    type: int
    default: 0
  force:
    description: Probe even when cached facts or O(cached_fingerprint) still match.
    type: bool
    default: false
requirements:
  - QEMU (C(qemu-system-x86_64), C(qemu-system-s390x) or C(qemu-system-aarch64)) on the managed host, unless O(qmp_socket) is used.
notes:
  - A TCG probe describes QEMU's emulated C(max) CPU, not the host's; do not mix TCG facts with KVM facts when computing
    a baseline for KVM guests.
seealso:
  - module: cpucompat.cluster.cluster_cpu_facts
"""

EXAMPLES = r"""
- name: Probe this hypervisor (KVM when usable)
  cpucompat.cluster.cpu_probe:

- name: Probe the emulated s390x CPU models under TCG
  cpucompat.cluster.cpu_probe:
    qemu_binary: qemu-system-s390x
    accel: tcg

- name: Ask a running QEMU through its QMP socket
  cpucompat.cluster.cpu_probe:
    qmp_socket: /run/qemu/vm1.qmp

- name: Re-probe only when the host changed since the cached facts were taken
  cpucompat.cluster.cpu_probe:
    cached_fingerprint: "{{ ansible_facts['cpucompat']['fingerprint'] | default(omit) }}"

- name: Probe with the machine type the guests use
  cpucompat.cluster.cpu_probe:
    machine: q35

- name: Keep cached facts younger than a day, else check the fingerprint, else probe
  cpucompat.cluster.cpu_probe:
    reuse_cached: true
    max_age: 86400

- name: Show which named models run here
  ansible.builtin.debug:
    msg: "{{ ansible_facts['cpucompat']['runnable_models'] }}"

- name: Which features keep the models that do not run here from running (the facts keep them as bit masks)
  ansible.builtin.debug:
    msg: "{{ ansible_facts['cpucompat'] | cpucompat.cluster.cpu_summary(inventory_hostname) }}"
"""

RETURN = r"""
probed:
  description: Whether QEMU was asked. V(false) when O(cached_fingerprint) still matches this host.
  returned: always
  type: bool
  sample: true
freshness:
  description: >-
    Which step of the freshness policy decided: V(max_age) or V(fingerprint) (the cached facts stand) or V(probed).
  returned: success
  type: str
  sample: fingerprint
fingerprint:
  description: Digest of everything that can change the answer (QEMU binary, machine type, kernel, microcode, accelerator, libvirt and its CPU map).
  returned: success
  type: str
  sample: sha256:7db6ff2b7496e0c5e4a1f1b6b7c2f7c5b0a9e0f3c8d1e2f3a4b5c6d7e8f90a1b
ansible_facts:
  description: Facts to add to ansible_facts.
  returned: when probed
  type: complex
  contains:
    cpucompat:
      description: >-
        The CPU capabilities of this host; full schema in C(docs/facts.md). Schema 5 keeps each model's blocking
        features as a bit mask (hexadecimal) over C(model_blockers) (V("0"): the model runs here), only the model
        aliases that differ from a catalogued QEMU release's table (C(model_aliases_base)), and a libvirt CPU map the
        collection ships by its digest alone (without C(data)); the C(cpu_summary) filter reads them.
      returned: when probed
      type: dict
      sample:
        schema_version: 5
        arch: x86_64
        vendor: AuthenticAMD
        family: 25
        model: 1
        stepping: 1
        model_id: AMD EPYC
        base_model: null
        accel: kvm
        qemu: {binary: /usr/bin/qemu-system-x86_64, version: 7.2.22, package: "Debian 1:7.2+dfsg-7+deb12u18+b3"}
        host_cpu: {expansion: "static:host", features_source: expansion, kvm_rejected_features: [mds-no, rdctl-no], kvm_vcpu_check: null}
        features: [abm, adx, aes, apic, avx, avx2]
        non_migratable_features: [invtsc]
        models: {EPYC-v1: "0", EPYC-Rome-v1: "3", EPYC-Genoa-v1: "1f", pentium3-v1: "0"}
        model_blockers: [avx2, clwb, gfni, vaes, vpclmulqdq]
        model_aliases: {}
        model_aliases_base: "7.2.22:5adedc928425"
        model_flags: {deprecated: [], not_migration_safe: [], static: [base]}
        model_features: {EPYC-v1: [abm, adx, aes, apic, x2apic]}
        unnamed_blockers: {}
        runnable_models: [EPYC, EPYC-v1, pentium3, pentium3-v1]
        capabilities: {comparison: false, baseline: false, unavailable_features: true}
        probe: {mode: spawn, socket: null, duration_s: 0.17, probed_at: 1796300000}
        fingerprint: "sha256:7db6ff2b7496e0c5e4a1f1b6b7c2f7c5b0a9e0f3c8d1e2f3a4b5c6d7e8f90a1b"
        machine: {requested: q35, name: pc-q35-7.2, type: pc-q35}
        versions: {qemu: 7.2.22, libvirt: 9.0.0, kernel: 6.1.0-40-amd64, microcode: "0x1000065"}
        libvirt: {version: 9.0.0, cpu_map: {format: 2, digest: "sha256:30e9bce98e0ab728e07996d3d2f6f8f053f70b9a5c792defccbcc1fbc012baa1"}}
        phys_bits: 48
        tsc: {frequency: 2994374000, scaling: false}
        hyperv: null
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.cpucompat.cluster.plugins.module_utils._common_args import CPU_PROBE_ARGS
from ansible_collections.cpucompat.cluster.plugins.module_utils._errors import CpuCompatError
from ansible_collections.cpucompat.cluster.plugins.module_utils.probe._probe import ProbeRequest, probe, spawn_target


def main() -> None:
    module = AnsibleModule(
        argument_spec=CPU_PROBE_ARGS,
        supports_check_mode=True,
    )
    params = module.params
    req = ProbeRequest(
        qemu_binary=params["qemu_binary"],
        accel=params["accel"],
        qmp_socket=params["qmp_socket"],
        timeout=params["timeout"],
        expand_models=params["expand_models"],
        machine=params["machine"],
        cpu_map=params["cpu_map"],
        libvirt_version=params["libvirt_version"],
    )
    try:
        # The last step of the freshness policy (the action decides the others): the fingerprint is computed once and
        # the probe reuses what it was computed from.
        target = spawn_target(req)
        if target is not None and params["cached_fingerprint"] and not params["force"] and target.fingerprint == params["cached_fingerprint"]:
            module.exit_json(changed=False, probed=False, freshness="fingerprint", fingerprint=target.fingerprint)
        facts = probe(req, target)
    except CpuCompatError as exc:
        module.fail_json(msg=f"CPU probe failed: {exc}")
    module.exit_json(changed=False, probed=True, freshness="probed", fingerprint=facts["fingerprint"], ansible_facts={"cpucompat": facts})


if __name__ == "__main__":
    main()
