package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ratekit/ratekit/middleware"
)

// lastLine matches the summary exactly: these fields, in this order.
var lastLine = regexp.MustCompile(`^\{"sent":\d+,"ok":\d+,"limited":\d+,"retries":\d+,"failed":\d+,"elapsed_ms":\d+\}$`)

// parse checks that out ends with the summary line and decodes it.
func parse(t *testing.T, out string) summary {
	t.Helper()
	lines := strings.Split(strings.TrimRight(out, "\n"), "\n")
	last := lines[len(lines)-1]
	if !lastLine.MatchString(last) {
		t.Fatalf("last line %q is not the summary object", last)
	}
	var s summary
	if err := json.Unmarshal([]byte(last), &s); err != nil {
		t.Fatal(err)
	}
	return s
}

func TestRunFlags(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want string // in stderr
	}{
		{"no url", nil, "-url is required"},
		{"not http", []string{"-url", "ftp://x/"}, "want an http or https URL"},
		{"no host", []string{"-url", "http:///x"}, "want an http or https URL"},
		{"negative n", []string{"-url", "http://x/", "-n", "-1"}, "-n -1"},
		{"zero c", []string{"-url", "http://x/", "-c", "0"}, "-c 0"},
		{"zero attempts", []string{"-url", "http://x/", "-max-attempts", "0"}, "-max-attempts 0"},
		{"bad key header", []string{"-url", "http://x/", "-key", "k", "-key-header", "X Key"}, "KeyHeader"},
		{"unknown flag", []string{"-url", "http://x/", "-z"}, "flag provided but not defined"},
		{"stray argument", []string{"-url", "http://x/", "extra"}, "unexpected arguments"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			if code := run(tc.args, &stdout, &stderr); code != 2 {
				t.Errorf("run(%q) = %d, want 2", tc.args, code)
			}
			if !strings.Contains(stderr.String(), tc.want) {
				t.Errorf("run(%q) stderr %q, want it to mention %q", tc.args, stderr.String(), tc.want)
			}
			if stdout.Len() != 0 {
				t.Errorf("run(%q) wrote %q to stdout", tc.args, stdout.String())
			}
		})
	}
}

// TestRunUnlimited: against a server without limits the run is immediate
// and every request is ok; -n 0 is an empty, successful run.
func TestRunUnlimited(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") }))
	defer srv.Close()
	for _, tc := range []struct {
		args []string
		want summary
	}{
		{[]string{"-url", srv.URL, "-n", "20", "-c", "4"}, summary{Sent: 20, OK: 20}},
		{[]string{"-url", srv.URL}, summary{Sent: 10, OK: 10}},
		{[]string{"-url", srv.URL, "-n", "0"}, summary{}},
	} {
		var stdout, stderr bytes.Buffer
		code := run(tc.args, &stdout, &stderr)
		got := parse(t, stdout.String())
		got.ElapsedMS = 0
		if code != 0 || got != tc.want {
			t.Errorf("run(%q) = %d, %+v; want 0, %+v (stderr %q)", tc.args, code, got, tc.want, stderr.String())
		}
	}
}

// TestRunFailures: requests that never succeed are counted as failed, and
// the exit status says so. 404 is not retried; an unreachable server is
// an error.
func TestRunFailures(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	var stdout, stderr bytes.Buffer
	code := run([]string{"-url", srv.URL, "-n", "3"}, &stdout, &stderr)
	if got := parse(t, stdout.String()); code != 1 || got.OK != 0 || got.Failed != 3 || got.Retries != 0 {
		t.Errorf("404s: exit %d, %+v; want 1 and 3 failed, no retries", code, got)
	}
	url := srv.URL
	srv.Close()
	stdout.Reset()
	code = run([]string{"-url", url, "-n", "2"}, &stdout, &stderr)
	if got := parse(t, stdout.String()); code != 1 || got.Failed != 2 {
		t.Errorf("closed server: exit %d, %+v; want 1 and 2 failed", code, got)
	}
}

// buildCommand builds this example into a temporary directory.
func buildCommand(t *testing.T) string {
	t.Helper()
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Fatalf("the end-to-end test builds the command and needs go on the PATH: %v", err)
	}
	bin := filepath.Join(t.TempDir(), "client")
	if out, err := exec.Command(goTool, "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// execute runs the built command and returns its summary and exit status.
func execute(t *testing.T, bin string, args ...string) (summary, int, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	code := 0
	var exit *exec.ExitError
	if errors.As(err, &exit) {
		code = exit.ExitCode()
	} else if err != nil {
		t.Fatalf("run %s: %v", bin, err)
	}
	return parse(t, stdout.String()), code, stderr.String()
}

// TestCommandEndToEnd builds the command and runs it against ratekit's
// default limiter (60/min + 2/s) over a real listener: 6 requests, 3 at a
// time, all ok, no 429, in about 2 s (two at once, then two a second),
// once per IP and once with a key, which the server sees and counts in
// its own bucket. Then against a server that always answers 429 with
// Retry-After: 1, with -max-attempts 2: one retry after about a second,
// then failure and exit status 1. Real time: skipped with -short.
func TestCommandEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the command and runs it in real time (about 5 s after the build)")
	}
	bin := buildCommand(t)

	lim, err := middleware.New(middleware.Config{
		KeyValidator: func(_ context.Context, key string) (middleware.Client, bool) {
			return middleware.Client{}, key == "demo-key-1"
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer lim.Close()
	var mu sync.Mutex
	keys := map[string]int{}
	api := lim.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		keys[r.Header.Get("X-API-Key")]++
		mu.Unlock()
		io.WriteString(w, "ok\n")
	}))
	srv := httptest.NewServer(api)
	defer srv.Close()

	for _, args := range [][]string{
		{"-url", srv.URL, "-n", "6", "-c", "3"},
		{"-url", srv.URL, "-n", "6", "-c", "3", "-key", "demo-key-1"},
	} {
		got, code, stderr := execute(t, bin, args...)
		if code != 0 || got.Sent != 6 || got.OK != 6 || got.Limited != 0 || got.Failed != 0 {
			t.Errorf("%q: exit %d, %+v; want 0 and 6 ok, none limited (stderr %q)", args, code, got, stderr)
		}
		if got.ElapsedMS < 2000 || got.ElapsedMS > 4000 {
			t.Errorf("%q: %d ms, want about 2000 (2 at once, then 2 a second)", args, got.ElapsedMS)
		}
	}
	if keys["demo-key-1"] != 6 || keys[""] != 6 {
		t.Errorf("server saw keys %v, want 6 with demo-key-1 and 6 without", keys)
	}

	refuse := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Retry-After", "1")
		w.WriteHeader(http.StatusTooManyRequests)
	}))
	defer refuse.Close()
	got, code, _ := execute(t, bin, "-url", refuse.URL, "-n", "1", "-max-attempts", "2")
	if code != 1 || got.OK != 0 || got.Limited != 2 || got.Retries != 1 || got.Failed != 1 {
		t.Errorf("always 429: exit %d, %+v; want 1 with 2 limited, 1 retry, 1 failed", code, got)
	}
	if got.ElapsedMS < 1000 || got.ElapsedMS > 2000 {
		t.Errorf("always 429, 2 attempts: %d ms, want 1000 to 1100 (Retry-After 1, backoff 1s ± 100ms)", got.ElapsedMS)
	}
}
