#!/bin/sh
# Builds the libFuzzer targets with clang (ASan + UBSan) and runs each for
# SECONDS (default 600), JOBS at a time (default 1).
#
#   tests/fuzz/run.sh [SECONDS] [TARGET...]
#
# Environment: EMPQ_FUZZ_BUILD  build folder (default <repo>/build-fuzz)
#              EMPQ_FUZZ_JOBS   targets run at once (default 1)
#              EMPQ_FUZZ_LOG    folder for the logs (default $EMPQ_FUZZ_BUILD/logs)
# Each target starts from its seeds (tests/fuzz/corpus/TARGET, never written)
# and keeps what it finds in $EMPQ_FUZZ_BUILD/corpus/TARGET; a crash, leak or
# sanitizer report leaves its input in $EMPQ_FUZZ_BUILD/artifacts/TARGET/.
# Exit status: 0 no finding, 1 a finding or a build failure, 77 when clang or
# its libFuzzer runtime is missing (the reason is printed).
set -eu

here=$(cd "$(dirname "$0")" && pwd)
src=$(cd "$here/../.." && pwd)
secs=${1:-600}
[ $# -gt 0 ] && shift
build=${EMPQ_FUZZ_BUILD:-$src/build-fuzz}
jobs=${EMPQ_FUZZ_JOBS:-1}
logs=${EMPQ_FUZZ_LOG:-$build/logs}
all="fuzz_wire_worker fuzz_wire_broker fuzz_wire_control fuzz_dataset_wp fuzz_dataset_ed
fuzz_dataset_jsonl fuzz_spec fuzz_provider_openai fuzz_provider_azure fuzz_provider_anthropic
fuzz_provider_gemini fuzz_ratings"
targets=${*:-$all}

cc=${CC:-clang}
if ! command -v "$cc" >/dev/null 2>&1; then
    echo "SKIP: $cc not found (apt-get install clang libclang-rt-14-dev)" >&2
    exit 77
fi
probe=$(mktemp -d)
trap 'rm -rf "$probe"' EXIT
printf '#include <stddef.h>\n#include <stdint.h>\nint LLVMFuzzerTestOneInput(const uint8_t *d, size_t n);\nint LLVMFuzzerTestOneInput(const uint8_t *d, size_t n) { (void)d; (void)n; return 0; }\n' >"$probe/p.c"
if ! "$cc" -fsanitize=fuzzer,address,undefined -o "$probe/p" "$probe/p.c" >"$probe/log" 2>&1; then
    echo "SKIP: $cc cannot link a libFuzzer target with ASan/UBSan (libclang-rt-14-dev missing?):" >&2
    cat "$probe/log" >&2
    exit 77
fi

if [ ! -f "$build/CMakeCache.txt" ]; then
    cmake -S "$src" -B "$build" -DEMPQ_FUZZ=ON -DEMPQ_TESTS=OFF -DCMAKE_C_COMPILER="$cc" \
        -DCMAKE_BUILD_TYPE=RelWithDebInfo >"$probe/cmake.log" 2>&1 || { cat "$probe/cmake.log" >&2; exit 1; }
fi
cmake --build "$build" -j "$(nproc 2>/dev/null || echo 2)" --target fuzz >"$probe/build.log" 2>&1 ||
    { tail -n 40 "$probe/build.log" >&2; exit 1; }

mkdir -p "$logs"
run_one() {
    t=$1
    mkdir -p "$build/corpus/$t" "$build/artifacts/$t"
    # -rss_limit_mb / -malloc_limit_mb: a 16 MB frame is allowed on the wire,
    # so an input may ask for that much; more is a finding.
    if ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
        "$build/fuzz/$t" -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 \
        -malloc_limit_mb=512 -max_len=65536 -print_final_stats=1 \
        -artifact_prefix="$build/artifacts/$t/" "$build/corpus/$t" "$here/corpus/$t" \
        >"$logs/$t.log" 2>&1; then
        summary=$(grep -E '^stat::number_of_executed_units|^#[0-9]+.*DONE' "$logs/$t.log" | tr '\n' ' ')
        echo "ok   $t: $summary"
        return 0
    fi
    echo "FAIL $t: see $logs/$t.log and $build/artifacts/$t/" >&2
    grep -E 'ERROR|SUMMARY|runtime error' "$logs/$t.log" | head -n 5 >&2
    return 1
}

rc=0
if [ "$jobs" -le 1 ]; then
    for t in $targets; do run_one "$t" || rc=1; done
else
    # JOBS at a time; each background run writes its verdict to a file.
    # shellcheck disable=SC2086 # a list of names, split on purpose
    set -- $targets
    while [ $# -gt 0 ]; do
        pids=""
        i=0
        while [ $# -gt 0 ] && [ $i -lt "$jobs" ]; do
            ( run_one "$1" >"$probe/$1.verdict" 2>&1 ) &
            pids="$pids $!"
            i=$((i + 1))
            shift
        done
        for p in $pids; do wait "$p" || rc=1; done
    done
    cat "$probe"/*.verdict
fi
exit $rc
