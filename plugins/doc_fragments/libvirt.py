# Copyright (c) 2026 cpucompat.cluster contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations


class ModuleDocFragment:
    """Options for reaching libvirt."""

    DOCUMENTATION = r"""
author:
  - cpucompat.cluster contributors (@cpucompat)
options:
  uri:
    description:
      - The libvirt connection URI on the managed host.
    type: str
    default: qemu:///system
requirements:
  - libvirt-python (Debian C(python3-libvirt)) on the managed host
"""
