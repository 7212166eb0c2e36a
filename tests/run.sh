#!/bin/sh
# run.sh -- runs every test binary of each built variant, then the fuzz
# targets for a bounded time, and prints one closing line:
#     tests: N passed, N failed
#
# Environment:
#   SY_VARIANTS  variants to run (default "release asan")
#   SY_FUZZ      1 (default) to run the fuzz targets, 0 to skip them
#   SY_FUZZ_SECS seconds per fuzz target (default 8; `make fuzz-run` or
#                a larger value for a longer search)
#   SY_TEST_TIMEOUT seconds per test binary (default 300)
#   SY_ONLY      run only test binaries whose name contains this
#
# Each test binary is a cmocka program; it gets SY_BIN_DIR (where the
# variant's binaries are) in its environment.
set -u
cd "$(dirname "$0")/.."
ROOT=$(pwd)
VARIANTS=${SY_VARIANTS-"release asan"}
FUZZ=${SY_FUZZ-1}
FUZZ_SECS=${SY_FUZZ_SECS-8}
TMO=${SY_TEST_TIMEOUT-300}
passed=0; failed=0; failed_names=""
mkdir -p "$ROOT/build"
LOGDIR=$(mktemp -d "$ROOT/build/test-logs.XXXXXX")

export ASAN_OPTIONS="detect_leaks=1:abort_on_error=1:strict_string_checks=1"
export UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1"
export LSAN_OPTIONS="suppressions=$ROOT/tests/lsan.supp:print_suppressions=0"

count() { # $1 = log file; adds cmocka's counts
    p=$(sed -n 's/^\[  PASSED  \] \([0-9]*\) test.*/\1/p' "$1" | awk '{s+=$1} END {print s+0}')
    f=$(sed -n 's/^\[  FAILED  \] \([0-9]*\) test.*/\1/p' "$1" | awk '{s+=$1} END {print s+0}')
    echo "$p $f"
}

for v in $VARIANTS; do
    if [ "$v" = release ]; then bindir="$ROOT/bin"; else bindir="$ROOT/build/$v/bin"; fi
    for t in "$ROOT"/build/"$v"/tests/unit/test_* "$ROOT"/build/"$v"/tests/it/test_*; do
        [ -x "$t" ] || continue
        case "$t" in *.d|*.o) continue;; esac
        name="$v/$(basename "$(dirname "$t")")/$(basename "$t")"
        if [ -n "${SY_ONLY-}" ]; then case "$name" in *"$SY_ONLY"*) ;; *) continue;; esac; fi
        log="$LOGDIR/$(echo "$name" | tr / _).log"
        start=$(date +%s)
        SY_BIN_DIR="$bindir" SY_VARIANT="$v" timeout -k 10 "$TMO" "$t" >"$log" 2>&1
        rc=$?
        secs=$(( $(date +%s) - start ))
        set -- $(count "$log"); p=$1; f=$2
        if [ $rc -ne 0 ] && [ "$f" -eq 0 ]; then f=1; fi   # crash, timeout, sanitizer
        passed=$((passed + p)); failed=$((failed + f))
        if [ $rc -eq 0 ] && [ "$f" -eq 0 ]; then
            echo "ok    $name ($p tests, ${secs}s)"
        else
            echo "FAIL  $name (rc=$rc, $p passed, $f failed, ${secs}s)"
            failed_names="$failed_names $name"
            sed 's/^/    | /' "$log" | tail -60
        fi
    done
done

if [ "$FUZZ" = 1 ]; then
    for fz in "$ROOT"/build/fuzz/fuzz_*; do
        [ -x "$fz" ] || continue
        n=$(basename "$fz"); corpus_src="$ROOT/tests/fuzz/corpus/${n#fuzz_}"
        work=$(mktemp -d "$ROOT/build/fuzz-work.XXXXXX")
        [ -d "$corpus_src" ] && cp "$corpus_src"/* "$work"/ 2>/dev/null
        log="$LOGDIR/$n.log"
        timeout -k 10 $((FUZZ_SECS + 60)) "$fz" -max_total_time="$FUZZ_SECS" \
            -rss_limit_mb=1024 -malloc_limit_mb=256 -max_len=70000 -artifact_prefix="$work/" "$work" >"$log" 2>&1
        rc=$?
        if [ $rc -eq 0 ]; then
            passed=$((passed + 1))
            echo "ok    fuzz/$n ($(grep -c . "$log") log lines, $(ls "$work" | wc -l) corpus files, ${FUZZ_SECS}s)"
        else
            failed=$((failed + 1)); failed_names="$failed_names fuzz/$n"
            echo "FAIL  fuzz/$n (rc=$rc)"; tail -40 "$log" | sed 's/^/    | /'
        fi
        rm -rf "$work"
    done
fi

echo
[ -n "$failed_names" ] && echo "failed:$failed_names"
echo "logs: $LOGDIR"
echo "tests: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
