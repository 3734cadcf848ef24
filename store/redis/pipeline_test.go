package redis

import (
	"context"
	"errors"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ratekit/ratekit/store"
	"github.com/ratekit/ratekit/window"
)

// TestAutoPipelineOneCallPerDecision: 50 callers, 4,000 Takes on 100 keys
// through one store. The server runs exactly one EVALSHA per decision (INFO
// commandstats), the Takes travel in far fewer pipelines than decisions,
// and every key admits exactly what its quota allows.
func TestAutoPipelineOneCallPerDecision(t *testing.T) {
	srv := startServer(t)
	c := newClient(t, srv.Addr)
	s := newStore(t, c, Config{Timeout: 10 * time.Second})
	if err := c.ScriptLoad(context.Background(), takeSrc).Err(); err != nil {
		t.Fatal(err)
	}
	const callers, per, keys = 50, 80, 100
	before := scriptCalls(t, c)
	var admitted, failed atomic.Int64
	var wg sync.WaitGroup
	for w := range callers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range per {
				d, err := s.Take(context.Background(), store.Request{Key: testKey((w*per + i) % keys), Policy: &relaxed, Cost: 1})
				switch {
				case err != nil:
					failed.Add(1)
				case d.Allowed:
					admitted.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	n := int64(callers * per)
	calls := scriptCalls(t, c) - before
	batches := s.batch.batches.Load()
	t.Logf("%d decisions: %d script calls, %d pipelines (%.1f decisions each, excluding direct calls)", n, calls, batches, float64(n)/float64(max(batches, 1)))
	if failed.Load() != 0 {
		t.Fatalf("%d Takes failed", failed.Load())
	}
	if calls != n {
		t.Errorf("server ran %d script calls for %d decisions, want exactly one each", calls, n)
	}
	if batches == 0 || batches >= n/2 {
		t.Errorf("%d pipelines for %d concurrent decisions: not batching", batches, n)
	}
	// 40 Takes per key, all within a minute: the 60/min quota is not
	// reached, so every one is admitted.
	if admitted.Load() != n {
		t.Errorf("admitted %d of %d, want all", admitted.Load(), n)
	}
}

// TestAutoPipelineOwnDeadlines: each queued caller keeps its own deadline
// and cancellation. Behind a proxy that delays every reply by 300 ms, three
// Takes fill what may be in flight (one direct, maxFlushers pipelines);
// a fourth with a 30 ms deadline and a fifth cancelled at 30 ms return
// within 30 ms + 40 ms with kinds timeout and canceled, are never sent (the
// server counts 3 calls), and the first three still succeed.
func TestAutoPipelineOwnDeadlines(t *testing.T) {
	if maxFlushers != 2 {
		t.Skip("the staging below assumes two flushers")
	}
	srv := startServer(t)
	direct := newClient(t, srv.Addr)
	if err := direct.ScriptLoad(context.Background(), takeSrc).Err(); err != nil {
		t.Fatal(err)
	}
	base := runtime.NumGoroutine()
	px := newProxy(t, srv.Addr, proxyDelay, 300*time.Millisecond)
	c := newClient(t, px.Addr)
	// Open the connections before timing anything: the proxy delays the
	// handshake's replies too.
	var warm sync.WaitGroup
	for range 3 {
		warm.Add(1)
		go func() { defer warm.Done(); c.Ping(context.Background()) }()
	}
	warm.Wait()
	s := newStore(t, c, Config{Timeout: 5 * time.Second})
	p := window.Default()
	before := scriptCalls(t, direct)

	var wg sync.WaitGroup
	errs := make([]error, 5)
	took := make([]time.Duration, 5)
	run := func(i int, ctx context.Context) {
		defer wg.Done()
		start := time.Now()
		_, errs[i] = s.Take(ctx, store.Request{Key: testKey(i), Policy: &p, Cost: 1})
		took[i] = time.Since(start)
	}
	for i := range 3 {
		wg.Add(1)
		go run(i, context.Background())
		time.Sleep(20 * time.Millisecond) // each takes its own slot
	}
	short, cancel1 := context.WithTimeout(context.Background(), 30*time.Millisecond)
	defer cancel1()
	cancelled, cancel2 := context.WithCancel(context.Background())
	time.AfterFunc(30*time.Millisecond, cancel2)
	wg.Add(2)
	go run(3, short)
	go run(4, cancelled)
	wg.Wait()

	for i := range 3 {
		if errs[i] != nil {
			t.Errorf("Take %d: %v", i, errs[i])
		}
	}
	for i, want := range map[int]string{3: KindTimeout, 4: KindCanceled} {
		if k := Kind(errs[i]); k != want {
			t.Errorf("Take %d: Kind(%v) = %q, want %q", i, errs[i], k, want)
		}
		if took[i] > 70*time.Millisecond {
			t.Errorf("Take %d returned after %v, want within 70ms", i, took[i])
		}
		if !errors.Is(errs[i], context.DeadlineExceeded) && !errors.Is(errs[i], context.Canceled) {
			t.Errorf("Take %d: %v does not wrap the context error", i, errs[i])
		}
	}
	// Let any late pipeline reach the server before counting.
	time.Sleep(400 * time.Millisecond)
	if calls := scriptCalls(t, direct) - before; calls != 3 {
		t.Errorf("server ran %d script calls, want 3: an abandoned queued call was sent", calls)
	}
	s.Close()
	c.Close()
	px.Close()
	if n := settleGoroutines(base, 2); n > base+2 {
		t.Errorf("goroutines: %d after, %d before", n, base)
	}
}

// TestNoAutoPipeline: with Config.NoAutoPipeline every Take is its own
// EVALSHA on its own connection, and decisions are the same.
func TestNoAutoPipeline(t *testing.T) {
	_, c := newMini(t)
	s := newStore(t, c, Config{NoAutoPipeline: true, Timeout: 5 * time.Second})
	if s.batch != nil {
		t.Fatal("NoAutoPipeline set, but the store pipelines")
	}
	p := window.Default()
	a, _, f, err := burst([]*Store{s}, testKey(1), &p, 20)
	if a != 2 || f != 0 {
		t.Errorf("20 Takes: admitted %d, failed %d (%v); want 2, 0", a, f, err)
	}
}
