package main

import (
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"os"
	"testing"
	"time"
)

func TestClientAddr(t *testing.T) {
	tests := []struct {
		base netip.Addr
		n    int
		want string
	}{
		{netip.AddrFrom4([4]byte{10}), 0, "10.0.0.1"},
		{netip.AddrFrom4([4]byte{10}), 255, "10.0.1.0"},
		{netip.AddrFrom4([4]byte{10}), 131071, "10.2.0.0"},
		{netip.AddrFrom4([4]byte{127}), 0, "127.1.0.1"},
		{netip.AddrFrom4([4]byte{127}), 99999, "127.2.134.160"},
	}
	for _, tc := range tests {
		if got := clientAddr(tc.base, tc.n); got.String() != tc.want {
			t.Errorf("clientAddr(%v, %d) = %v, want %s", tc.base, tc.n, got, tc.want)
		}
	}
}

func TestPct(t *testing.T) {
	var d []time.Duration
	for i := 1; i <= 1000; i++ {
		d = append(d, time.Duration(i))
	}
	for _, tc := range []struct {
		q    float64
		want time.Duration
	}{{0.5, 500}, {0.99, 990}, {0.999, 999}, {1, 1000}, {0, 1}} {
		if got := pct(d, tc.q); got != tc.want {
			t.Errorf("pct(1..1000, %v) = %d, want %d", tc.q, got, tc.want)
		}
	}
}

// TestRun sends to a local server from distinct source addresses and by
// X-Forwarded-For, and checks that every request was answered and seen
// with the identity it was meant to carry.
func TestRun(t *testing.T) {
	seen := make(chan string, 1000)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		host, _, _ := net.SplitHostPort(r.RemoteAddr)
		seen <- host + " " + r.Header.Get("X-Forwarded-For")
		if r.Header.Get("X-Forwarded-For") == "10.0.0.2" {
			w.WriteHeader(http.StatusTooManyRequests)
		}
		fmt.Fprintln(w, "ok")
	}))
	defer srv.Close()
	u, _ := url.Parse(srv.URL)
	tgt := target{name: "t", addr: u.Host, host: u.Host, path: "/"}

	res := run(tgt, config{rate: 200, duration: 200 * time.Millisecond, conns: 4, clients: 4, identity: "xff", timeout: time.Second}, os.Getpid())
	if res.errors != 0 || len(res.lat) != res.due || res.due != 40 {
		t.Fatalf("xff run: %d answered, %d due, %d errors (%v); want 40, 40, 0", len(res.lat), res.due, res.errors, res.firstErr)
	}
	if res.codes[429] != 10 || res.codes[200] != 30 {
		t.Errorf("xff run codes %v, want 30 × 200 and 10 × 429 (one client in four)", res.codes)
	}
	clients := map[string]bool{}
	for len(seen) > 0 {
		clients[<-seen] = true
	}
	if len(clients) != 4 {
		t.Errorf("xff run: %d distinct (peer, X-Forwarded-For), want 4: %v", len(clients), clients)
	}

	res = run(tgt, config{rate: 200, duration: 200 * time.Millisecond, conns: 2, clients: 5, identity: "source", perConn: 2, timeout: time.Second}, 0)
	if res.errors != 0 || len(res.lat) != 40 {
		t.Fatalf("source run: %d answered, %d errors (%v); want 40, 0", len(res.lat), res.errors, res.firstErr)
	}
	peers := map[string]bool{}
	for len(seen) > 0 {
		peers[<-seen] = true
	}
	if len(peers) != 5 || !peers["127.1.0.1 "] {
		t.Errorf("source run: peers %v, want 127.1.0.1 to 127.1.0.5", peers)
	}
}

func TestFit(t *testing.T) {
	var xs []sample
	for i := range 10 {
		var x sample
		x.answered = int64(i) * 1000
		x.stats.HeapLive = 5000 + uint64(i)*3000 // 3 bytes per request
		xs = append(xs, x)
	}
	if got := fit(xs); got < 2.999 || got > 3.001 {
		t.Errorf("fit(3 bytes per request) = %v, want 3", got)
	}
}
