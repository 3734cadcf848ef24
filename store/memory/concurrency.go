package memory

import (
	"context"
	"time"

	"github.com/ratekit/ratekit/store"
)

var _ store.Concurrency = (*Store)(nil)

// Acquire takes one of limit in-flight slots for key; see
// [store.Concurrency]. The memory store cannot outlive the process holding
// the leases, so ttl is not needed and ignored. Slot counts live in their
// own map per shard and are removed when they drop to zero, so they never
// count against MaxKeys.
func (s *Store) Acquire(ctx context.Context, key store.Key, limit int, _ time.Duration) (store.Lease, bool, error) {
	if s.closed.Load() {
		return store.Lease{}, false, store.ErrClosed
	}
	if limit < 1 {
		return store.Lease{}, false, store.ErrInvalidRequest
	}
	if err := ctx.Err(); err != nil {
		return store.Lease{}, false, err
	}
	sh := s.shard(key)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if sh.inflight[key] >= limit {
		return store.Lease{}, false, nil
	}
	sh.inflight[key]++
	return store.Lease{Key: key, ID: s.leases.Add(1)}, true, nil
}

// Release returns a slot taken by Acquire.
func (s *Store) Release(_ context.Context, l store.Lease) error {
	sh := s.shard(l.Key)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	switch n := sh.inflight[l.Key]; {
	case n > 1:
		sh.inflight[l.Key] = n - 1
	case n == 1:
		delete(sh.inflight, l.Key)
	}
	return nil
}
