# Shared set-up for ./memdx and ./run-tests: install missing Debian packages, configure, build.
# Sourced, not executed. Everything it prints goes to stderr so `./memdx ... --json` stays clean.

MEMDX_ROOT=${MEMDX_ROOT:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)}

# What building and running memdx needs. llvm-14-dev: LLVM's demangler names Rust functions.
MEMDX_BUILD_PACKAGES=(g++ cmake ninja-build pkg-config libfmt-dev libcli11-dev nlohmann-json3-dev libsqlite3-dev
                      libzstd-dev libdw-dev libelf-dev libprotobuf-dev protobuf-compiler zlib1g-dev llvm-14-dev
                      libcpp-httplib-dev)
# What ./run-tests needs on top.
# chromium: the HTML report is opened in a real headless browser (tests/browser).
# The real programs run under memdx (tests/trace_integration/real_programs_test.cpp): a JVM (javac
# builds its program), node, python3, perl, sqlite3, git, bash pipelines with coreutils and awk,
# make and gcc. tmux gives the terminal tests a terminal of their own (tests/integration).
# util-linux: setpriv. rustc builds the Rust program of the site tests (tests/trace_integration);
# binutils' objcopy, readelf and addr2line make and check the stripped programs there.
# heaptrack: the peer memdx's counts and peak are compared with (tests/trace_integration).
# clang-format and clang-tidy: the formatting and lint gates (tools/check-format.sh, check-tidy.sh).
# prometheus: a real Prometheus scrapes `memdx serve` (tests/serve), and promtool checks its metrics.
MEMDX_TEST_PACKAGES=(libgtest-dev libgmock-dev libbenchmark-dev chromium
                     default-jdk-headless nodejs python3 perl sqlite3 git bash coreutils mawk make gcc
                     tmux util-linux rustc binutils heaptrack clang-format clang-tidy prometheus)

memdx_say() { printf 'memdx: %s\n' "$*" >&2; }

# Installs the packages that are not installed yet: with apt-get when root, otherwise prints the
# exact command and stops.
memdx_ensure_packages() {
  local missing=() pkg
  for pkg in "$@"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' || missing+=("$pkg")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  if [ "$(id -u)" -ne 0 ]; then
    memdx_say "missing Debian packages; install them with:"
    printf '  sudo apt-get install -y %s\n' "${missing[*]}" >&2
    exit 1
  fi
  memdx_say "installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  if ! { apt-get update -qq && apt-get install -y -qq --no-install-recommends "${missing[@]}"; } >&2; then
    memdx_say "apt-get could not install ${missing[*]}"
    exit 1
  fi
}

# memdx_build BUILD_DIR TARGET [cmake args...]: configures once, then builds TARGET; the build
# log is shown only when the build fails.
memdx_build() {
  local dir=$1 target=$2
  shift 2
  local log="$MEMDX_ROOT/$dir/.memdx-build.log"
  mkdir -p "$MEMDX_ROOT/$dir"
  if [ ! -f "$MEMDX_ROOT/$dir/build.ninja" ]; then
    memdx_say "configuring $dir (first run)"
    if ! cmake -S "$MEMDX_ROOT" -B "$MEMDX_ROOT/$dir" -G Ninja "$@" >"$log" 2>&1; then
      cat "$log" >&2
      memdx_say "configuring failed; the log is in $log"
      exit 1
    fi
  fi
  if ! cmake --build "$MEMDX_ROOT/$dir" --target "$target" >"$log" 2>&1; then
    cat "$log" >&2
    memdx_say "building $target failed; the log is in $log"
    exit 1
  fi
}
