#!/bin/sh
# chat.sh -- the chat-path benchmark of BENCHMARKS.md (called by
# bench/run.sh, or alone: sh bench/chat.sh after `make bench-build build`).
#
# A question's round trip, one at a time, through the real actors:
#   client -> sy-frontdoor -> sy-router -> sy-inference -> backend
#          -> sy-frontdoor -> client
# against the direct request/reply through the same broker (sy-echo),
# measured by the same client (build/release/bench/sy-bench-chat), rounds
# alternating echo, chat, echo, chat so drift hits both alike.  The
# backend is build/release/bench/sy-bench-llm, which answers at once: the
# figure is what switchyard adds, not what a model costs.  Run once with
# the store fsyncing every group commit (store/sync = full, the default:
# four durable hops per question) and once without (none), so the cost of
# durability and the cost of the actors can be told apart.
#
# Then the resident memory (VmRSS) of each actor at rest: after start-up,
# and again after the measured questions.
#
# Environment: CHAT_ROUNDS [3], CHAT_COUNT questions per round [300],
# CHAT_ECHO_COUNT echo round trips per round [3000], CHAT_WARMUP [20],
# CHAT_SYNCS ["full none"].  Output: a table on stdout; raw lines appended
# to $CHAT_RESULTS [build/bench/results.txt].
set -u
cd "$(dirname "$0")/.."
ROOT=$(pwd)
ROUNDS=${CHAT_ROUNDS:-3}
COUNT=${CHAT_COUNT:-300}
ECHO_COUNT=${CHAT_ECHO_COUNT:-3000}
WARM=${CHAT_WARMUP:-20}
SYNCS=${CHAT_SYNCS:-"full none"}
RESULTS=${CHAT_RESULTS:-$ROOT/build/bench/results.txt}
BDIR=$ROOT/build/release/bench
mkdir -p "$(dirname "$RESULTS")"
TMP=$(mktemp -d /tmp/sy-bench-chat.XXXXXX)
PIDS=""
PORT=$((49000 + $$ % 4000))

cleanup() {
    for p in $PIDS; do kill -TERM "$p" 2>/dev/null; done
    for p in $PIDS; do wait "$p" 2>/dev/null; done
    PIDS=""
}
trap 'cleanup; rm -rf "$TMP"' EXIT
trap 'exit 130' INT TERM

start() { # label, command...
    label=$1; shift
    "$@" >"$TMP/$label.log" 2>&1 &
    PIDS="$PIDS $!"
    eval "PID_$(echo "$label" | tr -c 'a-z0-9\n' _)=$!"
}

rss_kb() { sed -n "s/^VmRSS:[[:space:]]*\([0-9]*\).*/\1/p" "/proc/$1/status" 2>/dev/null; }

# up SYNC: broker, backend and actors on a fresh store; waits for them.
up() {
    PORT=$((PORT + 1))
    EP=tcp://127.0.0.1:$PORT
    CFG=$TMP/chat-$1.cfg
    rm -f "$TMP/llm.port"
    start llm "$BDIR/sy-bench-llm" "$TMP/llm.port"
    i=0
    while [ ! -s "$TMP/llm.port" ] && [ $i -lt 50 ]; do sleep 0.1; i=$((i + 1)); done
    cat >"$CFG" <<EOF
log
    level = warn
broker
    endpoint = "$EP"
actor
    endpoint = "$EP"
store
    dir = "$TMP/store-$1"
    sync = $1
security
    curve = false
frontdoor
    store = "$TMP/frontdoor-$1"
    rate = 100000
    burst = 100000
inference
    url = "http://127.0.0.1:$(cat "$TMP/llm.port")"
    token_flush = 0
EOF
    start broker "$ROOT/bin/sy-broker" --config "$CFG"
    sleep 0.5
    start frontdoor "$ROOT/bin/sy-frontdoor" --config "$CFG"
    start router "$ROOT/bin/sy-router" --config "$CFG"
    start inference "$ROOT/bin/sy-inference" --config "$CFG"
    start echo "$ROOT/bin/sy-echo" --config "$CFG"
    i=0
    until "$ROOT/bin/syctl" --config "$CFG" --timeout 1s status 2>/dev/null \
            | grep -q inference-1; do
        i=$((i + 1))
        if [ $i -ge 30 ]; then
            echo "bench chat: the actors did not come up" >&2
            tail -5 "$TMP"/*.log >&2
            return 1
        fi
        sleep 0.5
    done
    sleep 2     # at rest: nothing in flight, start-up allocations done
    REST="frontdoor=$(rss_kb "$PID_frontdoor") router=$(rss_kb "$PID_router")"
    REST="$REST inference=$(rss_kb "$PID_inference") echo=$(rss_kb "$PID_echo")"
    REST="$REST broker=$(rss_kb "$PID_broker")"
}

field() { sed -n "s/.* $1=\([^ ]*\).*/\1/p"; }
median() {
    sort -g | awk '{v[NR]=$1} END { if (NR == 0) { print "-"; exit }
        if (NR % 2) print v[(NR+1)/2]; else print (v[NR/2] + v[NR/2+1]) / 2 }'
}
ratio() {
    awk -v a="$1" -v b="$2" 'BEGIN { if (a == "-" || b == "-" || b + 0 == 0) print "-";
        else printf "%.1f\n", a / b }'
}

RAW=$TMP/raw.txt
: >"$RAW"
echo "chat round trip, one at a time: $ROUNDS rounds of $COUNT questions" \
     "(echo baseline $ECHO_COUNT), instant backend, syncs: $SYNCS"
for sync in $SYNCS; do
    up "$sync" || { cleanup; exit 1; }
    echo "sync=$sync rss_at_rest_kb $REST" >>"$RAW"
    for round in $(seq 1 "$ROUNDS"); do
        for mode in echo chat; do
            n=$COUNT; [ $mode = echo ] && n=$ECHO_COUNT
            line=$(timeout 300 "$BDIR/sy-bench-chat" $mode "$EP" "$n" "$WARM" \
                   "bench-$round" 2>"$TMP/client.err") \
                || { echo "bench chat: $mode round $round failed: $(cat "$TMP/client.err")" >&2
                     line="$mode FAILED"; }
            echo "sync=$sync round=$round $line" >>"$RAW"
            echo "  sync=$sync round $round: $line"
        done
    done
    sleep 2
    after="frontdoor=$(rss_kb "$PID_frontdoor") router=$(rss_kb "$PID_router")"
    after="$after inference=$(rss_kb "$PID_inference") broker=$(rss_kb "$PID_broker")"
    echo "sync=$sync rss_after_load_kb $after" >>"$RAW"
    cleanup
done

{
    echo "# chat settings: rounds=$ROUNDS count=$COUNT echo_count=$ECHO_COUNT warmup=$WARM"
    echo "# chat raw: one line per run (us: microseconds per round trip)"
    cat "$RAW"
    echo "# chat: medians over the rounds"
    printf '%-6s %-5s %10s %10s %14s\n' sync mode "p50 us" "p99 us" "p50 / echo"
    for sync in $SYNCS; do
        e50=$(grep "^sync=$sync .* echo n=" "$RAW" | field p50_us | median)
        e99=$(grep "^sync=$sync .* echo n=" "$RAW" | field p99_us | median)
        c50=$(grep "^sync=$sync .* chat n=" "$RAW" | field p50_us | median)
        c99=$(grep "^sync=$sync .* chat n=" "$RAW" | field p99_us | median)
        printf '%-6s %-5s %10s %10s %14s\n' "$sync" echo "$e50" "$e99" 1.0
        printf '%-6s %-5s %10s %10s %14s\n' "$sync" chat "$c50" "$c99" "$(ratio "$c50" "$e50")"
    done
    grep "rss_" "$RAW" | sed 's/^/rss /'
} >>"$RESULTS"
sed -n '/^# chat: medians/,$p' "$RESULTS" | tail -n +1
