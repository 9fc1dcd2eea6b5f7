# Copyright (c) 2026 cpucompat.cluster contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The contract stamp in a domain's <metadata>: written beside other applications' metadata, read back, replaced."""

from __future__ import annotations

import pytest

from ansible_collections.cpucompat.cluster.plugins.module_utils._errors import LibvirtError
from ansible_collections.cpucompat.cluster.plugins.module_utils.deploy import _stamp

LEVEL = {"arch": "x86_64", "vendor": "GenuineIntel", "model": "Skylake-Server", "features": ["avx2", "pku"], "machine": "pc-q35",
         "phys_bits": None}
STAMP = {"group": "hypervisors", "generation": 3, "digest": "sha256:" + "ab" * 32, "pinned_at": "2026-12-01T00:00:00Z",
         "level": LEVEL}
APP = '<app:tags xmlns:app="http://example.org/xmlns/app/1"><app:tag>blue</app:tag></app:tags>'


def _domain_xml(metadata: str = "") -> str:
    return f"<domain type='kvm'>\n  <name>web1</name>\n  <uuid>6f0e2b1c-0d5e-4c8e-9f1a-2b3c4d5e6f70</uuid>\n{metadata}" \
           "  <memory unit='KiB'>65536</memory>\n  <os><type arch='x86_64'>hvm</type></os>\n</domain>\n"


@pytest.mark.parametrize("metadata", ["", f"  <metadata>\n    {APP}\n  </metadata>\n", "  <metadata/>\n",
                                      f"  <metadata>\n    {APP}\n    {_stamp.stamp_xml({**STAMP, 'generation': 1})}\n  </metadata>\n"],
                         ids=["none", "another-application", "empty", "an-older-stamp"])
def test_the_stamp_is_written_read_back_and_nothing_else_changes(metadata: str) -> None:
    before = _domain_xml(metadata)
    after = _stamp.replace_stamp(before, STAMP, "web1")
    found = _stamp.manager(after)
    assert found["stamp"] == STAMP and found["stamp_error"] is None and not found["opted_out"]
    if APP in before:
        assert APP in after, "another application's metadata stays byte for byte"
    if "<metadata" in before:
        head = before.split("<metadata", maxsplit=1)[0]
        tail = before.rsplit("</metadata>" if "</metadata>" in before else "<metadata/>", maxsplit=1)[-1]
        assert after.startswith(head) and after.endswith(tail), "only <metadata> changed"
    else:
        added = after[after.index("\n  <metadata>"):after.index("</metadata>") + len("</metadata>")]
        assert after.replace(added, "") == before, "only a <metadata> was added"
    assert _stamp.replace_stamp(after, STAMP, "web1") == after, "the same stamp again: the same bytes"


def test_an_opt_out_mark_is_not_a_stamp_and_a_forged_stamp_does_not_read() -> None:
    opted = _domain_xml(f"  <metadata><cpucompat:cpu xmlns:cpucompat='{_stamp.CPUCOMPAT_NS}' manage='no'/></metadata>\n")
    assert _stamp.manager(opted)["opted_out"] is True and _stamp.manager(opted)["stamp"] is None
    forged = _domain_xml(f"  <metadata><cpucompat:cpu xmlns:cpucompat='{_stamp.CPUCOMPAT_NS}' group='g' generation='x' "
                         "digest='sha256:00'>{}</cpucompat:cpu></metadata>\n")
    found = _stamp.manager(forged)
    assert found["stamp"] is None and "does not read" in found["stamp_error"]


def test_a_malformed_stamp_is_refused_before_anything_is_written() -> None:
    with pytest.raises(ValueError, match="malformed"):
        _stamp.stamp_xml({**STAMP, "group": "a group/with slash"})
    with pytest.raises(LibvirtError, match="no <name>"):
        _stamp.replace_stamp("<domain/>", STAMP, "web1")
