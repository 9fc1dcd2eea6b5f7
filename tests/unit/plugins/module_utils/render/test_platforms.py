# Copyright (c) 2026 cpucompat.cluster contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Every platform's rendering at once (what the reports show), and the filters over the renderers."""

from __future__ import annotations

import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.cpucompat.cluster.plugins.filter import platforms as filters
from ansible_collections.cpucompat.cluster.plugins.module_utils._errors import InputError
from ansible_collections.cpucompat.cluster.plugins.module_utils.engine._baseline import baseline_of
from ansible_collections.cpucompat.cluster.plugins.module_utils.render._platforms import PLATFORMS, render_platforms
from utils.recordings import facts_of

PAIR = ("x86_64-xeon-gold-6130", "x86_64-xeon-platinum-9242")


def _baseline():
    return baseline_of({n: facts_of(n, lv) for n, lv in zip(PAIR, ("system", "backports"))})


def test_every_platform_is_rendered_or_says_why_not() -> None:
    guest = _baseline().guest
    out = render_platforms(guest, PLATFORMS, options={"proxmox_name": "cluster_cpu", "incus_group": "hv"})
    assert list(out) == list(PLATFORMS) and all(v["ok"] for v in out.values())
    assert out["proxmox"]["rendering"]["vm_cpu"] == "custom-cluster_cpu"
    assert out["incus"]["rendering"]["commands"][0].startswith("incus cluster group set hv ")
    assert "<cpu mode='custom'" in out["libvirt"]["rendering"]["xml"]
    refused = render_platforms(guest, ["kubevirt"], options={"kubevirt_obsolete": list(guest.candidates)})
    assert refused == {"kubevirt": {"ok": False, "refused": refused["kubevirt"]["refused"]}}
    assert "obsolete CPU model" in refused["kubevirt"]["refused"]


def test_an_unknown_platform_is_an_error() -> None:
    with pytest.raises(InputError, match="unknown platforms 'vmware'"):
        render_platforms(_baseline().guest, ["nova", "vmware"])


def test_filters_take_a_baseline_and_a_pinned_level() -> None:
    base = _baseline().to_dict()
    registered = filters.FilterModule().filters()
    assert set(registered) == {"cpu_qemu_args", "cpu_proxmox", "cpu_nova", "cpu_kubevirt", "cpu_incus"}
    assert registered["cpu_qemu_args"](base).startswith("Skylake-Server-v2,")
    lower = dict(base["guest"], features=[f for f in base["guest"]["features"] if f != "pku"])
    pinned = {k: lower[k] for k in ("arch", "vendor", "model", "features", "machine", "phys_bits", "left_out")}
    assert "pku=off" in registered["cpu_qemu_args"](base, level=pinned)
    assert registered["cpu_nova"](base["guest"])["cpu_models"] == ["Skylake-Server-IBRS"]
    assert registered["cpu_kubevirt"](base, "cluster-cpu")["cluster_preference"]["metadata"]["name"] == "cluster-cpu"
    assert registered["cpu_incus"](base, "hv")["keys"]["instances.vm.cpu.x86_64.baseline"] == "Skylake-Server-v2"
    assert registered["cpu_proxmox"](base, "cluster_cpu")["reported_model"] == "Skylake-Server-IBRS"


@pytest.mark.parametrize("call, message", [
    (lambda: filters.cpu_qemu_args({"features": []}), "cpu_qemu_args: .*expected a guest CPU"),
    (lambda: filters.cpu_proxmox(_baseline().to_dict(), "Bad Name"), "cpu_proxmox: .*custom CPU model name"),
    (lambda: filters.cpu_kubevirt(_baseline().to_dict(), obsolete_models="qemu64"), "obsolete_models must be a list"),
    (lambda: filters.cpu_incus(_baseline().to_dict(), "two words"), "cpu_incus: .*cluster group name"),
    (lambda: filters.cpu_nova(_baseline().to_dict(), level={"arch": "s390x", "features": []}), "cpu_nova: .*s390x"),
], ids=["not-a-guest", "proxmox-name", "obsolete-string", "incus-group", "level-arch"])
def test_bad_input_is_named(call, message) -> None:
    with pytest.raises(AnsibleFilterError, match=message):
        call()
