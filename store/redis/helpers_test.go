package redis

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	goredis "github.com/redis/go-redis/v9"

	"github.com/ratekit/ratekit/store"
)

// clientOptions returns the go-redis options the store requires: context
// deadlines honoured, no retries.
func clientOptions(addr string) *goredis.Options {
	return &goredis.Options{Addr: addr, ContextTimeoutEnabled: true, MaxRetries: -1}
}

// newClient returns a client for addr, closed in t.Cleanup.
func newClient(t testing.TB, addr string) *goredis.Client {
	t.Helper()
	c := goredis.NewClient(clientOptions(addr))
	t.Cleanup(func() { c.Close() })
	return c
}

// newMini starts a miniredis and returns it with a client for it.
func newMini(t *testing.T) (*miniredis.Miniredis, *goredis.Client) {
	t.Helper()
	m := miniredis.RunT(t)
	return m, newClient(t, m.Addr())
}

// skipOrFail skips with a loud message, or fails under CI where every
// dependency must be present.
func skipOrFail(t testing.TB, format string, args ...any) {
	t.Helper()
	msg := fmt.Sprintf(format, args...)
	if os.Getenv("CI") != "" {
		t.Fatalf("%s (CI is set, so this is a failure)", msg)
	}
	t.Skipf("SKIPPED, NOT PASSED: %s", msg)
}

// realClient returns a client for a real redis-server and its address:
// REDIS_ADDR when set (it must answer), else a server already listening on
// 127.0.0.1:6379, else a private one started for this test. A shared server
// is shared with other tests: use testPrefix, delete only your own keys,
// never flush.
func realClient(t testing.TB) (*goredis.Client, string) {
	t.Helper()
	addr, explicit := os.LookupEnv("REDIS_ADDR")
	if !explicit {
		addr = "127.0.0.1:6379"
	}
	c := newClient(t, addr)
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	err := c.Ping(ctx).Err()
	switch {
	case err == nil:
		return c, addr
	case explicit:
		t.Fatalf("REDIS_ADDR=%s does not answer: %v", addr, err)
	}
	srv := startServer(t)
	return newClient(t, srv.Addr), srv.Addr
}

// testPrefix returns a random key prefix and deletes every key under it
// when the test ends.
func testPrefix(t testing.TB, c *goredis.Client) string {
	t.Helper()
	var b [6]byte
	rand.Read(b[:])
	prefix := "rktest-" + hex.EncodeToString(b[:])
	t.Cleanup(func() {
		ctx := context.Background()
		for _, k := range scanKeys(t, c, prefix+":*") {
			c.Del(ctx, k)
		}
	})
	return prefix
}

// scanKeys returns every key matching pattern.
func scanKeys(t testing.TB, c *goredis.Client, pattern string) []string {
	t.Helper()
	var keys []string
	ctx := context.Background()
	var cursor uint64
	for {
		ks, next, err := c.Scan(ctx, cursor, pattern, 10000).Result()
		if err != nil {
			t.Fatalf("SCAN %s: %v", pattern, err)
		}
		keys = append(keys, ks...)
		if cursor = next; cursor == 0 {
			return keys
		}
	}
}

// newStore returns a store on c, closed in t.Cleanup.
func newStore(t testing.TB, c Scripter, cfg Config) *Store {
	t.Helper()
	s, err := New(c, cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// testKey returns a deterministic store key for index i.
func testKey(i int) store.Key {
	var k store.Key
	copy(k[:], fmt.Sprintf("key-%011d", i))
	return k
}

// server is a redis-server started by a test on a free loopback port.
type server struct {
	t    testing.TB
	Addr string
	port int
	dir  string
	args []string
	cmd  *exec.Cmd
	mu   sync.Mutex
}

// startServer starts a private redis-server for destructive tests (kill,
// restart, SCRIPT FLUSH, DEBUG SLEEP, maxmemory). It is killed in
// t.Cleanup. Without redis-server on PATH the test is skipped loudly, or
// fails when CI is set.
func startServer(t testing.TB, args ...string) *server {
	t.Helper()
	if _, err := exec.LookPath("redis-server"); err != nil {
		skipOrFail(t, "redis-server not on PATH: %v", err)
	}
	s := &server{t: t, port: freePort(t), dir: t.TempDir(), args: args}
	s.Addr = net.JoinHostPort("127.0.0.1", strconv.Itoa(s.port))
	s.start()
	t.Cleanup(s.Kill)
	return s
}

// start runs redis-server and waits until it answers PING.
func (s *server) start() {
	s.t.Helper()
	args := append([]string{"--port", strconv.Itoa(s.port), "--bind", "127.0.0.1", "--save", "",
		"--appendonly", "no", "--dir", s.dir, "--enable-debug-command", "local"}, s.args...)
	cmd := exec.Command("redis-server", args...)
	cmd.Dir = s.dir
	logf, err := os.Create(filepath.Join(s.dir, fmt.Sprintf("redis-%d.log", time.Now().UnixNano())))
	if err != nil {
		s.t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		s.t.Fatalf("start redis-server: %v", err)
	}
	s.mu.Lock()
	s.cmd = cmd
	s.mu.Unlock()
	go func() { cmd.Wait(); logf.Close() }()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if conn, err := net.DialTimeout("tcp", s.Addr, 100*time.Millisecond); err == nil {
			fmt.Fprintf(conn, "PING\r\n")
			conn.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
			line, _ := bufio.NewReader(conn).ReadString('\n')
			conn.Close()
			if strings.HasPrefix(line, "+PONG") {
				return
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	s.t.Fatalf("redis-server on %s did not answer PING within 10s", s.Addr)
}

// Kill sends SIGKILL and waits until the port is free.
func (s *server) Kill() {
	s.mu.Lock()
	cmd := s.cmd
	s.cmd = nil
	s.mu.Unlock()
	if cmd == nil || cmd.Process == nil {
		return
	}
	cmd.Process.Kill()
	for range 200 {
		conn, err := net.DialTimeout("tcp", s.Addr, 50*time.Millisecond)
		if err != nil {
			return
		}
		conn.Close()
		time.Sleep(10 * time.Millisecond)
	}
}

// Restart kills the server and starts a fresh one on the same port,
// without persistence: all data and the script cache are gone.
func (s *server) Restart() {
	s.t.Helper()
	s.Kill()
	s.start()
}

// freePort returns a loopback TCP port nobody listens on right now.
func freePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}
