// Package client is the other half of rate limiting: an [http.RoundTripper]
// for programs that call rate-limited APIs. It reads the quota every
// response announces, holds requests back instead of sending them to be
// refused, and retries 429 and 503 with exponential backoff and jitter.
//
//	t, err := client.New(client.Config{KeyHeader: "X-API-Key"})
//	if err != nil {
//		log.Fatal(err)
//	}
//	hc := &http.Client{Transport: t, Timeout: 30 * time.Second}
//	resp, err := hc.Get("https://api.example.com/v1/people")
//
// It needs only the standard library and works with any server, not only
// ratekit's.
//
// # What it reads
//
// [ParseQuota] reads every header style ratekit's server writes (see
// docs/headers.md): Lindris's X-RateLimit-* with the -Second pair and
// X-RateLimit-Limited-By, Scalekit's X-RateLimit-Reset as a Unix time,
// Kinde's RateLimit-Limit, -Remaining and -Reset, the IETF draft's
// RateLimit and RateLimit-Policy with several policies, and Retry-After as
// seconds or an HTTP date. A reset below 100,000,000 is a number of
// seconds; above, a Unix time. Unreadable fields are skipped, never trusted.
//
// # How it decides
//
// Quota is tracked per host, and per API key when [Config.KeyHeader] names
// the header that carries it (the key is kept only as a keyed hash). While a
// window has nothing left, requests to that host wait for its reset; after a
// refusal they wait for its Retry-After. A [Rate] spaces requests on the
// client's side, and [Config.MaxInFlight] caps concurrency. A refused
// request is retried after BaseDelay·2^(n-1) ± Jitter, never sooner than
// the server asked, while the method is idempotent and the body replayable.
// The defaults follow Authmatech's schedule: five attempts, one second
// doubling, at most 60 seconds, ±100 ms.
//
// No single wait exceeds [Config.MaxDelay] (60 s by default), whatever a
// server sends: negative or non-numeric values are ignored, and a huge
// value or a reset years away holds requests for MaxDelay at most. A wait that cannot
// end before the request's deadline is not begun: the request fails at once
// with a [*WaitError], which wraps [ErrDeadline].
//
// # What it does not do
//
// It does not retry transport errors (a refused connection, a reset
// stream) or other statuses: that is a policy for the caller. It does not
// share quota across processes: each Transport knows what its own responses
// said. It does not tell routes of one host apart, so a route with a
// stricter limit paces the others while its response is the latest (see
// docs/client.md). It does not read bodies for a retry_after field: every
// style ratekit writes sends Retry-After too.
package client
