package middleware

import (
	"sync"
	"time"

	"github.com/ratekit/ratekit/store"
)

// keyCache remembers KeyValidator answers for a while, so a slow validator
// (a database, an auth service) is not called on every request. Entries are
// indexed by a keyed hash of the API key, never the key itself, and the
// cache is bounded: when full, an arbitrary entry makes room (expired ones
// first among those looked at).
type keyCache struct {
	ttl time.Duration
	max int
	mu  sync.Mutex
	m   map[store.Key]cachedClient
}

type cachedClient struct {
	client  Client
	valid   bool
	expires time.Time
}

func newKeyCache(ttl time.Duration, size int) *keyCache {
	if ttl <= 0 {
		return nil
	}
	if size <= 0 {
		size = 100_000
	}
	return &keyCache{ttl: ttl, max: size, m: make(map[store.Key]cachedClient)}
}

func (c *keyCache) get(k store.Key, now time.Time) (cachedClient, bool) {
	c.mu.Lock()
	e, ok := c.m[k]
	c.mu.Unlock()
	if !ok || now.After(e.expires) {
		return cachedClient{}, false
	}
	return e, true
}

func (c *keyCache) put(k store.Key, client Client, valid bool, now time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.m[k]; !ok && len(c.m) >= c.max {
		looked := 0
		for old, e := range c.m {
			looked++
			if now.After(e.expires) || looked >= 8 {
				delete(c.m, old)
				break
			}
		}
	}
	c.m[k] = cachedClient{client: client, valid: valid, expires: now.Add(c.ttl)}
}
