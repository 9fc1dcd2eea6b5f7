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
    assert set(registered) == {"cpu_qemu_args", "cpu_proxmox", "cpu_nova", "cpu_kubevirt", "cpu_incus", "cpu_tiers"}
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


def _tiers() -> list[dict]:
    """A group of three recorded hosts (the base) with a tier of its two Skylake-SP hosts at Skylake-Server, as the contract
    step returns them (tier_guests)."""
    from ansible_collections.cpucompat.cluster.plugins.module_utils.cpu._libvirt_map import MapRegistry  # pylint: disable=import-outside-toplevel
    from ansible_collections.cpucompat.cluster.plugins.module_utils.engine._cluster import BaselineOptions  # pylint: disable=import-outside-toplevel
    from ansible_collections.cpucompat.cluster.plugins.module_utils.engine._hostcpu import HostCpu  # pylint: disable=import-outside-toplevel
    from ansible_collections.cpucompat.cluster.plugins.module_utils.engine._level import chosen_baseline, parse_level  # pylint: disable=import-outside-toplevel
    facts = {n: facts_of(n) for n in ("x86_64-xeon-e5-2650-v4", *PAIR)}
    base = baseline_of(facts).guest
    high = chosen_baseline(parse_level("Skylake-Server"), [HostCpu.from_facts(n, facts[n]) for n in PAIR], BaselineOptions(),
                           MapRegistry()).guest
    return [{"name": "base", "guest": base.to_dict(), "cpu": None, "hosts": list(facts)},
            {"name": "avx512", "guest": high.to_dict(), "cpu": None, "hosts": list(PAIR)}]


def test_the_tiers_filter_renders_every_tier_at_once() -> None:
    """cpu_tiers: KubeVirt's preference and node label per tier, Proxmox's model per tier in one cpu-models.conf, each
    tier's rendering its platform's own for the tier's CPU; Nova's ordered cpu_models per compute host."""
    tiers = _tiers()
    kubevirt = filters.cpu_tiers(tiers, "kubevirt", preference="cluster-cpu")
    assert [t["cluster_preference"]["metadata"]["name"] for t in kubevirt["tiers"].values()] == ["cluster-cpu", "cluster-cpu-avx512"]
    assert kubevirt["tiers"]["avx512"]["node_selector"]["cpucompat.cluster/tier-avx512"] == "true"
    assert set(kubevirt["node_labels"]) == {"x86_64-xeon-e5-2650-v4", *PAIR}
    assert "cpucompat.cluster/tier-avx512" not in kubevirt["node_labels"]["x86_64-xeon-e5-2650-v4"]
    proxmox = filters.cpu_tiers(tiers, "proxmox", name="cluster_cpu")
    assert [t["name"] for t in proxmox["tiers"].values()] == ["cluster_cpu", "cluster_cpu_avx512"]
    assert proxmox["tiers"]["avx512"]["nodes"] == list(PAIR)
    assert proxmox["cpu_models_conf"].count("cpu-model: ") == 2
    alone = filters.cpu_proxmox(tiers[1]["guest"], "cluster_cpu_avx512")
    assert proxmox["tiers"]["avx512"]["cpu_models_conf"] == alone["cpu_models_conf"], "a tier's model is its own rendering"
    with pytest.raises(AnsibleFilterError, match="cpu_tiers: OpenStack Nova: tier base .*cannot take the other tiers'"):
        filters.cpu_tiers(tiers, "nova")
    with pytest.raises(AnsibleFilterError, match="cpu_tiers: kubevirt: the tiers to render start with the base tier \\(got avx512\\)"):
        filters.cpu_tiers(tiers[1:], "kubevirt")
    with pytest.raises(AnsibleFilterError, match="no rendering of tiers for platform 'incus'"):
        filters.cpu_tiers(tiers, "incus")
    with pytest.raises(AnsibleFilterError, match="must be a list of tiers"):
        filters.cpu_tiers({"base": {}}, "nova")


def test_nova_tiers_give_each_compute_host_its_models() -> None:
    """Nova's tiers per compute host: the base's model on every host, the tier's after it on the tier's hosts only; the
    page's text has a section per set of hosts and each tier's flavor extra specs."""
    from ansible_collections.cpucompat.cluster.plugins.module_utils.cpu._libvirt_map import MapRegistry  # pylint: disable=import-outside-toplevel
    from ansible_collections.cpucompat.cluster.plugins.module_utils.engine._cluster import BaselineOptions  # pylint: disable=import-outside-toplevel
    from ansible_collections.cpucompat.cluster.plugins.module_utils.engine._hostcpu import HostCpu  # pylint: disable=import-outside-toplevel
    from ansible_collections.cpucompat.cluster.plugins.module_utils.engine._level import chosen_baseline, parse_level  # pylint: disable=import-outside-toplevel
    from ansible_collections.cpucompat.cluster.plugins.module_utils.render._platform_tiers import nova_tiers  # pylint: disable=import-outside-toplevel
    facts = {n: facts_of(n) for n in ("x86_64-xeon-e5-2650-v4", *PAIR)}
    hosts = [HostCpu.from_facts(n, f) for n, f in facts.items()]
    base = baseline_of(facts).guest
    level = "Skylake-Server,+ss,+tsc-adjust,+arat,+vme,+pdpe1gb,+hypervisor,-pku,-clflushopt"
    high = chosen_baseline(parse_level(level), hosts[1:], BaselineOptions(), MapRegistry()).guest
    out = nova_tiers([("base", base, list(facts)), ("avx512", high, list(PAIR))])
    low, top = out["cpu_models"]
    assert out["hosts"]["x86_64-xeon-e5-2650-v4"]["cpu_models"] == [low]
    assert all(out["hosts"][h]["cpu_models"] == [low, top] and out["hosts"][h]["tiers"] == ["base", "avx512"] for h in PAIR)
    assert out["tiers"]["avx512"]["flavor_extra_specs"]["trait:HW_CPU_X86_AVX512F"] == "required"
    assert f"cpu_models = {low}, {top}\n" in out["ini"] and f"# flavors of tier avx512 (model {top}) need the extra specs trait:HW_CPU_X86_" in out["ini"]
