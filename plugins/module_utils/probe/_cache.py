# Copyright (c) 2026 cpucompat.cluster contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The probe's host-side cache: what a QEMU says the same way on every probe of an unchanged host. Private.

One JSON file per key in the cache folder (the cpu_probe module's ``cache_dir``). The key is what can change the
cached answers: the QEMU binary (path, size, mtime, inode), the machine type, the accelerator, the kernel release and
CPU 0's identity in /proc/cpuinfo (microcode, model, flags) - the spawned probe's fingerprint inputs without libvirt.
An entry holds:

- ``expansions``: QEMU's definitions of named CPU models (the replies to their static or full expansion), which depend
  on the binary, the machine type and the accelerator only;
- ``kvm_rejected``: the features KVM refused when a vCPU of the host model was created (``_probe.kvm_rejected_features``);
  a probe with a cache hit still creates that vCPU, with those features off, and probes cold when it does not start.
- ``libvirt``: the installed libvirt's version (``libvirtd --version``), with the daemon binary's path, size, mtime and
  inode it was read from (the fingerprint's libvirt inputs); used only while the daemon binary is that one.

Every answer that says what runs on this host (``query-cpu-definitions``, the host model's expansions) is asked of
QEMU on every probe. An entry that cannot be read, does not parse, or was written for another key is ignored (and
replaced by the next probe); entries are written to a temporary file and renamed into place, so a reader never sees
half an entry. The cache is an optimisation only: a folder that cannot be created or written costs time, not facts.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from .._atomic import write_atomic

FORMAT = 1
_PREFIX = "probe-"


def default_cache_dir() -> str:
    """``$XDG_CACHE_HOME/cpucompat`` when set, else ``/var/cache/cpucompat`` for root, else ``~/.cache/cpucompat``."""
    xdg = os.environ.get("XDG_CACHE_HOME")
    if xdg and os.path.isabs(xdg):
        return os.path.join(xdg, "cpucompat")
    if os.geteuid() == 0:
        return "/var/cache/cpucompat"
    return os.path.join(os.path.expanduser("~"), ".cache", "cpucompat")


def cache_key(inputs: Mapping[str, Any]) -> dict[str, Any]:
    """The part of a spawned probe's fingerprint inputs (``_fingerprint.environment_inputs``) the cached answers depend on."""
    return {"format": FORMAT, **{k: inputs.get(k) for k in ("binary", "binary_stat", "machine", "accel", "kvm_usable", "kernel", "cpu")}}


@dataclass
class Entry:
    """What the cache holds for one key; ``changed`` tells whether a probe added to it."""

    key: dict[str, Any]
    expansions: dict[str, Any] = field(default_factory=dict)  # Query.encode() -> QEMU's reply
    kvm_rejected: list[str] | None = None  # None: not known
    libvirt: dict[str, Any] | None = None  # {"daemon", "daemon_stat", "version"}
    changed: bool = False


def _path(directory: str, key: Mapping[str, Any]) -> str:
    blob = json.dumps(key, sort_keys=True, separators=(",", ":"), default=str)
    return os.path.join(directory, _PREFIX + hashlib.sha256(blob.encode()).hexdigest()[:32] + ".json")


def load(directory: str | None, inputs: Mapping[str, Any]) -> Entry:
    """The entry for ``inputs`` in ``directory``; an empty one when there is none, or it is unreadable or foreign."""
    key = json.loads(json.dumps(cache_key(inputs), default=str))  # as it reads back from JSON
    entry = Entry(key)
    if not directory:
        return entry
    try:
        with open(_path(directory, key), encoding="utf-8") as fh:
            data = json.load(fh)
    except (OSError, ValueError):
        return entry
    if not isinstance(data, dict) or data.get("key") != key:
        return entry
    expansions = data.get("expansions")
    if isinstance(expansions, dict) and all(isinstance(k, str) and isinstance(v, dict) for k, v in expansions.items()):
        entry.expansions = expansions
    libvirt = data.get("libvirt")
    if isinstance(libvirt, dict) and isinstance(libvirt.get("version"), str) and isinstance(libvirt.get("daemon"), str):
        entry.libvirt = libvirt
    rejected = data.get("kvm_rejected")
    if isinstance(rejected, list) and all(isinstance(f, str) and f for f in rejected):
        entry.kvm_rejected = rejected
    return entry


def save(directory: str | None, entry: Entry) -> None:
    """Write ``entry`` atomically when a probe added to it; any error leaves the cache as it was."""
    if not directory or not entry.changed:
        return
    text = json.dumps({"key": entry.key, "expansions": entry.expansions, "kvm_rejected": entry.kvm_rejected, "libvirt": entry.libvirt},
                      sort_keys=True, separators=(",", ":"))
    try:
        os.makedirs(directory, mode=0o755, exist_ok=True)
        write_atomic(_path(directory, entry.key), text, mode=0o644, prefix=".tmp-")
    except OSError:
        pass


def libvirt_version(entry: Entry, inputs: Mapping[str, Any]) -> str | None:
    """The cached version of the libvirt daemon ``inputs`` (the fingerprint's libvirt inputs) name, when it is that binary."""
    known = entry.libvirt or {}
    if inputs.get("daemon") and known.get("daemon") == inputs.get("daemon") and known.get("daemon_stat") == inputs.get("daemon_stat"):
        return str(known["version"])
    return None


def remember_libvirt(entry: Entry, inputs: Mapping[str, Any], version: str | None) -> None:
    """Keep ``version`` as the version of the daemon binary ``inputs`` name."""
    if not version or not inputs.get("daemon") or inputs.get("daemon_stat") is None:
        return
    value = {"daemon": inputs["daemon"], "daemon_stat": inputs["daemon_stat"], "version": version}
    if entry.libvirt != value:
        entry.libvirt = value
