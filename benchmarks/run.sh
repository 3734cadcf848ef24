#!/usr/bin/env bash
# run.sh: every peer benchmark COUNT times (default 6) into results/bench.txt,
# benchstat into results/benchstat.txt, the chart into results/chart.svg, the
# heap per tracked client into results/heap.txt, the machine's memory latency
# into results/latency.txt and the accuracy table into
# results/accuracy.{txt,csv}. Redis scenarios need a
# server at REDIS_ADDR (default 127.0.0.1:6379); they are skipped without one.
set -euo pipefail # a failing go test must fail the run, not vanish into tee
cd "$(dirname "$0")"
COUNT=${COUNT:-6}
BENCHSTAT=${BENCHSTAT:-$(go env GOPATH)/bin/benchstat}
mkdir -p results

go vet ./...
test -z "$(gofmt -l .)" || { echo "gofmt would change:"; gofmt -l .; exit 1; }

if [ ! -x "$BENCHSTAT" ]; then
	go install golang.org/x/perf/cmd/benchstat@latest
fi

# The mission is one timed pass over its 1,000,000 clients (after one untimed
# pass), so it runs a fixed number of iterations; the rest run for 1s each.
{
	go test -run '^$' -bench '^BenchmarkPeers$/^mission$/' -benchtime 1000000x -count "$COUNT" -timeout 60m
	go test -run '^$' -bench '^BenchmarkPeers$/^(onekey|keys=100000|rejected|redis)$/' -benchtime 1s -count "$COUNT" -timeout 60m
} | tee results/bench.txt

"$BENCHSTAT" results/bench.txt | tee results/benchstat.txt

# The machine's memory latency: the floor under the mission's ns/op.
go test -run '^$' -bench '^BenchmarkMemoryLatency$' -benchtime 4000000x -count "$COUNT" | tee results/latency.txt
"$BENCHSTAT" results/latency.txt | tee -a results/benchstat.txt
go run ./cmd/chart -in results/bench.txt -out results/chart.svg

# Heap per client is one measurement per peer, not a timing: once is enough.
go test -run '^$' -bench '^BenchmarkHeapPerClient$' -benchtime 1x -count 1 -timeout 30m | tee results/heap.txt

go test -run '^TestAccuracy$' -count 1 -v . | tee results/accuracy.txt
