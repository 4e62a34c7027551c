#!/usr/bin/env bash
# memdx as people install it: `cmake --install` into a fresh prefix and the .deb (cpack -G DEB),
# each used from outside the tree.
#   1. consumer.cpp built with find_package(memdx) against the installed prefix, and run; and
#      memory_test.cpp, linking memdx::testing (the assertions and the allocation recorder);
#   2. the same program built with pkg-config against the prefix, and run;
#   3. the installed memdx traces a program's heap (it finds its tracer under the prefix);
#   4. the .deb: its Depends line, installed by dpkg into a root of its own (against a copy of
#      this machine's dpkg database), the memdx there tracing, consumer.cpp built with pkg-config
#      against it and run, and dpkg -r removing every file.
# Usage: check.sh BUILD_DIR. Fails (exit 1) at the first step that does not hold.
set -euo pipefail
build=$(cd "$1" && pwd)
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
fail() {
  echo "FAILED: $*" >&2
  exit 1
}
step() { echo "== $*"; }

step "cmake --install into $work/prefix"
cmake --install "$build" --prefix "$work/prefix" >"$work/install.log" || {
  cat "$work/install.log"
  fail "cmake --install"
}
pc_file=$(find "$work/prefix" -name memdx.pc)
[ -n "$pc_file" ] || fail "no memdx.pc installed"
[ -f "$(find "$work/prefix" -name memdxConfig.cmake)" ] || fail "no memdxConfig.cmake installed"

step "find_package(memdx): build and run"
cmake -S "$here" -B "$work/cmake-build" -DCMAKE_PREFIX_PATH="$work/prefix" -DCMAKE_BUILD_TYPE=Release \
  >"$work/configure.log" 2>&1 || {
  cat "$work/configure.log"
  fail "configuring the find_package consumer"
}
cmake --build "$work/cmake-build" >"$work/build.log" 2>&1 || {
  cat "$work/build.log"
  fail "building the find_package consumer"
}
mkdir "$work/run-cmake"
"$work/cmake-build/consumer" "$work/run-cmake" || fail "the find_package consumer"
step "find_package(memdx): memdx::testing's assertions, with the allocation recorder"
"$work/cmake-build/memory_test" || fail "the installed memory assertions"

# Builds consumer.cpp with the pkg-config file in $1 into $2 and runs it.
pkg_config_consumer() {
  local pc_dir=$1 out=$2 flags libdir
  flags=$(PKG_CONFIG_PATH=$pc_dir pkg-config --cflags --libs memdx) || fail "pkg-config --cflags --libs memdx"
  libdir=$(PKG_CONFIG_PATH=$pc_dir pkg-config --variable=libdir memdx)
  # shellcheck disable=SC2086  # the flags are words
  g++ -std=c++17 -O2 -o "$out" "$here/consumer.cpp" $flags -Wl,-rpath,"$libdir" || fail "building with pkg-config"
  mkdir "$out.run"
  "$out" "$out.run" || fail "the pkg-config consumer ($out)"
}

step "pkg-config memdx: build and run"
pkg_config_consumer "$(dirname "$pc_file")" "$work/consumer-pc"

gcc -g -O0 -fno-omit-frame-pointer -o "$work/leak" "$here/leak.c"
# Runs memdx ($1) on the leaking program and checks that the heap was traced: 1,000 KiB live at
# the end, allocated in keep_some().
traced_by() {
  local memdx=$1 json=$2
  "$memdx" run --quiet --json "$json" -- "$work/leak" 2>"$json.stderr" || {
    cat "$json.stderr"
    fail "$memdx run"
  }
  python3 - "$json" <<'PY' || fail "$memdx did not trace the heap: $(cat "$json.stderr")"
import json, sys
verdict = json.load(open(sys.argv[1]))
heap = verdict["heap"]
assert heap, "no heap section"
assert heap[0]["final_live_bytes"] >= 1000 * 1024, heap[0]["final_live_bytes"]
assert any(site["function"] == "keep_some" for site in heap[0]["sites"]), [s["function"] for s in heap[0]["sites"]]
print("ok: %s traced %d bytes live at the end, in keep_some()" % (sys.argv[1], heap[0]["final_live_bytes"]))
PY
}

step "the installed memdx finds its tracer"
traced_by "$work/prefix/bin/memdx" "$work/installed.json"

step "cpack -G DEB"
(cd "$work" && cpack -G DEB --config "$build/CPackConfig.cmake" -B "$work/deb" >"$work/cpack.log" 2>&1) || {
  cat "$work/cpack.log"
  fail "cpack -G DEB"
}
deb=$(find "$work/deb" -maxdepth 1 -name 'memdx_*.deb')
[ -n "$deb" ] || fail "no .deb made"
depends=$(dpkg-deb -f "$deb" Depends)
echo "Depends: $depends"
for library in libdw1 libsqlite3-0 libzstd1; do
  [[ $depends == *"$library"* ]] || fail "the .deb does not depend on $library"
done
# dpkg itself installs it: the dependencies are checked against this machine's installed packages
# (a copy of its dpkg database, so the machine's own stays untouched), the files land in a root of
# their own, and the maintainer scripts run. Then removal must take every file it installed.
step "dpkg -i into a root of its own"
cp -r /var/lib/dpkg "$work/admin"
mkdir "$work/root"
dpkg_here() { dpkg --admindir="$work/admin" --instdir="$work/root" --force-script-chrootless "$@"; }
dpkg_here -i "$deb" >"$work/dpkg.log" 2>&1 || {
  cat "$work/dpkg.log"
  fail "dpkg -i"
}
status=$(dpkg --admindir="$work/admin" -s memdx | sed -n 's/^Status: //p')
[ "$status" = "install ok installed" ] || fail "dpkg says memdx is '$status' after dpkg -i"
for file in usr/bin/memdx usr/include/memdx/memdx.h usr/include/memdx/version.h; do
  [ -e "$work/root/$file" ] || fail "the .deb lacks /$file"
done
traced_by "$work/root/usr/bin/memdx" "$work/deb.json"
pkg_config_consumer "$(dirname "$(find "$work/root" -name memdx.pc)")" "$work/consumer-deb"
step "dpkg -r takes every file it installed"
dpkg_here -r memdx >>"$work/dpkg.log" 2>&1 || {
  cat "$work/dpkg.log"
  fail "dpkg -r"
}
left=$(find "$work/root" -type f | head -5)
[ -z "$left" ] || fail "dpkg -r left files behind: $left"
echo "all checks passed"
