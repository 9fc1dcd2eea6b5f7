# Copyright (c) 2026 cpucompat.cluster contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations


class ModuleDocFragment:
    """Attributes shared by the collection's modules; and (DOCUMENTATION) the collection's authors, the same for every
    module: they come with a fragment the module extends (this one, cpucompat.cluster.libvirt, cpucompat.cluster.qmp or
    cpucompat.cluster.aggregate), not from each module's own documentation."""

    DOCUMENTATION = r"""
author:
  - cpucompat.cluster contributors (@cpucompat)
options: {}
"""

    # Modules that only read.
    READ_ONLY = r"""
options: {}
attributes:
  check_mode:
    support: full
    description: Read-only; runs the same in check mode.
  diff_mode:
    support: none
    description: Nothing is changed.
"""

    # Modules that write one file on the managed host, comparing before writing.
    FILE_WRITER = r"""
options: {}
attributes:
  check_mode:
    support: full
    description: Compares and reports without writing.
  diff_mode:
    support: full
    description: Shows the file before and after.
"""

    # Actions that write the collection's contract store on the controller (cpucompat.cluster.cpu_contract).
    CONTRACT_STORE = r"""
options: {}
attributes:
  check_mode:
    support: full
    description:
      - In check mode nothing is written to the contract store; the result and the report say what would be written
        (C(contract_files) lists the contracts that would change). The report files are written in check mode too.
  diff_mode:
    support: none
    description: No diff is shown; the report says what changes in each contract.
"""
