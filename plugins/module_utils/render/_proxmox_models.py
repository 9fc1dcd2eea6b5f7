# Copyright (c) 2026 cpucompat.cluster contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Proxmox VE's own list of the CPU models it accepts, as data. Private; written by tools/gen_proxmox_models.py.

Source: https://github.com/proxmox/qemu-server, file ``src/PVE/QemuServer/CPUConfig.pm``, commit
e6352be67f70042a7433a3a3c712b36d02f9f7cb: the model -> vendor hash of ``initialize_cpu_models``
(``$cpu_models_by_arch``; ``$cpu_vendor_list`` in older trees) and ``$depreacated_cpu_map``.
qemu-server is AGPL-3.0-or-later (Proxmox Server Solutions GmbH); what is copied here is the list of model names, their
vendors and the replacements, facts, in the source's order, not its code. Do not edit: regenerate (see the tool).
"""

from __future__ import annotations

SOURCE_REPOSITORY = "https://github.com/proxmox/qemu-server"
SOURCE_PATH = "src/PVE/QemuServer/CPUConfig.pm"
SOURCE_COMMIT = "e6352be67f70042a7433a3a3c712b36d02f9f7cb"
SOURCE_LICENSE = "AGPL-3.0-or-later"

# architecture -> model -> CPUID vendor ("default": a generic model, which takes the vendor of the host)
MODELS: dict[str, dict[str, str]] = {
    "x86_64": {
        "486": "GenuineIntel",
        "pentium": "GenuineIntel",
        "pentium2": "GenuineIntel",
        "pentium3": "GenuineIntel",
        "coreduo": "GenuineIntel",
        "core2duo": "GenuineIntel",
        "Conroe": "GenuineIntel",
        "Penryn": "GenuineIntel",
        "Nehalem": "GenuineIntel",
        "Nehalem-IBRS": "GenuineIntel",
        "Westmere": "GenuineIntel",
        "Westmere-IBRS": "GenuineIntel",
        "SandyBridge": "GenuineIntel",
        "SandyBridge-IBRS": "GenuineIntel",
        "IvyBridge": "GenuineIntel",
        "IvyBridge-IBRS": "GenuineIntel",
        "Haswell": "GenuineIntel",
        "Haswell-IBRS": "GenuineIntel",
        "Haswell-noTSX": "GenuineIntel",
        "Haswell-noTSX-IBRS": "GenuineIntel",
        "Broadwell": "GenuineIntel",
        "Broadwell-IBRS": "GenuineIntel",
        "Broadwell-noTSX": "GenuineIntel",
        "Broadwell-noTSX-IBRS": "GenuineIntel",
        "Skylake-Client": "GenuineIntel",
        "Skylake-Client-IBRS": "GenuineIntel",
        "Skylake-Client-noTSX-IBRS": "GenuineIntel",
        "Skylake-Client-v4": "GenuineIntel",
        "Skylake-Server": "GenuineIntel",
        "Skylake-Server-IBRS": "GenuineIntel",
        "Skylake-Server-noTSX-IBRS": "GenuineIntel",
        "Skylake-Server-v4": "GenuineIntel",
        "Skylake-Server-v5": "GenuineIntel",
        "Cascadelake-Server": "GenuineIntel",
        "Cascadelake-Server-v2": "GenuineIntel",
        "Cascadelake-Server-noTSX": "GenuineIntel",
        "Cascadelake-Server-v4": "GenuineIntel",
        "Cascadelake-Server-v5": "GenuineIntel",
        "Cooperlake": "GenuineIntel",
        "Cooperlake-v2": "GenuineIntel",
        "KnightsMill": "GenuineIntel",
        "Icelake-Client": "GenuineIntel",
        "Icelake-Client-noTSX": "GenuineIntel",
        "Icelake-Server": "GenuineIntel",
        "Icelake-Server-noTSX": "GenuineIntel",
        "Icelake-Server-v3": "GenuineIntel",
        "Icelake-Server-v4": "GenuineIntel",
        "Icelake-Server-v5": "GenuineIntel",
        "Icelake-Server-v6": "GenuineIntel",
        "Icelake-Server-v7": "GenuineIntel",
        "SapphireRapids": "GenuineIntel",
        "SapphireRapids-v2": "GenuineIntel",
        "SapphireRapids-v3": "GenuineIntel",
        "SapphireRapids-v4": "GenuineIntel",
        "GraniteRapids": "GenuineIntel",
        "GraniteRapids-v2": "GenuineIntel",
        "GraniteRapids-v3": "GenuineIntel",
        "SierraForest": "GenuineIntel",
        "SierraForest-v2": "GenuineIntel",
        "SierraForest-v3": "GenuineIntel",
        "ClearwaterForest": "GenuineIntel",
        "athlon": "AuthenticAMD",
        "phenom": "AuthenticAMD",
        "Opteron_G1": "AuthenticAMD",
        "Opteron_G2": "AuthenticAMD",
        "Opteron_G3": "AuthenticAMD",
        "Opteron_G4": "AuthenticAMD",
        "Opteron_G5": "AuthenticAMD",
        "EPYC": "AuthenticAMD",
        "EPYC-IBPB": "AuthenticAMD",
        "EPYC-v3": "AuthenticAMD",
        "EPYC-v4": "AuthenticAMD",
        "EPYC-v5": "AuthenticAMD",
        "EPYC-Rome": "AuthenticAMD",
        "EPYC-Rome-v2": "AuthenticAMD",
        "EPYC-Rome-v3": "AuthenticAMD",
        "EPYC-Rome-v4": "AuthenticAMD",
        "EPYC-Rome-v5": "AuthenticAMD",
        "EPYC-Milan": "AuthenticAMD",
        "EPYC-Milan-v2": "AuthenticAMD",
        "EPYC-Milan-v3": "AuthenticAMD",
        "EPYC-Genoa": "AuthenticAMD",
        "EPYC-Genoa-v2": "AuthenticAMD",
        "EPYC-Turin": "AuthenticAMD",
        "kvm32": "default",
        "kvm64": "default",
        "qemu32": "default",
        "qemu64": "default",
        "max": "default",
    },
    "aarch64": {
        "a64fx": "ARM",
        "cortex-a35": "ARM",
        "cortex-a53": "ARM",
        "cortex-a55": "ARM",
        "cortex-a57": "ARM",
        "cortex-a710": "ARM",
        "cortex-a72": "ARM",
        "cortex-a76": "ARM",
        "neoverse-n1": "ARM",
        "neoverse-n2": "ARM",
        "neoverse-v1": "ARM",
        "max": "default",
    },
}

# reported models Proxmox replaces before QEMU sees them (model -> replacement)
DEPRECATED: dict[str, str] = {
    "Icelake-Client": "Icelake-Server",
    "Icelake-Client-noTSX": "Icelake-Server-noTSX",
}
