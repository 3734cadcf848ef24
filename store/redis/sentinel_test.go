package redis

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/ratekit/ratekit/store"
)

// startSentinel starts one redis-sentinel monitoring primary as "m" with a
// quorum of 1; it is killed in t.Cleanup.
func startSentinel(t *testing.T, primary *server) string {
	t.Helper()
	dir := t.TempDir()
	port := freePort(t)
	conf := filepath.Join(dir, "sentinel.conf")
	body := fmt.Sprintf("port %d\nbind 127.0.0.1\ndir %s\nsentinel monitor m 127.0.0.1 %d 1\nsentinel down-after-milliseconds m 1000\nsentinel failover-timeout m 5000\n",
		port, dir, primary.port)
	if err := os.WriteFile(conf, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("redis-server", conf, "--sentinel")
	cmd.Dir = dir
	if err := cmd.Start(); err != nil {
		t.Fatalf("start sentinel: %v", err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	addr := "127.0.0.1:" + strconv.Itoa(port)
	sc := goredis.NewSentinelClient(&goredis.Options{Addr: addr})
	t.Cleanup(func() { sc.Close() })
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		if r, err := sc.Replicas(context.Background(), "m").Result(); err == nil && len(r) > 0 {
			return addr
		}
		if time.Now().After(deadline) {
			t.Fatal("sentinel did not discover the replica within 10s")
		}
	}
}

// TestR39SentinelFailover: SENTINEL FAILOVER during traffic. Nothing
// panics, errors (classified readonly, connection or timeout) occur only
// while the failover runs, and afterwards limits are exact again on the
// new primary.
func TestR39SentinelFailover(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: starts a primary, a replica and a sentinel, and waits for a failover")
	}
	primary := startServer(t)
	replica := startServer(t, "--replicaof", "127.0.0.1", strconv.Itoa(primary.port))
	sentinel := startSentinel(t, primary)

	fc := goredis.NewFailoverClient(&goredis.FailoverOptions{MasterName: "m", SentinelAddrs: []string{sentinel},
		ContextTimeoutEnabled: true, MaxRetries: -1})
	t.Cleanup(func() { fc.Close() })
	s := newStore(t, fc, Config{Timeout: 200 * time.Millisecond})

	stop := make(chan struct{})
	var wg sync.WaitGroup
	var ops, fails atomic.Int64
	var lastErrAt atomic.Int64
	kinds := sync.Map{}
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				_, err := s.Take(context.Background(), store.Request{Key: testKey(w*1_000_000 + i), Policy: &relaxed, Cost: 1})
				ops.Add(1)
				if err != nil {
					fails.Add(1)
					lastErrAt.Store(time.Now().UnixNano())
					kinds.Store(Kind(err), true)
					time.Sleep(5 * time.Millisecond)
				}
			}
		}()
	}
	time.Sleep(300 * time.Millisecond)
	sc := goredis.NewSentinelClient(&goredis.Options{Addr: sentinel})
	t.Cleanup(func() { sc.Close() })
	if err := sc.Failover(context.Background(), "m").Err(); err != nil {
		t.Fatalf("SENTINEL FAILOVER: %v", err)
	}
	var switched time.Time
	for deadline := time.Now().Add(15 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		addr, err := sc.GetMasterAddrByName(context.Background(), "m").Result()
		if err == nil && len(addr) == 2 && addr[1] == strconv.Itoa(replica.port) {
			switched = time.Now()
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("failover did not complete within 15s")
		}
	}
	// Traffic continues past the switch so that errors after it would show.
	time.Sleep(2 * time.Second)
	close(stop)
	wg.Wait()
	var seen []string
	kinds.Range(func(k, _ any) bool { seen = append(seen, k.(string)); return true })
	t.Logf("%d decisions, %d failed (kinds %v)", ops.Load(), fails.Load(), seen)
	if last := lastErrAt.Load(); last != 0 && time.Unix(0, last).After(switched.Add(time.Second)) {
		t.Errorf("errors continued %v after the switch", time.Unix(0, last).Sub(switched))
	}
	kinds.Range(func(k, _ any) bool {
		switch k.(string) {
		case KindReadOnly, KindConnection, KindTimeout:
		default:
			t.Errorf("failover error of kind %q", k)
		}
		return true
	})

	// Exact limits on the new primary (a patient store: this checks
	// exactness, not latency).
	patient := newStore(t, fc, Config{Timeout: 10 * time.Second})
	a, r, f, err := burst([]*Store{patient}, testKey(-1), &relaxed, 200)
	if a != 60 || r != 140 || f != 0 {
		t.Errorf("after failover, 200 Takes: admitted %d, rejected %d, failed %d (%v); want 60, 140, 0", a, r, f, err)
	}
}
