# Copyright (c) 2026 cpucompat.cluster contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Real libvirt domains for tests: defined on qemu:///system, removed afterwards."""

from __future__ import annotations

import os
import re
import subprocess
import time
import uuid

from ansible_collections.cpucompat.cluster.plugins.module_utils.probe._fingerprint import kvm_usable

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

URI = "qemu:///system"
VIRTTYPE = "kvm" if kvm_usable() else "qemu"


def cpu_element(domain_xml: str) -> str:
    """The text of the top-level <cpu> element (never the collection's <cpucompat:cpu> stamp)."""
    match = re.search(r"<cpu(?:\s[^>]*)?(?:/>|>.*?</cpu>)", domain_xml, re.S)
    assert match, "the definition has no <cpu>"
    return match.group(0)


def without_cpu_and_stamp(domain_xml: str) -> str:
    """The definition without its <cpu> and without the collection's stamp (the <metadata> holding only it too)."""
    text = domain_xml.replace(cpu_element(domain_xml), "")
    text = re.sub(r"\n\s*<metadata>\s*<cpucompat:cpu [^>]*>[^<]*</cpucompat:cpu>\s*</metadata>", "", text)
    return re.sub(r"\s*<cpucompat:cpu [^>]*>[^<]*</cpucompat:cpu>", "", text)


def virsh(*args: str, check: bool = False) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["virsh", "-c", URI, *args], capture_output=True, text=True, check=check, timeout=120)


# What OpenStack Nova and others keep in a definition: other applications' namespaces, QEMU pass-through arguments.
NOVA_EXTRAS = {
    "root_attrs": " xmlns:qemu='http://libvirt.org/schemas/domain/qemu/1.0'",
    "metadata": """<metadata>
    <nova:instance xmlns:nova="http://openstack.org/xmlns/libvirt/nova/1.1">
      <nova:package version="29.0.0"/>
      <nova:name>web-1</nova:name>
      <nova:flavor name="m1.small"><nova:memory>64</nova:memory><nova:vcpus>1</nova:vcpus></nova:flavor>
      <nova:owner><nova:user uuid="5f0e2b1c">admin</nova:user></nova:owner>
    </nova:instance>
    <app:tags xmlns:app="http://example.org/xmlns/app/1"><app:tag>blue</app:tag></app:tags>
  </metadata>""",
    "tail": "<qemu:commandline><qemu:arg value='-no-user-config'/></qemu:commandline>",
}


# Another application's metadata and QEMU pass-through arguments, without Nova's.
APP_EXTRAS = {
    "root_attrs": " xmlns:qemu='http://libvirt.org/schemas/domain/qemu/1.0'",
    "metadata": """<metadata>
    <app:tags xmlns:app="http://example.org/xmlns/app/1"><app:tag>blue</app:tag></app:tags>
  </metadata>""",
    "tail": "<qemu:commandline><qemu:arg value='-no-user-config'/></qemu:commandline>",
}
OPTED_OUT = {"metadata": """<metadata>
    <cpucompat:cpu xmlns:cpucompat="https://github.com/cpucompat/cluster/xmlns/1" manage="no"/>
  </metadata>"""}


def domain_xml(name: str, cpu: str = "", root_attrs: str = "", metadata: str = "", tail: str = "", *, arch: str = "x86_64",
               machine: str = "pc", emulator: str = "/usr/bin/qemu-system-x86_64", virttype: str = VIRTTYPE) -> str:
    """A small test domain (no disk); other architectures run under TCG (``virttype='qemu'``)."""
    features = "<features><acpi/></features>" if arch == "x86_64" else ""
    return f"""<domain type='{virttype}'{root_attrs}>
  <name>{name}</name>
  <description>cpucompat test domain</description>
  {metadata}
  <memory unit='MiB'>64</memory>
  <vcpu>1</vcpu>
  <os><type arch='{arch}' machine='{machine}'>hvm</type></os>
  {features}
  {cpu}
  <on_poweroff>destroy</on_poweroff>
  <devices><emulator>{emulator}</emulator></devices>
  {tail}
</domain>
"""


def define(tmp_path, cpu: str = "", prefix: str = "cpucompat-test", **extras: str) -> str:
    name = f"{prefix}-{uuid.uuid4().hex[:8]}"
    path = tmp_path / f"{name}.xml"
    path.write_text(domain_xml(name, cpu, **extras))
    virsh("define", str(path), check=True)
    return name


def remove(name: str) -> None:
    virsh("destroy", name)
    virsh("undefine", name)


def ensure_libvirtd() -> None:
    """Start libvirtd again (fault tests stop it) and wait until it answers."""
    if virsh("version").returncode == 0:
        return
    for _attempt in range(100):  # a stopped daemon may still be shutting down
        if subprocess.run(["pgrep", "-x", "libvirtd"], capture_output=True, check=False).returncode != 0:
            break
        time.sleep(0.1)
    # Under the subreaper, as tools/setup.sh starts it (else every later domain destroy waits for PID 1 to reap).
    subprocess.run(["bash", os.path.join(ROOT, "tools", "start-libvirtd.sh")], check=True)
    for _attempt in range(100):
        if virsh("version").returncode == 0:
            return
        time.sleep(0.1)
    raise RuntimeError("libvirtd does not answer")


def live_cycle(tmp_path, cpu_xml: str, emulator: str = "/usr/bin/qemu-system-x86_64", machine: str = "pc",
               arch: str = "x86_64", virttype: str = VIRTTYPE) -> str:
    """Define a domain on ``cpu_xml``, start it paused (libvirt checks its CPU with check='full'), save it, restore it
    (libvirt's incoming path), and remove it; the live XML of the restored guest."""
    name = f"cpucompat-live-{uuid.uuid4().hex[:8]}"
    path = tmp_path / f"{name}.xml"
    path.write_text(domain_xml(name, cpu_xml, arch=arch, machine=machine, emulator=emulator, virttype=virttype))
    saved = tmp_path / f"{name}.save"
    try:
        virsh("define", str(path), check=True)
        for step in (("start", "--paused", name), ("save", name, str(saved)), ("restore", str(saved), "--paused")):
            done = virsh(*step)
            assert done.returncode == 0, f"libvirt refused to {step[0]} the CPU: {done.stderr}\n{cpu_xml}"
        assert virsh("domstate", name).stdout.strip() == "paused"
        return virsh("dumpxml", name, check=True).stdout
    finally:
        remove(name)
        if saved.exists():
            saved.unlink()
