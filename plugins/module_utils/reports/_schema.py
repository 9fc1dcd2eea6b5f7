# Copyright (c) 2026 cpucompat.cluster contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""What every report promises (schema cpucompat.report/1, docs/reports.md): the schema name and the words the
renderings share. The builders, the renderers and the verbs import it; it imports nothing. Private to the collection."""

from __future__ import annotations

REPORT_SCHEMA = "cpucompat.report/1"


# How the reports title the hosts without usable facts (the keys of _cluster.PROBLEM_KEYS), Markdown and HTML alike.
PROBLEM_TITLES = (("unreachable", "Unreachable or failed"), ("probe_failed", "Probe failed"), ("missing_facts", "Without facts"),
                  ("other_schema", "Facts of another schema"), ("unreadable", "Fact cache entry unreadable"))

# How the reports word today's baseline against the pinned contract, Markdown and HTML alike.
CONTRACT_WORDS = {
    "equal": "today's baseline equals the pinned contract",
    "above": "today's baseline is above the pinned contract (every host could run more)",
    "below": "today's baseline is below the pinned contract (some host cannot run it)",
    "different": "today's baseline differs from the pinned contract (above on some features, below on others)",
    "unknown": "no baseline today to compare with the pinned contract",
}
