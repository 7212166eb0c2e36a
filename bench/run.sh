#!/bin/sh
# run.sh -- the request/reply benchmark: sy-broker against a trivial
# libzmq ROUTER forwarder, same client and worker code, same transport.
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
#                     server under valgrind --tool=callgrind [0]
#
# Output: a table on stdout; raw lines, settings and the table in
# build/bench/results.txt; with BENCH_CALLGRIND=1 the profiles in
# build/bench/callgrind-*.txt.  Only 127.0.0.1 and ipc:// in a temp dir.
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
OUTDIR=$ROOT/build/bench
RESULTS=$OUTDIR/results.txt
mkdir -p "$OUTDIR"
TMP=$(mktemp -d /tmp/sy-bench.XXXXXX)
SERVER_PID=""
PORT=$((41000 + $$ % 8000))
failures=0

cleanup() {
    stop_server
    rm -rf "$TMP"
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

# ---------------------------------------------------------------- main
RAW=$TMP/raw.txt
: >"$RAW"
have_broker=1
[ -x "$BROKER" ] || { have_broker=0; echo "bench: $BROKER missing: forwarder only" >&2; }

echo "switchyard request/reply benchmark: $ROUNDS rounds, $COUNT pipelined" \
     "($INFLIGHT in flight), $LAT one at a time, $SIZE-byte bodies, pin=$PIN"
for round in $(seq 1 "$ROUNDS"); do
    for tr in $TRANSPORTS; do
        run_round fwd "$tr" "$round"
        [ $have_broker = 1 ] && run_round sy "$tr" "$round"
    done
done

{
    echo "# switchyard bench results"
    echo "# date: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
    echo "# machine: $(nproc) cores, $(sed -n 's/^model name[^:]*: //p' /proc/cpuinfo | head -1)," \
         "Debian $(cat /etc/debian_version 2>/dev/null), $(uname -r)"
    echo "# libzmq $(pkg-config --modversion libzmq 2>/dev/null)," \
         "czmq $(pkg-config --modversion libczmq 2>/dev/null)"
    echo "# settings: rounds=$ROUNDS count=$COUNT inflight=$INFLIGHT" \
         "lat_count=$LAT lat_warmup=$WARM size=$SIZE max_secs=$MAXS pin=$PIN"
    echo "# raw: one line per round; tput_rps = round trips per second"
    cat "$RAW"
    echo "# medians over the rounds"
    summarise
} >"$RESULTS"

echo
sed -n '/^# medians/,$p' "$RESULTS"

if [ "$CALLGRIND" = 1 ]; then
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
