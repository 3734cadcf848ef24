# ratekit: the same commands run locally and in CI (.ci/run calls `make lint test`).
GO        ?= go
PKGS      := ./...
FUZZTIME  ?= 20000x
BENCHOUT  ?= bench.txt
SOAK      ?= 5m
CONTRIB   := contrib/gin contrib/echo contrib/grpc contrib/otel

.PHONY: test race bench compare lint fuzz-smoke fuzz cover importcheck load soak long contrib alerts

# test: the gate CI runs: vet, every test with the race detector, then a few seconds of each fuzz target.
test:
	$(GO) vet $(PKGS)
	$(GO) test -race -count=1 -shuffle=on -timeout=15m $(PKGS)
	$(MAKE) fuzz-smoke

# race: the race detector with repetition over the concurrent packages, for chasing flakes.
race:
	$(GO) test -race -count=5 ./store/... ./middleware/

# bench: every benchmark, six runs each, into $(BENCHOUT) ready for benchstat.
bench:
	$(GO) test -run='^$$' -bench=. -benchmem -count=6 $(PKGS) | tee $(BENCHOUT)

# compare: ratekit against other Go rate limiters (the separate benchmarks/ module), -count 6, into benchmarks/results.
compare:
	cd benchmarks && ./run.sh

# lint: formatting, vet, the import-direction check, and staticcheck when installed.
lint: importcheck
	@test -z "$$(gofmt -l .)" || { echo "gofmt would change:"; gofmt -l .; exit 1; }
	$(GO) vet $(PKGS)
	@set -e; for m in $(CONTRIB); do (cd $$m && $(GO) vet ./...); done
	@if command -v staticcheck >/dev/null; then staticcheck $(PKGS); else echo "staticcheck not installed; skipped"; fi

# contrib: vet and test each integration module (gin, echo, gRPC, OpenTelemetry), each in its own go.mod.
contrib:
	@set -e; for m in $(CONTRIB); do echo "contrib: $$m"; (cd $$m && $(GO) vet ./... && $(GO) test -race -count=1 -shuffle=on ./...); done

# alerts: promtool check rules and the unit tests of docs/alerts.rules.yml (builds the pinned promtool once, then reuses it).
alerts:
	@GO=$(GO) ./.ci/alerts

# importcheck: window and headers import nothing of ours but window; no library package imports middleware.
importcheck:
	@./.ci/importcheck

# fuzz-smoke: each Fuzz target for $(FUZZTIME) (go test accepts one -fuzz target per run). Budgets are
# counts of executions, not durations: with a duration, go1.26's fuzz coordinator can fail a target with a
# bare "context deadline exceeded" when a busy machine's worker misses the deadline (golang/go#75804,
# fixed in go1.27); a count has no deadline to race. 20000x is a few seconds per target here.
fuzz-smoke:
	@set -e; for pkg in $$($(GO) list ./...); do \
		for f in $$($(GO) test -list '^Fuzz' $$pkg | grep '^Fuzz' || true); do \
			echo "fuzz $$pkg $$f"; \
			$(GO) test -run='^$$' -fuzz="^$$f$$" -fuzztime=$(FUZZTIME) $$pkg; \
		done; \
	done

# fuzz: the same targets for longer.
fuzz:
	$(MAKE) fuzz-smoke FUZZTIME=2000000x

# cover: coverage across packages, per-function summary.
cover:
	$(GO) test -count=1 -coverprofile=cover.out -coverpkg=./... $(PKGS)
	$(GO) tool cover -func=cover.out | tail -40

# load: examples/basic over real HTTP, ratekit on vs off in one run: wrk throughput, loadgen latency at 80% (installs wrk).
load:
	./benchmarks/load/load.sh

# soak: examples/basic with ratekit for $(SOAK) under 100,000 rotating loopback clients; fails if heap or goroutines grow.
soak:
	SOAK=$(SOAK) ./benchmarks/load/soak.sh

# long: the catalogue's long runs, outside CI's budget (results in docs/reliability.md): the soak, Redis conformance at 10,000 streams.
long: soak
	RATEKIT_REDIS_FULL=1 $(GO) test -count=1 -timeout 90m -run '^TestConformance' ./store/redis
