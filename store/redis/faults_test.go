package redis

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"regexp"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/ratekit/ratekit/store"
	"github.com/ratekit/ratekit/window"
)

// relaxed is catalogue test 4's policy: 60 per minute, the second window
// opened to 1000/s so that only the minute limit binds.
var relaxed = window.Policy{Windows: []window.Window{{Length: time.Minute, Limit: 60}, {Length: time.Second, Limit: 1000}}}

// burst fires n concurrent Takes for key spread round-robin over stores
// and returns how many were admitted, rejected and failed.
func burst(stores []*Store, key store.Key, p *window.Policy, n int) (admitted, rejected, failed int64, firstErr error) {
	var wg sync.WaitGroup
	var a, r, f atomic.Int64
	var once sync.Once
	start := make(chan struct{})
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			d, err := stores[i%len(stores)].Take(context.Background(), store.Request{Key: key, Policy: p, Cost: 1})
			switch {
			case err != nil:
				f.Add(1)
				once.Do(func() { firstErr = err })
			case d.Allowed:
				a.Add(1)
			default:
				r.Add(1)
			}
		}()
	}
	close(start)
	wg.Wait()
	return a.Load(), r.Load(), f.Load(), firstErr
}

// instances returns n stores on the server at addr, each with its own
// go-redis client, as n application instances would have.
func instances(t *testing.T, addr string, n int, cfg Config) []*Store {
	t.Helper()
	stores := make([]*Store, n)
	for i := range stores {
		stores[i] = newStore(t, newClient(t, addr), cfg)
	}
	return stores
}

// TestR04ThreeInstancesOneKey: 3 instances with their own clients, 1,000
// concurrent Takes on one key, 60/min + 1000/s: exactly 60 admitted.
func TestR04ThreeInstancesOneKey(t *testing.T) {
	c, addr := realClient(t)
	prefix := testPrefix(t, c)
	// The timeout is generous: 1,000 requests queue for 3 pools of
	// connections, and this test is about exactness, not latency.
	stores := instances(t, addr, 3, Config{Prefix: prefix, Timeout: 10 * time.Second})
	a, r, f, err := burst(stores, testKey(1), &relaxed, 1000)
	if a != 60 || r != 940 || f != 0 {
		t.Errorf("1,000 Takes: admitted %d, rejected %d, failed %d (first error %v); want 60, 940, 0", a, r, f, err)
	}
}

// TestR12ServerClockDecides: time comes from Redis (Now nil), so three
// instances whatever their own clocks agree: 1,000 concurrent Takes with
// the default 60/min + 2/s admit exactly 2. Application clock skew cannot
// reach the script because the store never sends its own time.
func TestR12ServerClockDecides(t *testing.T) {
	c, addr := realClient(t)
	prefix := testPrefix(t, c)
	stores := instances(t, addr, 3, Config{Prefix: prefix, Timeout: 10 * time.Second})
	p := window.Default()
	start := time.Now()
	a, r, f, err := burst(stores, testKey(1), &p, 1000)
	if elapsed := time.Since(start); elapsed >= time.Second {
		t.Skipf("burst took %v, over the 1s window: the machine is too loaded to judge", elapsed)
	}
	if a != 2 || r != 998 || f != 0 {
		t.Errorf("1,000 Takes: admitted %d, rejected %d, failed %d (first error %v); want 2, 998, 0", a, r, f, err)
	}
}

// TestR13ServerClockStepsBack: miniredis's clock (read by the script with
// TIME) steps back 30 s mid-window. No Lua error, and admissions stay
// within the limits: entries keep their ages, so the step frees nothing.
func TestR13ServerClockStepsBack(t *testing.T) {
	m, c := newMini(t)
	s := newStore(t, c, Config{Timeout: 5 * time.Second})
	p := window.Default()
	k := testKey(1)
	now := time.UnixMilli(1_763_800_000_000)
	steps := []struct {
		name  string
		at    time.Time
		tries int
		admit int
	}{
		{"t0", now, 5, 2},
		{"t0minus30s", now.Add(-30 * time.Second), 5, 0},
		{"t0minus30s+500ms", now.Add(-30*time.Second + 500*time.Millisecond), 5, 0},
		// The t0 entries leave once the clock reads more than a second after
		// them (see window.Window).
		{"t0minus30s+1s", now.Add(-30*time.Second + time.Second), 5, 0},
		{"t0minus30s+1001ms", now.Add(-30*time.Second + 1001*time.Millisecond), 5, 2},
	}
	for _, st := range steps {
		m.SetTime(st.at)
		admitted := 0
		for range st.tries {
			d, err := s.Take(context.Background(), store.Request{Key: k, Policy: &p, Cost: 1})
			if err != nil {
				t.Fatalf("%s: Take error: %v", st.name, err)
			}
			if d.Allowed {
				admitted++
			} else if d.RetryAfter <= 0 {
				t.Errorf("%s: rejected with RetryAfter %v", st.name, d.RetryAfter)
			}
		}
		if admitted != st.admit {
			t.Errorf("%s: admitted %d of %d, want %d", st.name, admitted, st.tries, st.admit)
		}
	}
}

// hostileIdentities are catalogue test 22's identities. The middleware
// turns an identity into a store.Key with a keyed hash; the test does the
// same with SHA-256, so what reaches the store is 16 opaque bytes.
func hostileIdentities() [][]byte {
	ids := [][]byte{
		make([]byte, 8<<10), make([]byte, 512<<10), []byte("{tag}"), []byte("a}{b"),
		[]byte(strings.Repeat("{", 300)), {0xff, 0xfe, 0x80}, []byte("nul\x00byte"), []byte("%00"),
		[]byte("*"), []byte("' OR 1=1 --"), []byte("Привет"), []byte(""),
	}
	for i := range 1000 {
		b := sha256.Sum256(fmt.Appendf(nil, "random-%d", i))
		ids = append(ids, b[:i%32+1])
	}
	return ids
}

func keyOf(id []byte) store.Key {
	var k store.Key
	h := sha256.Sum256(id)
	copy(k[:], h[:])
	return k
}

// checkKeyspace asserts that every key under prefix matches the layout and
// has a TTL, and returns how many there are.
func checkKeyspace(t *testing.T, c *goredis.Client, prefix string) int {
	t.Helper()
	re := regexp.MustCompile(`^` + regexp.QuoteMeta(prefix) + `:\{[0-9a-f]{32}\}:m$`)
	keys := scanKeys(t, c, prefix+"*")
	pipe := c.Pipeline()
	ttls := make([]*goredis.DurationCmd, len(keys))
	for i, k := range keys {
		if !re.MatchString(k) {
			t.Errorf("key %q does not match %s", k, re)
		}
		ttls[i] = pipe.PTTL(context.Background(), k)
	}
	if len(keys) > 0 {
		if _, err := pipe.Exec(context.Background()); err != nil {
			t.Fatalf("PTTL: %v", err)
		}
	}
	for i, cmd := range ttls {
		// -1 (no TTL) is the failure this looks for; 0 or -2 mean the key
		// expired between SCAN and PTTL, which is the point.
		if v := cmd.Val(); v == -1 {
			t.Errorf("key %q has no TTL", keys[i])
		}
	}
	return len(keys)
}

// TestR22HostileKeys: hostile identities produce only well-formed keys,
// each with a TTL, and no key or value contains the identity's bytes; on
// miniredis every key is gone once the window plus slack has passed.
func TestR22HostileKeys(t *testing.T) {
	for _, backend := range []string{"miniredis", "redis-server"} {
		t.Run(backend, func(t *testing.T) {
			var c *goredis.Client
			var fastForward func(time.Duration)
			prefix := "rk22"
			if backend == "miniredis" {
				m, mc := newMini(t)
				c, fastForward = mc, m.FastForward
			} else {
				c, _ = realClient(t)
				prefix = testPrefix(t, c)
			}
			s := newStore(t, c, Config{Prefix: prefix, Timeout: 5 * time.Second})
			p := window.Default()
			ids := hostileIdentities()
			for _, id := range ids {
				if _, err := s.Take(context.Background(), store.Request{Key: keyOf(id), Policy: &p, Cost: 1}); err != nil {
					t.Fatalf("Take: %v", err)
				}
			}
			distinct := map[store.Key]bool{}
			for _, id := range ids {
				distinct[keyOf(id)] = true
			}
			if n := checkKeyspace(t, c, prefix); n != len(distinct) {
				t.Errorf("%d keys for %d distinct identities", n, len(distinct))
			}
			// Secret hygiene (catalogue 23): the readable identities appear
			// in no key and no value (values are binary, so only identities
			// of four bytes or more are searched for there).
			for _, k := range scanKeys(t, c, prefix+"*") {
				v, _ := c.Get(context.Background(), k).Bytes()
				for _, id := range ids[2:11] {
					if len(id) < 4 {
						continue
					}
					if strings.Contains(k, string(id)) || strings.Contains(string(v), string(id)) {
						t.Errorf("identity %q found in key %q or its value", id, k)
					}
				}
			}
			if fastForward != nil {
				fastForward(time.Minute + serverClockSlack + time.Millisecond)
				if n := len(scanKeys(t, c, prefix+"*")); n != 0 {
					t.Errorf("%d keys left after window plus slack, want 0", n)
				}
			}
		})
	}
}

// TestR26KeySpraying: after many distinct identities no limiter key lacks
// a TTL, and after the window plus slack the keyspace returns to its
// baseline (real Redis, a 1 s window) or to 0 (miniredis FastForward).
func TestR26KeySpraying(t *testing.T) {
	oneSecond := window.Policy{Windows: []window.Window{{Length: time.Second, Limit: 2}}}
	for _, backend := range []string{"miniredis", "redis-server"} {
		t.Run(backend, func(t *testing.T) {
			var c *goredis.Client
			var fastForward func(time.Duration)
			prefix := "rk26"
			n := 100_000
			if backend == "miniredis" {
				// miniredis runs Lua in Go, about 10 times slower.
				n = 10_000
				m, mc := newMini(t)
				c, fastForward = mc, m.FastForward
			} else {
				if testing.Short() {
					t.Skip("-short: waits 2 s of real time for keys to expire")
				}
				c, _ = realClient(t)
				prefix = testPrefix(t, c)
			}
			s := newStore(t, c, Config{Prefix: prefix, Timeout: 5 * time.Second})
			var wg sync.WaitGroup
			var failed atomic.Int64
			for w := range 16 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for i := w; i < n; i += 16 {
						if _, err := s.Take(context.Background(), store.Request{Key: testKey(i), Policy: &oneSecond, Cost: 1}); err != nil {
							failed.Add(1)
						}
					}
				}()
			}
			wg.Wait()
			if f := failed.Load(); f != 0 {
				t.Fatalf("%d of %d Takes failed", f, n)
			}
			// On a real server keys written first may already have expired.
			if got := checkKeyspace(t, c, prefix); got != n && fastForward != nil {
				t.Errorf("%d keys after %d identities, want %d", got, n, n)
			}
			if fastForward != nil {
				fastForward(time.Second + serverClockSlack + time.Millisecond)
			} else {
				time.Sleep(time.Second + serverClockSlack + 200*time.Millisecond)
			}
			if left := len(scanKeys(t, c, prefix+"*")); left != 0 {
				t.Errorf("%d keys left after window plus slack, want 0", left)
			}
		})
	}
}

// TestR30Unreachable: with nothing listening, New succeeds (it sends
// nothing) and Take fails fast with a connection error instead of hanging.
func TestR30Unreachable(t *testing.T) {
	addr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	s := newStore(t, newClient(t, addr), Config{})
	p := window.Default()
	start := time.Now()
	_, err := s.Take(context.Background(), store.Request{Key: testKey(1), Policy: &p, Cost: 1})
	elapsed := time.Since(start)
	if err == nil {
		t.Fatal("Take with no server: no error")
	}
	if elapsed > DefaultTimeout+20*time.Millisecond {
		t.Errorf("Take with no server took %v, want at most %v", elapsed, DefaultTimeout+20*time.Millisecond)
	}
	// go-redis keeps dialling until the deadline, so the error is either.
	if k := Kind(err); k != KindConnection && k != KindTimeout {
		t.Errorf("Kind(%v) = %q, want %q or %q", err, k, KindConnection, KindTimeout)
	}
	if !strings.HasPrefix(err.Error(), "store/redis: ") {
		t.Errorf("error %q lacks the store/redis prefix", err)
	}
}

// TestR30UnreachableOneDial: with the client's dial retries off
// (DialerRetries 1, as docs/redis.md recommends), a refused connection is
// reported at once as a connection error, not after the store's timeout as
// a timeout: go-redis otherwise redials five times, 100ms apart.
func TestR30UnreachableOneDial(t *testing.T) {
	addr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	c := goredis.NewClient(&goredis.Options{Addr: addr, ContextTimeoutEnabled: true, MaxRetries: -1, DialerRetries: 1})
	t.Cleanup(func() { c.Close() })
	s := newStore(t, c, Config{})
	p := window.Default()
	for i := range 3 {
		start := time.Now()
		_, err := s.Take(context.Background(), store.Request{Key: testKey(1), Policy: &p, Cost: 1})
		elapsed := time.Since(start)
		if k := Kind(err); k != KindConnection || elapsed > DefaultTimeout/2 {
			t.Errorf("Take %d with no server: %v after %v (kind %q), want a %q error well within %v", i, err, elapsed, k, KindConnection, DefaultTimeout)
		}
	}
}

// TestR33RestartWithoutPersistence: the server restarts empty (no data, no
// script cache). The first Take afterwards succeeds through NOSCRIPT →
// EVAL and counts start from zero, without a new store or client.
func TestR33RestartWithoutPersistence(t *testing.T) {
	srv := startServer(t)
	c := newClient(t, srv.Addr)
	s := newStore(t, c, Config{Timeout: 2 * time.Second})
	p := window.Default()
	k := testKey(1)
	take := func() (window.Decision, error) {
		return s.Take(context.Background(), store.Request{Key: k, Policy: &p, Cost: 1})
	}
	for range 2 {
		if _, err := take(); err != nil {
			t.Fatalf("Take before restart: %v", err)
		}
	}
	if d, _ := take(); d.Allowed {
		t.Fatalf("third Take in a second admitted: %+v", d)
	}
	srv.Restart()
	start := time.Now()
	d, err := take()
	if err != nil {
		t.Fatalf("first Take after restart (%v later): %v", time.Since(start), err)
	}
	if !d.Allowed || d.Windows[0].Remaining != 59 {
		t.Errorf("first Take after restart = %+v, want admitted with 59 left (counts start from zero)", d)
	}
	info := c.Info(context.Background(), "commandstats").Val()
	if !strings.Contains(info, "cmdstat_eval:") {
		t.Errorf("no EVAL after restart in INFO commandstats; NOSCRIPT fallback not exercised:\n%s", info)
	}
}

// flushScripts runs SCRIPT FLUSH until stop closes.
func flushScripts(c *goredis.Client, stop <-chan struct{}, done *sync.WaitGroup) {
	defer done.Done()
	for {
		select {
		case <-stop:
			return
		default:
		}
		c.ScriptFlush(context.Background())
		time.Sleep(time.Millisecond)
	}
}

// TestR34ScriptFlushUnderTraffic: SCRIPT FLUSH in a loop while 1,000
// requests run: no error reaches the caller and exactly 60 are admitted.
func TestR34ScriptFlushUnderTraffic(t *testing.T) {
	for _, backend := range []string{"miniredis", "redis-server"} {
		t.Run(backend, func(t *testing.T) {
			var addr string
			if backend == "miniredis" {
				m, _ := newMini(t)
				addr = m.Addr()
			} else {
				addr = startServer(t).Addr
			}
			stores := instances(t, addr, 3, Config{Timeout: 10 * time.Second})
			stop := make(chan struct{})
			var wg sync.WaitGroup
			wg.Add(1)
			go flushScripts(newClient(t, addr), stop, &wg)
			a, r, f, err := burst(stores, testKey(1), &relaxed, 1000)
			close(stop)
			wg.Wait()
			if a != 60 || r != 940 || f != 0 {
				t.Errorf("1,000 Takes under SCRIPT FLUSH: admitted %d, rejected %d, failed %d (first error %v); want 60, 940, 0", a, r, f, err)
			}
		})
	}
}

// settleGoroutines waits up to 3 s for the goroutine count to come back to
// at most base+slack and returns the last count.
func settleGoroutines(base, slack int) int {
	n := runtime.NumGoroutine()
	for deadline := time.Now().Add(3 * time.Second); n > base+slack && time.Now().Before(deadline); {
		time.Sleep(20 * time.Millisecond)
		n = runtime.NumGoroutine()
	}
	return n
}

// TestR35R36SlowAndBlackHole: behind a proxy that delays replies by 500 ms,
// or accepts and never answers, every Take returns an error within the
// store timeout plus 20 ms, and no goroutine outlives the test.
func TestR35R36SlowAndBlackHole(t *testing.T) {
	for _, tc := range []struct {
		name string
		mode proxyMode
	}{
		{"R35 slow 500ms", proxyDelay},
		{"R36 black hole", proxyBlackHole},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := startServer(t)
			base := runtime.NumGoroutine()
			px := newProxy(t, srv.Addr, tc.mode, 500*time.Millisecond)
			c := goredis.NewClient(&goredis.Options{Addr: px.Addr, ContextTimeoutEnabled: true, MaxRetries: -1, PoolSize: 8})
			s, err := New(c, Config{})
			if err != nil {
				t.Fatal(err)
			}
			p := window.Default()
			const calls = 40
			var wg sync.WaitGroup
			var worst atomic.Int64
			var errs atomic.Int64
			for i := range calls {
				wg.Add(1)
				go func() {
					defer wg.Done()
					start := time.Now()
					_, err := s.Take(context.Background(), store.Request{Key: testKey(i), Policy: &p, Cost: 1})
					el := time.Since(start)
					for {
						w := worst.Load()
						if int64(el) <= w || worst.CompareAndSwap(w, int64(el)) {
							break
						}
					}
					if err != nil {
						errs.Add(1)
						if k := Kind(err); k != KindTimeout {
							t.Errorf("Kind(%v) = %q, want %q", err, k, KindTimeout)
						}
					}
				}()
			}
			wg.Wait()
			if got := time.Duration(worst.Load()); got > DefaultTimeout+20*time.Millisecond {
				t.Errorf("slowest Take took %v, want at most %v", got, DefaultTimeout+20*time.Millisecond)
			}
			if errs.Load() != calls {
				t.Errorf("%d of %d Takes failed, want all (every reply is late)", errs.Load(), calls)
			}
			if st := c.PoolStats(); st.TotalConns > 8 {
				t.Errorf("pool holds %d connections, want at most its size 8", st.TotalConns)
			}
			s.Close()
			c.Close()
			px.Close()
			if n := settleGoroutines(base, 2); n > base+2 {
				t.Errorf("goroutines: %d after, %d before", n, base)
			}
		})
	}
}

// TestR37AmbiguousCommit: a proxy forwards each EVALSHA to the server and
// resets the connection when the reply comes back. The client cannot
// know whether its request counted; with MaxRetries -1 it is not re-sent,
// so N such calls raise the server-side count by at most N.
func TestR37AmbiguousCommit(t *testing.T) {
	srv := startServer(t)
	direct := newClient(t, srv.Addr)
	px := newProxy(t, srv.Addr, proxyResetOnReply, 0)
	s := newStore(t, newClient(t, px.Addr), Config{Timeout: time.Second})
	admin := newStore(t, direct, Config{Timeout: time.Second})
	// Load the script so that each proxied call is one EVALSHA that runs
	// (a NOSCRIPT reply would be reset before the EVAL fallback).
	if err := direct.ScriptLoad(context.Background(), takeSrc).Err(); err != nil {
		t.Fatal(err)
	}
	p := relaxed
	k := testKey(1)
	const n = 10
	for i := range n {
		_, err := s.Take(context.Background(), store.Request{Key: k, Policy: &p, Cost: 1})
		if err == nil {
			t.Fatalf("call %d through a resetting proxy succeeded", i)
		}
		if kind := Kind(err); kind != KindConnection {
			t.Errorf("Kind(%v) = %q, want %q", err, kind, KindConnection)
		}
	}
	d, err := admin.Peek(context.Background(), k, &p)
	if err != nil {
		t.Fatal(err)
	}
	if used := 60 - d.Windows[0].Remaining; used > n || used == 0 {
		t.Errorf("server counted %d for %d ambiguous calls, want 1 to %d", used, n, n)
	} else {
		t.Logf("server counted %d for %d ambiguous calls", used, n)
	}
}

// TestR41OutOfMemory: a server at maxmemory with noeviction refuses the
// script; the error is classified oom and nothing panics.
func TestR41OutOfMemory(t *testing.T) {
	srv := startServer(t, "--maxmemory", "1mb", "--maxmemory-policy", "noeviction")
	c := newClient(t, srv.Addr)
	ctx := context.Background()
	junk := strings.Repeat("x", 64<<10)
	for i := 0; ; i++ {
		err := c.Set(ctx, fmt.Sprint("junk", i), junk, 0).Err()
		if err != nil {
			if !strings.HasPrefix(err.Error(), "OOM") {
				t.Fatalf("filling memory: %v", err)
			}
			break
		}
		if i > 1000 {
			t.Fatal("maxmemory 1mb never reached")
		}
	}
	s := newStore(t, c, Config{Timeout: time.Second})
	p := window.Default()
	_, err := s.Take(ctx, store.Request{Key: testKey(1), Policy: &p, Cost: 1})
	if k := Kind(err); k != KindOOM {
		t.Errorf("Take at maxmemory: Kind(%v) = %q, want %q", err, k, KindOOM)
	}
}

// TestR42ServerStates: LOADING and READONLY replies map to their kinds
// (and are not retried: MaxRetries -1).
func TestR42ServerStates(t *testing.T) {
	for _, tc := range []struct {
		reply string
		kind  string
	}{
		{"LOADING Redis is loading the dataset in memory", KindLoading},
		{"READONLY You can't write against a read only replica.", KindReadOnly},
	} {
		t.Run(tc.kind, func(t *testing.T) {
			m, c := newMini(t)
			s := newStore(t, c, Config{Timeout: time.Second})
			m.SetError(tc.reply)
			p := window.Default()
			_, err := s.Take(context.Background(), store.Request{Key: testKey(1), Policy: &p, Cost: 1})
			if k := Kind(err); k != tc.kind {
				t.Errorf("Kind(%v) = %q, want %q", err, k, tc.kind)
			}
			m.SetError("")
			if _, err := s.Take(context.Background(), store.Request{Key: testKey(1), Policy: &p, Cost: 1}); err != nil {
				t.Errorf("Take after the error cleared: %v", err)
			}
		})
	}
}

// TestR43Lifecycle: 100 cycles of client + New + Take + Close leave the
// goroutine count and the server's connection count at their baselines;
// Close is idempotent and later calls return store.ErrClosed.
func TestR43Lifecycle(t *testing.T) {
	srv := startServer(t)
	watcher := newClient(t, srv.Addr)
	ctx := context.Background()
	clients := func() int {
		return strings.Count(watcher.ClientList(ctx).Val(), "\n")
	}
	baseConns := clients()
	base := runtime.NumGoroutine()
	p := window.Default()
	for i := range 100 {
		c := goredis.NewClient(clientOptions(srv.Addr))
		s, err := New(c, Config{})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.Take(ctx, store.Request{Key: testKey(i), Policy: &p, Cost: 1}); err != nil {
			t.Fatalf("cycle %d: Take: %v", i, err)
		}
		if err := s.Close(); err != nil {
			t.Fatalf("cycle %d: Close: %v", i, err)
		}
		if err := s.Close(); err != nil {
			t.Fatalf("cycle %d: second Close: %v", i, err)
		}
		if _, err := s.Take(ctx, store.Request{Key: testKey(i), Policy: &p, Cost: 1}); !errors.Is(err, store.ErrClosed) {
			t.Fatalf("cycle %d: Take after Close: %v, want ErrClosed", i, err)
		}
		c.Close()
	}
	if n := settleGoroutines(base, 2); n > base+2 {
		t.Errorf("goroutines: %d after 100 cycles, %d before", n, base)
	}
	var conns int
	for deadline := time.Now().Add(3 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if conns = clients(); conns <= baseConns {
			break
		}
	}
	if conns > baseConns {
		t.Errorf("server connections: %d after 100 cycles, %d before", conns, baseConns)
	}
}
