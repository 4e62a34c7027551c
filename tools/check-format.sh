#!/usr/bin/env bash
# The formatting gate: every C and C++ source of memdx (src, include, tests, bench, tools) as
# .clang-format says, read by Debian 12's clang-format 14 (package clang-format, which
# ./run-tests installs). Prints the files that differ and how to fix them; exits 1 if any does.
set -euo pipefail
root=$(cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/.." && pwd)
format=$(command -v clang-format-14 || command -v clang-format || true)
if [ -z "$format" ]; then
  echo "check-format: clang-format is not installed (Debian package clang-format)" >&2
  exit 1
fi
cd "$root"
mapfile -d '' files < <(find src include tests bench tools -type f \( -name '*.cpp' -o -name '*.h' -o -name '*.c' \) \
  -print0 2>/dev/null | sort -z)
differ=()
for file in "${files[@]}"; do
  "$format" --dry-run --Werror "$file" >/dev/null 2>&1 || differ+=("$file")
done
if [ ${#differ[@]} -gt 0 ]; then
  printf 'check-format: %s differs from .clang-format\n' "${differ[@]}" >&2
  echo "check-format: fix with $format -i FILE (from $root)" >&2
  exit 1
fi
echo "check-format: ${#files[@]} files as .clang-format says"
