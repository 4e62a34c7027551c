#!/bin/sh
# Records a helper program with the real CLI and checks its HTML reports in headless Chromium:
#   record_and_check.sh MEMDX DRIVER HELPER MODE SECONDS trace|no-trace [DRIVER ARGS...]
# Two pages of one recording are checked with the same expectations: the one `memdx run --html`
# writes as the run ends, and the one `memdx report REC --html` renders from the recording.
set -eu
memdx=$1 driver=$2 helper=$3 mode=$4 seconds=$5 trace=$6
shift 6
case $trace in
  trace) trace_flag= ;;
  no-trace) trace_flag=--no-trace ;;
  *) echo "FAIL: expected trace or no-trace, got '$trace'"; exit 2 ;;
esac

work=$(mktemp -d "${TMPDIR:-/tmp}/memdx-html-test.XXXXXX")
trap 'rm -rf "$work"' EXIT
trap 'exit 143' INT TERM

status=0
"$memdx" run --quiet $trace_flag --html "$work/run.html" --out "$work/recording.memdx" -- "$helper" "$mode" "$seconds" \
  >"$work/run.log" 2>&1 || status=$?
if [ "$status" -ne 0 ]; then
  echo "FAIL: memdx run exited with status $status:"
  cat "$work/run.log"
  exit 1
fi
"$memdx" report "$work/recording.memdx" --html "$work/report.html" >"$work/report.log" 2>&1 || status=$?
if [ "$status" -ne 0 ]; then
  echo "FAIL: memdx report exited with status $status:"
  cat "$work/report.log"
  exit 1
fi
python3 "$driver" "$work/run.html" "$work/report.html" "$@"
