#!/usr/bin/python
# Copyright (c) 2026 cpucompat.cluster contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: cpu_observe
short_description: Observe the guest CPU a hypervisor's QEMU really gives a vCPU of a given CPU
version_added: 0.3.0
description:
  - Starts the guest CPU the way the deploy starts it, reads back what QEMU gives the vCPU, and stops it. The probe and
    the baseline derive a guest CPU from definitions (QEMU's model expansions, libvirt's CPU maps); this module observes
    it, with everything that decides it besides the C(-cpu) - the machine type's compatibility properties, the
    accelerator, the host kernel, QEMU's point release.
  - With O(cpu_xml), through the host's libvirt - a transient domain, paused, with C(check='full'), no disk and 16 MiB,
    created with libvirt's autodestroy flag - so libvirt's own conversion and check run; with O(qemu_args) (plain QEMU,
    Proxmox VE, Incus), a throwaway QEMU started with C(-S).
  - On x86_64 it reads the vCPU's CPUID words (QOM C(feature-words)) and what was asked for and not given
    (C(filtered-features)); elsewhere the vCPU's enabled feature properties.
  - Returns the observation as the cacheable fact C(ansible_facts['cpucompat_observation']). Nothing stays running or
    defined after any fault - the domain is destroyed (and autodestroyed by libvirt should this process die), the QEMU
    process group killed, its socket directory removed.
extends_documentation_fragment:
  - cpucompat.cluster.attributes
attributes:
  check_mode:
    support: full
    description: The module starts a paused guest that runs no code and changes nothing; it runs the same way in check mode.
  diff_mode:
    support: none
    description: Nothing is changed, so there is nothing to diff.
  facts:
    support: full
    description: Returns the C(cpucompat_observation) fact (with O(cpus), C(cpucompat_observations)), which Ansible's fact
      cache keeps between runs.
options:
  cpu_xml:
    description:
      - A libvirt C(<cpu>) element, as the deploy writes it into domains. Mutually exclusive with O(qemu_args).
    type: str
  qemu_args:
    description:
      - A QEMU C(-cpu) value (V(EPYC-Rome,+ibpb,-xsaves)), as plain QEMU, Proxmox VE and Incus pass it. Mutually exclusive with
        O(cpu_xml).
    type: str
  machine:
    description:
      - The guests' machine type (V(pc-q35-7.2), V(q35)). Omitted, the one most of the host's libvirt domains use, else
        the architecture's usual one (as the probe chooses).
    type: str
  emulator:
    description:
      - The QEMU binary (libvirt's C(<emulator>)). Omitted, C(qemu-system-<arch>) of the host's architecture on E(PATH).
    type: str
  accel:
    description:
      - V(kvm), V(tcg) or V(auto) (KVM where C(/dev/kvm) is usable, else TCG; the result's C(accel) says which).
    type: str
    default: auto
    choices: [auto, kvm, tcg]
  libvirt_uri:
    description: The libvirt connection URI (with O(cpu_xml)).
    type: str
    default: qemu:///system
  timeout:
    description: Seconds QEMU may take to start and answer; it is killed after that.
    type: float
    default: 10
  key:
    description:
      - An opaque key the caller derives from what decides the observation (the host's probe fingerprint and the CPU);
        returned in the fact, so that a later run can skip observing again what it observed already. With O(cpus), what
        decides the observations besides each CPU (the host's probe fingerprint, the machine type, the libvirt URI); each
        CPU's key is derived from it, O(via) and the CPU.
    type: str
  cpus:
    description:
      - Several CPUs at once, each observed as O(cpu_xml) or O(qemu_args) would be (O(via) says which) - name -> a dict
        with C(xml) (a C(<cpu>)) and C(qemu_args) (a C(-cpu) value), as the contract step returns each contract
        (C(contracts) of M(cpucompat.cluster.cpu_contract)); the site observes each tier's contract so (docs/tiers.md).
      - The observations are returned in the fact C(cpucompat_observations), name -> observation, beside those of
        O(observations); the fact C(cpucompat_observation) (one CPU, observed without O(cpus)) is left as it is, so
        observing several CPUs on one host never overwrites one with another.
      - A CPU whose cached observation (in O(observations)) has the key this call derives (O(key), O(via) and the CPU) is
        not observed again unless O(force); one that does not start is returned in C(failures), the others still observed.
      - Mutually exclusive with O(cpu_xml) and O(qemu_args).
    type: dict
  via:
    description: With O(cpus), start each CPU's V(libvirt) C(<cpu>) (C(xml)) or its V(qemu) C(-cpu) (C(qemu_args)).
    type: str
    default: libvirt
    choices: [libvirt, qemu]
  observations:
    description:
      - With O(cpus), the host's C(cpucompat_observations) fact so far - kept in the returned one, and the cache O(cpus) are
        looked up in.
    type: dict
    default: {}
  force:
    description: With O(cpus), observe every CPU again, cached or not.
    type: bool
    default: false
requirements:
  - QEMU (C(qemu-system-x86), C(qemu-system-misc) or C(qemu-system-arm))
  - libvirt-python on the host (C(python3-libvirt)), with O(cpu_xml)
notes:
  - Takes 0.1 s with O(qemu_args); with O(cpu_xml), libvirt's start of a domain (about 0.4 s) and its kill of it (0.2 s,
    a fixed poll).
seealso:
  - module: cpucompat.cluster.cpu_probe
"""

EXAMPLES = r"""
- name: Observe the group's contract CPU as this host gives it to guests
  cpucompat.cluster.cpu_observe:
    cpu_xml: "{{ cpucompat_contract_result.contracts['hypervisors'].xml }}"
    machine: pc-q35-7.2

- name: Observe each tier's contract CPU, kept beside the host's other named observations
  cpucompat.cluster.cpu_observe:
    cpus: "{{ cpucompat_contract_result.contracts | dict2items | selectattr('key', 'search', '@') | items2dict }}"
    observations: "{{ ansible_facts.cpucompat_observations | default({}) }}"
    key: "{{ ansible_facts.cpucompat.fingerprint }}"

- name: The same for a plain QEMU -cpu
  cpucompat.cluster.cpu_observe:
    qemu_args: "EPYC-Rome,+ibpb,-xsaves"
    machine: q35
"""

RETURN = r"""
observation:
  description: What the vCPU was given (the same as the fact).
  returned: success
  type: dict
ansible_facts:
  description: Facts to add to ansible_facts.
  returned: success
  type: complex
  contains:
    cpucompat_observation:
      description:
        - C(schema) (C(cpucompat.observation/1)); C(cpuid), on x86_64 each CPUID word as QEMU presents it to the vCPU,
          C("<leaf>.<subleaf>.<register>") (C("0x7.0x0.EBX")) to a 32-bit integer; C(filtered), the words of features asked
          for and not given (non-zero only); C(features) (not x86) the vCPU's enabled feature properties; C(accel);
          C(machine) (the versioned name); C(qemu) (C(binary), C(version) with its point release, C(package));
          C(kernel) (release); C(via) (C(libvirt) or C(qemu)); C(cpu_digest) (C(sha256:) of the O(cpu_xml) or
          O(qemu_args) text); C(key); C(duration_s).
      returned: success
      type: dict
      sample:
        schema: cpucompat.observation/1
        cpuid: {"0x1.0x0.ECX": 2159157251, "0x1.0x0.EDX": 126614527, "0x7.0x0.EBX": 25165826}
        filtered: {}
        accel: kvm
        machine: pc-q35-7.2
        qemu: {binary: /usr/bin/qemu-system-x86_64, version: 7.2.22, package: "Debian 1:7.2+dfsg-7+deb12u18+b3"}
        kernel: 6.1.0-40-amd64
        via: libvirt
        cpu_digest: "sha256:9b1d3c0f5e0bd0b4f6a6f0c5a0e8c0d2f7c6e2b3a1d4c5b6a7f8e9d0c1b2a3f4"
        key: "0f3c..."
        duration_s: 0.58
    cpucompat_observations:
      description:
        - With O(cpus) - name -> observation (as C(cpucompat_observation), with C(name)), those of O(observations) kept.
      returned: success, with O(cpus)
      type: dict
observations:
  description: With O(cpus), name -> the observation made by this call (the CPUs not cached).
  returned: success, with O(cpus)
  type: dict
failures:
  description: With O(cpus), name -> why the CPU could not be observed (it did not start, or has no C(<cpu>) to start).
  returned: success, with O(cpus)
  type: dict
kept:
  description: With O(cpus), the names whose cached observation was of the same CPU on the same stack (not observed again).
  returned: success, with O(cpus)
  type: list
  elements: str
"""

import hashlib

from ansible.module_utils.basic import AnsibleModule, missing_required_lib

from ansible_collections.cpucompat.cluster.plugins.module_utils._errors import CpuCompatError
from ansible_collections.cpucompat.cluster.plugins.module_utils.contract._observed import OBSERVATION_SCHEMA, cpu_digest
from ansible_collections.cpucompat.cluster.plugins.module_utils.deploy._libvirt_import import HAS_LIBVIRT, LIBVIRT_IMPORT_ERROR
from ansible_collections.cpucompat.cluster.plugins.module_utils.probe._observe import ObserveRequest, observe

try:
    import libvirt
except ImportError:
    libvirt = None


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "cpu_xml": {"type": "str"},
            "qemu_args": {"type": "str"},
            "machine": {"type": "str"},
            "emulator": {"type": "str"},
            "accel": {"type": "str", "default": "auto", "choices": ["auto", "kvm", "tcg"]},
            "libvirt_uri": {"type": "str", "default": "qemu:///system"},
            "timeout": {"type": "float", "default": 10.0},
            "key": {"type": "str", "no_log": False},
            "cpus": {"type": "dict"},
            "via": {"type": "str", "default": "libvirt", "choices": ["libvirt", "qemu"]},
            "observations": {"type": "dict", "default": {}},
            "force": {"type": "bool", "default": False},
        },
        mutually_exclusive=[("cpu_xml", "qemu_args", "cpus")],
        required_one_of=[("cpu_xml", "qemu_args", "cpus")],
        supports_check_mode=True,
    )
    params = module.params
    if params["cpus"] is not None:
        _many(module, params)
    if params["cpu_xml"] and not HAS_LIBVIRT:
        module.fail_json(msg=missing_required_lib("libvirt-python (python3-libvirt)"), exception=LIBVIRT_IMPORT_ERROR)
    req = ObserveRequest(cpu_xml=params["cpu_xml"], qemu_args=params["qemu_args"], machine=params["machine"],
                         emulator=params["emulator"], accel=params["accel"], libvirt_uri=params["libvirt_uri"],
                         timeout=params["timeout"])
    try:
        seen = observe(req, libvirt)
    except CpuCompatError as exc:
        module.fail_json(msg=f"CPU observation failed: {exc}")
    fact = {"schema": OBSERVATION_SCHEMA, **seen, "cpu_digest": cpu_digest(params["cpu_xml"] or params["qemu_args"]),
            "key": params["key"]}
    module.exit_json(changed=False, observation=fact, ansible_facts={"cpucompat_observation": fact})


def _many(module: AnsibleModule, params: dict) -> None:
    """Each CPU of ``cpus`` observed (or kept from the cache), in one call: the fact keyed by name, never overwritten."""
    field = "xml" if params["via"] == "libvirt" else "qemu_args"
    if params["via"] == "libvirt" and not HAS_LIBVIRT:
        module.fail_json(msg=missing_required_lib("libvirt-python (python3-libvirt)"), exception=LIBVIRT_IMPORT_ERROR)
    cached = dict(params["observations"] or {})
    made, failures, kept = {}, {}, []
    for name, entry in sorted(params["cpus"].items()):
        text = entry.get(field) if isinstance(entry, dict) else None
        if not isinstance(text, str) or not text.strip():
            failures[name] = f"no contract CPU ({field}) to observe for {name}"
            continue
        key = hashlib.sha256(f"{params['key'] or ''}|{params['via']}|{text}".encode()).hexdigest()
        if not params["force"] and isinstance(cached.get(name), dict) and cached[name].get("key") == key:
            kept.append(name)  # observed earlier, of this CPU on this stack
            continue
        req = ObserveRequest(cpu_xml=text if field == "xml" else None, qemu_args=text if field == "qemu_args" else None,
                             machine=params["machine"], emulator=params["emulator"], accel=params["accel"],
                             libvirt_uri=params["libvirt_uri"], timeout=params["timeout"])
        try:
            seen = observe(req, libvirt)
        except CpuCompatError as exc:
            failures[name] = f"CPU observation failed: {exc}"
            continue
        made[name] = {"schema": OBSERVATION_SCHEMA, **seen, "cpu_digest": cpu_digest(text), "key": key, "name": name}
    module.exit_json(changed=False, observations=made, failures=failures, kept=kept,
                     ansible_facts={"cpucompat_observations": {**cached, **made}})


if __name__ == "__main__":
    main()
