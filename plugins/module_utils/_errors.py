# Copyright (c) 2026 cpucompat.cluster contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Exception hierarchy of cpucompat.cluster. Private to the collection."""

from __future__ import annotations


class CpuCompatError(Exception):
    """Base class of every error the collection's core raises on purpose."""


class QMPError(CpuCompatError):
    """Talking to a QEMU monitor failed (connection, protocol or timeout)."""


class QMPTimeout(QMPError):
    """A QEMU monitor did not answer within the allotted time."""


class QMPProtocolError(QMPError):
    """The peer is not a QMP monitor, or sent something that is not valid QMP."""


class QMPCommandError(QMPError):
    """QEMU answered a command with an error object."""

    def __init__(self, command: str, error_class: str, desc: str) -> None:
        super().__init__(f"QEMU rejected '{command}': {error_class}: {desc}")
        self.command = command
        self.error_class = error_class
        self.desc = desc


class QemuStartError(CpuCompatError):
    """A throwaway QEMU could not be started, or it exited before answering."""


class FactsError(CpuCompatError):
    """Probe replies or cached facts are missing fields or are malformed."""


class InputError(CpuCompatError):
    """The caller's input is malformed: an option, a host list, a group or platform name, a CPU level's shape."""


class BaselineError(CpuCompatError):
    """The hosts' CPUs admit no baseline or comparison: mixed architectures or vendors, too little in common."""


class CpuMapError(CpuCompatError):
    """A libvirt CPU map is missing, malformed, unknown to this collection, or not for the architecture at hand."""


class RenderError(CpuCompatError):
    """A platform cannot carry the guest CPU: a name it cannot spell, a form it lacks (``InexactError`` among them)."""


class LibvirtError(CpuCompatError):
    """libvirt refused an operation or could not be reached."""


class CpuXmlError(CpuCompatError):
    """A ``<cpu>`` element is malformed, names an invalid model or feature, or uses a model libvirt does not know."""


class ObservationError(CpuCompatError):
    """What a vCPU was observed to be (its CPUID feature words) is malformed or cannot be compared."""
