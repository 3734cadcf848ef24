package main

import (
	"context"
	"crypto/rand"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"strconv"
	"sync"
	"testing"
	"time"
)

// sharedRedis returns the URL of a redis-server for the test: the one on
// 127.0.0.1:6379 when it answers (the test touches only keys under a fresh
// hash key), else a private one started on a free port from redis-server on
// the PATH. Without either the test is skipped, or fails under CI.
func sharedRedis(t *testing.T) string {
	t.Helper()
	url := "redis://127.0.0.1:6379/0"
	if pings(t, url) == nil {
		return url
	}
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("CI needs redis-server on the PATH: %v", err)
		}
		t.Skipf("SKIPPING: nothing on 127.0.0.1:6379 and no redis-server on the PATH (%v)", err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	cmd := exec.Command(bin, "--port", strconv.Itoa(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", t.TempDir())
	if err := cmd.Start(); err != nil {
		t.Fatalf("start redis-server: %v", err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	url = fmt.Sprintf("redis://127.0.0.1:%d/0", port)
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if err = pings(t, url); err == nil {
			return url
		}
	}
	t.Fatalf("redis-server on port %d did not answer within 10s: %v", port, err)
	return ""
}

// pings reports whether a redis-server answers PING at url.
func pings(t *testing.T, url string) error {
	t.Helper()
	c, err := newClient(url)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	return c.Ping(ctx).Err()
}

// TestThreeInstancesShareLimits: three instances of the example on one Redis
// answer 60 concurrent requests from one client with exactly 2 admissions.
func TestThreeInstancesShareLimits(t *testing.T) {
	url := sharedRedis(t)
	hashKey := []byte(rand.Text()) // fresh buckets for this run; other data untouched
	var servers []*httptest.Server
	for range 3 {
		c, _ := newClient(url)
		t.Cleanup(func() { c.Close() })
		// A generous deadline: this test is about sharing, not about a
		// loaded CI machine's first dial.
		h, closer, err := newHandler(c, nil, hashKey, 3, 2*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(closer)
		srv := httptest.NewServer(h)
		t.Cleanup(srv.Close)
		servers = append(servers, srv)
	}
	codes := make(chan int, 60)
	var wg sync.WaitGroup
	for i := range 60 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			resp, err := http.Get(servers[i%3].URL + "/v1/people")
			if err != nil {
				t.Error(err)
				return
			}
			resp.Body.Close()
			if resp.Header.Get("X-RateLimit-Degraded") != "" {
				t.Error("answer marked degraded with Redis up")
			}
			codes <- resp.StatusCode
		}()
	}
	wg.Wait()
	close(codes)
	count := map[int]int{}
	for c := range codes {
		count[c]++
	}
	if count[200] != 2 || count[429] != 58 {
		t.Errorf("60 concurrent requests over 3 instances: %v, want 2×200 and 58×429", count)
	}
}

// TestRedisUnreachableKeepsAnswering: with nothing listening where Redis
// should be, the example answers from its local fallback, quickly.
func TestRedisUnreachableKeepsAnswering(t *testing.T) {
	c, _ := newClient("redis://127.0.0.1:1/0")
	defer c.Close()
	h, closer, err := newHandler(c, []string{"k1"}, []byte("x"), 1, 50*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	defer closer()
	srv := httptest.NewServer(h)
	defer srv.Close()
	var codes []int
	for range 3 {
		start := time.Now()
		resp, err := http.Get(srv.URL + "/v1/people")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if took := time.Since(start); took > 300*time.Millisecond {
			t.Errorf("request took %v with Redis down, want under 300ms", took)
		}
		if resp.Header.Get("X-RateLimit-Degraded") != "true" {
			t.Errorf("answer not marked degraded")
		}
		codes = append(codes, resp.StatusCode)
	}
	if fmt.Sprint(codes) != "[200 200 429]" {
		t.Errorf("statuses %v with the local fallback, want [200 200 429]", codes)
	}
}
