#!/usr/bin/env bash
# The clang-tidy gate: every source under src/ (memdx, libmemdx and the injected tracer) checked
# with the checks .clang-tidy names (bugprone-*, performance-*, two readability checks), any
# finding an error. Needs the build's compile_commands.json (CMAKE_EXPORT_COMPILE_COMMANDS is on).
# Usage: tools/check-tidy.sh [BUILD_DIR] (default build/). About 5 minutes of CPU on 2 cores.
set -euo pipefail
root=$(cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/.." && pwd)
build=$(cd "${1:-$root/build}" && pwd)
runner=$(command -v run-clang-tidy-14 || command -v run-clang-tidy || true)
tidy=$(command -v clang-tidy-14 || command -v clang-tidy || true)
if [ -z "$runner" ] || [ -z "$tidy" ]; then
  echo "check-tidy: clang-tidy is not installed (Debian package clang-tidy)" >&2
  exit 1
fi
[ -f "$build/compile_commands.json" ] || { echo "check-tidy: no $build/compile_commands.json" >&2; exit 1; }
log=$(mktemp)
trap 'rm -f "$log"' EXIT
# Generated sources (the build's own src/) are left out: only files of the source tree.
status=0
"$runner" -clang-tidy-binary "$tidy" -p "$build" -j "$(nproc 2>/dev/null || echo 2)" -quiet "^$root/src/.*\.cpp$" \
  >"$log" 2>&1 || status=$?
findings=$(sed 's/\x1b\[[0-9;]*m//g' "$log" | grep -E '^/.*: (warning|error):' | sort -u || true)
if [ -n "$findings" ] || [ "$status" -ne 0 ]; then
  if [ -n "$findings" ]; then echo "$findings" >&2; else cat "$log" >&2; fi
  echo "check-tidy: clang-tidy found the above (fix them, or NOLINT one with the reason)" >&2
  exit 1
fi
echo "check-tidy: $(grep -c "\"file\": \"$root/src/" "$build/compile_commands.json") sources as .clang-tidy says"
