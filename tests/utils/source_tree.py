# Copyright (c) 2026 cpucompat.cluster contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The repository as an importable collection: ``<SOURCE_COLLECTIONS>/ansible_collections/cpucompat/cluster`` links here.

Python and Ansible find a collection only under an ``ansible_collections/<namespace>/<name>`` path. The tests must test
the source tree, not the copy ``make`` installs into ``.collections``, so a git-ignored symbolic link stands in for it.
"""

from __future__ import annotations

import os

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SOURCE_COLLECTIONS = os.path.join(ROOT, ".cache", "source-collections")


def _link() -> None:
    parent = os.path.join(SOURCE_COLLECTIONS, "ansible_collections", "cpucompat")
    link = os.path.join(parent, "cluster")
    if os.path.islink(link) and os.path.realpath(link) == os.path.realpath(ROOT):
        return
    os.makedirs(parent, exist_ok=True)
    tmp = f"{link}.{os.getpid()}"
    os.symlink(ROOT, tmp)
    os.replace(tmp, link)  # atomic: concurrent test processes never see a half-made link


_link()
