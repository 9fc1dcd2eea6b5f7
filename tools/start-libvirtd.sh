#!/usr/bin/env bash
# Copyright (c) 2026 cpucompat.cluster contributors
# SPDX-License-Identifier: GPL-3.0-or-later
#
# Start libvirtd (when it is not running) as the child of a subreaper (tools/reaper.py) that reaps the QEMU processes
# it kills at once, as systemd does on a host: where PID 1 reaps orphans late, every domain destroy would wait for it.
# Returns once libvirtd answers on qemu:///system. Used by tools/setup.sh and by the tests that restart libvirtd.
set -euo pipefail
cd "$(dirname "$0")"
if ! pgrep -x libvirtd >/dev/null; then
  setsid python3 "$PWD/reaper.py" libvirtd </dev/null >>/var/log/cpucompat-libvirtd.log 2>&1 &
fi
for _ in $(seq 1 100); do
  virsh -q -c qemu:///system version >/dev/null 2>&1 && exit 0
  sleep 0.1
done
echo "start-libvirtd: libvirtd does not answer on qemu:///system" >&2
exit 1
