package main

import (
	"bytes"
	"errors"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// lockedBuffer is a bytes.Buffer a process writes to while the test
// reads it.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// waitFor polls until cond holds, for at most 10s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("gave up waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestChiBinary runs the built command over real HTTP: SIGHUP reloads the
// file (new limits in the next response's headers, counts kept), an
// invalid file is refused and logged while the old limits stay, a field
// that needs a restart is named; an invalid file at start, or -config with
// a flag it replaces, exits with status 2 and the error on stderr.
func TestChiBinary(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("SIGHUP does not exist on Windows")
	}
	if testing.Short() {
		t.Skip("builds and runs the command; skipped in -short")
	}
	dir := t.TempDir()
	bin := filepath.Join(dir, "chi")
	args := []string{"build", "-o", bin}
	if raceEnabled {
		args = append(args, "-race")
	}
	if out, err := exec.Command("go", append(args, ".")...).CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}

	t.Run("reload on SIGHUP", func(t *testing.T) {
		path := writeConfig(t, dir, "ratekit.yaml", "policy: {windows: [{name: minute, length: 1m, limit: 5}]}\n")
		var stderr lockedBuffer
		cmd := exec.Command(bin, "-addr", "127.0.0.1:0", "-config", path)
		cmd.Stderr = &stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			cmd.Process.Signal(os.Interrupt)
			cmd.Wait()
		})
		listening := regexp.MustCompile(`listening on (127\.0\.0\.1:\d+)`)
		waitFor(t, "the server to listen", func() bool { return listening.MatchString(stderr.String()) })
		url := "http://" + listening.FindStringSubmatch(stderr.String())[1] + "/v1/people"
		get := func() (limit, remaining string) {
			t.Helper()
			resp, err := http.Get(url)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			return resp.Header.Get("X-Ratelimit-Limit"), resp.Header.Get("X-Ratelimit-Remaining")
		}
		hup := func(wantLog string) {
			t.Helper()
			before := strings.Count(stderr.String(), wantLog)
			if err := cmd.Process.Signal(syscall.SIGHUP); err != nil {
				t.Fatal(err)
			}
			waitFor(t, "the log to say "+wantLog, func() bool { return strings.Count(stderr.String(), wantLog) > before })
		}
		if l, r := get(); l != "5" || r != "4" {
			t.Fatalf("first request: limit %s remaining %s, want 5 and 4", l, r)
		}
		get()

		writeConfig(t, dir, "ratekit.yaml", "policy: {windows: [{name: minute, length: 1m, limit: 10}]}\n")
		hup("reloaded " + path)
		if l, r := get(); l != "10" || r != "7" {
			t.Errorf("after SIGHUP with 10/min: limit %s remaining %s, want 10 and 7 (counts kept)", l, r)
		}

		writeConfig(t, dir, "ratekit.yaml", "policy: {windows: [{name: minute, length: 1m, limit: 10}]}\nrules: [{route: [/v1/people]}]\n")
		hup("refused")
		if !strings.Contains(stderr.String(), "config: "+path+`:2:10: rules[0]: unknown field "route"; did you mean "routes"?`) {
			t.Errorf("the refusal does not name file, line and field:\n%s", stderr.String())
		}
		if l, r := get(); l != "10" || r != "6" {
			t.Errorf("after SIGHUP with an invalid file: limit %s remaining %s, want the old 10 and 6", l, r)
		}

		writeConfig(t, dir, "ratekit.yaml", "policy: {windows: [{name: minute, length: 1m, limit: 20}]}\nheaders: kinde\n")
		hup("headers changed; it needs a restart")
		if l, r := get(); l != "20" || r != "15" {
			t.Errorf("after SIGHUP with 20/min and another style: limit %s remaining %s, want 20 and 15 in the running Lindris style", l, r)
		}
	})

	exit := func(t *testing.T, args ...string) (code int, stderr string) {
		t.Helper()
		var buf bytes.Buffer
		cmd := exec.Command(bin, args...)
		cmd.Stderr = &buf
		err := cmd.Run()
		var ee *exec.ExitError
		if !errors.As(err, &ee) {
			t.Fatalf("%v: %v, want an exit status", args, err)
		}
		return ee.ExitCode(), buf.String()
	}
	t.Run("an invalid file at start", func(t *testing.T) {
		path := writeConfig(t, dir, "bad.yaml", "policy:\n  windows: [{length: 1m, limit: 60}]\non_store_error: half-open\n")
		code, stderr := exit(t, "-addr", "127.0.0.1:0", "-config", path)
		want := "config: " + path + `:3:17: on_store_error: unknown failure policy "half-open"; want open, closed or local-fallback` + "\n"
		if code != 2 || stderr != want {
			t.Errorf("exit %d, stderr %q; want 2, %q", code, stderr, want)
		}
	})
	t.Run("-config with a flag it replaces", func(t *testing.T) {
		path := writeConfig(t, dir, "good.yaml", "{}\n")
		code, stderr := exit(t, "-addr", "127.0.0.1:0", "-config", path, "-headers", "ietf")
		if want := "chi: -config cannot be combined with -headers (the file's headers says it)\n"; code != 2 || stderr != want {
			t.Errorf("exit %d, stderr %q; want 2, %q", code, stderr, want)
		}
	})
}
