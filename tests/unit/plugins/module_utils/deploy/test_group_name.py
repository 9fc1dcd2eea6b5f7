# Copyright (c) 2026 cpucompat.cluster contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""One group-name rule (deploy/_stamp.group_name_problem) for the contract store and the stamps; the stamp adds only
what an XML attribute cannot carry."""

from __future__ import annotations

import pytest

from ansible_collections.cpucompat.cluster.plugins.module_utils.contract._contract import ContractError
from ansible_collections.cpucompat.cluster.plugins.module_utils.contract._stored import check_group
from ansible_collections.cpucompat.cluster.plugins.module_utils.deploy import _stamp

STAMP = {"group": "hypervisors", "generation": 3, "digest": "sha256:" + "ab" * 32, "pinned_at": "2026-12-01T00:00:00Z",
         "level": {"arch": "x86_64", "vendor": "GenuineIntel", "model": "Skylake-Server", "features": ["avx2"]}}
DOMAIN = "<domain type='kvm'>\n  <name>web1</name>\n  <os><type arch='x86_64'>hvm</type></os>\n</domain>\n"

# Names the store accepted before the rule was shared, several of which the stamp's former pattern
# ([A-Za-z0-9_.:@+-]{1,200}) refused: a stamp now carries every one of them.
ACCEPTED = ["hypervisors", "hv-rack1", "prod.eu", "g@avx512", "a:b+c", "my group", "grüppe", "a&b<c>'\"d", "x" * 200,
            "tab\there", "line\nbreak", "comma,semi;colon=eq#hash%pct", "_"]
REFUSED = [("", "non-empty"), ("x" * 201, "at most 200"), ("a/b", "no '/'"), (".hidden", "does not start with '.'"),
           ("..", "does not start with '.'")]


@pytest.mark.parametrize("group", ACCEPTED)
def test_a_name_the_store_accepts_is_stamped_and_read_back(group: str) -> None:
    assert _stamp.group_name_problem(group) is None and _stamp.stamp_group_problem(group) is None
    assert check_group(group) == group
    after = _stamp.replace_stamp(DOMAIN, {**STAMP, "group": group}, "web1")
    found = _stamp.manager(after)
    assert found["stamp_error"] is None and found["stamp"]["group"] == group, found


@pytest.mark.parametrize(("group", "why"), REFUSED)
def test_the_store_and_the_stamp_refuse_the_same_names_naming_them(group: str, why: str) -> None:
    assert why in str(_stamp.group_name_problem(group)) and _stamp.stamp_group_problem(group) == _stamp.group_name_problem(group)
    with pytest.raises(ContractError, match=f"group name {group!r} cannot name a stored contract: .*{why}"):
        check_group(group)
    with pytest.raises(ValueError, match="malformed") as raised:
        _stamp.stamp_xml({**STAMP, "group": group})
    assert repr(group) in str(raised.value) and why in str(raised.value)


@pytest.mark.parametrize("group", ["bell\x07", "nul\x00", "esc\x1b[0m", "noncharacter\ufffe"])
def test_a_stamp_refuses_only_what_xml_cannot_carry_naming_the_group(group: str) -> None:
    assert _stamp.group_name_problem(group) is None and check_group(group) == group, "the store keeps accepting it"
    with pytest.raises(ValueError, match="XML 1.0") as raised:
        _stamp.stamp_xml({**STAMP, "group": group})
    assert repr(group) in str(raised.value)


def test_a_name_that_is_not_a_string_is_refused() -> None:
    assert _stamp.group_name_problem(None) == _stamp.group_name_problem(7) == "a group name is a non-empty string"
