# Copyright (c) 2026 cpucompat.cluster contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The report files: ``<stem>.json``, ``.md`` and ``.html`` written atomically, and a failed run's stale mark
(docs/reports.md). It imports the renderers; no renderer imports it. Private to the collection."""

from __future__ import annotations

import html
import json
import os
import re
from collections.abc import Mapping, Sequence
from typing import Any

from .._atomic import write_atomic
from ._html import report_html
from ._markdown import report_markdown


def write_reports(view: Mapping[str, Any], directories: str | Sequence[str], stem: str) -> list[str]:
    """Write ``<stem>.json``, ``<stem>.md`` and ``<stem>.html`` atomically into each of ``directories`` (rendered once);
    files whose content is unchanged are left alone."""
    # Compact JSON: Python's json module writes indented JSON in pure Python, 10x slower on a 1,000-host report
    # (5 MB); the .md and .html files are the readable renderings.
    renderings = ((".json", json.dumps(view, sort_keys=True, separators=(",", ":")) + "\n"), (".md", report_markdown(view)),
                  (".html", report_html(view)))
    written: list[str] = []
    for directory in [directories] if isinstance(directories, str) else directories:
        written += _write_files(directory, stem, renderings)
    return written


def mark_stale(directories: Sequence[str], stem: str, why: str, now: str) -> list[str]:
    """A run that failed before writing its report marks the previous one (JSON, Markdown, HTML) as not its own: "from
    the run of <time>; the run of <now> failed: <why>". Returns the files marked."""
    marked = []
    for directory in directories:
        path = os.path.join(directory, stem + ".json")
        try:
            with open(path, encoding="utf-8") as fh:
                view = json.load(fh)
        except (OSError, ValueError):
            continue
        if not isinstance(view, dict):
            continue
        when = (view.get("written") or {}).get("at") or "an earlier run"
        view["stale"] = {"failed_at": now, "why": why, "note": f"from the run of {when}; the run of {now} failed: {why}"}
        try:
            marked += _write_files(directory, stem, ((".json", json.dumps(view, sort_keys=True, separators=(",", ":")) + "\n"),))
            for suffix, banner in ((".md", f"> **Stale:** {html.escape(view['stale']['note'], quote=False)}\n\n"),
                                   (".html", f"<p class=\"verdict bad\" id=\"stale\">Stale: {html.escape(view['stale']['note'])}</p>")):
                other = os.path.join(directory, stem + suffix)
                with open(other, encoding="utf-8") as fh:
                    text = fh.read()
                if "Stale:" in text[:4000]:
                    text = text[text.index("\n\n") + 2:] if suffix == ".md" else re.sub(r'<p class="verdict bad" id="stale">.*?</p>', "", text, count=1)
                text = banner + text if suffix == ".md" else text.replace("<body>", "<body>" + banner, 1)
                marked += _write_files(directory, stem, ((suffix, text),))
        except OSError:
            continue
    return marked


def _write_files(directory: str, stem: str, renderings: Sequence[tuple[str, str]]) -> list[str]:
    os.makedirs(directory, exist_ok=True)
    written = []
    for suffix, text in renderings:
        path = os.path.join(directory, stem + suffix)
        try:
            with open(path, encoding="utf-8") as fh:
                if fh.read() == text:
                    written.append(path)
                    continue
        except OSError:
            pass
        written.append(write_atomic(path, text, mode=0o644, prefix=f".{stem}{suffix}."))
    return written
