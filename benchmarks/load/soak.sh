#!/usr/bin/env bash
# soak.sh: examples/basic with ratekit on, SOAK long (default 5m), with
# 100,000 rotating clients that connect from distinct loopback addresses
# (127.1.0.1 to 127.2.134.160; Linux routes all of 127.0.0.0/8 to lo). Each
# client visit is one connection with 3 requests in quick succession, so
# two are admitted and the third is refused by the 2/s window: both paths
# run all the time. At SOAK_RATE 6,000 requests/s (2,000 visits/s) every
# client comes back every 50 s, so the store tracks all 100,000 at once.
#
# loadgen samples the server's /debug/runtime (examples/basic -debug-addr,
# after a forced GC, so heap live is what is retained) every SAMPLE_EVERY.
# It fails unless, from the moment every client has visited twice (2 cycles
# + 20 s: 120 s at the defaults; every window has then reached its steady
# size), the live heap's trend against requests served rises by at most 10%
# over the rest of the run, and unless the goroutines return to their count
# before the load. If the machine is too busy for the generator to keep the
# schedule it falls behind and catches up (its "send lag" says by how
# much); the run then lasts longer, with every request still sent. Output
# goes to stdout and $RESULTS/soak.txt.
#
# Environment: SOAK (5m), SOAK_RATE (6000), SOAK_CLIENTS (100000),
# SAMPLE_EVERY (15s), PORT (18191, and PORT+1 for the debug listener).
set -euo pipefail
. "$(dirname "$0")/common.sh"

SOAK=${SOAK:-5m}
SOAK_RATE=${SOAK_RATE:-6000}
SOAK_CLIENTS=${SOAK_CLIENTS:-100000}
SAMPLE_EVERY=${SAMPLE_EVERY:-15s}
PORT=${PORT:-18191}

# Seconds until every client has visited twice, plus 20: the first sample
# of the steady span, which needs 3 samples or more.
flat_after=$(awk -v c="$SOAK_CLIENTS" -v r="$SOAK_RATE" 'BEGIN { printf "%d", 2*c*3/r + 20 }')
secs() { awk -v d="$1" 'BEGIN { n = d + 0; u = substr(d, length(d)); print (u == "h") ? n*3600 : (u == "m") ? n*60 : n }'; }
shortest=$((flat_after + 3 * $(secs "$SAMPLE_EVERY")))
[ "$(secs "$SOAK")" -ge "$shortest" ] || die "SOAK=$SOAK is too short to judge: at $SOAK_RATE/s the heap is steady after ${flat_after}s; use SOAK=${shortest}s or more"

build
mkdir -p "$RESULTS"
exec > >(tee "$RESULTS/soak.txt") 2>&1

echo "# make soak: examples/basic with ratekit, $SOAK, $SOAK_CLIENTS clients from loopback addresses"
machine
echo

start_server on "$PORT" -debug-addr "127.0.0.1:$((PORT + 1))"
args=(-target "on=http://127.0.0.1:$PORT/v1/people" -pid "on=$on_PID" -identity source -clients "$SOAK_CLIENTS" -per-conn 3
	-rate "$SOAK_RATE" -conns 64 -duration "$SOAK" -warmup 0s
	-sample-url "http://127.0.0.1:$((PORT + 1))/debug/runtime?gc=1" -sample-every "$SAMPLE_EVERY" -check-flat -flat-after "${flat_after}s")
echo "loadgen ${args[*]}"
status=0
run "$TMP/loadgen" "${args[@]}" || status=$?
alive on
echo "server VmRSS at the end (/proc/$on_PID/status): $(awk '/^VmRSS/ {print $2, $3}' "/proc/$on_PID/status")"
echo "load after the run: $(cut -d' ' -f1-3 /proc/loadavg)"
[ "$status" = 0 ] || die "soak failed (loadgen exit $status)"
