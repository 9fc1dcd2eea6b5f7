#!/usr/bin/env bash
# Copyright (c) 2026 cpucompat.cluster contributors
# SPDX-License-Identifier: GPL-3.0-or-later
#
# Run a part of make test and say how long it took: tools/timed.sh <label> <command...>. docs/testing.md records
# these lines from a run on the reference machine.
set -uo pipefail
label=$1; shift
start=$(date +%s)
"$@"; rc=$?
printf 'timing: %s took %d s (exit %d)\n' "$label" "$(( $(date +%s) - start ))" "$rc"
exit "$rc"
