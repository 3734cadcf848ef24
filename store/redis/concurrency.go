package redis

import (
	"context"
	_ "embed"
	"fmt"
	"math/rand/v2"
	"strconv"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/ratekit/ratekit/store"
)

//go:embed acquire.lua
var acquireSrc string

var (
	acquireScript                   = goredis.NewScript(acquireSrc)
	releaseScript                   = goredis.NewScript(`return redis.call('ZREM', KEYS[1], ARGV[1])`)
	_             store.Concurrency = (*Store)(nil)
)

// LeaseKey returns the Redis key of k's concurrency leases,
// <prefix>:{<32 hex>}:s, in the same Cluster slot as [Key].
func LeaseKey(prefix string, k store.Key) string {
	m := Key(prefix, k)
	return m[:len(m)-1] + "s"
}

// Acquire takes one of limit in-flight slots for key; see
// [store.Concurrency]. The slot is a lease in a sorted set scored by its
// expiry, so leases of an instance that died are reclaimed ttl after they
// were taken. One script call; Release (ZREM in a script, for Scripter
// clients) is another.
func (s *Store) Acquire(ctx context.Context, key store.Key, limit int, ttl time.Duration) (store.Lease, bool, error) {
	if s.closed.Load() {
		return store.Lease{}, false, store.ErrClosed
	}
	if limit < 1 || ttl < time.Millisecond {
		return store.Lease{}, false, store.ErrInvalidRequest
	}
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	now := ""
	if s.now != nil {
		now = strconv.FormatInt(s.now().UnixMilli(), 10)
	}
	// A random ID: leases of every process sharing the Redis must differ,
	// and 64 random bits make a collision among live leases negligible.
	lease := store.Lease{Key: key, ID: rand.Uint64()}
	n, err := acquireScript.Run(ctx, s.client, []string{LeaseKey(s.prefix, key)},
		limit, ttl.Milliseconds(), strconv.FormatUint(lease.ID, 36), now).Int()
	if err != nil {
		return store.Lease{}, false, fmt.Errorf("store/redis: acquire: %w", err)
	}
	return lease, n == 1, nil
}

// Release returns a slot taken by Acquire (ZREM of the lease). An expired
// lease is simply absent.
func (s *Store) Release(ctx context.Context, l store.Lease) error {
	if s.closed.Load() {
		return store.ErrClosed
	}
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	err := releaseScript.Run(ctx, s.client, []string{LeaseKey(s.prefix, l.Key)}, strconv.FormatUint(l.ID, 36)).Err()
	if err != nil {
		return fmt.Errorf("store/redis: release: %w", err)
	}
	return nil
}

// Prefix returns the key prefix the store writes under.
func (s *Store) Prefix() string { return s.prefix }
