# common.sh: helpers shared by load.sh and soak.sh (sourced, not run).
# Every server started with start_server is killed on exit; builds and logs
# go to a temporary directory that is removed on exit.

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
RESULTS=${RESULTS:-$ROOT/benchmarks/load/results}
TMP=$(mktemp -d "${TMPDIR:-/tmp}/ratekit-load.XXXXXX")
PIDS=()  # servers
CHILD=   # the job run is waiting for

cleanup() {
	local pid
	for pid in $CHILD "${PIDS[@]}"; do
		kill "$pid" 2>/dev/null || true
	done
	for pid in "${PIDS[@]}"; do
		wait "$pid" 2>/dev/null || true
	done
	rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# run CMD...: runs CMD in the background and waits for it, returning its
# status. bash runs a trap only between foreground commands, so waiting this
# way lets a signal stop the script (and CMD, in cleanup) at once.
run() {
	"$@" &
	CHILD=$!
	local status=0
	wait "$CHILD" || status=$?
	CHILD=
	return "$status"
}

die() {
	echo "$(basename "$0"): $*" >&2
	exit 1
}

# need_wrk installs Debian's wrk when it is missing, as .ci/run does for
# redis-server.
need_wrk() {
	command -v wrk >/dev/null && return
	echo "installing: wrk"
	local sudo=
	[ "$(id -u)" = 0 ] || sudo=sudo
	export DEBIAN_FRONTEND=noninteractive
	$sudo apt-get update -qq || die "apt-get update failed; install wrk by hand"
	$sudo apt-get install -y -qq wrk >/dev/null || die "apt-get install wrk failed; install wrk by hand"
	command -v wrk >/dev/null || die "wrk still not on the PATH"
}

# build compiles examples/basic and the load generator into $TMP.
build() {
	command -v go >/dev/null || PATH=$PATH:/usr/local/go/bin
	(cd "$ROOT" && go build -o "$TMP/basic" ./examples/basic) || die "go build examples/basic failed"
	(cd "$ROOT/benchmarks" && go build -o "$TMP/loadgen" ./cmd/loadgen) || die "go build benchmarks/cmd/loadgen failed"
}

# start_server NAME PORT FLAGS...: runs examples/basic on 127.0.0.1:PORT and
# waits until it accepts connections. Its pid goes to ${NAME}_PID.
start_server() {
	local name=$1 port=$2
	shift 2
	"$TMP/basic" -addr "127.0.0.1:$port" "$@" >"$TMP/$name.log" 2>&1 &
	local pid=$!
	PIDS+=("$pid")
	printf -v "${name}_PID" %s "$pid"
	local i
	for i in $(seq 100); do
		kill -0 "$pid" 2>/dev/null || { cat "$TMP/$name.log" >&2; die "server $name exited (port $port taken? set PORT)"; }
		if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
			return
		fi
		sleep 0.1
	done
	die "server $name not listening on $port after 10s"
}

# alive NAME: fails the script if server NAME has died.
alive() {
	local pid="${1}_PID"
	kill -0 "${!pid}" 2>/dev/null || { cat "$TMP/$1.log" >&2; die "server $1 died"; }
}

# machine prints what the figures were measured on.
machine() {
	echo "date:    $(date -u +%Y-%m-%dT%H:%M:%SZ)"
	echo "commit:  $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null)$(git -C "$ROOT" diff --quiet 2>/dev/null || echo ' (work tree modified)')"
	echo "cpu:     $(nproc) x $(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1)"
	echo "kernel:  $(uname -sr)"
	echo "go:      $(go version | cut -d' ' -f3-)"
	echo "load:    $(cut -d' ' -f1-3 /proc/loadavg) (1, 5, 15 min averages before the run)"
}
