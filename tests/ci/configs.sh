#!/bin/sh
# The build configurations CI checks after the default one (`make test` runs
# this after the default build's whole suite; tests/ci/README.md):
#
#   release  CMAKE_BUILD_TYPE=Release (-O3 -DNDEBUG; -Werror as always), unit tests
#   clang    clang instead of gcc (RelWithDebInfo, -Werror), unit tests
#   asan     -DEMPQ_SANITIZE=ON (AddressSanitizer + UndefinedBehaviorSanitizer),
#            unit and integration tests at their default (reduced) size; the
#            fault scenarios, the fuzz run and test_deploy are left out
#            (tests/ci/README.md says why)
#
# Usage: tests/ci/configs.sh [release] [clang] [asan]   (no argument: all three)
# Each builds into build-NAME/ at the top of the source tree and prints its
# build and test times; the script stops at the first configuration that
# fails and exits non-zero. A sanitizer report from any program the tests
# started (not only from a test process) fails the asan configuration: the
# reports are written under build-asan/sanitizer/ and printed.
set -eu
cd "$(dirname "$0")/../.."
SRC=$(pwd)
JOBS=${JOBS:-$(nproc 2>/dev/null || echo 2)}
CONFIGS=${*:-release clang asan}

now() { date +%s; }

# run NAME CTEST_ARGS...: configure and build build-NAME (cmake args in
# $CMAKE_ARGS, compiler in $CC_FOR), then ctest with CTEST_ARGS.
run() {
  name=$1
  shift
  dir="$SRC/build-$name"
  echo "== $name: configure and build ($dir)"
  t0=$(now)
  # (set -e does not hold inside a function called with ||: every step is checked)
  # shellcheck disable=SC2086  # CMAKE_ARGS is a list of words
  CC=$CC_FOR cmake -S "$SRC" -B "$dir" $CMAKE_ARGS >/dev/null || return 1
  cmake --build "$dir" -j "$JOBS" || { echo "== $name: build failed" >&2; return 1; }
  t1=$(now)
  echo "== $name: ctest $*"
  (cd "$dir" && ctest --output-on-failure -j "$JOBS" "$@") || { echo "== $name: tests failed" >&2; return 1; }
  t2=$(now)
  echo "== $name: ok (build $((t1 - t0)) s, tests $((t2 - t1)) s)"
}

for c in $CONFIGS; do
  case $c in
  release)
    CC_FOR=${CC:-cc} CMAKE_ARGS="-DCMAKE_BUILD_TYPE=Release" run release -L unit || exit 1
    ;;
  clang)
    if ! command -v clang >/dev/null 2>&1; then
      echo "configs.sh: clang is not installed (deploy/bootstrap.sh test installs it)" >&2
      exit 1
    fi
    CC_FOR=clang CMAKE_ARGS="-DCMAKE_BUILD_TYPE=RelWithDebInfo" run clang -L unit || exit 1
    ;;
  asan)
    reports="$SRC/build-asan/sanitizer"
    rm -rf "$reports"
    mkdir -p "$reports"
    # Every program (the tests start empq, broker, workers, collector and
    # fakellm) writes its reports to a file: a finding in a child process
    # that its test does not look at still fails the configuration.
    # detect_leaks: a long-running program's exit path is not its steady
    # state, but a leak in a unit test or a command is a real finding.
    ASAN_OPTIONS="log_path=$reports/asan:detect_leaks=1:abort_on_error=0:strict_string_checks=1"
    UBSAN_OPTIONS="log_path=$reports/ubsan:print_stacktrace=1:halt_on_error=1"
    export ASAN_OPTIONS UBSAN_OPTIONS
    status=0
    CC_FOR=${CC:-cc} CMAKE_ARGS="-DCMAKE_BUILD_TYPE=RelWithDebInfo -DEMPQ_SANITIZE=ON" \
      run asan -L "unit|integration" -E '^integration[.]test_deploy$' || status=$?
    if [ -n "$(ls -A "$reports")" ]; then
      echo "== asan: sanitizer reports:" >&2
      for f in "$reports"/*; do
        echo "---- $f" >&2
        cat "$f" >&2
      done
      status=1
    fi
    [ "$status" -eq 0 ] || exit "$status"
    ;;
  *)
    echo "configs.sh: unknown configuration '$c' (release, clang or asan)" >&2
    exit 2
    ;;
  esac
done
