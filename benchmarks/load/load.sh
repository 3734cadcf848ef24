#!/usr/bin/env bash
# load.sh: examples/basic over real HTTP with ratekit on and off, on the same
# machine in the same run (make load).
#
#  1. Throughput: wrk at full speed (closed loop) against each server,
#     ROUNDS times, interleaved on off off on on off …; the median of each.
#  2. Latency: benchmarks/cmd/loadgen at 80% of the median "off" throughput,
#     open loop at a constant rate, ROUNDS rounds interleaved the same way;
#     p50/p99/p99.9 pooled per server, and what "on" adds.
#
# Both servers trust 127.0.0.0/8 as a proxy, and every request names a
# client in X-Forwarded-For (wrk: xff.lua; loadgen: -identity xff), rotating
# over enough clients that the limiter admits nearly all of them: a test from
# one client would only measure 429s. Output goes to stdout and
# $RESULTS/load.txt. Exits non-zero if a server dies, wrk fails, or loadgen
# sees errors.
#
# Environment: ROUNDS (5), WRK_DURATION (10s), LAT_DURATION (15s),
# THREADS (2), CONNS (64), LOAD_FRACTION (0.8), PORT (18181, and PORT+1).
set -euo pipefail
. "$(dirname "$0")/common.sh"

ROUNDS=${ROUNDS:-5}
WRK_DURATION=${WRK_DURATION:-10s}
LAT_DURATION=${LAT_DURATION:-15s}
THREADS=${THREADS:-2}
CONNS=${CONNS:-64}
LOAD_FRACTION=${LOAD_FRACTION:-0.8}
PORT=${PORT:-18181}

need_wrk
build
mkdir -p "$RESULTS"
exec > >(tee "$RESULTS/load.txt") 2>&1

echo "# make load: examples/basic with ratekit (on) and without (off)"
machine
echo "wrk:     $(wrk -v 2>&1 | head -1 | cut -d' ' -f1-2)"
echo

start_server on "$PORT" -trust-proxy 127.0.0.0/8
start_server off "$((PORT + 1))" -trust-proxy 127.0.0.0/8 -limiter=false
url_on="http://127.0.0.1:$PORT/v1/people"
url_off="http://127.0.0.1:$((PORT + 1))/v1/people"
lua="$ROOT/benchmarks/load/xff.lua"

# cpu_ticks NAME: user+system CPU time of server NAME so far, in clock ticks.
cpu_ticks() {
	local pid="${1}_PID"
	sed 's/.*) //' "/proc/${!pid}/stat" | awk '{print $12 + $13}'
}

# wrk_run NAME URL SECONDS: one wrk run; sets WRK_RESULT to
# "rps total non2xx cpu_us_per_request".
wrk_run() {
	local c0 c1 out="$TMP/wrk.out"
	c0=$(cpu_ticks "$1")
	run wrk -t"$THREADS" -c"$CONNS" -d"$3" -s "$lua" "$2" -- 65536 >"$out" 2>&1 || die "wrk against $1 failed: $(cat "$out")"
	c1=$(cpu_ticks "$1")
	alive "$1"
	local rps total non2xx
	rps=$(awk '/^Requests\/sec:/ {print $2}' "$out")
	total=$(awk '/requests in/ {print $1}' "$out")
	non2xx=$(awk '/Non-2xx or 3xx responses:/ {print $5}' "$out")
	[ -n "$rps" ] && [ -n "$total" ] || die "could not read wrk's output: $(cat "$out")"
	WRK_RESULT=$(awk -v r="$rps" -v t="$total" -v x="${non2xx:-0}" -v c="$((c1 - c0))" -v hz="$(getconf CLK_TCK)" \
		'BEGIN { printf "%s %d %d %.1f\n", r, t, x, 1e6*c/hz/t }')
}

median() { sort -n | awk '{v[NR]=$1} END {print (NR%2) ? v[(NR+1)/2] : (v[NR/2]+v[NR/2+1])/2}'; }

echo "## throughput: wrk -t$THREADS -c$CONNS -d$WRK_DURATION -s xff.lua URL -- 65536 (65,536 clients per thread), $ROUNDS rounds"
# Untimed first pass so both servers start warm and "on" already tracks every client.
wrk_run on "$url_on" 3s
wrk_run off "$url_off" 3s
order=(on off)
: >"$TMP/rps.on"
: >"$TMP/rps.off"
: >"$TMP/cpu.on"
: >"$TMP/cpu.off"
for r in $(seq "$ROUNDS"); do
	for name in "${order[@]}"; do
		url=url_$name
		wrk_run "$name" "${!url}" "$WRK_DURATION"
		read -r rps total non2xx cpu <<<"$WRK_RESULT"
		echo "$rps" >>"$TMP/rps.$name"
		echo "$cpu" >>"$TMP/cpu.$name"
		awk -v r="$r" -v n="$name" -v rps="$rps" -v t="$total" -v x="$non2xx" -v c="$cpu" 'BEGIN {
			printf "round %d %-3s %9.0f req/s  %8d requests  admitted %.2f%%  rejected (non-2xx) %.2f%%  server cpu %.1fµs/req\n", r, n, rps, t, 100*(t-x)/t, 100*x/t, c }'
	done
	order=("${order[1]}" "${order[0]}")
done
rps_on=$(median <"$TMP/rps.on")
rps_off=$(median <"$TMP/rps.off")
cpu_on=$(median <"$TMP/cpu.on")
cpu_off=$(median <"$TMP/cpu.off")
awk -v a="$rps_on" -v b="$rps_off" -v c="$cpu_on" -v d="$cpu_off" 'BEGIN {
	printf "median   on %.0f req/s, off %.0f req/s: on/off = %.2f; server cpu on %.1fµs/req, off %.1fµs/req, added %.1fµs/req\n", a, b, a/b, c, d, c-d }'
rate=$(awk -v b="$rps_off" -v f="$LOAD_FRACTION" 'BEGIN { printf "%.0f", b*f }')
echo

echo "## latency: loadgen at $LOAD_FRACTION x $rps_off = $rate req/s, $LAT_DURATION per run, $ROUNDS rounds"
echo "loadgen -target on=$url_on -target off=$url_off -rate $rate -duration $LAT_DURATION -warmup 2s -rounds $ROUNDS -conns $CONNS -clients 100000 -client-offset 131072 -identity xff"
status=0
run "$TMP/loadgen" -target "on=$url_on" -target "off=$url_off" -rate "$rate" -duration "$LAT_DURATION" -warmup 2s \
	-rounds "$ROUNDS" -conns "$CONNS" -clients 100000 -client-offset 131072 -identity xff \
	-pid "on=$on_PID" -pid "off=$off_PID" || status=$?
alive on
alive off
echo
echo "load after the run: $(cut -d' ' -f1-3 /proc/loadavg)"
[ "$status" = 0 ] || die "loadgen failed (exit $status)"
