#!/usr/bin/env bash
# Copyright (c) 2026 cpucompat.cluster contributors
# SPDX-License-Identifier: GPL-3.0-or-later
#
# make check's lint: only the files changed since the last commit (staged, unstaged and new ones) - ruff (ruff.toml) on
# Python files, mypy (mypy.ini: plugins/module_utils and the adapters; 2 s cold, under a second once its cache is warm) every
# time, ansible-lint (the repository's .ansible-lint) on YAML files. make lint and make sanity lint everything.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH=$PWD/.venv/bin:$PATH  # ruff, mypy and ansible-lint of the pinned virtualenv, with or without make

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
  echo "ruff: ${#py[@]} changed Python file(s)"
  ruff check --quiet --output-format concise "${py[@]}" || status=1
fi
echo "mypy: plugins (mypy.ini)"
mypy || status=1
if ((${#yaml[@]})); then
  echo "ansible-lint: ${#yaml[@]} changed YAML file(s)"
  ansible-lint --nocolor -q "${yaml[@]}" || status=1
fi
((${#py[@]} + ${#yaml[@]})) || echo "lint: no changed Python or YAML file"
exit $status
