# Copyright (c) 2026 cpucompat.cluster contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations


class ModuleDocFragment:
    """Options for reaching a QEMU monitor."""

    DOCUMENTATION = r"""
author:
  - cpucompat.cluster contributors (@cpucompat)
options:
  qemu_binary:
    description:
      - The QEMU system emulator to start for the probe.
      - Defaults to C(qemu-system-<arch>) for the managed host's architecture, looked up in E(PATH).
      - Name another architecture's binary (for example C(qemu-system-s390x)) to probe its emulated CPU models under TCG.
      - Ignored when O(qmp_socket) is set.
    type: str
  accel:
    description:
      - Accelerator of the throwaway QEMU.
      - V(auto) uses V(kvm) when C(/dev/kvm) is usable and the binary emulates the host's own architecture, V(tcg) otherwise.
      - V(kvm) fails with a clear message when KVM cannot be used. A TCG probe describes QEMU's emulated CPU, not the host's.
      - Ignored when O(qmp_socket) is set.
    type: str
    default: auto
    choices: [auto, kvm, tcg]
  qmp_socket:
    description:
      - Path of an existing QMP Unix socket (a running QEMU, or a monitor the operator started) to query instead of
        starting a throwaway QEMU.
    type: path
  timeout:
    description:
      - Seconds to wait for QEMU to start and for each batch of QMP replies. A QEMU that does not answer in time is killed.
    type: float
    default: 10.0
"""
