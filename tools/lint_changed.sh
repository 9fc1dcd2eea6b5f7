#!/usr/bin/env bash
# Copyright (c) 2026 cpucompat.cluster contributors
# SPDX-License-Identifier: GPL-3.0-or-later
#
# make check's lint: only the files changed since the last commit (staged, unstaged and new ones) - pyflakes on
# Python files, ansible-lint (the repository's .ansible-lint) on YAML files. make lint and make sanity lint everything.
set -euo pipefail
cd "$(dirname "$0")/.."

mapfile -t changed < <({ git diff --name-only HEAD --; git ls-files --others --exclude-standard; } | sort -u)
py=() yaml=()
for f in "${changed[@]}"; do
  [[ -f $f ]] || continue  # deleted
  case "$f" in
    *.py) py+=("$f") ;;
    *.yml | *.yaml) yaml+=("$f") ;;
  esac
done

status=0
if ((${#py[@]})); then
  echo "pyflakes: ${#py[@]} changed Python file(s)"
  python -m pyflakes "${py[@]}" || status=1
fi
if ((${#yaml[@]})); then
  echo "ansible-lint: ${#yaml[@]} changed YAML file(s)"
  ansible-lint --nocolor -q "${yaml[@]}" || status=1
fi
((${#py[@]} + ${#yaml[@]})) || echo "lint: no changed Python or YAML file"
exit $status
