package memory

import (
	"context"
	"slices"
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
	held := sh.inflight[key]
	if len(held) >= limit {
		return store.Lease{}, false, nil
	}
	l := store.Lease{Key: key, ID: s.leases.Add(1)}
	sh.inflight[key] = append(held, l.ID)
	return l, true, nil
}

// Release returns a slot taken by Acquire. A lease released already, or
// never granted, changes nothing.
func (s *Store) Release(_ context.Context, l store.Lease) error {
	sh := s.shard(l.Key)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	held := sh.inflight[l.Key]
	i := slices.Index(held, l.ID)
	switch {
	case i < 0:
	case len(held) == 1:
		delete(sh.inflight, l.Key)
	default:
		sh.inflight[l.Key] = slices.Delete(held, i, i+1)
	}
	return nil
}
