#!/bin/sh
# run.sh -- the benchmarks of BENCHMARKS.md, in one run:
#   rr       request/reply: sy-broker against a trivial libzmq ROUTER
#            forwarder, same client and worker code, same transport;
#   durable  durable send -> deliver -> ack through sy-broker (store on
#            disk, full sync) against the raw LMDB limit and beanstalkd
#            (binlog fsynced on every write); the same at smaller windows
#            (in-flight sends = consumer credit) and on an emulated slow
#            disk (bench/slowsync.c); then the restart of the broker with
#            1,000,000 queued messages and its memory.
# Called by `make bench` after `make build`; see BENCHMARKS.md.
#
# Each round starts a fresh server (bin/sy-broker with a temporary config,
# or build/release/bench/sy-bench-fwd), runs build/release/bench/sy-bench
# against it (pipelined throughput, then one-at-a-time latency) and kills
# the server.  The two systems alternate (fwd, sy, fwd, sy, ...) so drift
# of the machine hits both alike; the table shows medians over the rounds.
#
# Environment (defaults in brackets):
#   BENCH_ROUNDS      rounds per system and transport [3]
#   BENCH_COUNT       throughput round trips per round [200000]
#   BENCH_INFLIGHT    requests in flight [500]
#   BENCH_LAT_COUNT   timed one-at-a-time round trips [20000]
#   BENCH_LAT_WARMUP  untimed ones before them [2000]
#   BENCH_SIZE        body bytes [256]
#   BENCH_MAX_SECS    time bound of each test [60]
#   BENCH_TRANSPORTS  "tcp ipc" [both]
#   BENCH_PIN         split: server on CPU 0, client + worker on CPU 1;
#                     none: let the scheduler place them [split]
#   BENCH_BROKER      the broker binary [bin/sy-broker]; another build
#                     of it, to compare two versions
#   BENCH_CALLGRIND   1: also count the instructions per round trip of each
#                     server under valgrind --tool=callgrind, and (durable
#                     suite) per durable message of sy-broker [0]
#   BENCH_SUITES      which benchmarks: "rr durable chat" [all three];
#                     chat is bench/chat.sh (its own settings there)
#   BENCH_DUR_ROUNDS  durable rounds (each: sy-broker, raw LMDB at three
#                     batch sizes, beanstalkd) [3]
#   BENCH_DUR_COUNT   messages per durable run [20000]
#   BENCH_DUR_INFLIGHT  sends (puts) without a receipt at most [500]
#   BENCH_DUR_CREDIT  consumer credit (beanstalkd: reserves outstanding) [500]
#   BENCH_LMDB_COUNT  records per raw LMDB run [200000]
#   BENCH_DUR_WINDOWS window sweep: each W runs sy-broker with W in flight
#                     and credit W, then raw LMDB at that run's batch_eff;
#                     "" skips it ["50 100 200 500"]
#   BENCH_DUR_SWEEP_LMDB_COUNT  records per raw LMDB run of the sweep and
#                     of the slow-flush comparison [50000]
#   BENCH_DUR_SLOWSYNC_US  slow-flush comparison at the default window:
#                     sy-broker, raw LMDB at its batch and beanstalkd, all
#                     with build/release/bench/slowsync.so preloaded, which
#                     sleeps this many us after each flush call; 0 skips
#                     it [2000]
#   BENCH_DUR_SLOW_BEAN_COUNT  beanstalkd jobs in that comparison (two
#                     flushes per job) [1000]
#   BENCH_FILL        messages queued for the restart test [1000000]
#   BENCH_DUR_DIR     where stores and binlogs go [a temp dir in /tmp]
#
# Output: tables on stdout; raw lines, settings and the tables in
# build/bench/results.txt; with BENCH_CALLGRIND=1 the profiles in
# build/bench/callgrind-*.txt.  Only 127.0.0.1 and ipc:// in a temp dir.
# beanstalkd is optional: without it its row is skipped, with a message.
set -u
cd "$(dirname "$0")/.."
ROOT=$(pwd)

ROUNDS=${BENCH_ROUNDS:-3}
COUNT=${BENCH_COUNT:-200000}
INFLIGHT=${BENCH_INFLIGHT:-500}
LAT=${BENCH_LAT_COUNT:-20000}
WARM=${BENCH_LAT_WARMUP:-2000}
SIZE=${BENCH_SIZE:-256}
MAXS=${BENCH_MAX_SECS:-60}
TRANSPORTS=${BENCH_TRANSPORTS:-"tcp ipc"}
CALLGRIND=${BENCH_CALLGRIND:-0}
PIN=${BENCH_PIN:-split}
SUITES=${BENCH_SUITES:-"rr durable chat"}
DUR_ROUNDS=${BENCH_DUR_ROUNDS:-3}
DUR_COUNT=${BENCH_DUR_COUNT:-20000}
DUR_INFLIGHT=${BENCH_DUR_INFLIGHT:-500}
DUR_CREDIT=${BENCH_DUR_CREDIT:-500}
LMDB_COUNT=${BENCH_LMDB_COUNT:-200000}
DUR_WINDOWS=${BENCH_DUR_WINDOWS-"50 100 200 500"}
SWEEP_LMDB_COUNT=${BENCH_DUR_SWEEP_LMDB_COUNT:-50000}
SLOW_US=${BENCH_DUR_SLOWSYNC_US:-2000}
SLOW_BEAN_COUNT=${BENCH_DUR_SLOW_BEAN_COUNT:-1000}
FILL=${BENCH_FILL:-1000000}
# Placement: unpinned, this 2-core VM puts the threads differently from
# run to run and a round's latency jumps between ~45 and ~150 us; pinned,
# rounds agree within a few per cent (see BENCHMARKS.md).
PIN_SERVER=""; PIN_LOAD=""
if [ "$PIN" = split ] && command -v taskset >/dev/null 2>&1 \
   && [ "$(nproc)" -ge 2 ]; then
    PIN_SERVER="taskset -c 0"; PIN_LOAD="taskset -c 1"
else
    PIN=none
fi

${MAKE:-make} --no-print-directory VARIANT=release bench-build >/dev/null \
    || { echo "bench: cannot build the bench programs" >&2; exit 1; }

BROKER=${BENCH_BROKER:-$ROOT/bin/sy-broker}
LOAD=$ROOT/build/release/bench/sy-bench
FWD=$ROOT/build/release/bench/sy-bench-fwd
BDIR=$ROOT/build/release/bench
OUTDIR=$ROOT/build/bench
RESULTS=$OUTDIR/results.txt
mkdir -p "$OUTDIR"
TMP=$(mktemp -d /tmp/sy-bench.XXXXXX)
if [ -n "${BENCH_DUR_DIR:-}" ]; then
    mkdir -p "$BENCH_DUR_DIR" && DTMP=$(mktemp -d "$BENCH_DUR_DIR/sy-bench.XXXXXX") \
        || { echo "bench: cannot use BENCH_DUR_DIR=$BENCH_DUR_DIR" >&2;
             rm -rf "$TMP"; exit 1; }
else
    DTMP=$TMP/dur
    mkdir -p "$DTMP"
fi
SERVER_PID=""
PORT=$((41000 + $$ % 8000))
failures=0

cleanup() {
    stop_server
    rm -rf "$TMP" "$DTMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# Stops the server this script started: TERM, then KILL after 10 s (a
# server under callgrind needs a moment to write its profile).
stop_server() {
    [ -n "$SERVER_PID" ] || return 0
    kill -TERM "$SERVER_PID" 2>/dev/null
    i=0
    while kill -0 "$SERVER_PID" 2>/dev/null && [ $i -lt 100 ]; do
        sleep 0.1; i=$((i + 1))
    done
    kill -KILL "$SERVER_PID" 2>/dev/null
    wait "$SERVER_PID" 2>/dev/null
    SERVER_PID=""
}

# next_endpoint TRANSPORT: a fresh endpoint in $EP.
next_endpoint() {
    PORT=$((PORT + 1))
    case "$1" in
        tcp) EP="tcp://127.0.0.1:$PORT" ;;
        ipc) EP="ipc://$TMP/s$PORT.sock" ;;
    esac
}

# start_server SYSTEM ENDPOINT [WRAPPER...]: starts it in the background.
start_server() {
    sys=$1; ep=$2; shift 2
    if [ "$sys" = fwd ]; then
        "$@" "$FWD" "$ep" 900 2>"$TMP/server.log" &
    else
        cfg=$TMP/sy-$PORT.cfg
        {
            echo "broker"
            echo "    endpoint = \"$ep\""
            echo "log"
            echo "    level = warn"
            echo "store"
            echo "    dir = \"$TMP/store-$PORT\""
            echo "security"
            echo "    curve = false"
        } >"$cfg"
        "$@" "$BROKER" --config "$cfg" 2>"$TMP/server.log" &
    fi
    SERVER_PID=$!
}

# run_round SYSTEM TRANSPORT ROUND: one measured round, appended to $RAW.
run_round() {
    sys=$1; tr=$2; round=$3
    next_endpoint "$tr"
    start_server "$sys" "$EP" $PIN_SERVER
    line=$(timeout $((3 * MAXS + 30)) $PIN_LOAD "$LOAD" --system "$sys" --endpoint "$EP" \
        --count "$COUNT" --inflight "$INFLIGHT" --lat-count "$LAT" \
        --lat-warmup "$WARM" --size "$SIZE" --max-secs "$MAXS" 2>"$TMP/load.err")
    rc=$?
    stop_server
    if [ $rc -ne 0 ]; then
        failures=$((failures + 1))
        echo "round=$round transport=$tr system=$sys FAILED rc=$rc: $(cat "$TMP/load.err")" >>"$RAW"
        echo "bench: $sys/$tr round $round failed: $(cat "$TMP/load.err")" >&2
        sed 's/^/  server: /' "$TMP/server.log" | tail -5 >&2
        return 1
    fi
    echo "round=$round transport=$tr $line" >>"$RAW"
    echo "  round $round $tr $sys: $line" | sed 's/ served=.*//'
}

# field NAME: the value of NAME=... in each line read from stdin.
field() {
    sed -n "s/.* $1=\([^ ]*\).*/\1/p"
}

# median: of the numbers on stdin (one per line); "-" when none.
median() {
    sort -g | awk '{v[NR]=$1} END {
        if (NR == 0) { print "-"; exit }
        if (NR % 2) print v[(NR+1)/2]; else print (v[NR/2] + v[NR/2+1]) / 2 }'
}

# ratio A B: A / B with two decimals, "-" if either is missing.
ratio() {
    awk -v a="$1" -v b="$2" 'BEGIN {
        if (a == "-" || b == "-" || b + 0 == 0) print "-";
        else printf "%.2f\n", a / b }'
}

summarise() {
    printf '%-9s %-10s %12s %10s %10s %10s\n' transport system \
        "rt/s" "p50 us" "p90 us" "p99 us"
    for tr in $TRANSPORTS; do
        for sys in fwd sy; do
            sel=$(grep "transport=$tr system=$sys " "$RAW" | grep -v FAILED)
            eval "T_$sys=\$(echo \"\$sel\" | field tput_rps | median)"
            eval "P50_$sys=\$(echo \"\$sel\" | field lat_p50_us | median)"
            eval "P90_$sys=\$(echo \"\$sel\" | field lat_p90_us | median)"
            eval "P99_$sys=\$(echo \"\$sel\" | field lat_p99_us | median)"
            name=forwarder; [ "$sys" = sy ] && name=sy-broker
            eval "printf '%-9s %-10s %12s %10s %10s %10s\n' $tr $name \
                \$T_$sys \$P50_$sys \$P90_$sys \$P99_$sys"
        done
        rt=$(ratio "$T_sy" "$T_fwd")
        printf '%-9s %-10s %12s %10s %10s %10s\n' "$tr" "sy/fwd" "$rt" \
            "$(ratio "$P50_sy" "$P50_fwd")" "$(ratio "$P90_sy" "$P90_fwd")" \
            "$(ratio "$P99_sy" "$P99_fwd")"
        verdict=$(awk -v r="$rt" 'BEGIN { if (r == "-") print "not measured";
            else if (r + 0 >= 0.7) print "meets the 0.7 target";
            else print "BELOW the 0.7 target" }')
        echo "$tr throughput ratio sy-broker/forwarder: $rt ($verdict)"
    done
}

# Instruction count per round trip of a server: two runs of different
# length, so start-up and shut-down cancel out.  Prints Ir/rt.
callgrind_system() {
    sys=$1; n1=2000; n2=12000
    for n in $n1 $n2; do
        next_endpoint tcp
        out=$OUTDIR/callgrind-$sys-$n.out
        rm -f "$out"
        start_server "$sys" "$EP" valgrind --tool=callgrind -q \
            --callgrind-out-file="$out"
        timeout 600 "$LOAD" --system "$sys" --endpoint "$EP" --mode tput \
            --count "$n" --inflight "$INFLIGHT" --size "$SIZE" \
            --max-secs 300 >/dev/null 2>"$TMP/load.err" \
            || { echo "bench: callgrind $sys: $(cat "$TMP/load.err")" >&2;
                 stop_server; return 1; }
        stop_server
        eval "IR_$n=\$(sed -n 's/^summary: *\([0-9]*\).*/\1/p' \"\$out\" | head -1)"
        [ -z "$(eval echo \$IR_$n)" ] && eval "IR_$n=\$(sed -n 's/^totals: *\([0-9]*\).*/\1/p' \"\$out\" | head -1)"
    done
    callgrind_annotate "$OUTDIR/callgrind-$sys-$n2.out" 2>/dev/null \
        | head -60 >"$OUTDIR/callgrind-$sys.txt"
    callgrind_annotate --inclusive=yes "$OUTDIR/callgrind-$sys-$n2.out" \
        2>/dev/null | head -60 >"$OUTDIR/callgrind-$sys-inclusive.txt"
    awk -v a="$IR_2000" -v b="$IR_12000" -v n=$((n2 - n1)) \
        'BEGIN { if (a == "" || b == "") print "-"; else printf "%.0f\n", (b - a) / n }'
}

# ------------------------------------------------------------- durable
# suite NAME: true if NAME is in BENCH_SUITES.
suite() {
    case " $SUITES " in *" $1 "*) return 0 ;; esac
    return 1
}

# durable_config ENDPOINT STORE_DIR FILE: a broker config with the store
# on disk and full sync (4 GiB map: room for the 1M fill).
durable_config() {
    {
        echo "broker"
        echo "    endpoint = \"$1\""
        echo "log"
        echo "    level = warn"
        echo "store"
        echo "    dir = \"$2\""
        echo "    sync = full"
        echo "    map_size = 4G"
        echo "security"
        echo "    curve = false"
    } >"$3"
}

# dur_record LINE: appends a raw durable line and shows it shortened.
dur_record() {
    echo "round=$round $1" >>"$DRAW"
    echo "  round $round: $1" | sed 's/ size=[0-9]*//; s/ inflight=[0-9]* credit=[0-9]*//'
}

# dur_fail WHAT: counts and shows a failed durable run.
dur_fail() {
    failures=$((failures + 1))
    echo "round=$round $1 FAILED: $(cat "$TMP/load.err")" >>"$DRAW"
    echo "bench: $1 round $round failed: $(cat "$TMP/load.err")" >&2
    [ -f "$TMP/server.log" ] && sed 's/^/  server: /' "$TMP/server.log" | tail -5 >&2
}

# The slow-flush disk: a prefix for the server command lines of the
# durable runs ("" = the real disk).  Set by durable_suite.
DUR_WRAP=""
SLOWSO=$BDIR/slowsync.so

# dur_round_sy [INFLIGHT CREDIT TAG]: one sy-broker durable run on a fresh
# store (the server under $DUR_WRAP); TAG (e.g. window=50) is appended to
# its raw line.  Sets BATCH_EFF.
dur_round_sy() {
    BATCH_EFF=""
    next_endpoint tcp
    store=$DTMP/sy-$PORT
    durable_config "$EP" "$store" "$TMP/dur.cfg"
    $DUR_WRAP $PIN_SERVER "$BROKER" --config "$TMP/dur.cfg" 2>"$TMP/server.log" &
    SERVER_PID=$!
    line=$(timeout $((MAXS + 60)) $PIN_LOAD "$BDIR/sy-bench-durable" \
        --endpoint "$EP" --count "$DUR_COUNT" --inflight "${1:-$DUR_INFLIGHT}" \
        --credit "${2:-$DUR_CREDIT}" --size "$SIZE" --store-dir "$store" \
        --max-secs "$MAXS" 2>"$TMP/load.err")
    rc=$?
    stop_server
    if [ $rc -ne 0 ]; then dur_fail "sy-durable${3:+ $3}"; rm -rf "$store"; return 1; fi
    # Nothing may be left in the store: every message acked and committed.
    left=$("$BDIR/sy-bench-fill" --counts --dir "$store" 2>&1)
    rm -rf "$store"
    case "$left" in
        *" ready=0 delayed=0 inflight=0 dead=0"*) ;;
        *) echo "store not empty after the run: $left" >"$TMP/load.err"
           dur_fail "sy-durable${3:+ $3}"; return 1 ;;
    esac
    dur_record "$line${3:+ $3}"
    BATCH_EFF=$(echo " $line" | field batch_eff)
}

# dur_round_lmdb BATCH [TAGS [COUNT]]: one raw LMDB run at batch size
# BATCH ($LMDB_COUNT records unless COUNT), under $DUR_WRAP.
dur_round_lmdb() {
    [ -n "$1" ] || return 0
    d=$DTMP/lmdb-$1-$round
    line=$(timeout $((2 * MAXS + 30)) $DUR_WRAP $PIN_SERVER "$BDIR/sy-bench-lmdb" \
        --dir "$d" --batch "$1" --count "${3:-$LMDB_COUNT}" --body "$SIZE" \
        --max-secs "$MAXS" 2>"$TMP/load.err")
    rc=$?
    rm -rf "$d"
    if [ $rc -ne 0 ]; then dur_fail "lmdb batch=$1${2:+ $2}"; return 1; fi
    dur_record "$line${2:+ $2}"
}

# dur_round_bean [COUNT TAG]: one beanstalkd run on a fresh binlog
# directory, fsync on every write, under $DUR_WRAP.
dur_round_bean() {
    PORT=$((PORT + 1))
    d=$DTMP/bean-$PORT
    mkdir -p "$d"
    $DUR_WRAP $PIN_SERVER beanstalkd -l 127.0.0.1 -p "$PORT" -b "$d" -f 0 \
        2>"$TMP/server.log" &
    SERVER_PID=$!
    line=$(timeout $((MAXS + 30)) $PIN_LOAD "$BDIR/sy-bench-bean" \
        --port "$PORT" --count "${1:-$DUR_COUNT}" --inflight "$DUR_INFLIGHT" \
        --credit "$DUR_CREDIT" --size "$SIZE" --max-secs "$MAXS" \
        2>"$TMP/load.err")
    rc=$?
    stop_server
    rm -rf "$d"
    if [ $rc -ne 0 ]; then dur_fail "beanstalkd${2:+ $2}"; return 1; fi
    dur_record "$line${2:+ $2}"
}

# The window sweep of one round: per window W, sy-broker with W in flight
# and credit W, then raw LMDB at that run's batch_eff (lines tagged
# window=W).
dur_round_sweep() {
    for w in $DUR_WINDOWS; do
        if dur_round_sy "$w" "$w" "window=$w"; then
            dur_round_lmdb "$BATCH_EFF" "broker_batch=1 window=$w" \
                "$SWEEP_LMDB_COUNT"
        fi
    done
}

# The slow-flush comparison of one round, at the default window: every
# server with the shim preloaded (lines tagged slow_us=N).
dur_round_slow() {
    DUR_WRAP="env LD_PRELOAD=$SLOWSO SY_SLOWSYNC_US=$SLOW_US"
    if [ $have_broker = 1 ] && dur_round_sy "" "" "slow_us=$SLOW_US"; then
        dur_round_lmdb "$BATCH_EFF" "broker_batch=1 slow_us=$SLOW_US" \
            "$SWEEP_LMDB_COUNT"
    fi
    [ $have_bean = 1 ] && dur_round_bean "$SLOW_BEAN_COUNT" "slow_us=$SLOW_US"
    DUR_WRAP=""
}

# The restart test: a store made by the broker, filled with $FILL
# messages, then timed restarts and the memory readings.
dur_restart() {
    next_endpoint tcp
    store=$DTMP/fill
    durable_config "$EP" "$store" "$TMP/fill.cfg"
    R="$BDIR/sy-bench-restart --broker $BROKER --config $TMP/fill.cfg --endpoint $EP"
    if ! timeout 60 $R --init 2>"$TMP/load.err"; then
        dur_fail restart-init; return 1
    fi
    fill=$(timeout 600 "$BDIR/sy-bench-fill" --dir "$store" --count "$FILL" \
        --body "$SIZE" --map-size $((4 << 30)) --max-secs 500 2>"$TMP/load.err") \
        || { dur_fail fill; return 1; }
    echo "round=- $fill store_mb=$(du -sm "$store" | cut -f1)" >>"$DRAW"
    echo "  $fill store_mb=$(du -sm "$store" | cut -f1)"
    line=$(timeout 300 $R --expect "$FILL" --runs 3 2>"$TMP/load.err") \
        || { dur_fail restart; return 1; }
    rm -rf "$store"
    echo "round=- $line" >>"$DRAW"
    echo "  $line"
}

# dur_median SELECTOR FIELD: median of FIELD over the raw lines matching
# SELECTOR (the raw LMDB runs at the broker's batch, the window sweep and
# the slow-flush runs only if it says so).
dur_median() {
    grep -- "$1" "$DRAW" | grep -v FAILED \
        | { case "$1" in *broker_batch*) cat ;; *) grep -v broker_batch ;; esac; } \
        | { case "$1" in *window=*) cat ;; *) grep -v ' window=' ;; esac; } \
        | { case "$1" in *slow_us=*) cat ;; *) grep -v ' slow_us=' ;; esac; } \
        | field "$2" | median
}

# verdict_half RATIO: against the 0.5 target.
verdict_half() {
    awk -v r="$1" 'BEGIN { if (r == "-") print "not measured";
        else if (r + 0 >= 0.5) print "meets the 0.5 target";
        else print "BELOW the 0.5 target" }'
}

# The window sweep table: medians over the rounds per window.
dur_summarise_sweep() {
    [ -n "$DUR_WINDOWS" ] && [ $have_broker = 1 ] || return 0
    echo "window sweep: sy-broker with inflight = credit = W ($DUR_COUNT" \
         "messages), raw LMDB at that run's batch_eff ($SWEEP_LMDB_COUNT records)"
    printf '%6s %24s %10s %23s %6s\n' window "broker committed msgs/s" \
        batch_eff "raw LMDB at that batch" ratio
    met=""
    for w in $DUR_WINDOWS; do
        wc=$(dur_median "system=sy-durable .* window=$w\( \|$\)" committed_rps)
        wb=$(dur_median "system=sy-durable .* window=$w\( \|$\)" batch_eff)
        wl=$(dur_median "system=lmdb .* broker_batch=1 window=$w\( \|$\)" cycle_rps)
        wr=$(ratio "$wc" "$wl")
        printf '%6s %24s %10s %23s %6s\n' "$w" "$wc" "$wb" "$wl" "$wr"
        case "$(verdict_half "$wr")" in meets*) met="$met $w" ;; esac
    done
    echo "windows meeting the 0.5 target:${met:- none}"
}

# The slow-flush comparison: medians over the rounds.
dur_summarise_slow() {
    [ "$SLOW_US" -gt 0 ] 2>/dev/null || return 0
    t="slow_us=$SLOW_US"
    ssc=$(dur_median "system=sy-durable .* $t" committed_rps)
    sbe=$(dur_median "system=sy-durable .* $t" batch_eff)
    scpm=$(dur_median "system=sy-durable .* $t" commits_per_msg)
    slb=$(dur_median "system=lmdb .* broker_batch=1 $t" cycle_rps)
    sbc=$(dur_median "system=beanstalkd .* $t" committed_rps)
    h="slow flush (+$SLOW_US us per flush)"
    echo "$h: each server's fsync, fdatasync and O_DSYNC writes sleep" \
         "$SLOW_US us after the real call (bench/slowsync.c); window" \
         "$DUR_INFLIGHT/$DUR_CREDIT, beanstalkd $SLOW_BEAN_COUNT jobs"
    printf '%-72s %12s\n' "$h sy-broker (acks committed too)" "$ssc"
    printf '%-72s %12s\n' "$h raw LMDB, broker's batch ($sbe)" "$slb"
    printf '%-72s %12s\n' "$h beanstalkd -f 0, deletes on disk too" "$sbc"
    echo "$h broker commits per message: $scpm (batch_eff $sbe)"
    r=$(ratio "$ssc" "$slb")
    echo "$h ratio sy-broker / raw LMDB at the broker's batch: $r ($(verdict_half "$r"))"
    echo "$h ratio sy-broker / beanstalkd: $(ratio "$ssc" "$sbc")"
}

dur_summarise() {
    sy=$(dur_median "system=sy-durable " rps)
    syc=$(dur_median "system=sy-durable " committed_rps)
    cpm=$(dur_median "system=sy-durable " commits_per_msg)
    be=$(dur_median "system=sy-durable " batch_eff)
    lb=$(dur_median "system=lmdb .* broker_batch" cycle_rps)
    lbp=$(dur_median "system=lmdb .* broker_batch" put_rps)
    lbt=$(dur_median "system=lmdb .* broker_batch" take_rps)
    l100=$(dur_median "system=lmdb batch=100 " cycle_rps)
    l1000=$(dur_median "system=lmdb batch=1000 " cycle_rps)
    bs=$(dur_median "system=beanstalkd " rps)
    bsc=$(dur_median "system=beanstalkd " committed_rps)
    printf '%-40s %12s\n' "system" "msgs/s"
    printf '%-40s %12s\n' "sy-broker (receipts + deliveries)" "$sy"
    printf '%-40s %12s\n' "sy-broker (acks committed too)" "$syc"
    printf '%-40s %12s\n' "raw LMDB, broker's batch ($be)" "$lb"
    printf '%-40s %12s\n' "  put+commit / take+delete+commit" "$lbp / $lbt"
    printf '%-40s %12s\n' "raw LMDB, batch 100" "$l100"
    printf '%-40s %12s\n' "raw LMDB, batch 1000" "$l1000"
    printf '%-40s %12s\n' "beanstalkd -f 0 (put/reserve)" "$bs"
    printf '%-40s %12s\n' "beanstalkd -f 0 (deletes on disk too)" "$bsc"
    echo "broker commits per message: $cpm (batch_eff $be)"
    r1=$(ratio "$syc" "$lb")
    v1=$(awk -v r="$r1" 'BEGIN { if (r == "-") print "not measured";
        else if (r + 0 >= 0.5) print "meets the 0.5 target";
        else print "BELOW the 0.5 target" }')
    r2=$(ratio "$syc" "$bsc")
    v2=$(awk -v r="$r2" 'BEGIN { if (r == "-") print "not measured";
        else if (r + 0 > 1) print "ahead of beanstalkd";
        else print "NOT ahead of beanstalkd" }')
    echo "ratio sy-broker / raw LMDB at the broker's batch: $r1 ($v1)"
    echo "ratio sy-broker / raw LMDB batch 100: $(ratio "$syc" "$l100") (reference)"
    echo "ratio sy-broker / raw LMDB batch 1000: $(ratio "$syc" "$l1000")"
    echo "ratio sy-broker / beanstalkd: $r2 ($v2)"
    rs=$(grep "^round=- restart " "$DRAW" | tail -1)
    if [ -n "$rs" ]; then
        rms=$(echo " $rs" | field ready_ms)
        v3=$(awk -v r="$rms" 'BEGIN { if (r + 0 < 1000) print "meets the < 1 s target";
            else print "ABOVE the 1 s target" }')
        echo "restart with $FILL queued: ready in $rms ms ($v3)," \
             "status shows the queue: $(echo " $rs" | field queued_seen)"
        echo "broker memory with $FILL queued: VmRSS idle" \
             "$(echo " $rs" | field rss_idle_kb) kB, after a status query" \
             "$(echo " $rs" | field rss_status_kb) kB" \
             "(peak $(echo " $rs" | field hwm_kb) kB)"
    fi
    dur_summarise_sweep
    dur_summarise_slow
}

# Instructions per durable message (send -> deliver -> ack, full sync)
# in the broker process: two runs of different length under callgrind,
# so start-up and shut-down cancel out.  Prints Ir/message.
dur_callgrind() {
    n1=2000; n2=12000
    for n in $n1 $n2; do
        next_endpoint tcp
        store=$DTMP/cg-$PORT
        out=$OUTDIR/callgrind-durable-$n.out
        rm -f "$out"
        durable_config "$EP" "$store" "$TMP/dur.cfg"
        valgrind --tool=callgrind -q --callgrind-out-file="$out" \
            "$BROKER" --config "$TMP/dur.cfg" 2>"$TMP/server.log" &
        SERVER_PID=$!
        timeout 600 "$BDIR/sy-bench-durable" --endpoint "$EP" --count "$n" \
            --inflight "$DUR_INFLIGHT" --credit "$DUR_CREDIT" --size "$SIZE" \
            --store-dir "$store" --max-secs 300 >/dev/null 2>"$TMP/load.err" \
            || { echo "bench: callgrind durable: $(cat "$TMP/load.err")" >&2;
                 sed 's/^/  server: /' "$TMP/server.log" | tail -5 >&2
                 stop_server; rm -rf "$store"; return 1; }
        stop_server
        rm -rf "$store"
        eval "IR_$n=\$(sed -n 's/^summary: *\([0-9]*\).*/\1/p' \"\$out\" | head -1)"
        [ -z "$(eval echo \$IR_$n)" ] && eval "IR_$n=\$(sed -n 's/^totals: *\([0-9]*\).*/\1/p' \"\$out\" | head -1)"
    done
    callgrind_annotate --inclusive=yes "$OUTDIR/callgrind-durable-$n2.out" \
        2>/dev/null | head -80 >"$OUTDIR/callgrind-durable-inclusive.txt"
    awk -v a="$IR_2000" -v b="$IR_12000" -v n=$((n2 - n1)) \
        'BEGIN { if (a == "" || b == "") print "-"; else printf "%.0f\n", (b - a) / n }'
}

durable_suite() {
    DRAW=$TMP/draw.txt
    : >"$DRAW"
    have_bean=1
    if ! command -v beanstalkd >/dev/null 2>&1; then
        have_bean=0
        echo "bench: beanstalkd is not installed (apt-get install beanstalkd):" \
             "the beanstalkd row is skipped" >&2
    fi
    echo "durable send -> deliver -> ack: $DUR_ROUNDS rounds, $DUR_COUNT" \
         "messages ($DUR_INFLIGHT in flight, credit $DUR_CREDIT), $SIZE-byte" \
         "bodies, full sync, stores in $DTMP, pin=$PIN"
    [ -n "$DUR_WINDOWS" ] && echo "  then per round: window sweep W in" \
        "\"$DUR_WINDOWS\" (raw LMDB $SWEEP_LMDB_COUNT records)"
    [ "$SLOW_US" -gt 0 ] 2>/dev/null && echo "  and slow flush +$SLOW_US us" \
        "per flush call ($SLOWSO; beanstalkd $SLOW_BEAN_COUNT jobs)"
    for round in $(seq 1 "$DUR_ROUNDS"); do
        if [ $have_broker = 1 ] && dur_round_sy; then
            dur_round_lmdb "$BATCH_EFF" broker_batch=1
        fi
        dur_round_lmdb 100
        dur_round_lmdb 1000
        [ $have_bean = 1 ] && dur_round_bean
        [ $have_broker = 1 ] && dur_round_sweep
        [ "$SLOW_US" -gt 0 ] 2>/dev/null && dur_round_slow
    done
    round=-
    [ $have_broker = 1 ] && dur_restart
    {
        echo "# durable settings: rounds=$DUR_ROUNDS count=$DUR_COUNT" \
             "inflight=$DUR_INFLIGHT credit=$DUR_CREDIT size=$SIZE" \
             "lmdb_count=$LMDB_COUNT fill=$FILL max_secs=$MAXS pin=$PIN" \
             "dir=$DTMP"
        echo "# durable sweep and slow flush settings: windows=\"$DUR_WINDOWS\"" \
             "sweep_lmdb_count=$SWEEP_LMDB_COUNT slowsync_us=$SLOW_US" \
             "slow_bean_count=$SLOW_BEAN_COUNT"
        [ $have_bean = 1 ] || echo "# beanstalkd not installed: skipped"
        echo "# raw: one line per run (rps: messages per second)"
        cat "$DRAW"
        echo "# durable: medians over the rounds"
        dur_summarise
    } >>"$RESULTS"
    echo
    sed -n '/^# durable: medians/,$p' "$RESULTS"
    if [ "$CALLGRIND" = 1 ] && [ $have_broker = 1 ]; then
        if command -v valgrind >/dev/null 2>&1; then
            ir=$(dur_callgrind) || failures=$((failures + 1))
            echo "callgrind sy-durable ir_per_msg=$ir" | tee -a "$RESULTS"
            echo "profile: $OUTDIR/callgrind-durable-inclusive.txt"
        else
            echo "valgrind not installed: durable callgrind skipped"
        fi
    fi
}

# ---------------------------------------------------------------- main
RAW=$TMP/raw.txt
: >"$RAW"
have_broker=1
[ -x "$BROKER" ] || { have_broker=0; echo "bench: $BROKER missing: forwarder only" >&2; }

{
    echo "# switchyard bench results"
    echo "# date: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
    echo "# machine: $(nproc) cores, $(sed -n 's/^model name[^:]*: //p' /proc/cpuinfo | head -1)," \
         "Debian $(cat /etc/debian_version 2>/dev/null), $(uname -r)"
    echo "# libzmq $(pkg-config --modversion libzmq 2>/dev/null)," \
         "czmq $(pkg-config --modversion libczmq 2>/dev/null)," \
         "lmdb $(dpkg-query -W -f='${Version}' liblmdb0 2>/dev/null)," \
         "beanstalkd $(dpkg-query -W -f='${Version}' beanstalkd 2>/dev/null)"
} >"$RESULTS"

if suite rr; then
echo "switchyard request/reply benchmark: $ROUNDS rounds, $COUNT pipelined" \
     "($INFLIGHT in flight), $LAT one at a time, $SIZE-byte bodies, pin=$PIN"
for round in $(seq 1 "$ROUNDS"); do
    for tr in $TRANSPORTS; do
        run_round fwd "$tr" "$round"
        [ $have_broker = 1 ] && run_round sy "$tr" "$round"
    done
done

{
    echo "# request/reply settings: rounds=$ROUNDS count=$COUNT inflight=$INFLIGHT" \
         "lat_count=$LAT lat_warmup=$WARM size=$SIZE max_secs=$MAXS pin=$PIN"
    echo "# raw: one line per round; tput_rps = round trips per second"
    cat "$RAW"
    echo "# medians over the rounds"
    summarise
} >>"$RESULTS"

echo
sed -n '/^# medians/,$p' "$RESULTS"
fi

if suite durable; then
    echo
    durable_suite
fi

if suite chat; then
    echo
    if [ -x "$ROOT/bin/sy-frontdoor" ] && [ -x "$ROOT/bin/sy-router" ] \
       && [ -x "$ROOT/bin/sy-inference" ]; then
        CHAT_RESULTS=$RESULTS sh bench/chat.sh || failures=$((failures + 1))
    else
        echo "bench: the chat actors are not built: chat suite skipped" >&2
    fi
fi

if suite rr && [ "$CALLGRIND" = 1 ]; then
    echo
    echo "instructions per round trip (callgrind, pipelined, tcp):"
    if command -v valgrind >/dev/null 2>&1; then
        for sys in fwd sy; do
            [ $sys = sy ] && [ $have_broker = 0 ] && continue
            PORT=$((PORT + 10))
            ir=$(callgrind_system $sys) || failures=$((failures + 1))
            echo "callgrind $sys ir_per_rt=$ir" | tee -a "$RESULTS"
        done
        echo "profiles: $OUTDIR/callgrind-{fwd,sy}.txt"
    else
        echo "valgrind not installed: skipped"
    fi
fi

echo
echo "raw figures: $RESULTS"
[ $failures -eq 0 ] && [ $have_broker = 1 ]
