#!/usr/bin/env bash
# Copyright (c) 2026 cpucompat.cluster contributors
# SPDX-License-Identifier: GPL-3.0-or-later
#
# The main job on the built-in default (make run): this machine plus a demo cluster of
# recorded real hosts of the same CPU vendor, each served over its own QMP socket by the
# replay server, then the site playbook: probe -> baseline -> deploy in check mode with
# diff to a demo domain on this machine's libvirt.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
DEMO=$ROOT/.cache/demo
mkdir -p "$DEMO"

vendor=$(awk -F': ' '/^vendor_id/ {print $2; exit}' /proc/cpuinfo 2>/dev/null || true)
case "$vendor" in
  AuthenticAMD) recorded=(x86_64-epyc-7502 x86_64-ryzen-9-3900x-qemu-10.0.0 x86_64-epyc-9654-qemu-10.0.0) ;;
  *)            recorded=(x86_64-xeon-gold-6130 x86_64-xeon-e5-2650-v4 x86_64-core-i7-8700) ;;
esac

pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; }
trap cleanup EXIT

{
  echo "hypervisors:"
  echo "  hosts:"
  echo "    this-machine:"
  echo "      ansible_connection: local"
  echo "      ansible_python_interpreter: $ROOT/.venv/bin/python"
  echo "      cpucompat_domains: {names: [cpucompat-demo]}"
  for name in "${recorded[@]}"; do
    sock=$DEMO/$name.sock
    rm -f "$sock"
    "$ROOT/.venv/bin/python" tests/utils/qmp_replay.py "tests/fixtures/cpu-data/$name.json" "$sock" &
    pids+=($!)
    echo "    demo-$name:"
    echo "      ansible_connection: local"
    echo "      ansible_python_interpreter: $ROOT/.venv/bin/python"
    echo "      cpucompat_probe_qmp_socket: $sock"
    echo "      cpucompat_deploy_enabled: false"
    # A recorded host shares this machine's libvirt (ansible_connection: local): it lists no domains of its own, so the
    # checks never see this machine's domains on it too ("on several hosts").
    echo "      cpucompat_migration_libvirt: false"
    echo "      cpucompat_expansion_list_domains: false"
  done
} > "$DEMO/inventory.yml"
for name in "${recorded[@]}"; do
  for _ in $(seq 1 50); do [[ -S $DEMO/$name.sock ]] && break; sleep 0.05; done
done

# A demo domain on this machine (never started here), so deploy has something to show.
if ! virsh -q -c qemu:///system dominfo cpucompat-demo >/dev/null 2>&1; then
  virttype=qemu; [[ -r /dev/kvm && -w /dev/kvm ]] && virttype=kvm
  cat > "$DEMO/domain.xml" <<XML
<domain type='$virttype'>
  <name>cpucompat-demo</name>
  <description>Demo domain of cpucompat.cluster (make run); safe to undefine</description>
  <memory unit='MiB'>64</memory>
  <vcpu>1</vcpu>
  <os><type arch='x86_64' machine='pc'>hvm</type></os>
  <cpu mode='custom' match='exact' check='none'><model fallback='forbid'>486</model></cpu>
  <devices><emulator>/usr/bin/qemu-system-x86_64</emulator></devices>
</domain>
XML
  virsh -q -c qemu:///system define "$DEMO/domain.xml" >/dev/null
fi

# The demo's own contract store (the file store's default folder is under XDG_DATA_HOME), never the operator's
# ~/.local/share/cpucompat: what the demo reads depends on nothing outside this checkout...
export XDG_DATA_HOME=$DEMO/data
# ... and its own fact cache, never the operator's .cache/facts (ansible.cfg's default).
export ANSIBLE_CACHE_PLUGIN_CONNECTION=$DEMO/facts
"$ROOT/.venv/bin/ansible-playbook" -i "$DEMO/inventory.yml" playbooks/site.yml --check --diff \
  -e cpucompat_report_dir="$ROOT/reports" "$@"
echo
echo "Report: $ROOT/reports/baseline.html (open it in a browser; contract.html, and the .md and .json of both, beside it)"
echo "The deploy above ran in check mode: nothing changed and no contract was written (a real run pins it in the contract store;"
echo "the demo's is $DEMO/data/cpucompat/contracts, an operator's ~/.local/share/cpucompat/contracts)."
