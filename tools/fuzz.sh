#!/usr/bin/env bash
# Fuzzes memdx's heap-trace reader with libFuzzer (clang-14, ASan + UBSan), in build-libfuzzer/.
#
#   tools/fuzz.sh [SECONDS] [TARGET]  runs TARGET for SECONDS (default 60) over tests/fuzz/corpus:
#                                     reader  decompressed chunks, into the decoder (default, fast)
#                                     chunk   compressed chunks (zstd frames)
#                                     profile chunks stored in a recording and aggregated
#   tools/fuzz.sh --seeds             remakes tests/fuzz/corpus/seed-* from programs traced now
#                                     (needed when the wire format changes)
#
# Inputs that crash, leak, hang or take more than 2 GiB land in build-libfuzzer/fuzz-findings/.
# Once fixed, copy each into tests/fuzz/corpus/ as crash-WHAT: memdx_trace_replay_test replays
# the corpus in every build. The corpus the fuzzer grows stays in build-libfuzzer/fuzz-corpus/.
set -euo pipefail
MEMDX_ROOT=$(cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/.." && pwd)
build="$MEMDX_ROOT/build-libfuzzer"
corpus="$MEMDX_ROOT/tests/fuzz/corpus"
jobs=${MEMDX_FUZZ_BUILD_JOBS:-2}

say() { printf 'memdx fuzz: %s\n' "$*" >&2; }

configure() {
  for tool in clang-14 clang++-14; do
    command -v "$tool" >/dev/null || { say "$tool is missing: apt-get install clang-14 libclang-rt-14-dev"; exit 1; }
  done
  if [ ! -f "$build/build.ninja" ]; then
    CC=clang-14 CXX=clang++-14 cmake -S "$MEMDX_ROOT" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
      -DMEMDX_BUILD_TESTS=ON -DMEMDX_BUILD_BENCH=OFF -DMEMDX_FUZZ=ON \
      -DMEMDX_SANITIZE=address,undefined,fuzzer-no-link >/dev/null
  fi
}

# Traces a few small real programs (one thread, 16 threads, dlopen, fork and exec, sampling,
# abort) and cuts each trace into a seed of a few KiB.
make_seeds() {
  local tracees=(memdx_tracee_counts memdx_tracee_stress memdx_tracee_plugin memdx_tracee_chain
                 memdx_tracee_chain_exec memdx_tracee_workload)
  cmake --build "$build" -j "$jobs" --target memdx memdx_trace memdx_trace_seeds "${tracees[@]}"
  local work helpers="$build/test-helpers"
  work=$(mktemp -d)
  trap 'rm -rf "$work"' RETURN
  # trace NAME STREAM_BYTES [MEMDX_TRACE_OPTIONS...] -- COMMAND...
  trace() {
    local name=$1 budget=$2 options=()
    shift 2
    while [ "$1" != -- ]; do options+=("$1"); shift; done
    shift
    # The tracee's own exit status (abort) is not memdx's failure.
    "$build/memdx" trace "${options[@]}" -o "$work/$name.memdx" -- "$@" >/dev/null 2>"$work/$name.err" || true
    [ -s "$work/$name.memdx" ] || { cat "$work/$name.err" >&2; exit 1; }
    "$build/tests/fuzz/memdx_trace_seeds" "$work/$name.memdx" "$corpus/seed-$name" "$budget"
  }
  trace counts 2048 -- "$helpers/memdx_tracee_counts"
  trace threads 4096 -- "$helpers/memdx_tracee_stress" threads
  trace dlopen 2048 -- "$helpers/memdx_tracee_stress" dlopen "$helpers/memdx_tracee_plugin.so"
  trace chain 2048 -- "$helpers/memdx_tracee_chain"
  trace sampled 2048 --sample-bytes 4096 -- "$helpers/memdx_tracee_workload"
  trace abort 2048 -- "$helpers/memdx_tracee_stress" abort
}

run_fuzzer() {
  local seconds=$1 target=$2
  case "$target" in reader | chunk | profile) ;; *) say "unknown target '$target' (reader, chunk, profile)"; exit 2 ;; esac
  cmake --build "$build" -j "$jobs" --target "memdx_trace_${target}_fuzz"
  local grown="$build/fuzz-corpus/$target" findings="$build/fuzz-findings"
  mkdir -p "$grown" "$findings"
  local seeds="$corpus"
  if [ "$target" = chunk ]; then
    # The chunk target reads what the recording stores: compress the seeds as the collector does.
    seeds="$build/fuzz-corpus/chunk-seeds"
    mkdir -p "$seeds"
    for file in "$corpus"/*; do zstd -q -f -1 "$file" -o "$seeds/$(basename "$file").zst"; done
  fi
  say "running $target for ${seconds}s; findings go to $findings"
  "$build/tests/fuzz/memdx_trace_${target}_fuzz" "$grown" "$seeds" \
    -dict="$MEMDX_ROOT/tests/fuzz/trace.dict" -max_total_time="$seconds" -max_len=16384 -timeout=10 \
    -rss_limit_mb=2048 -malloc_limit_mb=2048 -print_final_stats=1 -artifact_prefix="$findings/"
}

configure
if [ "${1:-}" = --seeds ]; then
  make_seeds
else
  run_fuzzer "${1:-60}" "${2:-reader}"
fi
