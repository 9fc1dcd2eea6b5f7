# Copyright (c) 2026 cpucompat.cluster contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""OpenStack Nova's [libvirt] CPU options, judged by what reads them.

- The ``<cpu>`` Nova builds from them (every listed model with all the extra flags), through the libvirt judges of
  ``test_exact_cpu``: QEMU 7.2 and 10.0 expanding what libvirt 9.0 and 11.3 pass, and each map's own expectation.
- Nova's start-up check, made with Nova's exact libvirt calls against this machine's libvirtd (``nova_cpu_check``):
  passes for a group of this machine's own facts, refuses a modern recorded group, naming the model.
- Nova's own code (nova from PyPI in ``.cache/nova-venv``, tools/platforms.sh): ``nova.conf.CONF`` reads the rendered
  section and ``LibvirtDriver._check_cpu_compatibility`` runs on a stub carrying a real ``Host``.
- The nova role: check mode, real run, second run, on a test nova.conf; a host that refuses is never written.
"""

from __future__ import annotations

import json
import subprocess

import libvirt
import pytest

from ansible_collections.cpucompat.cluster.plugins.module_utils.deploy._ini import get_options
from ansible_collections.cpucompat.cluster.plugins.module_utils.deploy._nova_check import check
from ansible_collections.cpucompat.cluster.plugins.module_utils.engine._baseline import baseline_of
from ansible_collections.cpucompat.cluster.plugins.module_utils._errors import RenderError
from ansible_collections.cpucompat.cluster.plugins.module_utils.cpu._libvirt_map import MapRegistry
from ansible_collections.cpucompat.cluster.plugins.module_utils.engine._cluster import BaselineOptions
from ansible_collections.cpucompat.cluster.plugins.module_utils.engine._hostcpu import HostCpu
from ansible_collections.cpucompat.cluster.plugins.module_utils.engine._level import chosen_baseline, parse_level
from ansible_collections.cpucompat.cluster.plugins.module_utils.render import _nova, _nova_tiers
from ansible_collections.cpucompat.cluster.plugins.module_utils.render._cpuspec import CpuSpec
from conftest import KVM
from integration.helpers import run_playbook
from integration.libvirt_helpers import URI, ensure_libvirtd
from utils import judges, platform_judges, stacks
from utils.recordings import facts_of

SYSTEM, BACKPORTS = stacks.by_name("system"), stacks.by_name("backports")
MODERN = ("x86_64-xeon-gold-6130", "x86_64-xeon-platinum-9242")


@pytest.fixture
def conn():
    """A connection of the test's own: a test of another process may stop libvirtd between two tests
    (tests/utils/libvirtd_lock.py keeps it from doing so during one)."""
    ensure_libvirtd()
    connection = libvirt.open(URI)
    yield connection
    connection.close()


def _mine():
    """A group of this machine's own facts (the system stack, the one its libvirtd runs)."""
    return baseline_of(dict(platform_judges.this_machine(("system",)))).guest


def _modern():
    return baseline_of({n: facts_of(n, lv) for n, lv in zip(MODERN, stacks.NAMES)}).guest


# ------------------------------------------------------------------------------------------------ the property test
@KVM
def test_every_group_is_exact_with_every_model_listed(qemu_judges) -> None:
    """For every group: every model of cpu_models with all the extra flags, as Nova writes it, means exactly the pinned
    set to QEMU 7.2 and 10.0 through libvirt 9.0 and 11.3 (fresh start and incoming migration)."""
    problems, groups, models = {}, 0, 0
    for name, names, guest, error, _hosts in platform_judges.property_groups(*qemu_judges):
        assert guest is not None, f"{name}: {error}"
        cpu = _nova.render(guest)
        own = [j for j in qemu_judges if j.stack.name in names]
        maps = [stacks.by_name(n).cpu_map for n in names]
        for model in cpu.models:
            found = judges.verdict(CpuSpec.parse(cpu.xml(model)), guest.features, own, maps)
            if found:
                problems[f"{name}: {model}"] = found
        groups += 1
        models += len(cpu.models)
    assert not problems, f"{len(problems)} of {groups} groups are not exact:\n" + json.dumps(problems, indent=1)[:4000]
    print(f"nova: {groups} groups, {models} models listed, 100 % exact on QEMU 7.2/10.0 through libvirt 9.0/11.3")
    assert groups >= 150


@KVM
@pytest.mark.parametrize("libvirt", [("system", "system"), ("backports", "backports"), ("system", "backports")],
                         ids=["9.0", "11.3", "mixed"])
def test_recorded_groups_are_exact_with_every_model_listed(libvirt, qemu_judges) -> None:
    """Where every libvirt knows QEMU's versioned names (11.3), both the alias and the versioned name are listed, and
    each, with all the extra flags, is exact."""
    guest = baseline_of({n: facts_of(n, lv) for n, lv in zip(MODERN, libvirt)}).guest
    cpu = _nova.render(guest)
    assert len(cpu.models) == (2 if libvirt == ("backports", "backports") else 1), cpu.models
    maps = [stacks.by_name(n).cpu_map for n in sorted(set(libvirt))]
    for model in cpu.models:
        assert not judges.verdict(CpuSpec.parse(cpu.xml(model)), guest.features, qemu_judges, maps), model


# ------------------------------------------------------------------------------------------------ Nova's libvirt calls
@KVM
def test_nova_calls_pass_for_a_cpu_this_machine_runs(conn) -> None:
    cpu = _nova.render(_mine())
    results = check(conn, cpu.models, cpu.extra_flags, "kvm", libvirt.libvirtError)
    assert results and all(r.ok for r in results), [r.to_dict() for r in results]
    assert all(r.result in ("identical", "superset") for r in results)


def test_nova_calls_refuse_a_modern_group_naming_the_model(conn) -> None:
    """This machine's nested KVM runs only pentium-era models: libvirt refuses a Skylake-SP group's CPU."""
    cpu = _nova.render(_modern())
    results = check(conn, cpu.models, cpu.extra_flags, "kvm", libvirt.libvirtError)
    refused = [r for r in results if not r.ok]
    assert refused and refused[0].model == cpu.models[0] and cpu.models[0] in refused[0].message, [r.to_dict() for r in results]


def test_nova_calls_look_models_up_as_nova_does(conn) -> None:
    """Case-insensitively among libvirt's names; an unknown model is refused by name."""
    results = check(conn, ["PENTIUM3", "cpucompat-no-such-model"], [], "qemu", libvirt.libvirtError)
    assert results[0].libvirt_model == "pentium3" and results[0].result == "not compared"
    assert results[1].result == "unknown model" and "cpucompat-no-such-model" in results[1].message


# ------------------------------------------------------------------------------------------------ Nova's own code
@pytest.fixture(scope="module")
def nova_code():
    blocked = platform_judges.nova_tier_blocked()
    if blocked:
        pytest.skip(f"Nova's own code cannot run: {blocked}")


def _conf(cpu: _nova.NovaCpu) -> str:
    return "[DEFAULT]\n" + cpu.ini + "virt_type = kvm\n"


@KVM
@pytest.mark.usefixtures("nova_code")
def test_nova_itself_starts_on_a_cpu_this_machine_runs(tmp_path) -> None:
    cpu = _nova.render(_mine())
    out = platform_judges.nova_tier(_conf(cpu), tmp_path)
    assert out["cpu_mode"] == "custom" and out["cpu_models"] == list(cpu.models)
    assert out["cpu_model_extra_flags"] == cpu.extra_flags
    assert out["result"] == "compatible", out
    built = CpuSpec.parse(out["xml"])  # the <cpu> Nova gives an instance: the one nova_cpu_check asks about
    assert built.key() == CpuSpec.parse(cpu.xml(cpu.models[0])).key()


@pytest.mark.usefixtures("nova_code")
def test_nova_itself_refuses_a_modern_group_naming_the_model(tmp_path) -> None:
    cpu = _nova.render(_modern())
    out = platform_judges.nova_tier(_conf(cpu), tmp_path)
    assert out["result"] == "InvalidCPUInfo" and cpu.models[0] in out["message"], out


# ------------------------------------------------------------------------------------------------ the role
NOVA_CONF = """[DEFAULT]
debug = true
# the operators' own comment
[libvirt]
virt_type = kvm
cpu_mode = host-model
cpu_model = Haswell
images_type = qcow2

[neutron]
url = http://controller:9696
"""

PLAY = """
- hosts: localhost
  gather_facts: false
  roles:
    - role: cpucompat.cluster.nova
      vars:
        cpucompat_guest_cpu: "{{ lookup('ansible.builtin.file', guest_file) | from_json }}"
        cpucompat_nova_conf: "{{ conf }}"
        cpucompat_nova_restart: false
"""


def _extra(tmp_path, guest, **more) -> dict:
    """Extra variables of a run; the guest CPU in a file (its libvirt maps are too long for one argument)."""
    path = tmp_path / "guest.json"
    path.write_text(json.dumps(guest.to_dict()))
    return {"guest_file": str(path), **more}


def test_role_applies_idempotently_in_check_and_real_mode(tmp_path) -> None:
    ensure_libvirtd()
    conf = tmp_path / "nova.conf"
    conf.write_text(NOVA_CONF)
    guest = _mine()
    cpu = _nova.render(guest)
    extra = _extra(tmp_path, guest, conf=str(conf))
    if judges.ACCEL != "kvm":
        extra["cpucompat_nova_virt_type"] = "qemu"  # without KVM, Nova compares nothing either
    checked = run_playbook(PLAY, tmp_path, extra=extra, check=True, diff=True)
    assert checked.returncode == 0 and "changed=1" in checked.stdout, checked.stdout[-3000:]
    assert conf.read_text() == NOVA_CONF, "check mode wrote nothing"
    first = run_playbook(PLAY, tmp_path, extra=extra)
    assert first.returncode == 0 and "changed=1" in first.stdout, first.stdout[-3000:]
    assert "RUNNING HANDLER [cpucompat.cluster.nova : Restart nova-compute]" in first.stdout
    written = conf.read_text()
    assert get_options(written, "libvirt") == {"virt_type": "kvm", "cpu_mode": "custom", "cpu_models": ", ".join(cpu.models),
                                               "cpu_model_extra_flags": ", ".join(cpu.extra_flags), "images_type": "qcow2"}
    assert written.replace(cpu.ini.split("\n", 1)[1], "").splitlines() == [
        line for line in NOVA_CONF.splitlines() if not line.startswith(("cpu_mode", "cpu_model "))], "every other line kept"
    second = run_playbook(PLAY, tmp_path, extra=extra)
    assert second.returncode == 0 and "changed=0" in second.stdout, second.stdout[-3000:]
    assert "RUNNING HANDLER" not in second.stdout
    if platform_judges.nova_tier_blocked() is None and judges.ACCEL == "kvm":
        (tmp_path / "tier").mkdir()
        out = platform_judges.nova_tier(written, tmp_path / "tier")
        assert out["result"] == "compatible" and out["cpu_models"] == list(cpu.models), out


@KVM
def test_role_never_writes_a_cpu_the_host_refuses(tmp_path) -> None:
    ensure_libvirtd()
    conf = tmp_path / "nova.conf"
    conf.write_text(NOVA_CONF)
    done = run_playbook(PLAY, tmp_path, extra=_extra(tmp_path, _modern(), conf=str(conf)))
    assert done.returncode != 0 and "Nova would refuse to start on this host" in done.stdout, done.stdout[-3000:]
    assert _nova.render(_modern()).models[0] in done.stdout
    assert conf.read_text() == NOVA_CONF and "RUNNING HANDLER" not in done.stdout


# ------------------------------------------------------------------------------------------------ tiers
NOVA_TIERS = r"""
import json, sys, types
import nova.conf
from nova import objects
from nova.virt.libvirt import driver, host, utils
objects.register_all()
conf_file, uri, specs = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
CONF = nova.conf.CONF
CONF(["--config-file", conf_file], project="nova", default_config_files=[])
stub = types.SimpleNamespace(_host=host.Host(uri, read_only=False), cpu_models_mapping={}, cpu_model_flag_mapping={})
for name in ("_get_cpu_model_mapping", "_prepare_cpu_flag", "_get_guest_cpu_model_config", "_match_cpu_model_by_flags", "_get_cpu_info",
             "_get_guest_baseline_cpu_features", "_get_cpu_feature_traits"):
    setattr(stub, name, getattr(driver.LibvirtDriver, name).__get__(stub))
out = {"mapping": {k: list(v) if isinstance(v, tuple) else [v] for k, v in utils.CPU_TRAITS_MAPPING.items()},
       "traits": sorted(t for t, on in stub._get_cpu_feature_traits().items() if on), "models": {}}
for tier, extra in specs.items():
    flavor = objects.Flavor(extra_specs=extra, vcpus=1, memory_mb=64, root_gb=1, ephemeral_gb=0, swap=0)
    out["models"][tier] = stub._get_guest_cpu_model_config(flavor, "x86_64").model
print("NOVA-TIERS " + json.dumps(out))
"""


def _nova_on_tiers(options: dict, specs: dict, tmp_path) -> dict:
    conf = tmp_path / "nova.conf"
    conf.write_text("[DEFAULT]\n[libvirt]\n" + "".join(f"{k} = {v}\n" for k, v in options.items()) + "virt_type = kvm\n")
    script = tmp_path / "nova_tiers.py"
    script.write_text(NOVA_TIERS)
    done = subprocess.run([platform_judges.NOVA_PYTHON, str(script), str(conf), URI, json.dumps(specs)], capture_output=True,
                          text=True, timeout=300, check=False)
    line = next((ln for ln in done.stdout.splitlines() if ln.startswith("NOVA-TIERS ")), None)
    assert line is not None, done.stderr[-3000:]
    return json.loads(line.removeprefix("NOVA-TIERS "))


@pytest.mark.usefixtures("nova_code")
def test_nova_itself_gives_each_tiers_flavor_its_tiers_model(tmp_path) -> None:
    """Two tiers of recorded hosts: Nova's own trait mapping is ours; on a host of both tiers, a flavor with the high
    tier's extra specs gets the high tier's model and a plain flavor the base's; a base-only host reports none of the
    high tier's traits (placement never sends the tier's flavors there)."""
    facts = {n: facts_of(n) for n in ("x86_64-xeon-e5-2650-v4", *MODERN)}
    base = baseline_of(facts).guest
    high_hosts = [HostCpu.from_facts(n, facts[n]) for n in MODERN]
    level = "Skylake-Server,+ss,+tsc-adjust,+arat,+vme,+pdpe1gb,+hypervisor,-pku,-clflushopt"
    high = chosen_baseline(parse_level(level), high_hosts, BaselineOptions(), MapRegistry()).guest
    tiers = _nova_tiers.render_tiers([("base", base), ("avx512", high)])
    specs = {t.name: t.flavor_extra_specs for t in tiers.tiers}
    assert specs["base"] == {} and specs["avx512"]["trait:HW_CPU_X86_AVX512F"] == "required"
    both = _nova_on_tiers(tiers.options(["avx512"]), specs, tmp_path)
    assert {k: tuple(v) for k, v in both["mapping"].items()} == _nova_tiers.CPU_TRAITS, "our copy of Nova's mapping"
    assert both["models"] == {"base": tiers.tiers[0].model, "avx512": tiers.tiers[1].model}
    wanted = {k.removeprefix("trait:") for k in specs["avx512"]}
    assert wanted <= set(both["traits"])
    base_only = _nova_on_tiers(tiers.options([]), {"base": {}}, tmp_path)
    assert base_only["models"] == {"base": tiers.tiers[0].model} and not wanted & set(base_only["traits"])
    # Tiers whose flags Nova cannot apply to both models are refused, naming the flags.
    auto = baseline_of({n: facts[n] for n in MODERN}).guest
    with pytest.raises(RenderError) as err:
        _nova_tiers.render_tiers([("base", base), ("avx512", auto)])
    assert "tier base (model" in str(err.value) and "+pku" in str(err.value)


TIER_PLAY = """
- hosts: localhost
  gather_facts: false
  roles:
    - role: cpucompat.cluster.nova
      vars:
        cpucompat_guest_tiers: "{{ lookup('ansible.builtin.file', tiers_file) | from_json }}"
        cpucompat_guest_cpu: "{{ cpucompat_guest_tiers[0].guest }}"
        cpucompat_nova_conf: "{{ conf }}"
        cpucompat_nova_restart: false
"""


def test_role_writes_each_compute_host_its_tiers_models_and_nova_picks_them(tmp_path) -> None:
    """A two-tier group through the nova role: this machine at pentium2 (the base, with another host) and at pentium3
    (tier high, this machine only), the same flags. The role checks both models with Nova's calls, writes them in order
    (base first) and says the high tier's flavor traits; a second run changes nothing. Nova's own code then gives a
    flavor with the high tier's extra specs pentium3, and a plain flavor pentium2, from the written nova.conf."""
    ensure_libvirtd()
    facts = dict(platform_judges.this_machine(("system",)))
    hosts = [HostCpu.from_facts(n, f) for n, f in facts.items()]
    low, high = (chosen_baseline(parse_level(level), hosts, BaselineOptions(), MapRegistry()).guest for level in ("pentium2", "pentium3"))
    tiers = [{"name": "base", "guest": low.to_dict(), "cpu": None, "hosts": ["localhost", "base-only"]},
             {"name": "high", "guest": high.to_dict(), "cpu": None, "hosts": ["localhost"]}]
    (tmp_path / "tiers.json").write_text(json.dumps(tiers))
    conf = tmp_path / "nova.conf"
    conf.write_text("[DEFAULT]\ndebug = true\n")
    extra = {"tiers_file": str(tmp_path / "tiers.json"), "conf": str(conf)}
    if judges.ACCEL != "kvm":
        extra["cpucompat_nova_virt_type"] = "qemu"
    first = run_playbook(TIER_PLAY, tmp_path, extra=extra)
    assert first.returncode == 0 and "changed=1" in first.stdout, first.stdout[-3000:]
    options = get_options(conf.read_text(), "libvirt")
    assert options == {"cpu_mode": "custom", "cpu_models": "pentium2, pentium3", "cpu_model_extra_flags": "+apic, +hypervisor, +x2apic"}
    assert "Flavors of tier high (model pentium3) need the extra specs trait:HW_CPU_X86_SSE=required" in first.stdout, first.stdout[-3000:]
    second = run_playbook(TIER_PLAY, tmp_path, extra=extra)
    assert second.returncode == 0 and "changed=0" in second.stdout, second.stdout[-3000:]
    if platform_judges.nova_tier_blocked() is None:
        made = _nova_tiers.render_tiers([("base", low), ("high", high)])
        specs = {t.name: t.flavor_extra_specs for t in made.tiers}
        (tmp_path / "nova").mkdir()
        picked = _nova_on_tiers(options, specs, tmp_path / "nova")
        assert picked["models"] == {"base": "pentium2", "high": "pentium3"}, picked["models"]
