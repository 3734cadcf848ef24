package client

import (
	"context"
	"crypto/hmac"
	crand "crypto/rand"
	"crypto/sha256"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Transport is an [http.RoundTripper] that paces requests by the quota
// each response announces and retries refusals (429, 503) with backoff.
// Create it with [New]; it is safe for concurrent use, and one Transport
// should serve every request to a host, since the picture of a host's quota
// lives in it.
//
// # Pacing
//
// For each host (and API key, see [Config.KeyHeader]) the transport keeps
// the windows of the latest response ([ParseQuota]) and counts requests
// sent since. A request is held back while:
//
//   - a refusal's Retry-After (or, when the refusal said nothing, its
//     backoff) has not passed;
//   - a window has no requests left and its reset has not passed;
//   - a window is used up, its reset has passed, and a request is already
//     in flight: that one probes, the others wait for its answer (at most
//     [ProbeWait]);
//   - nothing is known yet about the host and a first request is in
//     flight (at most ProbeWait);
//   - the client-side [Rate] has no token, or [Config.MaxInFlight]
//     requests are in flight.
//
// No single wait is longer than [Config.MaxDelay], whatever the headers
// say. A wait that would pass the request context's deadline is not begun:
// the request fails at once with a [*WaitError] (errors.Is [ErrDeadline]).
// A canceled context ends any wait with the context's error.
//
// # Retry
//
// A 429 or 503 is retried after BaseDelay·2^(n-1) ± Jitter, and never before
// the server's Retry-After or the reset of a window with nothing left, up to
// [Config.MaxAttempts] attempts, when the method is idempotent (or
// [Config.RetryNonIdempotent] is set) and the body can be replayed. A
// refusal asking for more than MaxDelay is returned, not retried. The body
// of a refusal that is retried is drained (up to 64 KiB) and closed, so the
// connection is reused. The response of the last attempt is returned as it
// came, body unread.
type Transport struct {
	cfg    Config
	obs    Observer
	secret [32]byte

	mu        sync.Mutex
	buckets   map[bucketKey]*bucket
	nextSweep int

	// lastLog holds, per kind of log line, the Unix nanoseconds of the last
	// one written, so that a misbehaving server cannot flood the log.
	lastLog [numLogKinds]atomic.Int64
}

var _ http.RoundTripper = (*Transport)(nil)

// bucketKey identifies a bucket: the host, and the keyed hash of the API
// key (zero without one). The key itself is never stored.
type bucketKey struct {
	host string
	key  [16]byte
}

// maxBuckets is how many hosts and keys the transport tracks before it
// forgets idle ones (those whose every known instant has passed and that no
// request is using). Forgetting one costs a first-contact probe.
const maxBuckets = 10_000

// maxDrain bounds what is read from a discarded response body before it is
// closed. A body longer than this costs the connection, not the time to
// read it all.
const maxDrain = 64 << 10

// New returns a Transport configured by cfg, or an error wrapping
// [ErrInvalidConfig] that lists every invalid field. cfg is copied.
func New(cfg Config) (*Transport, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	t := &Transport{cfg: cfg, obs: cfg.Observer, buckets: map[bucketKey]*bucket{}, nextSweep: maxBuckets}
	if t.obs == nil {
		t.obs = nopObserver{}
	}
	if _, err := crand.Read(t.secret[:]); err != nil {
		return nil, fmt.Errorf("client: drawing the key-hash secret: %w", err)
	}
	return t, nil
}

// CloseIdleConnections closes the idle connections of [Config.Base] when it
// has such a method; http.Client.CloseIdleConnections calls it.
func (t *Transport) CloseIdleConnections() {
	if c, ok := t.cfg.Base.(interface{ CloseIdleConnections() }); ok {
		c.CloseIdleConnections()
	}
}

// RoundTrip sends req through [Config.Base], pacing and retrying as the
// [Transport] documentation says. It returns the last response, or the
// first error of the base transport (not retried), a [*WaitError], or the
// context's error when it ends a wait. req is not modified: a retry sends a
// clone with a body from req.GetBody.
func (t *Transport) RoundTrip(req *http.Request) (*http.Response, error) {
	ctx := req.Context()
	host := hostOf(req)
	b := t.acquire(host, req)
	defer t.release(b)
	retryable := t.retryable(req)

	r := req
	for attempt := 1; ; attempt++ {
		seq, err := t.admit(ctx, b, host)
		if err != nil {
			if r.Body != nil {
				r.Body.Close()
			}
			return nil, err
		}
		resp, err := t.cfg.Base.RoundTrip(r)
		now := time.Now()
		if err != nil {
			b.mu.Lock()
			b.done(seq, nil, now, 0, &t.cfg)
			b.mu.Unlock()
			return nil, err
		}
		q, skew := parseQuota(resp.Header, now)
		t.logOdd(host, &q, skew)
		refused := resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode == http.StatusServiceUnavailable
		var asked, backoff, blockFor time.Duration
		if refused {
			asked, backoff, blockFor = t.afterRefusal(&q, attempt)
		}
		b.mu.Lock()
		b.done(seq, &q, now, blockFor, &t.cfg)
		b.mu.Unlock()
		if !refused {
			return resp, nil
		}
		t.obs.ObserveRefusal(host, resp.StatusCode, asked)

		switch {
		case attempt >= t.cfg.MaxAttempts:
			t.giveUp(host, resp.StatusCode, GiveUpAttempts, slog.LevelWarn, slog.Int("attempts", attempt))
			return resp, nil
		case !retryable:
			t.giveUp(host, resp.StatusCode, GiveUpNotRetryable, slog.LevelDebug, slog.String("method", req.Method))
			return resp, nil
		case asked > t.cfg.MaxDelay:
			t.giveUp(host, resp.StatusCode, GiveUpTooLong, slog.LevelWarn,
				slog.Duration("asked", asked), slog.Duration("max_delay", t.cfg.MaxDelay))
			return resp, nil
		}
		wait := backoff
		if asked > 0 {
			wait = max(backoff, padded(asked, t.cfg.MaxDelay))
		}
		if dl, ok := ctx.Deadline(); ok && !now.Add(wait).Before(dl) {
			discard(resp)
			t.giveUp(host, resp.StatusCode, GiveUpDeadline, slog.LevelInfo, slog.Duration("wait", wait))
			return nil, &WaitError{Reason: WaitBackoff, Wait: wait, Left: max(dl.Sub(now), 0), StatusCode: resp.StatusCode}
		}
		discard(resp)
		t.obs.ObserveWait(host, WaitBackoff, wait)
		if _, err := pause(ctx, wait, nil); err != nil {
			return nil, err
		}
		if r, err = rewind(req); err != nil {
			return nil, err
		}
		t.obs.ObserveRetry(host, attempt+1, wait)
	}
}

// hostOf returns the host a request's quota is tracked under: the URL's
// host in lower case, without the scheme's default port, so that
// https://API.example.com:443/ and https://api.example.com/ share one.
func hostOf(req *http.Request) string {
	host := req.URL.Host
	if host == "" {
		host = req.Host
	}
	host = strings.ToLower(host)
	switch {
	case req.URL.Scheme == "https" && strings.HasSuffix(host, ":443"):
		host = host[:len(host)-len(":443")]
	case req.URL.Scheme == "http" && strings.HasSuffix(host, ":80"):
		host = host[:len(host)-len(":80")]
	}
	return host
}

// admit waits until b lets a request go, then counts it as sent and
// returns its number.
func (t *Transport) admit(ctx context.Context, b *bucket, host string) (uint64, error) {
	skipProbe := false
	var lastReason string
	var lastUntil time.Time
	for {
		b.mu.Lock()
		now := time.Now()
		v := b.check(now, &t.cfg, skipProbe)
		if v.ok {
			seq := b.take(now, &t.cfg)
			b.mu.Unlock()
			return seq, nil
		}
		changed := b.changed
		b.mu.Unlock()

		if err := ctx.Err(); err != nil {
			return 0, err
		}
		if v.wait > 0 {
			if dl, ok := ctx.Deadline(); ok && !now.Add(v.wait).Before(dl) {
				return 0, &WaitError{Reason: v.reason, Wait: v.wait, Left: max(dl.Sub(now), 0)}
			}
		}
		until := now.Add(v.wait)
		if v.reason != lastReason || (v.wait > 0 && !until.Equal(lastUntil)) {
			t.obs.ObserveWait(host, v.reason, v.wait)
			lastReason, lastUntil = v.reason, until
		}
		d := v.wait
		if v.reason == WaitProbe {
			d = ProbeWait
		}
		fired, err := pause(ctx, d, changed)
		if err != nil {
			return 0, err
		}
		if fired && v.reason == WaitProbe {
			skipProbe = true
		}
	}
}

// pause waits for d (with changed set, forever when d is 0; without, not
// at all), until changed is closed (never when nil) or until ctx is done. It reports whether the time ran out, or
// the context's error.
func pause(ctx context.Context, d time.Duration, changed <-chan struct{}) (bool, error) {
	if d <= 0 && changed == nil {
		return true, ctx.Err()
	}
	var timeout <-chan time.Time
	if d > 0 {
		tm := time.NewTimer(d)
		defer tm.Stop()
		timeout = tm.C
	}
	select {
	case <-ctx.Done():
		return false, ctx.Err()
	case <-timeout:
		return true, nil
	case <-changed:
		return false, nil
	}
}

// afterRefusal returns, for a refusal q of the given attempt, the wait it
// asks for (uncapped), the backoff before the next attempt, and how long
// every request to the host is held back: what it asked for and the
// margin, at most MaxDelay, or the backoff when it asked for nothing.
func (t *Transport) afterRefusal(q *Quota, attempt int) (asked, backoff, hold time.Duration) {
	asked = refusalWait(q)
	backoff = t.backoff(attempt)
	if asked == 0 {
		// The refusal said nothing: every request to the host backs off,
		// not only this one.
		return 0, backoff, backoff
	}
	return asked, backoff, padded(asked, t.cfg.MaxDelay)
}

// refusalWait is the wait a refusal asks for: its Retry-After, or the
// longest reset of a window with nothing left, whichever is longer; zero
// when it asks for nothing.
func refusalWait(q *Quota) time.Duration {
	d := q.RetryAfter
	for _, w := range q.Windows {
		if w.Remaining == 0 {
			d = max(d, w.Reset)
		}
	}
	return d
}

// margin is added to every wait a server's headers ask for. Headers count
// in whole seconds, and a server deciding on a millisecond clock may keep
// a window until a millisecond past the second it named: ratekit does, so
// as never to admit early (its docs/algorithm.md). A request sent exactly
// on the second could be refused for that millisecond; one sent a
// millisecond later is not.
const margin = time.Millisecond

// padded returns a wait d a server asked for, with the margin, at most
// limit. It never overflows, whatever d a hostile header made.
func padded(d, limit time.Duration) time.Duration {
	return min(min(d, limit)+margin, limit)
}

// backoff returns the wait before the retry that follows attempt:
// BaseDelay·2^(attempt-1) ± Jitter, within [0, MaxDelay].
func (t *Transport) backoff(attempt int) time.Duration {
	d := t.cfg.MaxDelay
	if shift := attempt - 1; shift < 62 && t.cfg.BaseDelay <= t.cfg.MaxDelay>>shift {
		d = t.cfg.BaseDelay << shift
	}
	if j := t.cfg.Jitter; j > 0 {
		d += rand.N(2*j+1) - j
	}
	return min(max(d, 0), t.cfg.MaxDelay)
}

// retryable reports whether req may be sent again: an idempotent method (or
// RetryNonIdempotent) and a body that can be replayed.
func (t *Transport) retryable(req *http.Request) bool {
	switch req.Method {
	case "", http.MethodGet, http.MethodHead, http.MethodOptions, http.MethodTrace, http.MethodPut, http.MethodDelete:
	default:
		if !t.cfg.RetryNonIdempotent {
			return false
		}
	}
	return req.Body == nil || req.Body == http.NoBody || req.GetBody != nil
}

// rewind returns a copy of req to send again, with a fresh body.
func rewind(req *http.Request) (*http.Request, error) {
	r := req.Clone(req.Context())
	if req.Body != nil && req.Body != http.NoBody {
		body, err := req.GetBody()
		if err != nil {
			return nil, fmt.Errorf("client: replaying the request body: %w", err)
		}
		r.Body = body
	}
	return r, nil
}

// discard drains (up to maxDrain) and closes a response the caller will
// not see, so that its connection can carry the next request.
func discard(resp *http.Response) {
	io.CopyN(io.Discard, resp.Body, maxDrain)
	resp.Body.Close()
}

// acquire returns the bucket of host and the request's key, creating it,
// and marks it in use.
func (t *Transport) acquire(host string, req *http.Request) *bucket {
	k := bucketKey{host: host}
	if t.cfg.KeyHeader != "" {
		if vs := req.Header.Values(t.cfg.KeyHeader); len(vs) > 0 {
			k.key = t.keyID(vs)
		}
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	b := t.buckets[k]
	if b == nil {
		if len(t.buckets) >= t.nextSweep {
			t.sweep(time.Now())
		}
		b = &bucket{changed: make(chan struct{})}
		t.buckets[k] = b
	}
	b.refs++
	return b
}

// release marks b no longer in use by one request.
func (t *Transport) release(b *bucket) {
	t.mu.Lock()
	b.refs--
	t.mu.Unlock()
}

// sweep forgets idle buckets. It runs when the map reaches nextSweep, which
// then doubles the surviving count (at least maxBuckets), so sweeps stay
// rare even when many buckets are busy. t.mu is held.
func (t *Transport) sweep(now time.Time) {
	for k, b := range t.buckets {
		b.mu.Lock()
		idle := b.idleAt(now)
		b.mu.Unlock()
		if idle {
			delete(t.buckets, k)
		}
	}
	t.nextSweep = max(maxBuckets, 2*len(t.buckets))
}

// keyID returns the keyed hash of the key header's values.
func (t *Transport) keyID(vs []string) [16]byte {
	mac := hmac.New(sha256.New, t.secret[:])
	for i, v := range vs {
		if i > 0 {
			mac.Write([]byte{0})
		}
		io.WriteString(mac, v)
	}
	var id [16]byte
	copy(id[:], mac.Sum(nil))
	return id
}

// Kinds of log line, each limited to one a second.
const (
	logTooLong = iota
	logAttempts
	logIgnored
	logSkew
	logDeadline
	logOther
	numLogKinds
)

// logOdd logs what is unusual in a response: unreadable quota fields and a
// clock that disagrees with the server's.
func (t *Transport) logOdd(host string, q *Quota, skew time.Duration) {
	if len(q.Ignored) > 0 {
		t.logf(logIgnored, slog.LevelWarn, "client: unreadable rate-limit fields ignored",
			slog.String("host", host), slog.Any("fields", q.Ignored))
	}
	if skew != 0 {
		t.logf(logSkew, slog.LevelInfo, "client: server clock differs from ours; reading its absolute times against its Date",
			slog.String("host", host), slog.Duration("skew", skew))
	}
}

// giveUp reports a refusal that is not retried.
func (t *Transport) giveUp(host string, status int, reason string, level slog.Level, attrs ...slog.Attr) {
	t.obs.ObserveGiveUp(host, status, reason)
	kind := logOther
	switch reason {
	case GiveUpTooLong:
		kind = logTooLong
	case GiveUpAttempts:
		kind = logAttempts
	case GiveUpDeadline:
		kind = logDeadline
	}
	attrs = append([]slog.Attr{slog.String("host", host), slog.Int("status", status), slog.String("reason", reason)}, attrs...)
	t.logf(kind, level, "client: refusal not retried", attrs...)
}

// logf writes a log line unless one of the same kind was written less than
// a second ago.
func (t *Transport) logf(kind int, level slog.Level, msg string, attrs ...slog.Attr) {
	if !t.cfg.Logger.Enabled(context.Background(), level) {
		return
	}
	now := time.Now().UnixNano()
	last := t.lastLog[kind].Load()
	if last != 0 && now-last < int64(time.Second) {
		return
	}
	if !t.lastLog[kind].CompareAndSwap(last, now) {
		return
	}
	t.cfg.Logger.LogAttrs(context.Background(), level, msg, attrs...)
}

// nopObserver is used when Config.Observer is nil.
type nopObserver struct{}

func (nopObserver) ObserveWait(string, string, time.Duration) {}
func (nopObserver) ObserveRefusal(string, int, time.Duration) {}
func (nopObserver) ObserveRetry(string, int, time.Duration)   {}
func (nopObserver) ObserveGiveUp(string, int, string)         {}
