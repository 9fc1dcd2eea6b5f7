#!/usr/bin/env bash
# Copyright (c) 2026 cpucompat.cluster contributors
# SPDX-License-Identifier: GPL-3.0-or-later
#
# A second virtualization "stack" beside the system's QEMU 7.2 / libvirt 9.0:
# QEMU 10.0 and libvirt 11.3 from Debian 12's bookworm-backports, downloaded
# with a private apt configuration (the system's sources, lists and caches are
# left alone) and unpacked with dpkg -x -- never installed -- into a cache dir:
#
#   tools/backports.sh [CACHE_DIR]        (default: <repo>/.cache/backports)
#
# Idempotent: a complete unpack is marked by CACHE_DIR/.complete, written last;
# when it is there (and matches this script's package set) the script exits at
# once, without network or apt. Needs network to the mirror on a cold run only.
#
# Result (CACHE_DIR/...):
#   bin/qemu-system-x86_64   QEMU 10.0 wrapper: sets QEMU_MODULE_DIR (else 10.0
#                            loads the system's 7.2 modules and aborts on
#                            qom-list-types) and -L for the 10.0 data files and
#                            the backported SeaBIOS (Debian's QEMU is not
#                            relocatable: it would use /usr/share/qemu of 7.2).
#                            libvirtd can use it as <emulator> (it runs it as
#                            libvirt-qemu, so the cache must be world-readable).
#   bin/virsh                libvirt 11.3 virsh (LD_LIBRARY_PATH to its libs).
#   bin/with-cpu-map         [--flat] CMD...: run CMD in a private mount
#                            namespace where /usr/share/libvirt/cpu_map is the
#                            11.3 map (libvirt has the path compiled in). --flat
#                            binds a copy without <group> elements, which the
#                            system's libvirt 9.0 needs (it ignores models inside
#                            groups). Only in-process drivers (test:///) see it.
#   cpu_map -> usr/share/libvirt/cpu_map, cpu_map-flat/, usr/..., debs/,
#   MANIFEST (package=version list).
#
# Environment: BACKPORTS_MIRROR (default http://deb.debian.org/debian),
# BACKPORTS_SECURITY_MIRROR (default http://deb.debian.org/debian-security).
set -euo pipefail
umask 022
CALLER_PWD=$PWD
cd "$(dirname "$0")/.."
ROOT=$PWD
log() { printf 'backports: %s\n' "$*" >&2; }
die() { printf 'backports: ERROR: %s\n' "$*" >&2; exit 1; }

CACHE=${1:-$ROOT/.cache/backports}
[[ $CACHE == /* ]] || CACHE=$CALLER_PWD/$CACHE
CACHE=$(realpath -m -- "$CACHE")
STAMP=$CACHE/.complete

QEMU_SERIES=10.0      # upstream series wanted from bookworm-backports
LIBVIRT_SERIES=11.3
MIRROR=${BACKPORTS_MIRROR:-http://deb.debian.org/debian}
SECURITY_MIRROR=${BACKPORTS_SECURITY_MIRROR:-http://deb.debian.org/debian-security}
MULTIARCH=x86_64-linux-gnu
SYS_MODDIR=/usr/lib/$MULTIARCH/qemu

# From bookworm-backports. The module packages matter even though they are not
# needed to run QEMU: every module 10.0 knows and does not find in its own
# module dir is looked up in the system's 7.2 module dir, and loading one of
# those aborts QEMU 10.0 (libvirt's capability probe loads them all).
BPO_PKGS=(qemu-system-x86 qemu-system-common qemu-system-data
          qemu-system-modules-opengl qemu-system-modules-spice
          seabios                                 # bios-256k.bin (10.0 wants >> 1.16.3)
          libvirt0 libvirt-clients libvirt-common) # virsh, libvirt.so, cpu_map (libvirt-common)
# Modules of these exist in the system's module dir only if installed there.
for p in qemu-system-gui qemu-block-extra; do
  if dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
    BPO_PKGS+=("$p")
  fi
done
# From bookworm proper, only when not installed on the system: libraries the
# 10.0 modules link against that the system's 7.2 did not need.
EXTRA_LIB_PKGS=(libvirglrenderer1 libva2 libva-drm2 libvulkan1)

SPEC="v2 qemu=$QEMU_SERIES libvirt=$LIBVIRT_SERIES bpo=${BPO_PKGS[*]} extra=${EXTRA_LIB_PKGS[*]}"

print_paths() {
  cat <<EOF
QEMU $QEMU_SERIES / libvirt $LIBVIRT_SERIES (bookworm-backports) unpacked in $CACHE
  qemu:          $CACHE/bin/qemu-system-x86_64
  virsh:         $CACHE/bin/virsh
  cpu-map shell: $CACHE/bin/with-cpu-map [--flat] COMMAND...
  cpu_map:       $CACHE/cpu_map  (flat copy for libvirt 9.0: $CACHE/cpu_map-flat)
  manifest:      $CACHE/MANIFEST
EOF
}
is_complete() { [[ -f $STAMP ]] && [[ $(head -n1 "$STAMP") == "$SPEC" ]]; }

if is_complete; then print_paths; exit 0; fi

mkdir -p "$(dirname "$CACHE")"
exec 9>"$CACHE.lock"
flock 9                                 # parallel callers: one builds, the rest wait
if is_complete; then print_paths; exit 0; fi

for t in apt-get apt-cache dpkg dpkg-deb ldd flock realpath; do
  command -v "$t" >/dev/null || die "missing tool: $t"
done
[[ $(dpkg --print-architecture) == amd64 ]] || die "only amd64 is supported"

STAGE=$(mktemp -d "$CACHE.new.XXXXXX")
trap 'rm -rf "$STAGE"' EXIT
chmod 755 "$STAGE"                      # libvirt runs QEMU as libvirt-qemu
APT=$STAGE/.apt
mkdir -p "$APT"/{lists/partial,cache/archives/partial,sources.list.d,preferences.d} "$STAGE/debs"

# --- private apt configuration -------------------------------------------
# APT_CONFIG is read first, then the system's apt.conf.d (proxies etc. still
# apply), then Dir::Etc::main = our file, which overrides everything that
# would touch system state: sources, lists, caches, preferences, and the
# update hooks of apt.conf.d (PackageKit, AppStream, ...).
printf 'Dir::Etc::main "%s";\n' "$APT/apt.conf" > "$APT/boot.conf"
cat > "$APT/apt.conf" <<EOF
Dir::Etc::SourceList "/dev/null";
Dir::Etc::SourceParts "$APT/sources.list.d";
Dir::Etc::Preferences "/dev/null";
Dir::Etc::PreferencesParts "$APT/preferences.d";
Dir::State::Lists "$APT/lists";
Dir::Cache "$APT/cache";
Dir::Cache::pkgcache "$APT/cache/pkgcache.bin";
Dir::Cache::srcpkgcache "$APT/cache/srcpkgcache.bin";
APT::Sandbox::User "root";
#clear APT::Update::Pre-Invoke;
#clear APT::Update::Post-Invoke;
#clear APT::Update::Post-Invoke-Success;
#clear DPkg::Pre-Invoke;
#clear DPkg::Post-Invoke;
EOF
if [[ $MIRROR == *snapshot* ]]; then        # snapshots carry expired Valid-Until
  echo 'Acquire::Check-Valid-Until "false";' >> "$APT/apt.conf"
fi
cat > "$APT/sources.list.d/backports.sources" <<EOF
Types: deb
URIs: $MIRROR
Suites: bookworm bookworm-updates bookworm-backports
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: $SECURITY_MIRROR
Suites: bookworm-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF
export APT_CONFIG=$APT/boot.conf
export DEBIAN_FRONTEND=noninteractive

log "fetching package indexes (bookworm + bookworm-backports) from $MIRROR"
if ! apt-get -q update --error-on=any > "$APT/update.log" 2>&1; then
  cat "$APT/update.log" >&2
  die "apt-get update failed for $MIRROR (bookworm-backports); set BACKPORTS_MIRROR to a reachable mirror"
fi

# --- resolve versions -----------------------------------------------------
# The newest version of $1 in suite $2 (apt-cache madison lists newest first).
version_in() {
  apt-cache madison "$1" 2>/dev/null |
    awk -F' [|] ' -v s=" $2/" 'index($3, s) { gsub(/ /, "", $2); print $2; exit }'
}
declare -A VER
for p in "${BPO_PKGS[@]}"; do
  v=$(version_in "$p" bookworm-backports)
  [[ -n $v ]] || die "package $p not found in bookworm-backports at $MIRROR"
  VER[$p]=$v
done
[[ ${VER[qemu-system-x86]} == 1:"$QEMU_SERIES".* ]] ||
  die "qemu-system-x86 in bookworm-backports is ${VER[qemu-system-x86]}, not QEMU $QEMU_SERIES.x (update QEMU_SERIES in $0)"
[[ ${VER[libvirt0]} == "$LIBVIRT_SERIES".* ]] ||
  die "libvirt0 in bookworm-backports is ${VER[libvirt0]}, not libvirt $LIBVIRT_SERIES.x (update LIBVIRT_SERIES in $0)"
extra=()
for p in "${EXTRA_LIB_PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' && continue
  v=$(apt-cache policy "$p" 2>/dev/null | awk '/Candidate:/ { print $2 }')
  [[ -n $v && $v != "(none)" ]] || die "package $p not found in bookworm at $MIRROR"
  VER[$p]=$v
  extra+=("$p")
done

# --- download -------------------------------------------------------------
want=()
for p in "${BPO_PKGS[@]}" "${extra[@]}"; do want+=("$p=${VER[$p]}"); done
log "downloading ${#want[@]} packages"
if ! (cd "$STAGE/debs" && apt-get -q download "${want[@]}" > "$APT/download.log" 2>&1); then
  for w in "${want[@]}"; do               # name the package that failed
    (cd "$STAGE/debs" && apt-get -q download "$w" > "$APT/download-one.log" 2>&1) || {
      cat "$APT/download-one.log" >&2; die "download of package ${w%%=*} (version ${w#*=}) failed"; }
  done
  cat "$APT/download.log" >&2; die "apt-get download failed"
fi

# --- unpack ---------------------------------------------------------------
: > "$STAGE/MANIFEST"
for p in "${BPO_PKGS[@]}" "${extra[@]}"; do
  deb=$(ls "$STAGE"/debs/"${p}"_*.deb 2>/dev/null | head -n1)
  [[ -n $deb ]] || die "package $p: no .deb after download"
  [[ $(dpkg-deb --field "$deb" Version) == "${VER[$p]}" ]] || die "package $p: $deb is not version ${VER[$p]}"
  dpkg -x "$deb" "$STAGE" || die "package $p: dpkg -x $deb failed"
  printf '%s=%s\n' "$p" "${VER[$p]}" >> "$STAGE/MANIFEST"
done
# Not needed here: conffiles (the system's /etc/libvirt is what libvirt reads
# anyway), docs, and the i386/microvm emulators (~45 MB).
rm -rf "$STAGE"/etc "$STAGE"/usr/share/{doc,man,locale,bash-completion,lintian} \
       "$STAGE"/usr/bin/qemu-system-i386 "$STAGE"/usr/bin/qemu-system-x86_64-microvm
LIBDIR=$STAGE/usr/lib/$MULTIARCH
MODDIR=$LIBDIR/qemu
for f in usr/bin/qemu-system-x86_64 usr/bin/virsh usr/share/seabios/bios-256k.bin \
         usr/share/libvirt/cpu_map/index.xml "usr/lib/$MULTIARCH/libvirt.so.0"; do
  [[ -e $STAGE/$f ]] || die "unpacked tree lacks $f"
done

# Every module the system has that 10.0 also knows must exist in 10.0's dir.
if [[ -d $SYS_MODDIR ]]; then
  for m in "$SYS_MODDIR"/*.so; do
    [[ -e $m ]] || continue
    n=$(basename "$m" .so)
    if [[ ! -e $MODDIR/$n.so ]] && grep -qaF -- "$n" "$STAGE/usr/bin/qemu-system-x86_64"; then
      die "QEMU $QEMU_SERIES would load the system's module $m: add the backports package shipping $n.so (dpkg -S $m) to BPO_PKGS"
    fi
  done
fi

# Shared libraries: fatal for the binaries, a warning for optional modules.
missing_libs() { LD_LIBRARY_PATH=$LIBDIR ldd "$1" 2>/dev/null | awk '/not found/ { print $1 }' | sort -u | tr '\n' ' '; }
for f in usr/bin/qemu-system-x86_64 usr/bin/virsh "usr/lib/$MULTIARCH/libvirt.so.0"; do
  miss=$(missing_libs "$STAGE/$f")
  [[ -z $miss ]] || die "$f needs libraries this system lacks: $miss"
done
for m in "$MODDIR"/*.so; do
  miss=$(missing_libs "$m")
  [[ -z $miss ]] || log "warning: QEMU module $(basename "$m") will not load (missing: $miss)"
done

# --- cpu map copies -------------------------------------------------------
ln -sfn usr/share/libvirt/cpu_map "$STAGE/cpu_map"
cp -a "$STAGE/usr/share/libvirt/cpu_map" "$STAGE/cpu_map-flat"
sed -i -E '/^[[:space:]]*<group([[:space:]][^>]*)?>[[:space:]]*$/d; /^[[:space:]]*<\/group>[[:space:]]*$/d' \
  "$STAGE/cpu_map-flat/index.xml"
! grep -q '<group' "$STAGE/cpu_map-flat/index.xml" || die "could not flatten cpu_map/index.xml"

# --- wrappers (relocatable: they find the tree from their own path) ------
mkdir -p "$STAGE/bin"
cat > "$STAGE/bin/qemu-system-x86_64" <<EOF
#!/bin/sh
# QEMU $QEMU_SERIES from bookworm-backports (${VER[qemu-system-x86]}), unpacked by tools/backports.sh.
top=\$(dirname "\$(dirname "\$(readlink -f "\$0")")")
QEMU_MODULE_DIR=\$top/usr/lib/$MULTIARCH/qemu
LD_LIBRARY_PATH=\$top/usr/lib/$MULTIARCH\${LD_LIBRARY_PATH:+:\$LD_LIBRARY_PATH}
export QEMU_MODULE_DIR LD_LIBRARY_PATH
exec "\$top/usr/bin/qemu-system-x86_64" -L "\$top/usr/share/qemu" -L "\$top/usr/share/seabios" "\$@"
EOF
cat > "$STAGE/bin/virsh" <<EOF
#!/bin/sh
# virsh of libvirt $LIBVIRT_SERIES from bookworm-backports (${VER[libvirt0]}), unpacked by tools/backports.sh.
# It still reads the cpu map at the compiled-in /usr/share/libvirt/cpu_map: see with-cpu-map.
top=\$(dirname "\$(dirname "\$(readlink -f "\$0")")")
LD_LIBRARY_PATH=\$top/usr/lib/$MULTIARCH\${LD_LIBRARY_PATH:+:\$LD_LIBRARY_PATH}
export LD_LIBRARY_PATH
exec "\$top/usr/bin/virsh" "\$@"
EOF
cat > "$STAGE/bin/with-cpu-map" <<'EOF'
#!/bin/sh
# Usage: with-cpu-map [--flat] COMMAND [ARG...]
# Runs COMMAND in a private mount namespace in which /usr/share/libvirt/cpu_map
# is the backported libvirt's map (--flat: a copy without <group> elements, for
# the system's libvirt 9.0). Nothing leaks to the rest of the system; only
# in-process drivers (e.g. virsh -c test:///default) see it, not libvirtd.
set -eu
top=$(dirname "$(dirname "$(readlink -f "$0")")")
map=$top/usr/share/libvirt/cpu_map
if [ "${1:-}" = --flat ]; then map=$top/cpu_map-flat; shift; fi
[ $# -gt 0 ] || { echo "usage: $0 [--flat] COMMAND [ARG...]" >&2; exit 2; }
[ -d /usr/share/libvirt/cpu_map ] || { echo "$0: /usr/share/libvirt/cpu_map missing (mount point)" >&2; exit 1; }
if [ "$(id -u)" -eq 0 ]; then ns="--mount --propagation private"; else ns="--user --map-root-user --mount"; fi
# shellcheck disable=SC2086
exec unshare $ns -- sh -ec 'mount --bind "$0" /usr/share/libvirt/cpu_map; exec "$@"' "$map" "$@"
EOF
chmod 755 "$STAGE"/bin/*

# --- smoke test, then publish ---------------------------------------------
"$STAGE/bin/qemu-system-x86_64" --version | grep -q "version $QEMU_SERIES" || die "unpacked QEMU does not run"
"$STAGE/bin/virsh" --version | grep -q "^$LIBVIRT_SERIES" || die "unpacked virsh does not run"
rm -rf "$APT"
trap - EXIT
rm -rf "$CACHE"
mv "$STAGE" "$CACHE"
{ echo "$SPEC"; date -u +%FT%TZ; } > "$STAMP"   # written last: marks a complete unpack
log "done ($(du -sh "$CACHE" | cut -f1))"
print_paths
