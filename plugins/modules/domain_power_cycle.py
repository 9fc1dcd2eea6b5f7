#!/usr/bin/python
# Copyright (c) 2026 cpucompat.cluster contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: domain_power_cycle
short_description: Bring running libvirt domains onto the CPU of their definition, one batch on one host
version_added: 0.3.0
description:
  - A running guest keeps the CPU it started with until its QEMU process ends; a reboot inside the guest or a live
    migration keeps it. This module applies the persistent definition's C(<cpu>) to a batch of running domains of one
    host, in one of two modes (O(mode)). It never uses C(virsh reboot).
  - V(now) asks every domain of the batch to shut down (libvirt's default way - the guest agent where it answers, else
    the ACPI power button - asked again every few seconds), and starts each as soon as it is off. A domain still running
    after O(timeout) seconds is left running and reported (C(timeout)), unless O(force) destroys it. After each start, the
    health gate - the domain runs, its guest agent answers C(guest-ping) where the domain has an C(org.qemu.guest_agent.0)
    channel, and O(health_command) exits 0 - and a failed gate is reported (C(gate-failed), RV(gate_failed)); the playbook
    stops the run there.
  - V(next_shutdown) changes nothing in the guest. It makes a reboot inside the guest end the domain (the live
    C(on_reboot) becomes C(destroy); the persistent definition is untouched, so the setting ends with the QEMU process
    and the next start runs with the definition's own), so that the next start applies the new CPU.
  - Each domain's CPU before and after - the C(<cpu>) of its live definition and, with O(observe), the CPUID words its
    vCPU has, read through the running QEMU's monitor (libvirt marks a domain so read as C(custom-monitor) tainted).
  - Used by the C(cpucompat.cluster.power_cycle) playbook, which plans the batches and keeps the progress.
extends_documentation_fragment:
  - cpucompat.cluster.libvirt
attributes:
  check_mode:
    support: full
    description: Says what each domain would get; nothing is shut down, started or armed.
  diff_mode:
    support: none
    description: No diff; the result lists each domain's CPU before (and after).
options:
  names:
    description: The domains of this host in the batch.
    type: list
    elements: str
    required: true
  mode:
    description: V(now) shuts down and starts them; V(next_shutdown) makes a reboot inside each guest end its domain.
    type: str
    choices: [next_shutdown, now]
    default: next_shutdown
  timeout:
    description: Seconds a guest has to shut down (V(now)).
    type: float
    default: 300
  force:
    description: Destroy a guest that did not shut down within O(timeout) (V(now)); else it is left running.
    type: bool
    default: false
  health_command:
    description:
      - A command run on the host after each start (V(now)), with the domain's name in the environment variable
        C(CPUCOMPAT_DOMAIN); a non-zero exit fails the gate. A list is the argv; a string is split as a shell would.
    type: raw
  agent_timeout:
    description: Seconds the guest agent has to answer after a start, where the domain has an agent channel.
    type: float
    default: 60
  observe:
    description: Read each guest's vCPU CPUID words through its QEMU before and after (x86_64).
    type: bool
    default: true
"""

EXAMPLES = r"""
- name: Shut down and start web1 and web2, 120 s each to stop
  cpucompat.cluster.domain_power_cycle:
    names: [web1, web2]
    mode: now
    timeout: 120
    health_command: [/usr/local/bin/check-web, --quick]
"""

RETURN = r"""
domains:
  description:
    - One entry per domain of O(names), in order - C(name), C(state) (C(done), C(gate-failed), C(timeout), C(armed),
      C(shut-off), C(error), C(planned) in check mode), C(why), the epoch times C(shutdown_at), C(stopped_at),
      C(started_at), C(gate_at), C(down_s) (off to started) and C(unavailable_s) (shutdown asked to started), C(forced),
      C(gate), C(cpu_before) and C(cpu_after) (live C(<cpu>)), C(observed_before) and C(observed_after) (C(cpuid) words).
  returned: always
  type: list
  elements: dict
gate_failed:
  description: The domains whose health gate failed.
  returned: always
  type: list
  elements: str
"""

import json
import os
import shlex
import subprocess
import time
import xml.etree.ElementTree as ET
from typing import Any

from ansible.module_utils.basic import AnsibleModule, missing_required_lib

from ansible_collections.cpucompat.cluster.plugins.module_utils._errors import CpuCompatError
from ansible_collections.cpucompat.cluster.plugins.module_utils.deploy._cycle import CycleOptions, run_batch
from ansible_collections.cpucompat.cluster.plugins.module_utils.deploy._domain import connection
from ansible_collections.cpucompat.cluster.plugins.module_utils.deploy._libvirt_import import HAS_LIBVIRT, LIBVIRT_ARGS, LIBVIRT_IMPORT_ERROR
from ansible_collections.cpucompat.cluster.plugins.module_utils.probe._observe import read_vcpu


def _observe(libvirt: Any, libvirt_qemu: Any) -> Any:
    def observe(dom: Any) -> dict[str, Any] | None:
        arch = ET.fromstring(dom.XMLDesc(0)).find("./os/type")
        arch_name = arch.get("arch") if arch is not None else None
        if arch_name != "x86_64":
            return None

        def execute(command: str, arguments: dict[str, Any] | None) -> Any:
            msg = {"execute": command, **({"arguments": arguments} if arguments is not None else {})}
            reply = json.loads(libvirt_qemu.qemuMonitorCommand(dom, json.dumps(msg), 0))
            if "error" in reply:
                raise CpuCompatError(f"domain {dom.name()}: QEMU rejected {command}: {reply['error'].get('desc')}")
            return reply.get("return")

        vcpu = read_vcpu(execute, arch_name)
        return {"cpuid": vcpu["cpuid"], "filtered": vcpu["filtered"]}
    return observe


def _agent(libvirt: Any, libvirt_qemu: Any) -> Any:
    def agent(dom: Any, timeout: float) -> str | None:
        deadline, why = time.monotonic() + timeout, "no answer"
        while True:
            try:
                libvirt_qemu.qemuAgentCommand(dom, '{"execute":"guest-ping"}', 5, 0)
                return None
            except libvirt.libvirtError as exc:
                why = exc.get_error_message()
            if time.monotonic() >= deadline:
                return why
            time.sleep(1)
    return agent


def _command(argv: Any, name: str) -> tuple[int, str]:
    try:
        done = subprocess.run(list(argv), capture_output=True, text=True, check=False, timeout=600,
                              env={**os.environ, "CPUCOMPAT_DOMAIN": name})
    except (OSError, subprocess.TimeoutExpired) as exc:
        return 127, str(exc)
    return done.returncode, (done.stdout + done.stderr)


def main() -> None:
    module = AnsibleModule(
        argument_spec=dict(
            **LIBVIRT_ARGS,
            names=dict(type="list", elements="str", required=True),
            mode=dict(type="str", default="next_shutdown", choices=["next_shutdown", "now"]),
            timeout=dict(type="float", default=300),
            force=dict(type="bool", default=False),
            health_command=dict(type="raw"),
            agent_timeout=dict(type="float", default=60),
            observe=dict(type="bool", default=True),
        ),
        supports_check_mode=True,
    )
    if not HAS_LIBVIRT:
        module.fail_json(msg=missing_required_lib("libvirt-python"), exception=LIBVIRT_IMPORT_ERROR)
    import libvirt  # pylint: disable=import-outside-toplevel
    import libvirt_qemu  # pylint: disable=import-outside-toplevel,import-error  # shipped with libvirt-python

    p = module.params
    command = p["health_command"]
    argv = shlex.split(command) if isinstance(command, str) else [str(a) for a in command or []]
    opts = CycleOptions(mode=p["mode"], timeout=p["timeout"], force=p["force"], health_command=tuple(argv),
                        agent_timeout=p["agent_timeout"], check_mode=module.check_mode)
    try:
        with connection(p["uri"]) as conn:
            results = run_batch(libvirt, conn, p["names"], opts, _observe(libvirt, libvirt_qemu) if p["observe"] else None,
                                _agent(libvirt, libvirt_qemu), _command)
    except CpuCompatError as exc:
        module.fail_json(msg=f"power cycle of {', '.join(p['names'])} failed: {exc}", domains=[])
    failed = [r["name"] for r in results if r.get("state") == "gate-failed"]
    changed = any(r.get("state") in ("done", "gate-failed") or r.get("changed") for r in results)
    module.exit_json(changed=changed, domains=results, gate_failed=failed)


if __name__ == "__main__":
    main()
