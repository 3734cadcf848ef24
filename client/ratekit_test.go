package client

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"
	"testing/synctest"
	"time"

	"github.com/ratekit/ratekit/window"
)

// TestPacingRatekitStyles: 20 GETs, 4 at a time, against ratekit's
// middleware (60/min + 2/s) in each header style, over net/http on an
// in-memory network in fake time. Every request succeeds, the server
// refuses none, and the run takes the least time the policy allows: two at
// once, then two a second, 9 s (and a millisecond's margin per wait).
// Scalekit's resets are Unix seconds: once the waits' margins have moved
// the client off the whole second, each wait rounds up to the next one, so
// its run takes 17 s.
func TestPacingRatekitStyles(t *testing.T) {
	for _, s := range styles {
		t.Run(s.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				base, _ := servePipe(t, limiter(t, s.style))
				rec := newRecorder()
				tr := newTransport(t, Config{Base: base, Observer: rec})
				start := time.Now()
				statuses := burst(t, tr, "http://api.test/v1/people", 20, 4)
				elapsed := time.Since(start)
				if ok := countStatus(statuses, 200); ok != 20 {
					t.Errorf("statuses %v: %d ok, want 20", statuses, ok)
				}
				refusals, retries, _ := rec.counts()
				if refusals != 0 || retries != 0 {
					t.Errorf("server refused %d requests, %d retries; want none", refusals, retries)
				}
				want := 9 * time.Second
				if s.name == "scalekit" {
					want = 17 * time.Second
				}
				if !about(elapsed, want) {
					t.Errorf("20 requests took %v, want %v", elapsed, want)
				}
			})
		})
	}
}

// TestPacingOtherWindows: a policy whose short window is neither a second
// nor a minute (60/min + 3 per 10 s), in every style: 9 GETs, 3 at a time,
// none refused, in the 20 s the policy allows.
func TestPacingOtherWindows(t *testing.T) {
	policy := window.Policy{Windows: []window.Window{{Length: time.Minute, Limit: 60}, {Length: 10 * time.Second, Limit: 3}}}
	for _, s := range styles {
		t.Run(s.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				rec := newRecorder()
				tr := newTransport(t, Config{Base: handlerTransport{limiterWith(t, s.style, policy)}, Observer: rec})
				start := time.Now()
				statuses := burst(t, tr, "http://api.test/v1/people", 9, 3)
				if ok := countStatus(statuses, 200); ok != 9 {
					t.Errorf("statuses %v: %d ok, want 9", statuses, ok)
				}
				if refusals, _, _ := rec.counts(); refusals != 0 {
					t.Errorf("server refused %d requests, want 0", refusals)
				}
				want := 20 * time.Second
				if s.name == "scalekit" {
					want = 21 * time.Second // Unix-second resets: see TestPacingRatekitStyles
				}
				if d := time.Since(start); !about(d, want) {
					t.Errorf("9 requests took %v, want %v", d, want)
				}
			})
		})
	}
}

// TestPacingPerKey: with KeyHeader set, each key is paced by its own
// bucket: a key whose second window is spent does not hold back another
// key, and requests without the key share the host's state.
func TestPacingPerKey(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		tr := newTransport(t, Config{Base: handlerTransport{limiter(t, nil)}, KeyHeader: "X-API-Key"})
		const url = "http://api.test/v1/people"
		start := time.Now()
		for _, key := range []string{"demo-key-1", "demo-key-2"} {
			for range 2 {
				if got := get(t, tr, url, "X-API-Key", key); got != 200 {
					t.Fatalf("GET with %s: %d, want 200", key, got)
				}
			}
		}
		for range 2 {
			get(t, tr, url)
		}
		if d := time.Since(start); d != 0 {
			t.Errorf("two keys and the anonymous bucket, two requests each, took %v; want no wait", d)
		}
		// Each key has now spent its second window: the next request of
		// each waits one second (and the margin), not more.
		if got := get(t, tr, url, "X-API-Key", "demo-key-1"); got != 200 || time.Since(start) != time.Second+margin {
			t.Errorf("third request of demo-key-1: %d after %v, want 200 after 1s and the margin", got, time.Since(start))
		}
	})
}

// TestRatekitDeadlineOverTCP runs against ratekit over a real listener,
// with a policy of 60/min and 2 per 10 s so that a slow machine cannot
// reach the reset before the deadline: after two requests the short window
// is spent, and a request whose deadline (2 s) is nearer than its reset
// (about 10 s) fails at once with a WaitError rather than sleeping into
// its deadline. Nothing here sleeps.
func TestRatekitDeadlineOverTCP(t *testing.T) {
	policy := window.Policy{Windows: []window.Window{{Length: time.Minute, Limit: 60}, {Length: 10 * time.Second, Limit: 2}}}
	for _, s := range styles {
		t.Run(s.name, func(t *testing.T) {
			srv := httptest.NewServer(limiterWith(t, s.style, policy))
			t.Cleanup(srv.Close)
			rec := newRecorder()
			tr := newTransport(t, Config{Base: srv.Client().Transport, Observer: rec})
			hc := &http.Client{Transport: tr}
			for range 2 {
				resp, err := hc.Get(srv.URL)
				if err != nil || resp.StatusCode != 200 {
					t.Fatalf("GET: %v %v", resp, err)
				}
				resp.Body.Close()
			}
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			defer cancel()
			req, _ := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL, nil)
			began := time.Now()
			resp, err := hc.Do(req)
			took := time.Since(began)
			if err == nil {
				resp.Body.Close()
				t.Fatalf("third GET within 10 s: %d, want a WaitError", resp.StatusCode)
			}
			var we *WaitError
			if !errors.Is(err, ErrDeadline) || !errors.As(err, &we) {
				t.Fatalf("third GET: %v, want a *WaitError wrapping ErrDeadline", err)
			}
			// Scalekit's reset is a whole Unix second: up to 11 s away.
			if we.Reason != WaitQuota || we.Wait < 2*time.Second || we.Wait > 11*time.Second {
				t.Errorf("WaitError %+v, want reason quota and a wait between 2s and 11s", we)
			}
			if took > time.Second {
				t.Errorf("the WaitError took %v; it should come at once", took)
			}
			if refusals, _, _ := rec.counts(); refusals != 0 {
				t.Errorf("server refused %d requests, want 0", refusals)
			}
		})
	}
}
