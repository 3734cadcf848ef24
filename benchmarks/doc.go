// Package benchmarks compares ratekit with other Go rate limiters on the same
// workloads. It is its own module so that the peers it imports never become
// dependencies of ratekit's users.
//
// Every peer is an adapter with one shape: [Peer.New] takes the [Limits] and
// returns a func(http.Handler) http.Handler that limits by client IP (the host
// of RemoteAddr), configured the way a user of that library would configure
// it. Where a library has one window per middleware, the adapter chains two:
// the per-second window outside, the per-minute window inside, so a request
// the per-second window refuses never reaches the minute window (a request
// the minute window refuses has still spent a per-second token: chained
// limiters are not atomic).
//
// The benchmarks (bench_test.go), the accuracy run (accuracy_test.go) and
// run.sh, which produces results/ and the chart, are described in
// docs/benchmarks.md at the root of the repository.
package benchmarks
