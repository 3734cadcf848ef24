package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

func start(t *testing.T, o options) *httptest.Server {
	t.Helper()
	if o.headers == "" {
		o.headers = "lindris"
	}
	if o.envelope == "" {
		o.envelope = "lindris"
	}
	s, err := newServer(o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.close)
	return startHandler(t, s)
}

// startHandler serves h until the test ends.
func startHandler(t *testing.T, h http.Handler) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv
}

func call(t *testing.T, srv *httptest.Server, method, path string, hdr ...string) (*http.Response, string) {
	t.Helper()
	req, _ := http.NewRequest(method, srv.URL+path, nil)
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

// scrape returns every sample of /metrics as "name{labels}" → value.
func scrape(t *testing.T, srv *httptest.Server) map[string]float64 {
	t.Helper()
	_, body := call(t, srv, "GET", "/metrics")
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(strings.NewReader(body))
	if err != nil {
		t.Fatalf("parse /metrics: %v", err)
	}
	out := map[string]float64{}
	for name, f := range families {
		for _, m := range f.GetMetric() {
			labels := model.LabelSet{}
			for _, l := range m.GetLabel() {
				labels[model.LabelName(l.GetName())] = model.LabelValue(l.GetValue())
			}
			v := m.GetCounter().GetValue() + m.GetGauge().GetValue() + float64(m.GetHistogram().GetSampleCount())
			out[name+labels.String()] = v
		}
	}
	return out
}

// TestChiEndToEnd drives the example over real HTTP: the POST override, the
// exempt health check, and /metrics agreeing with what was served.
func TestChiEndToEnd(t *testing.T) {
	srv := start(t, options{keys: []string{"demo-key-1"}, hashKey: "h"})
	limited := 0
	for range 5 {
		resp, _ := call(t, srv, "GET", "/v1/people")
		if resp.StatusCode == 429 {
			limited++
		}
	}
	if limited != 3 {
		t.Fatalf("5 GETs in a burst: %d limited, want 3", limited)
	}
	// POST has its own, stricter bucket: 10/min + 1/s.
	resp, _ := call(t, srv, "POST", "/v1/people", "X-API-Key", "demo-key-1")
	if resp.StatusCode != 201 || resp.Header.Get("X-RateLimit-Limit") != "10" || resp.Header.Get("X-RateLimit-Limit-Second") != "1" {
		t.Fatalf("first POST: %d limit %s/%s", resp.StatusCode, resp.Header.Get("X-RateLimit-Limit"), resp.Header.Get("X-RateLimit-Limit-Second"))
	}
	if resp, _ := call(t, srv, "POST", "/v1/people", "X-API-Key", "demo-key-1"); resp.StatusCode != 429 {
		t.Errorf("second POST in the same second: %d, want 429", resp.StatusCode)
	}
	if resp, _ := call(t, srv, "GET", "/v1/people", "X-API-Key", "demo-key-1"); resp.StatusCode != 200 {
		t.Errorf("GET with the key after its POSTs: %d, want 200", resp.StatusCode)
	}
	for range 5 {
		if resp, _ := call(t, srv, "GET", "/healthz"); resp.StatusCode != 200 || resp.Header.Get("X-RateLimit-Limit") != "" {
			t.Fatalf("/healthz: %d, headers %v", resp.StatusCode, resp.Header)
		}
	}
	m := scrape(t, srv)
	for series, want := range map[string]float64{
		`ratekit_requests_total{method="GET", outcome="limited", route="/v1/people"}`:  3,
		`ratekit_requests_total{method="GET", outcome="allowed", route="/v1/people"}`:  3,
		`ratekit_requests_total{method="POST", outcome="limited", route="/v1/people"}`: 1,
		`ratekit_requests_total{method="GET", outcome="exempt", route="/healthz"}`:     5,
		`ratekit_limited_total{route="/v1/people", window="second"}`:                   4,
	} {
		if m[series] != want {
			t.Errorf("%s = %v, want %v", series, m[series], want)
		}
	}
	for series := range m {
		if strings.Contains(series, "/metrics") {
			t.Errorf("/metrics itself is rate limited: %s", series)
		}
	}
}

// TestChiStylesAndEnvelopes: the flags select the header style and body.
func TestChiStylesAndEnvelopes(t *testing.T) {
	for _, tc := range []struct{ style, envelope, header, bodyField string }{
		{"lindris", "lindris", "X-RateLimit-Limited-By", "status_code"},
		{"scalekit", "authmatech", "X-RateLimit-Reset", "success"},
		{"kinde", "problem", "RateLimit-Reset", "violated-policies"},
		{"ietf", "lindris", "RateLimit-Policy", "retry_after"},
	} {
		t.Run(tc.style+"/"+tc.envelope, func(t *testing.T) {
			srv := start(t, options{hashKey: "h", headers: tc.style, envelope: tc.envelope})
			var resp *http.Response
			var body string
			for range 3 {
				resp, body = call(t, srv, "GET", "/v1/people")
			}
			if resp.StatusCode != 429 || resp.Header.Get(tc.header) == "" || resp.Header.Get("Retry-After") == "" {
				t.Fatalf("third GET: %d, %s=%q, headers %v", resp.StatusCode, tc.header, resp.Header.Get(tc.header), resp.Header)
			}
			var fields map[string]any
			if err := json.Unmarshal([]byte(body), &fields); err != nil || fields[tc.bodyField] == nil {
				t.Errorf("429 body %s: no %q (%v)", body, tc.bodyField, err)
			}
		})
	}
	if _, err := newServer(options{headers: "fancy", envelope: "lindris"}); err == nil {
		t.Error("an unknown -headers value was accepted")
	}
}

// TestR23R29MetricsHygiene: traffic from 10,000 distinct keys and addresses
// adds no series to /metrics, and no key or address appears in it, in any
// response header or body.
func TestR23R29MetricsHygiene(t *testing.T) {
	const secret = "sk_live_Zq9XyW8vU7tS6rR5"
	h, err := newServer(options{keys: []string{secret}, hashKey: "h", headers: "ietf", envelope: "problem"})
	if err != nil {
		t.Fatal(err)
	}
	defer h.close()
	srv := httptest.NewServer(h)
	defer srv.Close()
	do := func(peer, key string) *httptest.ResponseRecorder {
		r := httptest.NewRequest("GET", "/v1/people", nil)
		r.RemoteAddr = peer
		if key != "" {
			r.Header.Set("X-API-Key", key)
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		return w
	}
	for i := range 10 {
		do(fmt.Sprintf("192.0.2.%d:1", i), "")
	}
	do("192.0.2.250:1", secret)
	do("192.0.2.250:1", secret)
	do("192.0.2.250:1", secret) // a 429 for the valid key
	baseline := len(scrape(t, srv))
	for i := range 10_000 {
		w := do(fmt.Sprintf("10.%d.%d.%d:1", i>>16&255, i>>8&255, i&255), fmt.Sprintf("key-%d", i))
		for k, vs := range w.Header() {
			if strings.Contains(k+strings.Join(vs, ","), fmt.Sprintf("key-%d", i)) {
				t.Fatalf("response header %s carries the client's key", k)
			}
		}
	}
	for range 3 {
		w := do("192.0.2.251:1", secret)
		if strings.Contains(w.Body.String(), secret) || strings.Contains(fmt.Sprint(w.Header()), secret) {
			t.Fatalf("the API key appears in a response: %v %s", w.Header(), w.Body)
		}
	}
	m := scrape(t, srv)
	if len(m) != baseline {
		t.Errorf("/metrics series: %d after 10,000 distinct clients, baseline %d", len(m), baseline)
	}
	_, text := call(t, srv, "GET", "/metrics")
	for _, leak := range []string{secret, "key-9999", "10.0.39.15", "192.0.2.250"} {
		if strings.Contains(text, leak) {
			t.Errorf("/metrics contains %q", leak)
		}
	}
}

// TestChiKeyHeaders: with -key-headers X-API-Key,X-Client-ID, a key from
// -keys in X-Client-ID counts against that key's own bucket, an unknown
// value against the client address; the default reads X-API-Key and
// Bearer, not X-Client-ID.
func TestChiKeyHeaders(t *testing.T) {
	srv := start(t, options{keys: []string{"demo-key-1"}, hashKey: "h", keyHeaders: []string{"X-API-Key", "X-Client-ID"}})
	for range 2 { // the address's 2/s
		call(t, srv, "GET", "/v1/people")
	}
	for _, tc := range []struct {
		name string
		hdr  []string
		code int
	}{
		{"known X-Client-ID: its own bucket", []string{"X-Client-ID", "demo-key-1"}, 200},
		{"unknown X-Client-ID: the address", []string{"X-Client-ID", "demo-key-9"}, 429},
		{"Bearer is not listed: the address", []string{"Authorization", "Bearer demo-key-1"}, 429},
		{"X-API-Key still read: the key's bucket", []string{"X-API-Key", "demo-key-1"}, 200},
	} {
		if resp, _ := call(t, srv, "GET", "/v1/people", tc.hdr...); resp.StatusCode != tc.code {
			t.Errorf("%s: %d, want %d", tc.name, resp.StatusCode, tc.code)
		}
	}
	def := start(t, options{keys: []string{"demo-key-1"}, hashKey: "h"})
	for range 2 {
		call(t, def, "GET", "/v1/people")
	}
	if resp, _ := call(t, def, "GET", "/v1/people", "X-Client-ID", "demo-key-1"); resp.StatusCode != 429 {
		t.Errorf("default headers, X-Client-ID: %d, want 429 (not read: the address)", resp.StatusCode)
	}
}
