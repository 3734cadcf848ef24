package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"testing"
)

// TestBasicOverHTTP drives the example over a real loopback connection, as
// the Lindris seed documents: two requests pass, the third in the same second
// is 429 with Retry-After and the JSON envelope, and a valid key has its own
// bucket.
func TestBasicOverHTTP(t *testing.T) {
	srv := httptest.NewServer(newHandler([]string{"demo-key-1"}))
	defer srv.Close()
	get := func(key string) *http.Response {
		t.Helper()
		req, _ := http.NewRequest("GET", srv.URL+"/v1/people", nil)
		if key != "" {
			req.Header.Set("Authorization", "Bearer "+key)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { resp.Body.Close() })
		return resp
	}
	var codes []int
	var last *http.Response
	for range 3 {
		last = get("")
		codes = append(codes, last.StatusCode)
	}
	if codes[0] != 200 || codes[1] != 200 || codes[2] != 429 {
		t.Fatalf("statuses %v, want 200 200 429", codes)
	}
	if last.Header.Get("Retry-After") != "1" || last.Header.Get("X-RateLimit-Limited-By") != "second" {
		t.Errorf("429 headers: %v", last.Header)
	}
	var body struct {
		Message    string `json:"message"`
		StatusCode int    `json:"status_code"`
		RetryAfter int    `json:"retry_after"`
	}
	b, _ := io.ReadAll(last.Body)
	if err := json.Unmarshal(b, &body); err != nil || body.StatusCode != 429 || body.RetryAfter != 1 {
		t.Errorf("429 body %s: %+v %v", b, body, err)
	}
	if r := get("demo-key-1"); r.StatusCode != 200 || r.Header.Get("X-RateLimit-Remaining") != "59" {
		t.Errorf("valid key: %d remaining %s, want 200 and 59", r.StatusCode, r.Header.Get("X-RateLimit-Remaining"))
	}
	if r := get("not-a-key"); r.StatusCode != 429 {
		t.Errorf("unknown key counted against the IP bucket should be 429, got %d", r.StatusCode)
	}
}

// TestLoadTestFlags checks what the load-test flags promise: -trust-proxy
// makes X-Forwarded-For from the trusted peer name the client, so each
// forwarded address has its own bucket; -limiter=false never answers 429;
// /debug/runtime reports goroutines and the live heap.
func TestLoadTestFlags(t *testing.T) {
	status := func(t *testing.T, h http.Handler, xff string) int {
		t.Helper()
		srv := httptest.NewServer(h)
		defer srv.Close()
		req, _ := http.NewRequest("GET", srv.URL+"/v1/people", nil)
		if xff != "" {
			req.Header.Set("X-Forwarded-For", xff)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	t.Run("trust-proxy", func(t *testing.T) {
		h := newHandlerWith(options{trust: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}})
		for i := range 5 {
			xff := fmt.Sprintf("10.0.0.%d", i)
			for range 2 {
				if got := status(t, h, xff); got != 200 {
					t.Fatalf("X-Forwarded-For %s: status %d, want 200 (own bucket)", xff, got)
				}
			}
			if got := status(t, h, xff); got != 429 {
				t.Fatalf("X-Forwarded-For %s third request: status %d, want 429", xff, got)
			}
		}
	})
	t.Run("untrusted", func(t *testing.T) {
		h := newHandler(nil)
		var codes []int
		for i := range 3 {
			codes = append(codes, status(t, h, fmt.Sprintf("10.0.0.%d", i)))
		}
		if codes[2] != 429 {
			t.Fatalf("statuses %v with rotating X-Forwarded-For and no trusted proxy, want the third 429", codes)
		}
	})
	t.Run("limiter=false", func(t *testing.T) {
		h := newHandlerWith(options{noLimiter: true})
		for range 5 {
			if got := status(t, h, ""); got != 200 {
				t.Fatalf("status %d without the limiter, want 200", got)
			}
		}
	})
	t.Run("debug/runtime", func(t *testing.T) {
		rec := httptest.NewRecorder()
		runtimeStats(rec, httptest.NewRequest("GET", "/debug/runtime?gc=1", nil))
		var got map[string]uint64
		if err := json.Unmarshal(rec.Body.Bytes(), &got); err != nil {
			t.Fatalf("body %s: %v", rec.Body.Bytes(), err)
		}
		if got["goroutines"] == 0 || got["heap_live_bytes"] == 0 {
			t.Errorf("runtimeStats = %v, want goroutines and heap_live_bytes > 0", got)
		}
	})
}
