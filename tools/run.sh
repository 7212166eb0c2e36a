#!/bin/sh
# run.sh -- `make run`: starts the broker and the VM-side actors on this
# machine with the default configuration, then opens a chat on this
# terminal.  Everything started here is stopped when the chat ends.
#
# Logs: var/log/<program>.log.  Config: $SWITCHYARD_CONFIG or
# etc/switchyard.cfg.
set -u
cd "$(dirname "$0")/.."
CFG=${SWITCHYARD_CONFIG:-etc/switchyard.cfg}
BIN=bin
LOG=var/log
mkdir -p "$LOG"
pids=""

stop_all() {
    for p in $pids; do kill -TERM "$p" 2>/dev/null; done
    for p in $pids; do wait "$p" 2>/dev/null; done
    pids=""
}
trap 'stop_all' EXIT
trap 'exit 130' INT TERM

# identity NAME ROLE: makes and enrolls var/keys/NAME.* once, so that the
# broker (CURVE on in etc/switchyard.cfg) admits this machine's own peers.
identity() {
    [ -f "var/keys/$1.secret" ] && return 0
    "$BIN/syctl" --config "$CFG" keys new "$1" --role "$2" --dir var/keys >/dev/null &&
        "$BIN/syctl" --config "$CFG" keys enroll "var/keys/$1.cert" --role "$2" >/dev/null &&
        echo "run: made and enrolled the identity $1 ($2) in var/keys"
}

start() { # name, args...
    name=$1; shift
    "$BIN/$name" --config "$CFG" "$@" >>"$LOG/$name.log" 2>&1 &
    pids="$pids $!"
    echo "run: started $name (pid $!, log $LOG/$name.log)"
}

mkdir -p var/keys && chmod 700 var/keys
identity operator operator || exit 1

if "$BIN/syctl" --config "$CFG" --timeout 1s status >/dev/null 2>&1; then
    echo "run: a broker already answers on the configured endpoint; using it"
else
    start sy-broker
    i=0
    until "$BIN/syctl" --config "$CFG" --timeout 1s status >/dev/null 2>&1; do
        i=$((i + 1))
        if [ $i -ge 20 ]; then
            echo "run: the broker did not come up; last lines of $LOG/sy-broker.log:" >&2
            tail -20 "$LOG/sy-broker.log" >&2
            exit 1
        fi
        sleep 0.5
    done
fi

# The VM-side actors that exist so far.
for a in sy-frontdoor sy-router sy-cron sy-sync sy-echo; do
    [ -x "$BIN/$a" ] || continue
    id=${a#sy-}
    [ "$a" = sy-echo ] && id=echo-1
    identity "$id" actor || exit 1
    start "$a" --cert "var/keys/$id.secret"
done
# The Telegram bridge, once its bot token is in place (docs/TELEGRAM.md).
if [ -x "$BIN/sy-telegram" ] && [ -f var/keys/telegram.token ]; then
    identity telegram actor || exit 1
    start sy-telegram --cert var/keys/telegram.secret
fi
# The inference worker belongs on the laptop, but on a single machine it
# runs here too: it offers the inference service only while Ollama (at
# inference/url) answers, so without Ollama heavy jobs simply wait.
if [ -x "$BIN/sy-inference" ]; then
    identity inference-1 worker || exit 1
    start sy-inference --cert var/keys/inference-1.secret
fi
sleep 0.5
"$BIN/syctl" --config "$CFG" status

if "$BIN/syctl" help 2>&1 | grep -q '^ *chat'; then
    "$BIN/syctl" --config "$CFG" chat
else
    # Until the chat front door exists, the chat goes to the echo service:
    # every line is sent as an echo.request and its reply printed.
    echo "run: type a line to send it through the broker to the echo service; Ctrl-D ends"
    seq=0
    while printf '> ' && IFS= read -r line; do
        seq=$((seq + 1))
        esc=$(printf '%s' "$line" | sed 's/\\/\\\\/g; s/"/\\"/g')
        "$BIN/syctl" --config "$CFG" send echo echo.request \
            "{\"seq\":$seq,\"data\":\"$esc\"}"
    done
    echo
fi
