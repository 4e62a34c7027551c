#!/usr/bin/env bash
# The HTML report at scale: a recording of HOURS (default 24) of PIDS (default 1001) processes,
# built by long_run_size.py as a long watch leaves it, then `memdx report` timed with --json
# alone and with --html (median of RUNS), the page's size, and the time headless Chromium takes
# to open it and pass tests/browser/check_html_report.py (no error, charts drawn, not blank).
#   bench/html_scale.sh [BUILD_DIR]     HOURS=24 PIDS=1001 RUNS=3
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
build=$(cd "${1:-$here/../build}" && pwd)
hours=${HOURS:-24} pids=${PIDS:-1001} runs=${RUNS:-3}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
recording="$work/long.memdx"
python3 "$here/long_run_size.py" "$build" --hours "$hours" --pids "$pids" --minutes 1 --keep "$recording" > "$work/build.log"
head -1 "$work/build.log"

# Median wall seconds and peak RSS (MiB) of RUNS runs of a command.
measure() {
  local label=$1
  shift
  for _ in $(seq "$runs"); do
    /usr/bin/time -f '%e %M' "$@" 2>&1 >/dev/null | tail -1
  done | sort -n | awk -v label="$label" '{ t[NR] = $1; m[NR] = $2 }
    END { i = int((NR + 1) / 2); printf "%-24s %6.2f s  %7.1f MiB peak RSS\n", label, t[i], m[i] / 1024 }'
}

measure "report --json" "$build/memdx" report "$recording" --json "$work/v.json"
measure "report --json --html" "$build/memdx" report "$recording" --json "$work/v.json" --html "$work/r.html"
printf '%-24s %6.2f MiB (recording %.1f MiB)\n' "page size" "$(stat -c %s "$work/r.html" | awk '{ print $1 / 1048576 }')" \
  "$(stat -c %s "$recording" | awk '{ print $1 / 1048576 }')"
python3 - "$here/../tests/browser/check_html_report.py" "$work/r.html" <<'PY'
import subprocess, sys, time
start = time.monotonic()
subprocess.run([sys.executable, sys.argv[1], sys.argv[2], "--expect-no-flame"], check=True, stdout=subprocess.DEVNULL)
print(f"{'opened in Chromium':<24} {time.monotonic() - start:6.2f} s")
PY
