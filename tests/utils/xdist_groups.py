# Copyright (c) 2026 cpucompat.cluster contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""``--dist loadgroup`` that works on pytest 9.

pytest-xdist 3.8 groups a test by appending ``@<group>`` to ``item._nodeid`` on the worker; pytest 9 no longer reads
that attribute (a node's id is ``item._id``, a ``NodeId``), so the scheduler saw no group at all and spread the
"libvirt" tests over both workers, each then waiting for the other's lock. ``in_group`` sets the id pytest 9 reads.
``tests/unit/test_xdist_groups.py`` runs a real ``pytest -n 2`` to show the grouping holds.
"""

from __future__ import annotations

import pytest


def in_group(item: pytest.Item) -> None:
    """Give an item marked ``xdist_group`` the ``@<group>`` suffix xdist's scheduler groups by (once)."""
    names = sorted({str(m.args[0] if m.args else m.kwargs.get("name", "default")) for m in item.iter_markers("xdist_group")})
    if not names or "@" in item.nodeid.rsplit("]", 1)[-1]:
        return
    grouped = f"{item.nodeid}@{'_'.join(names)}"
    try:
        from _pytest.nodeid import coerce_node_id  # pytest 9
    except ImportError:  # pytest 8: xdist's own attribute is the one read
        item._nodeid = grouped  # type: ignore[attr-defined]
        return
    item._id = coerce_node_id(grouped)  # type: ignore[attr-defined]
