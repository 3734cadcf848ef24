package main

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
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
