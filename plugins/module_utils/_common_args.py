# Copyright (c) 2026 cpucompat.cluster contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Option groups shared by several modules (see doc fragments). Private to the collection."""

from __future__ import annotations

from typing import Any

QMP_ARGS: dict[str, dict[str, Any]] = {
    "qemu_binary": {"type": "str"},
    "accel": {"type": "str", "default": "auto", "choices": ["auto", "kvm", "tcg"]},
    "qmp_socket": {"type": "path"},
    "timeout": {"type": "float", "default": 10.0},
}

CPU_PROBE_ARGS: dict[str, dict[str, Any]] = {
    **QMP_ARGS,
    "expand_models": {"type": "bool", "default": True},
    "machine": {"type": "str"},
    "cpu_map": {"type": "path", "default": "/usr/share/libvirt/cpu_map"},
    "libvirt_version": {"type": "str"},
    "cache_dir": {"type": "path"},
    "cached_fingerprint": {"type": "str", "no_log": False},
    "reuse_cached": {"type": "bool", "default": False},
    "max_age": {"type": "int", "default": 0},
    "force": {"type": "bool", "default": False},
    "host_root": {"type": "path", "default": "/"},
}
