# Copyright (c) 2026 cpucompat.cluster contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The execution environment: what the collection declares, as ansible-builder reads it (no container runtime needed).

``ansible-builder introspect`` is the step of an image build that collects every collection's dependencies from its
``meta/execution-environment.yml``; ``ansible-builder create`` writes the build context of docs/ee's definition.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tarfile

import yaml

from integration.helpers import ROOT
from utils.source_tree import SOURCE_COLLECTIONS

BIN = os.path.dirname(sys.executable)


def _run(*cmd: str, cwd: str | None = None) -> str:
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=cwd, timeout=300, check=False)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    return proc.stdout


def test_introspection_finds_the_collections_requirements() -> None:
    deps = yaml.safe_load(_run(os.path.join(BIN, "ansible-builder"), "introspect", "--sanitize", SOURCE_COLLECTIONS))
    python = [line for line in deps["python"] if "from collection cpucompat.cluster" in line]
    system = [line for line in deps["system"] if "from collection cpucompat.cluster" in line]
    assert [p.split()[0] for p in python] == ["libvirt-python>=6.0.0"], "the probe itself needs only the standard library"
    assert any(s.startswith("libvirt-libs [platform:rpm]") for s in system)
    assert any(s.startswith("libvirt0 [platform:dpkg]") for s in system)
    assert all("compile" in s for s in system if "devel" in s or s.startswith(("libvirt-dev ", "gcc")))


def test_build_context_of_the_documented_definition(tmp_path) -> None:
    built = tmp_path / "built"
    _run(os.path.join(BIN, "ansible-galaxy"), "collection", "build", "--output-path", str(built), ROOT)
    artifact = next(built.iterdir())
    with tarfile.open(artifact) as tar:
        names = set(tar.getnames())
    assert {"meta/execution-environment.yml", "requirements.txt", "bindep.txt"} <= names
    assert not {"requirements-dev.txt", "Makefile", ".ansible-lint"} & names, "development files stay out of the artifact"

    ee = tmp_path / "ee"
    shutil.copytree(os.path.join(ROOT, "docs", "ee"), ee)
    shutil.copy(artifact, ee / "cpucompat-cluster.tar.gz")
    _run(os.path.join(BIN, "ansible-builder"), "create", "-f", "execution-environment.yml", "-c", "context",
         "--output-filename", "Containerfile", cwd=str(ee))
    context = ee / "context"
    containerfile = (context / "Containerfile").read_text()
    assert "COPY _build/collections/ /build/collections/" in containerfile and "ansible-galaxy" in containerfile
    assert "introspect" in containerfile  # the collection's requirements are collected during the build
    assert (context / "_build" / "collections" / "cpucompat-cluster.tar.gz").read_bytes() == artifact.read_bytes()
    galaxy = yaml.safe_load((context / "_build" / "requirements.yml").read_text())
    assert galaxy["collections"][0] == {"name": "/build/collections/cpucompat-cluster.tar.gz", "type": "file"}
