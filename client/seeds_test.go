package client

import (
	"io"
	"net/http"
	"strconv"
	"sync"
	"testing"
	"testing/synctest"
	"time"
)

// seedServer answers like the APIs the seeds document: a fixed window of
// limit requests per period (aligned to the Unix clock, so the fake clock's
// whole seconds), quota written by style, 429 beyond it. It records when
// each request arrived.
type seedServer struct {
	limit  int
	period time.Duration
	style  func(h http.Header, limit, remaining int, now, resetAt time.Time, refused bool)

	mu       sync.Mutex
	start    time.Time // current window
	used     int
	arrivals []time.Time
}

func (s *seedServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	now := time.Now()
	s.arrivals = append(s.arrivals, now)
	if start := now.Truncate(s.period); !start.Equal(s.start) {
		s.start, s.used = start, 0
	}
	refused := s.used >= s.limit
	if !refused {
		s.used++
	}
	remaining := s.limit - s.used
	resetAt := s.start.Add(s.period)
	s.mu.Unlock()
	if s.style != nil {
		s.style(w.Header(), s.limit, remaining, now, resetAt, refused)
	}
	if refused {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusTooManyRequests)
		io.WriteString(w, `{"message":"You have exceeded your rate limit."}`)
		return
	}
	io.WriteString(w, "ok\n")
}

func (s *seedServer) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.arrivals)
}

func seconds(d time.Duration) string {
	return strconv.FormatInt(int64((d+time.Second-1)/time.Second), 10)
}

// The styles of the four seeds, as their documentation describes them.
var seedStyles = []struct {
	name  string
	style func(h http.Header, limit, remaining int, now, resetAt time.Time, refused bool)
}{
	{"kinde: RateLimit-Reset in seconds", func(h http.Header, limit, remaining int, now, resetAt time.Time, refused bool) {
		h.Set("RateLimit-Limit", strconv.Itoa(limit))
		h.Set("RateLimit-Remaining", strconv.Itoa(remaining))
		h.Set("RateLimit-Reset", seconds(resetAt.Sub(now)))
	}},
	{"scalekit: X-RateLimit-Reset as a Unix time, Retry-After on 429", func(h http.Header, limit, remaining int, now, resetAt time.Time, refused bool) {
		h.Set("X-RateLimit-Limit", strconv.Itoa(limit))
		h.Set("X-RateLimit-Remaining", strconv.Itoa(remaining))
		h.Set("X-RateLimit-Reset", strconv.FormatInt(resetAt.Unix(), 10))
		if refused {
			h.Set("Retry-After", seconds(resetAt.Sub(now)))
		}
	}},
	{"lindris: X-RateLimit-* with Limited-By, Retry-After on 429", func(h http.Header, limit, remaining int, now, resetAt time.Time, refused bool) {
		h.Set("X-RateLimit-Limit", "60")
		h.Set("X-RateLimit-Remaining", "45")
		h.Set("X-RateLimit-Limit-Second", strconv.Itoa(limit))
		h.Set("X-RateLimit-Remaining-Second", strconv.Itoa(remaining))
		h.Set("X-RateLimit-Reset", seconds(resetAt.Sub(now)))
		h.Set("X-RateLimit-Limited-By", "second")
		if refused {
			h.Set("Retry-After", seconds(resetAt.Sub(now)))
		}
	}},
}

// TestSeedServers: 10 GETs, 3 at a time, against servers answering as
// Kinde, Scalekit and Lindris document, 2 requests per second: none is
// refused and the run takes 4 s (2 at 0 s, 1 s, 2 s, 3 s, 4 s).
func TestSeedServers(t *testing.T) {
	for _, s := range seedStyles {
		t.Run(s.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				srv := &seedServer{limit: 2, period: time.Second, style: s.style}
				rec := newRecorder()
				tr := newTransport(t, Config{Base: handlerTransport{srv}, Observer: rec})
				start := time.Now()
				statuses := burst(t, tr, "http://seed.test/", 10, 3)
				if ok := countStatus(statuses, 200); ok != 10 {
					t.Errorf("statuses %v, want 10 × 200", statuses)
				}
				if refusals, _, _ := rec.counts(); refusals != 0 {
					t.Errorf("server refused %d requests, want 0", refusals)
				}
				if d := time.Since(start); !about(d, 4*time.Second) {
					t.Errorf("10 requests took %v, want 4s", d)
				}
			})
		})
	}
}

// TestSeedAuthmatechBackoff: a server that sends no quota header at all
// (Authmatech's envelope only) refuses three times; the transport retries
// on Authmatech's schedule, 1 s, 2 s, 4 s, each ±100 ms.
func TestSeedAuthmatechBackoff(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var mu sync.Mutex
		var arrivals []time.Time
		h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			mu.Lock()
			arrivals = append(arrivals, time.Now())
			n := len(arrivals)
			mu.Unlock()
			if n <= 3 {
				w.Header().Set("Content-Type", "application/json")
				w.WriteHeader(http.StatusTooManyRequests)
				io.WriteString(w, `{"success":false,"messages":[{"type":"FAILURE","message":"Rate limit exceeded.","httpStatus":"TOO_MANY_REQUESTS"}],"data":null}`)
				return
			}
			io.WriteString(w, `{"success":true}`)
		})
		rec := newRecorder()
		tr := newTransport(t, Config{Base: handlerTransport{h}, Observer: rec})
		if got := get(t, tr, "http://authmatech.test/v1/api/x"); got != 200 {
			t.Fatalf("GET = %d, want 200 after three refusals", got)
		}
		if len(arrivals) != 4 {
			t.Fatalf("server saw %d attempts, want 4", len(arrivals))
		}
		for i, base := range []time.Duration{time.Second, 2 * time.Second, 4 * time.Second} {
			gap := arrivals[i+1].Sub(arrivals[i])
			if gap < base-DefaultJitter || gap > base+DefaultJitter {
				t.Errorf("wait before attempt %d = %v, want %v ± %v", i+2, gap, base, DefaultJitter)
			}
		}
		if refusals, retries, _ := rec.counts(); refusals != 3 || retries != 3 {
			t.Errorf("observer saw %d refusals and %d retries, want 3 and 3", refusals, retries)
		}
	})
}

// TestAlwaysRefused: a server that always answers 429 with Retry-After: 1.
// The transport makes MaxAttempts attempts, never sooner than a second
// apart and on the doubling schedule, then returns the last 429.
func TestAlwaysRefused(t *testing.T) {
	const j = DefaultJitter
	tests := []struct {
		name        string
		maxAttempts int
		least, most time.Duration // total time, jitter included
	}{
		{"one attempt", 1, 0, 0},
		{"two attempts", 2, time.Second, time.Second + j},
		{"three attempts", 3, 3*time.Second - j, 3*time.Second + 2*j},
		{"default: five attempts", 0, 15*time.Second - 3*j, 15*time.Second + 4*j},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				attempts := 0
				h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					attempts++
					w.Header().Set("Retry-After", "1")
					w.WriteHeader(http.StatusTooManyRequests)
				})
				rec := newRecorder()
				tr := newTransport(t, Config{Base: handlerTransport{h}, MaxAttempts: tc.maxAttempts, Observer: rec})
				start := time.Now()
				got := get(t, tr, "http://refuse.test/")
				took := time.Since(start)
				want := tc.maxAttempts
				if want == 0 {
					want = DefaultMaxAttempts
				}
				if got != 429 || attempts != want {
					t.Errorf("GET = %d after %d attempts, want 429 after %d", got, attempts, want)
				}
				if took < tc.least || took > tc.most {
					t.Errorf("gave up after %v, want between %v and %v", took, tc.least, tc.most)
				}
				if _, _, giveUps := rec.counts(); len(giveUps) != 1 || giveUps[0] != GiveUpAttempts {
					t.Errorf("give-ups %v, want [%s]", giveUps, GiveUpAttempts)
				}
			})
		})
	}
}

// TestRefusalHoldsHost: a refusal that says nothing about when to come
// back holds every request to the host for its backoff, not only the
// refused one, so a client does not keep spending requests the server
// refuses. One that says (Retry-After) holds them that long.
func TestRefusalHoldsHost(t *testing.T) {
	tests := []struct {
		name       string
		retryAfter string
		want       time.Duration // when the other request reaches the server
	}{
		{"no quota header: the backoff", "", DefaultBaseDelay},
		{"Retry-After: 3", "3", 3*time.Second + margin},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				var mu sync.Mutex
				var arrivals []time.Duration
				start := time.Now()
				h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					mu.Lock()
					arrivals = append(arrivals, time.Since(start))
					n := len(arrivals)
					mu.Unlock()
					if n == 1 {
						if tc.retryAfter != "" {
							w.Header().Set("Retry-After", tc.retryAfter)
						}
						w.WriteHeader(http.StatusTooManyRequests)
					}
				})
				tr := newTransport(t, Config{Base: handlerTransport{h}, DisableJitter: true})
				var wg sync.WaitGroup
				wg.Go(func() { get(t, tr, "http://x.test/") })
				wg.Go(func() {
					time.Sleep(10 * time.Millisecond) // after the refusal
					get(t, tr, "http://x.test/")
				})
				wg.Wait()
				if len(arrivals) != 3 || arrivals[1] != tc.want || arrivals[2] != tc.want {
					t.Errorf("server saw requests at %v, want 0s and twice %v", arrivals, tc.want)
				}
			})
		})
	}
}

// TestTinyBackoff: a backoff that jitter brings to zero retries at once
// rather than hanging.
func TestTinyBackoff(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		attempts := 0
		h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			attempts++
			w.WriteHeader(http.StatusServiceUnavailable)
		})
		tr := newTransport(t, Config{Base: handlerTransport{h}, BaseDelay: time.Nanosecond, Jitter: time.Hour, MaxDelay: time.Nanosecond})
		if got := get(t, tr, "http://x.test/"); got != 503 || attempts != DefaultMaxAttempts {
			t.Errorf("GET = %d after %d attempts, want 503 after %d", got, attempts, DefaultMaxAttempts)
		}
	})
}
