package store

import (
	"context"
	"encoding/hex"
	"errors"
	"time"

	"github.com/ratekit/ratekit/window"
)

// Key identifies one rate-limited bucket: a client (API key or IP) within one
// policy scope. It is an opaque 128-bit value that the caller derives with a
// keyed hash, so stores never see a client's identity, and store keys have a
// fixed length whatever the client sent.
type Key [16]byte

// String returns the key as 32 lower-case hex digits.
func (k Key) String() string { return hex.EncodeToString(k[:]) }

// Request is one decision to take.
type Request struct {
	// Key is the bucket to decide for.
	Key Key
	// Policy is the set of windows decided together. It must be valid (see
	// [window.Policy.Validate]) and must not be modified while in use. The
	// same Key should always be used with the same Policy; a store may keep
	// state shaped by the policy it first saw.
	Policy *window.Policy
	// Cost is the weight of the request, at least 1.
	Cost int
}

// Store decides requests against per-key state. Implementations are safe for
// concurrent use.
type Store interface {
	// Take decides req atomically across every window of req.Policy: if
	// every window admits req.Cost the request is recorded in all of them,
	// otherwise in none. The store reads its own clock (once per call), so
	// that instances sharing a store agree on time.
	//
	// An error means no decision was taken; the caller applies its failure
	// policy. A store never reports a rejection as an error.
	Take(ctx context.Context, req Request) (window.Decision, error)
	// Close releases what the store started. Further calls return
	// [ErrClosed]. Close is idempotent.
	Close() error
}

// Admin is implemented by stores that can inspect and clear a key, for
// support tooling. Both stores in this module implement it.
type Admin interface {
	// Peek returns what a request of cost 1 would be told now, without
	// recording anything.
	Peek(ctx context.Context, key Key, p *window.Policy) (window.Decision, error)
	// Reset forgets every window of key.
	Reset(ctx context.Context, key Key) error
}

var (
	// ErrClosed is returned by a store after Close.
	ErrClosed = errors.New("store: closed")
	// ErrInvalidRequest is returned for a nil or empty policy or a cost
	// below 1.
	ErrInvalidRequest = errors.New("store: invalid request")
	// ErrFull is returned by a bounded store that could not make room for a
	// new key without evicting one that is currently limited. The caller's
	// failure policy decides the request.
	ErrFull = errors.New("store: full")
)

// CheckRequest returns [ErrInvalidRequest] (wrapped) when req cannot be
// decided. It checks only what is cheap: the policy is assumed validated.
func CheckRequest(req *Request) error {
	switch {
	case req.Policy == nil || len(req.Policy.Windows) == 0 || len(req.Policy.Windows) > window.MaxWindows:
		return ErrInvalidRequest
	case req.Cost < 1:
		return ErrInvalidRequest
	}
	return nil
}

// ErrorClassifier is implemented by stores that can name the kind of a
// failure, for metrics and logs: a short, fixed string such as "timeout",
// "connection" or "readonly". The Redis store implements it.
type ErrorClassifier interface {
	ErrorKind(err error) string
}

// Lease is one granted concurrency slot, returned to the store by Release.
type Lease struct {
	// Key is the bucket the slot belongs to.
	Key Key
	// ID tells this lease from the key's others (unique per store).
	ID uint64
}

// Concurrency is implemented by stores that can bound the requests in
// flight per key (Kinde's concurrency limiter). Both stores in this module
// implement it.
type Concurrency interface {
	// Acquire takes a slot for key if fewer than limit are held, and
	// reports whether it did. A lease not released within ttl expires, so a
	// crashed instance cannot hold slots forever (stores that cannot
	// outlive the process, like the memory store, may ignore ttl).
	Acquire(ctx context.Context, key Key, limit int, ttl time.Duration) (Lease, bool, error)
	// Release returns a slot. Releasing an expired or unknown lease is not
	// an error.
	Release(ctx context.Context, lease Lease) error
}
