#!/usr/bin/env python3
# Copyright (c) 2026 cpucompat.cluster contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Screenshots of each HTML report kind for the README (docs/screenshots/), from the reports the browser test renders.

Run from the repository root after make setup: .venv/bin/python tools/screenshots.py
"""
from __future__ import annotations

import os
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tests"))
import conftest  # noqa: E402,F401  pylint: disable=wrong-import-position,unused-import  # the source tree on sys.path
from integration.test_html_browser import CHROMIUM, reports  # noqa: E402  pylint: disable=wrong-import-position
from ansible_collections.cpucompat.cluster.plugins.module_utils.reports._files import write_reports  # noqa: E402  pylint: disable=wrong-import-position


def main() -> None:
    out = os.path.join(ROOT, "docs", "screenshots")
    os.makedirs(out, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        for kind, report in reports().items():
            page = next(p for p in write_reports(report, tmp, kind) if p.endswith(".html"))
            shot = os.path.join(out, f"{kind}.png")
            subprocess.run([CHROMIUM, "--headless=new", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--window-size=1100,1300",
                            f"--screenshot={shot}", f"file://{page}"], check=True, capture_output=True, timeout=120)
            print(shot)


if __name__ == "__main__":
    main()
