#!/usr/bin/env bash
# Copyright (c) 2026 cpucompat.cluster contributors
# SPDX-License-Identifier: GPL-3.0-or-later
#
# Everything this project needs on a fresh Debian 12 machine, idempotent and fast
# when nothing is missing: Debian packages, the pinned virtualenv, ansible-test's
# offline pip bootstrap, and running libvirt daemons. Run as root (make does).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
log() { printf 'setup: %s\n' "$*"; }

# --- Debian packages ------------------------------------------------------
PKGS=(qemu-system-x86 qemu-system-misc qemu-system-arm qemu-utils
      libvirt-daemon libvirt-daemon-driver-qemu libvirt-clients libvirt-dev
      pkg-config gcc python3 python3-venv python3-dev make git
      chromium fonts-dejavu-core  # headless Chromium opens the HTML reports in the tests
      redis-server)  # a shared Redis fact cache in the tests (started on a loopback port by the tests themselves)
missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if ((${#missing[@]})); then
  log "installing Debian packages: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# --- the second stack: QEMU 10.0 and libvirt 11.3 from bookworm-backports, unpacked, never installed -------------
# The tests judge every rendered <cpu> with both stacks at once (docs/exact-cpu.md); tools/backports.sh is fast when
# the cache is complete.
bash tools/backports.sh >/dev/null

# --- virtualenv -----------------------------------------------------------
PY=${PYTHON:-python3}
if [[ ! -x .venv/bin/python ]]; then
  log "creating .venv with $($PY --version)"
  $PY -m venv .venv
fi
if [[ ! -f .venv/.requirements.stamp ]] || ! cat requirements.txt requirements-dev.txt | cmp -s - .venv/.requirements.stamp; then
  log "installing pinned Python requirements into .venv"
  .venv/bin/pip install -q --disable-pip-version-check -r requirements-dev.txt
  cat requirements.txt requirements-dev.txt > .venv/.requirements.stamp
fi

# KubeVirt's CRD schemas and a throwaway Nova virtualenv for the platform tests (docs/platforms.md); a no-op once done.
bash tools/platforms.sh

# --- ansible-test's pip bootstrap, offline ---------------------------------
# ansible-test downloads get-pip.py to bootstrap its sanity virtualenvs; this
# network cannot reach it. The stand-in uses ensurepip, then installs the pip
# version ansible-test asks for from the package index.
pip_version=$(.venv/bin/python - <<'PY'
import re, pathlib, ansible_test
src = pathlib.Path(ansible_test.__file__).parent / "_internal" / "python_requirements.py"
print(re.search(r"pip='([0-9.]+)'", src.read_text()).group(1))
PY
)
getpip="$HOME/.ansible/test/cache/get_pip_${pip_version//./_}.py"
if [[ ! -f $getpip ]]; then
  log "writing offline pip bootstrap $getpip"
  mkdir -p "$(dirname "$getpip")"
  cat > "$getpip" <<'PY'
"""Offline stand-in for get-pip.py, written by cpucompat.cluster's tools/setup.sh."""
import subprocess
import sys

args = [a for a in sys.argv[1:] if a not in ("--no-setuptools", "--no-wheel")]
subprocess.run([sys.executable, "-m", "ensurepip", "--default-pip"], check=True, stdout=subprocess.DEVNULL)
subprocess.run([sys.executable, "-m", "pip", "install", "--disable-pip-version-check", *args], check=True)
PY
fi

# --- libvirt ----------------------------------------------------------------
# Without libvirt-daemon-system there is no qemu.conf: libvirt's built-in default
# runs guests as libvirt-qemu:libvirt-qemu, which must exist.
getent group kvm >/dev/null || groupadd -r kvm
getent group libvirt-qemu >/dev/null || groupadd -r libvirt-qemu
getent passwd libvirt-qemu >/dev/null || useradd -r -g libvirt-qemu -G kvm -d /var/lib/libvirt -s /usr/sbin/nologin libvirt-qemu
mkdir -p /var/log/libvirt/qemu /var/lib/libvirt/qemu /var/cache/libvirt/qemu /run/libvirt /var/lib/libvirt/images
[[ -e /dev/kvm ]] && chmod 0666 /dev/kvm 2>/dev/null || true
if ! pgrep -x virtlogd >/dev/null; then log "starting virtlogd"; virtlogd -d; fi
# libvirtd under a subreaper (tools/reaper.py): the QEMUs it kills are reaped at once, as systemd does on a host.
if ! pgrep -x libvirtd >/dev/null; then log "starting libvirtd"; fi
bash tools/start-libvirtd.sh || { echo "setup: libvirtd does not answer on qemu:///system" >&2; exit 1; }
log "ready ($ROOT)"
