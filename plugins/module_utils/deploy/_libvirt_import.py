# Copyright (c) 2026 cpucompat.cluster contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Optional import of libvirt-python, with the traceback kept for missing_required_lib. Private to the collection."""

from __future__ import annotations

import traceback

try:
    import libvirt  # noqa: F401  pylint: disable=unused-import
except ImportError:
    HAS_LIBVIRT = False
    LIBVIRT_IMPORT_ERROR: str | None = traceback.format_exc()
else:
    HAS_LIBVIRT = True
    LIBVIRT_IMPORT_ERROR = None

LIBVIRT_ARGS = {"uri": {"type": "str", "default": "qemu:///system"}}
