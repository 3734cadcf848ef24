package client

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"
)

func TestNewInvalidConfig(t *testing.T) {
	tests := []struct {
		name  string
		cfg   Config
		wants []string // substrings of the error, one per invalid field
	}{
		{"negative attempts", Config{MaxAttempts: -1}, []string{"MaxAttempts -1"}},
		{"negative delays", Config{BaseDelay: -1, MaxDelay: -time.Second, Jitter: -1}, []string{"BaseDelay", "MaxDelay -1s", "Jitter"}},
		{"base over max", Config{BaseDelay: 2 * time.Minute}, []string{"BaseDelay 2m0s longer than MaxDelay 1m0s"}},
		{"rate", Config{Rate: Rate{Limit: -1}}, []string{"Rate"}},
		{"in flight", Config{MaxInFlight: -2}, []string{"MaxInFlight -2"}},
		{"key header", Config{KeyHeader: "X API Key"}, []string{`KeyHeader "X API Key"`}},
		{"several at once", Config{MaxAttempts: -1, MaxInFlight: -1, KeyHeader: "a:b"}, []string{"MaxAttempts", "MaxInFlight", "KeyHeader"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := New(tc.cfg)
			if !errors.Is(err, ErrInvalidConfig) {
				t.Fatalf("New(%+v) = %v, want ErrInvalidConfig", tc.cfg, err)
			}
			for _, w := range tc.wants {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("New(%+v) = %q, want it to mention %q", tc.cfg, err, w)
				}
			}
			if !strings.HasPrefix(err.Error(), "client: ") {
				t.Errorf("error %q lacks the package prefix", err)
			}
		})
	}
	if _, err := New(Config{}); err != nil {
		t.Errorf("New(Config{}) = %v, want nil", err)
	}
}

// TestNewCopiesConfig: editing the caller's Config after New changes
// nothing.
func TestNewCopiesConfig(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		attempts := 0
		h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			attempts++
			w.WriteHeader(http.StatusTooManyRequests)
		})
		cfg := Config{Base: handlerTransport{h}, MaxAttempts: 2}
		tr := newTransport(t, cfg)
		cfg.MaxAttempts = 4
		get(t, tr, "http://x.test/")
		if attempts != 2 {
			t.Errorf("attempts = %d after editing the Config, want 2", attempts)
		}
	})
}

// TestRetryPolicy: which requests are retried. The server always answers
// the given status with Retry-After: 1; MaxAttempts is 3.
func TestRetryPolicy(t *testing.T) {
	tests := []struct {
		name     string
		method   string
		body     func() io.Reader // nil: no body
		noGetter bool             // hide the body from http.NewRequest, so GetBody is nil
		optIn    bool
		status   int
		want     int // attempts the server sees
	}{
		{"GET", "GET", nil, false, false, 429, 3},
		{"HEAD", "HEAD", nil, false, false, 429, 3},
		{"DELETE", "DELETE", nil, false, false, 429, 3},
		{"PUT with a replayable body", "PUT", strBody, false, false, 429, 3},
		{"PUT with a one-shot body", "PUT", strBody, true, false, 429, 1},
		{"POST", "POST", strBody, false, false, 429, 1},
		{"POST opted in", "POST", strBody, false, true, 429, 3},
		{"POST opted in, one-shot body", "POST", strBody, true, true, 429, 1},
		{"PATCH opted in, no body", "PATCH", nil, false, true, 429, 3},
		{"503 is retried", "GET", nil, false, false, 503, 3},
		{"500 is not", "GET", nil, false, false, 500, 1},
		{"404 is not", "GET", nil, false, false, 404, 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				var bodies []string
				h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					b, _ := io.ReadAll(r.Body)
					bodies = append(bodies, string(b))
					w.Header().Set("Retry-After", "1")
					w.WriteHeader(tc.status)
				})
				tr := newTransport(t, Config{Base: handlerTransport{h}, MaxAttempts: 3, RetryNonIdempotent: tc.optIn})
				var body io.Reader
				if tc.body != nil {
					body = tc.body()
					if tc.noGetter {
						body = io.MultiReader(body)
					}
				}
				req, _ := http.NewRequest(tc.method, "http://x.test/", body)
				resp, err := tr.RoundTrip(req)
				if err != nil {
					t.Fatal(err)
				}
				resp.Body.Close()
				if resp.StatusCode != tc.status || len(bodies) != tc.want {
					t.Errorf("%s: %d after %d attempts, want %d after %d", tc.method, resp.StatusCode, len(bodies), tc.status, tc.want)
				}
				if tc.body != nil {
					for i, b := range bodies {
						if b != "payload" {
							t.Errorf("attempt %d sent body %q, want %q", i+1, b, "payload")
						}
					}
				}
			})
		})
	}
}

func strBody() io.Reader { return strings.NewReader("payload") }

// trackedBody records how much of a response body was read and whether
// it was closed.
type trackedBody struct {
	r      io.Reader
	read   int
	closed bool
}

func (b *trackedBody) Read(p []byte) (int, error) {
	n, err := b.r.Read(p)
	b.read += n
	return n, err
}

func (b *trackedBody) Close() error { b.closed = true; return nil }

// TestDiscardedBodies: refusals that are retried have their bodies drained
// (at most 64 KiB) and closed; the response returned is untouched.
func TestDiscardedBodies(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var bodies []*trackedBody
		base := roundTripFunc(func(r *http.Request) (*http.Response, error) {
			size := 100
			status := 429
			switch len(bodies) {
			case 1:
				size = 1 << 20
			case 2:
				status = 200
			}
			b := &trackedBody{r: bytes.NewReader(make([]byte, size))}
			bodies = append(bodies, b)
			return &http.Response{StatusCode: status, Header: http.Header{}, Body: b, Request: r}, nil
		})
		tr := newTransport(t, Config{Base: base})
		req, _ := http.NewRequest("GET", "http://x.test/", nil)
		resp, err := tr.RoundTrip(req)
		if err != nil || resp.StatusCode != 200 {
			t.Fatalf("RoundTrip = %v, %v; want 200", resp, err)
		}
		if b := bodies[0]; !b.closed || b.read != 100 {
			t.Errorf("small refusal body: read %d, closed %v; want 100, true", b.read, b.closed)
		}
		if b := bodies[1]; !b.closed || b.read != maxDrain {
			t.Errorf("1 MiB refusal body: read %d, closed %v; want %d, true", b.read, b.closed, maxDrain)
		}
		if b := bodies[2]; b.closed || b.read != 0 {
			t.Errorf("returned body: read %d, closed %v; want untouched", b.read, b.closed)
		}
	})
}

// TestConnectionReuse: over real net/http, three refusals and a success
// use one connection: the refusals' bodies were drained and closed.
func TestConnectionReuse(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n := 0
		base, net := servePipe(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if n++; n <= 3 {
				w.Header().Set("Retry-After", "1")
				w.WriteHeader(http.StatusTooManyRequests)
				io.WriteString(w, strings.Repeat("x", 10_000))
				return
			}
			io.WriteString(w, "ok")
		}))
		tr := newTransport(t, Config{Base: base})
		if got := get(t, tr, "http://x.test/"); got != 200 {
			t.Fatalf("GET = %d, want 200", got)
		}
		if d := net.Dials(); d != 1 {
			t.Errorf("%d connections for 4 attempts, want 1", d)
		}
	})
}

// TestDeadline: a wait that does not fit before the context's deadline is
// not begun; the request fails at once with a WaitError.
func TestDeadline(t *testing.T) {
	tests := []struct {
		name   string
		cfg    Config
		header http.Header // of every response
		status int
		warm   int // requests sent before the one with a deadline
		reason string
		wait   time.Duration
		code   int
	}{
		{"quota: remaining 0 for 10 s", Config{}, header("RateLimit-Remaining", "0", "RateLimit-Reset", "10"), 200, 1, WaitQuota, 10*time.Second + margin, 0},
		{"retry-after: held by an earlier refusal", Config{MaxAttempts: 1}, header("Retry-After", "10"), 429, 1, WaitRetryAfter, 10*time.Second + margin, 0},
		{"rate: one per 10 s", Config{Rate: Rate{Limit: 1, Per: 10 * time.Second}}, header(), 200, 1, WaitRate, 10 * time.Second, 0},
		{"backoff: the retry would come too late", Config{}, header("Retry-After", "10"), 429, 0, WaitBackoff, 10*time.Second + margin, 429},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				attempts := 0
				var lastBody *trackedBody
				base := roundTripFunc(func(r *http.Request) (*http.Response, error) {
					attempts++
					lastBody = &trackedBody{r: strings.NewReader("refused")}
					return &http.Response{StatusCode: tc.status, Header: tc.header.Clone(), Body: lastBody, Request: r}, nil
				})
				tr := newTransport(t, Config{Base: base, MaxAttempts: tc.cfg.MaxAttempts, Rate: tc.cfg.Rate})
				for range tc.warm {
					tryGet(context.Background(), tr, "http://x.test/")
				}
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				defer cancel()
				start := time.Now()
				_, err := tryGet(ctx, tr, "http://x.test/")
				var we *WaitError
				if !errors.Is(err, ErrDeadline) || !errors.As(err, &we) {
					t.Fatalf("GET = %v, want a WaitError", err)
				}
				if took := time.Since(start); took != 0 {
					t.Errorf("the WaitError came after %v, want at once", took)
				}
				if we.Reason != tc.reason || we.Wait != tc.wait || we.Left != 5*time.Second || we.StatusCode != tc.code {
					t.Errorf("WaitError = %+v, want reason %s, wait %v, left 5s, status %d", *we, tc.reason, tc.wait, tc.code)
				}
				if tc.reason == WaitBackoff && !lastBody.closed {
					t.Error("the refusal's body was not closed")
				}
				if want := tc.warm + btoi(tc.reason == WaitBackoff); attempts != want {
					t.Errorf("server saw %d requests, want %d", attempts, want)
				}
			})
		})
	}
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

// TestCancelDuringWait: canceling the context ends a wait with the
// context's error, when it happens, and the request body is closed.
func TestCancelDuringWait(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		base := roundTripFunc(func(r *http.Request) (*http.Response, error) {
			return &http.Response{StatusCode: 200, Header: header("RateLimit-Remaining", "0", "RateLimit-Reset", "30"), Body: http.NoBody}, nil
		})
		tr := newTransport(t, Config{Base: base})
		get(t, tr, "http://x.test/")
		ctx, cancel := context.WithCancel(context.Background())
		time.AfterFunc(2*time.Second, cancel)
		body := &trackedBody{r: strings.NewReader("x")}
		req, _ := http.NewRequestWithContext(ctx, "PUT", "http://x.test/", body)
		start := time.Now()
		_, err := tr.RoundTrip(req)
		if !errors.Is(err, context.Canceled) || time.Since(start) != 2*time.Second {
			t.Errorf("RoundTrip = %v after %v, want context.Canceled after 2s", err, time.Since(start))
		}
		if !body.closed {
			t.Error("request body not closed")
		}
	})
}

// TestHostileHeaders: whatever a server sends, no wait is longer than
// MaxDelay. Each case sends a request whose response carries the headers,
// then a second one, and measures how long the pair takes.
func TestHostileHeaders(t *testing.T) {
	const maxDelay = time.Minute
	tests := []struct {
		name   string
		status int
		kv     []string
		want   time.Duration // time for both requests
		giveUp string        // first request's give-up reason, if refused
	}{
		{"reset years away (Lindris doc's 2015967110)", 200, []string{"X-RateLimit-Remaining", "0", "X-RateLimit-Reset", "2015967110"}, maxDelay, ""},
		{"reset huge", 200, []string{"X-RateLimit-Remaining", "0", "X-RateLimit-Reset", "999999999999999999999999"}, maxDelay, ""},
		{"ietf t a year away", 200, []string{"RateLimit", `"day";r=0;t=31536000`}, maxDelay, ""},
		{"reset negative: ignored", 200, []string{"X-RateLimit-Remaining", "0", "X-RateLimit-Reset", "-60"}, 0, ""},
		{"reset not a number: ignored", 200, []string{"RateLimit-Remaining", "0", "RateLimit-Reset", "NaN"}, 0, ""},
		{"remaining negative: ignored", 200, []string{"X-RateLimit-Remaining", "-5", "X-RateLimit-Reset", "30"}, 0, ""},
		{"retry-after huge: not retried, later requests held MaxDelay", 429, []string{"Retry-After", "99999999999999999999"}, maxDelay, GiveUpTooLong},
		{"retry-after date in 2100", 429, []string{"Retry-After", "Fri, 01 Jan 2100 00:00:00 GMT"}, maxDelay, GiveUpTooLong},
		{"retry-after negative: plain backoff", 429, []string{"Retry-After", "-1"}, 0, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				n := 0
				base := roundTripFunc(func(r *http.Request) (*http.Response, error) {
					n++
					if n > 1 && tc.status != 200 && tc.giveUp == "" {
						// the retry after plain backoff succeeds
						return &http.Response{StatusCode: 200, Header: http.Header{}, Body: http.NoBody}, nil
					}
					return &http.Response{StatusCode: tc.status, Header: header(tc.kv...), Body: http.NoBody}, nil
				})
				rec := newRecorder()
				tr := newTransport(t, Config{Base: base, Observer: rec, DisableJitter: true, MaxAttempts: 2, Logger: slog.New(slog.DiscardHandler)})
				start := time.Now()
				first, _ := tryGet(context.Background(), tr, "http://x.test/")
				tryGet(context.Background(), tr, "http://x.test/")
				want := tc.want
				if tc.status != 200 && tc.giveUp == "" {
					want = DefaultBaseDelay // one plain backoff, then success
				}
				if took := time.Since(start); took != want {
					t.Errorf("two requests took %v, want %v", took, want)
				}
				_, _, giveUps := rec.counts()
				if tc.giveUp != "" && (first != tc.status || len(giveUps) == 0 || giveUps[0] != tc.giveUp) {
					t.Errorf("first request: %d, give-ups %v; want %d and %s", first, giveUps, tc.status, tc.giveUp)
				}
			})
		})
	}
}

// TestClockSkew: a server whose clock is an hour ahead sends Scalekit's
// Unix-time reset; read against its Date field, the wait is 2 s, not the
// cap.
func TestClockSkew(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		base := roundTripFunc(func(r *http.Request) (*http.Response, error) {
			server := time.Now().Add(time.Hour)
			h := header("Date", server.UTC().Format(http.TimeFormat),
				"X-RateLimit-Remaining", "0", "X-RateLimit-Reset", fmt.Sprint(server.Add(2*time.Second).Unix()))
			return &http.Response{StatusCode: 200, Header: h, Body: http.NoBody}, nil
		})
		var logs bytes.Buffer
		tr := newTransport(t, Config{Base: base, Logger: slog.New(slog.NewTextHandler(&logs, nil))})
		start := time.Now()
		get(t, tr, "http://x.test/")
		get(t, tr, "http://x.test/")
		if d := time.Since(start); !about(d, 2*time.Second) {
			t.Errorf("second request waited %v, want 2s", d)
		}
		if !strings.Contains(logs.String(), "skew=1h0m0s") {
			t.Errorf("log %q does not report the skew", logs.String())
		}
	})
}

// TestRate: the client-side token bucket spaces requests evenly after its
// burst.
func TestRate(t *testing.T) {
	tests := []struct {
		name string
		rate Rate
		want time.Duration // for 10 requests
	}{
		{"2/s, burst 1", Rate{Limit: 2}, 4500 * time.Millisecond},
		{"2/s, burst 3", Rate{Limit: 2, Burst: 3}, 3500 * time.Millisecond},
		{"3 per 2 s", Rate{Limit: 3, Per: 2 * time.Second}, 6 * time.Second},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				ok := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {})
				rec := newRecorder()
				tr := newTransport(t, Config{Base: handlerTransport{ok}, Rate: tc.rate, Observer: rec})
				start := time.Now()
				burst(t, tr, "http://x.test/", 10, 4)
				if d := time.Since(start); d < tc.want || d > tc.want+time.Microsecond {
					t.Errorf("10 requests took %v, want %v", d, tc.want)
				}
				if rec.waits[WaitRate] == 0 {
					t.Errorf("no rate wait observed: %v", rec.waits)
				}
			})
		})
	}
}

// TestMaxInFlight: no more than MaxInFlight requests are in flight at
// once to a host.
func TestMaxInFlight(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var cur, peak atomic.Int32
		slow := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			n := cur.Add(1)
			for p := peak.Load(); n > p && !peak.CompareAndSwap(p, n); p = peak.Load() {
			}
			time.Sleep(time.Second)
			cur.Add(-1)
		})
		tr := newTransport(t, Config{Base: handlerTransport{slow}, MaxInFlight: 3})
		start := time.Now()
		statuses := burst(t, tr, "http://x.test/", 10, 10)
		if countStatus(statuses, 200) != 10 {
			t.Errorf("statuses %v", statuses)
		}
		// The first request goes alone (nothing known yet), then 3 at a time.
		if p, d := peak.Load(), time.Since(start); p != 3 || d != 4*time.Second {
			t.Errorf("peak %d in flight, took %v; want 3 and 4s", p, d)
		}
	})
}

// TestProbeWait: the first request to an unknown host goes alone, but a
// slow first answer holds the others back for ProbeWait only.
func TestProbeWait(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var first atomic.Bool
		h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if first.CompareAndSwap(false, true) {
				time.Sleep(5 * time.Second)
			}
		})
		rec := newRecorder()
		tr := newTransport(t, Config{Base: handlerTransport{h}, Observer: rec})
		var mu sync.Mutex
		var done []time.Duration
		start := time.Now()
		var wg sync.WaitGroup
		for i := range 4 {
			wg.Go(func() {
				if i > 0 {
					time.Sleep(time.Millisecond) // let the first one go first
				}
				get(t, tr, "http://x.test/")
				mu.Lock()
				done = append(done, time.Since(start))
				mu.Unlock()
			})
		}
		wg.Wait()
		want := []time.Duration{time.Second + time.Millisecond, time.Second + time.Millisecond, time.Second + time.Millisecond, 5 * time.Second}
		if fmt.Sprint(done) != fmt.Sprint(want) {
			t.Errorf("requests finished at %v, want %v", done, want)
		}
		if rec.waits[WaitProbe] != 3 {
			t.Errorf("probe waits %d, want 3", rec.waits[WaitProbe])
		}
	})
}

// TestNoHeadersNoSerialising: a host that sends no quota fields is not
// paced after its first answer: requests go concurrently.
func TestNoHeadersNoSerialising(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var cur, peak atomic.Int32
		slow := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			n := cur.Add(1)
			for p := peak.Load(); n > p && !peak.CompareAndSwap(p, n); p = peak.Load() {
			}
			time.Sleep(time.Second)
			cur.Add(-1)
		})
		tr := newTransport(t, Config{Base: handlerTransport{slow}})
		get(t, tr, "http://x.test/")
		burst(t, tr, "http://x.test/", 8, 8)
		if p := peak.Load(); p != 8 {
			t.Errorf("peak %d in flight, want 8", p)
		}
	})
}

// TestConcurrentHostsAndKeys runs many goroutines over several hosts and
// keys against ratekit's middleware, for the race detector and for the
// bookkeeping: every request succeeds, the server refuses none.
func TestConcurrentHostsAndKeys(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		lim := limiter(t, nil)
		rec := newRecorder()
		tr := newTransport(t, Config{Base: handlerTransport{lim}, KeyHeader: "Authorization", Observer: rec})
		var wg sync.WaitGroup
		var failed atomic.Int32
		start := time.Now()
		for k := range 4 {
			for range 5 {
				wg.Go(func() {
					for range 3 {
						status, err := tryGet(context.Background(), tr, "http://api.test/v1/people", "Authorization", fmt.Sprintf("Bearer demo-key-%d", k))
						if err != nil || status != 200 {
							failed.Add(1)
						}
					}
				})
			}
		}
		wg.Wait()
		if f := failed.Load(); f != 0 {
			t.Errorf("%d of 60 requests failed", f)
		}
		if refusals, _, _ := rec.counts(); refusals != 0 {
			t.Errorf("server refused %d requests, want 0", refusals)
		}
		// 4 keys, 15 requests each at 2/s: 7 s.
		if d := time.Since(start); !about(d, 7*time.Second) {
			t.Errorf("took %v, want 7s", d)
		}
	})
}

// TestKeyNeverStored: the API key appears neither in the transport's state
// nor in its logs, though each key gets its own bucket.
func TestKeyNeverStored(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const secret = "sk_live_Zq9XyW8vU7tS6rR5"
		base := roundTripFunc(func(r *http.Request) (*http.Response, error) {
			h := header("X-RateLimit-Remaining", "bogus", "Retry-After", "99999")
			return &http.Response{StatusCode: 429, Header: h, Body: http.NoBody, Request: r}, nil
		})
		var logs bytes.Buffer
		tr := newTransport(t, Config{Base: base, KeyHeader: "X-API-Key", Logger: slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))})
		get(t, tr, "http://x.test/", "X-API-Key", secret)
		get(t, tr, "http://x.test/", "X-API-Key", secret+"2")
		get(t, tr, "http://x.test/", "X-API-Key", secret)
		if len(tr.buckets) != 2 {
			t.Errorf("%d buckets for two keys, want 2", len(tr.buckets))
		}
		if state := fmt.Sprintf("%#v", tr.buckets); strings.Contains(state, "sk_live") {
			t.Errorf("the key is in the transport's state: %s", state)
		}
		if !strings.Contains(logs.String(), "too-long") || !strings.Contains(logs.String(), "X-Ratelimit-Remaining") {
			t.Errorf("logs %q lack the give-up and the unreadable field", logs.String())
		}
		if strings.Contains(logs.String(), "sk_live") {
			t.Errorf("the key is in the logs: %s", logs.String())
		}
	})
}

// TestLogOncePerSecond: a server that misbehaves on every response gets
// one log line a second, not one per response.
func TestLogOncePerSecond(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		base := roundTripFunc(func(r *http.Request) (*http.Response, error) {
			return &http.Response{StatusCode: 200, Header: header("RateLimit-Remaining", "x"), Body: http.NoBody}, nil
		})
		var logs bytes.Buffer
		tr := newTransport(t, Config{Base: base, Logger: slog.New(slog.NewTextHandler(&logs, nil))})
		for range 50 {
			get(t, tr, "http://x.test/")
		}
		time.Sleep(time.Second)
		get(t, tr, "http://x.test/")
		if n := strings.Count(logs.String(), "unreadable rate-limit fields"); n != 2 {
			t.Errorf("%d log lines for 51 bad responses over 1 s, want 2:\n%s", n, logs.String())
		}
	})
}

// TestStaleResponse: an answer to an older request, arriving after a
// newer one, can lower the picture but never raise it.
func TestStaleResponse(t *testing.T) {
	c, _ := Config{}.withDefaults()
	t0 := time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)
	b := &bucket{changed: make(chan struct{})}
	s1 := b.take(t0, &c)
	s2 := b.take(t0, &c)
	b.done(s2, &Quota{Windows: []Window{{Name: "second", Remaining: 0, Reset: time.Second}}}, t0, 0, &c)
	b.done(s1, &Quota{Windows: []Window{{Name: "second", Remaining: 1, Reset: 500 * time.Millisecond}}}, t0, 0, &c)
	if w := b.windows[0]; w.remaining > 0 || !w.resetAt.Equal(t0.Add(time.Second+margin)) {
		t.Errorf("after a stale answer: remaining %d, reset at %v; want none left and t0+1s and the margin", w.remaining, w.resetAt.Sub(t0))
	}
	if v := b.check(t0, &c, false); v.ok || v.reason != WaitQuota || v.wait != time.Second+margin {
		t.Errorf("check = %+v, want a 1s quota wait and the margin", v)
	}
	// A stale answer may lower the picture: two requests in flight, the
	// newer answered first.
	t1 := t0.Add(time.Second)
	s3 := b.take(t1, &c)
	s4 := b.take(t1, &c)
	b.done(s4, &Quota{Windows: []Window{{Name: "second", Remaining: 2}}}, t1, 0, &c)
	if w := b.windows[0]; w.remaining != 1 || !w.resetAt.IsZero() {
		t.Errorf("after the newer answer: remaining %d, reset at %v; want 1 (2 less the one in flight) and none", w.remaining, w.resetAt)
	}
	b.done(s3, &Quota{Windows: []Window{{Name: "second", Remaining: 0, Reset: 2 * time.Second}}}, t1, 0, &c)
	if w := b.windows[0]; w.remaining != 0 || !w.resetAt.Equal(t0.Add(3*time.Second+margin)) {
		t.Errorf("after a stale lower answer: remaining %d, reset at %v; want 0 and t0+3s and the margin", w.remaining, w.resetAt.Sub(t0))
	}
}

// TestSweep: idle buckets are forgotten once the map is full, busy ones
// kept.
func TestSweep(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		base := roundTripFunc(func(r *http.Request) (*http.Response, error) {
			h := header()
			if r.URL.Host == "busy.test" {
				h = header("RateLimit-Remaining", "0", "RateLimit-Reset", "30")
			}
			return &http.Response{StatusCode: 200, Header: h, Body: http.NoBody}, nil
		})
		tr := newTransport(t, Config{Base: base})
		get(t, tr, "http://busy.test/")
		for i := range maxBuckets {
			get(t, tr, fmt.Sprintf("http://h%d.test/", i))
		}
		if n := len(tr.buckets); n != 2 {
			t.Errorf("%d buckets after a sweep, want 2 (the busy one and the newest)", n)
		}
		if _, ok := tr.buckets[bucketKey{host: "busy.test"}]; !ok {
			t.Error("the bucket waiting for a reset was forgotten")
		}
	})
}

func TestHostOf(t *testing.T) {
	for _, tc := range []struct{ url, want string }{
		{"https://API.Example.com/x", "api.example.com"},
		{"https://api.example.com:443/x", "api.example.com"},
		{"http://api.example.com:80/x", "api.example.com"},
		{"https://api.example.com:80/x", "api.example.com:80"},
		{"http://api.example.com:8080/x", "api.example.com:8080"},
		{"http://[::1]:80/", "[::1]"},
	} {
		req, _ := http.NewRequest("GET", tc.url, nil)
		if got := hostOf(req); got != tc.want {
			t.Errorf("hostOf(%s) = %q, want %q", tc.url, got, tc.want)
		}
	}
}
