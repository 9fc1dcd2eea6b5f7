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
  cache_dir:
    description:
      - Folder of the probe's host-side cache, which keeps what QEMU answers the same way on every probe of an
        unchanged host, so that later probes need not ask again - QEMU's definitions of the named CPU models that run here (their
        expansions), the features KVM refused when a vCPU of the host model was created, and the installed libvirt's
        version while its daemon binary (path, size, mtime, inode) is the same. With the refused features known, one
        QEMU both creates that vCPU (the check is still made on every probe) and answers the probe; without it a second
        QEMU makes the check.
      - Each entry is keyed by the QEMU binary (path, size, mtime, inode), the machine type, the accelerator, the
        kernel release and CPU 0's identity (microcode, model, flags), so an upgrade of any of them starts a new entry.
        What says which models run here is asked of QEMU on every probe; a probe with a cache hit returns the facts a
        cold probe returns.
      - Entries are small JSON files written atomically (a temporary file renamed into place); an entry that cannot
        be read, does not parse or was written for another key is ignored and replaced. A folder that cannot be
        written only costs time. Delete the folder at any time to start cold. The facts trust what it holds - keep it
        writable only by the user the module runs as (the default folders are).
      - Omitted, C($XDG_CACHE_HOME/cpucompat) when C(XDG_CACHE_HOME) is set in the module's environment, else
        C(/var/cache/cpucompat) when the module runs as root, else C(~/.cache/cpucompat). An empty string turns the
        cache off.
      - Not used with O(qmp_socket).
    type: path
    version_added: 0.3.0
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
  host_root:
    description:
      - Where an aarch64 host's C(/sys) and C(/proc) are read. The facts' C(arm.identity) comes from there - every CPU's
        MIDR_EL1 and REVIDR_EL1 (C(sys/devices/system/cpu/cpu*/regs/identification/)), the C(Features) line and CPU 0's
        implementer, variant, part and revision (C(proc/cpuinfo)), the page size (C(KernelPageSize) of
        C(proc/self/smaps)), the kernel release (C(proc/sys/kernel/osrelease)) and the firmware
        (C(sys/class/dmi/id/bios_version)) - and the rest of C(arm) from QEMU (its expansion of the host CPU, its
        version and machine type), also with O(qmp_socket), whose QEMU cannot tell the host's identity.
      - A directory that does not show an arm64 CPU gives C(arm.identity=null). Read for aarch64 QEMU only.
      - A recorded tree of a real host serves tests; V(/) everywhere else.
    type: path
    default: /
    version_added: 0.3.0
requirements:
  - QEMU (C(qemu-system-x86_64), C(qemu-system-s390x) or C(qemu-system-aarch64)) on the managed host, unless O(qmp_socket) is used.
notes:
  - A TCG probe describes QEMU's emulated C(max) CPU, not the host's; do not mix TCG facts with KVM facts when computing
    a baseline for KVM guests.
seealso:
  - module: cpucompat.cluster.cluster_cpu_facts
  - module: cpucompat.cluster.cpu_contract
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

import json
import os
import sys
import threading
from collections.abc import Mapping
from typing import Any

from ansible_collections.cpucompat.cluster.plugins.module_utils._common_args import CPU_PROBE_ARGS
from ansible_collections.cpucompat.cluster.plugins.module_utils._errors import CpuCompatError
from ansible_collections.cpucompat.cluster.plugins.module_utils.probe._cache import default_cache_dir
from ansible_collections.cpucompat.cluster.plugins.module_utils.probe._probe import ProbeRequest, probe, spawn_target

# Ansible adds its own options (_ansible_check_mode, ...): none of them changes what the probe does.
_INTERNAL = "_ansible_"


def _request(params: Mapping[str, Any]) -> tuple[ProbeRequest, str | None, bool]:
    """What to probe, the caller's cached fingerprint and ``force``, from validated (or equivalent) parameters."""
    cache_dir = params["cache_dir"]
    req = ProbeRequest(
        qemu_binary=params["qemu_binary"],
        accel=params["accel"],
        qmp_socket=params["qmp_socket"],
        timeout=params["timeout"],
        expand_models=params["expand_models"],
        machine=params["machine"],
        cpu_map=params["cpu_map"],
        libvirt_version=params["libvirt_version"],
        cache_dir=default_cache_dir() if cache_dir is None else (cache_dir or None),
        host_root=params.get("host_root") or "/",
    )
    return req, params["cached_fingerprint"], params["force"]


def _given_params() -> dict[str, Any] | None:
    """The parameters of a direct run (``python -m ...cpu_probe <args file>``) as AnsibleModule will validate them, read
    before Ansible's module code is imported; None when they are not in a file (Ansible's own wrapper has imported that
    code already) or are anything AnsibleModule would convert or refuse: then nothing starts early."""
    if "ansible.module_utils.basic" in sys.modules or len(sys.argv) != 2 or not os.path.isfile(sys.argv[1]):
        return None
    try:
        with open(sys.argv[1], "rb") as fh:
            args = json.load(fh).get("ANSIBLE_MODULE_ARGS")
    except (OSError, ValueError, AttributeError):
        return None
    if not isinstance(args, dict) or any(k not in CPU_PROBE_ARGS and not k.startswith(_INTERNAL) for k in args):
        return None
    params: dict[str, Any] = {}
    for name, spec in CPU_PROBE_ARGS.items():
        value = args.get(name, spec.get("default"))
        kind = spec["type"]
        if value is not None:
            if kind in ("str", "path") and not isinstance(value, str) or kind == "bool" and not isinstance(value, bool):
                return None
            if kind in ("int", "float") and (isinstance(value, bool) or not isinstance(value, (int, float)) or kind == "int" and isinstance(value, float)):
                return None
            if kind == "path" and ("~" in value or "$" in value):
                return None  # AnsibleModule expands these; a path it would change does not start early
            if kind == "float":
                value = float(value)
            if value not in spec.get("choices", (value,)):
                return None
        params[name] = value
    return params


def _run(req: ProbeRequest, cached_fingerprint: str | None, force: bool) -> tuple[str, dict[str, Any] | None]:
    """The fingerprint, and the facts (None: ``cached_fingerprint`` still describes the host)."""
    # The last step of the freshness policy (the action decides the others): the fingerprint is computed once and
    # the probe reuses what it was computed from.
    target = spawn_target(req)
    if target is not None and cached_fingerprint and not force and target.fingerprint == cached_fingerprint:
        return target.fingerprint, None
    facts = probe(req, target)
    return facts["fingerprint"], facts


class _Early(threading.Thread):
    """The probe of a direct run, started before Ansible's module code is imported: QEMU starts meanwhile. Not a
    daemon: whatever the module does, the interpreter waits for it, and so for QEMU's clean-up."""

    def __init__(self, request: tuple[ProbeRequest, str | None, bool]) -> None:
        super().__init__(name="cpu_probe")
        self.request = request
        self.result: tuple[str, dict[str, Any] | None] | None = None
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            self.result = _run(*self.request)
        except BaseException as exc:  # pylint: disable=broad-exception-caught  # raised again in the module's thread
            self.error = exc


def main() -> None:
    given = _given_params()
    early = _Early(_request(given)) if given is not None else None
    if early is not None:
        early.start()
    from ansible.module_utils.basic import AnsibleModule  # pylint: disable=import-outside-toplevel  # after QEMU started

    module = AnsibleModule(
        argument_spec=CPU_PROBE_ARGS,
        supports_check_mode=True,
    )
    request = _request(module.params)
    try:
        if early is not None and early.request == request:
            early.join()
            if early.error is not None:
                raise early.error
            if early.result is None:
                raise AssertionError("the early probe ended with neither a result nor an error")
            fingerprint, facts = early.result
        else:
            fingerprint, facts = _run(*request)
    except CpuCompatError as exc:
        module.fail_json(msg=f"CPU probe failed: {exc}")
    if facts is None:
        module.exit_json(changed=False, probed=False, freshness="fingerprint", fingerprint=fingerprint)
    module.exit_json(changed=False, probed=True, freshness="probed", fingerprint=fingerprint, ansible_facts={"cpucompat": facts})


if __name__ == "__main__":
    main()
