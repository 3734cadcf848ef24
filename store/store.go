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

// Local is implemented by stores whose state lives in the calling process
// and whose calls never wait on the network, like the memory store. A
// caller may treat such a store differently from a shared one: the
// middleware puts no circuit breaker or deny cache in front of it (there is
// no round trip to save and no outage to ride out), and lets it run with a
// random per-process hash secret (no other instance derives keys for it).
// A store that does not implement Local is taken to be shared.
type Local interface {
	// Local reports whether the store is local. A wrapper can forward its
	// inner store's answer.
	Local() bool
}

// IsLocal reports whether s implements [Local] and says it is local.
func IsLocal(s Store) bool {
	l, ok := s.(Local)
	return ok && l.Local()
}

// Kinds of store failure: the one vocabulary in which stores, the
// middleware, logs and metrics name why a decision could not be taken.
// Each is a short, fixed string, fit for a metric label.
const (
	KindTimeout     = "timeout"      // the store's deadline or the caller's passed
	KindCanceled    = "canceled"     // the caller's context was cancelled (the client left)
	KindConnection  = "connection"   // dial, reset, EOF, closed client or pool exhausted
	KindScript      = "script"       // the server failed the decision, or its reply was malformed
	KindOOM         = "oom"          // the server is out of memory
	KindReadOnly    = "readonly"     // the node is a replica (failover in progress)
	KindLoading     = "loading"      // the server is loading its dataset after a restart
	KindCluster     = "cluster"      // a cluster redirection or slot error left unresolved
	KindFull        = "full"         // a bounded store could not make room ([ErrFull])
	KindPanic       = "panic"        // a hook of the caller's panicked (a key validator)
	KindBreakerOpen = "breaker-open" // the caller's circuit breaker did not call the store
	KindOther       = "other"        // anything else, including [ErrClosed]
)

// Kinds returns every kind of failure, in a fixed order: the complete set
// of values [Classify] can return, so that a metric can declare each label
// before it is first seen.
func Kinds() []string {
	return []string{KindTimeout, KindCanceled, KindConnection, KindScript, KindOOM, KindReadOnly,
		KindLoading, KindCluster, KindFull, KindPanic, KindBreakerOpen, KindOther}
}

// ErrorClassifier is implemented by stores that can name the kind of their
// own failures (the Redis store does): one of the Kind constants, or ""
// when it cannot tell.
type ErrorClassifier interface {
	ErrorKind(err error) string
}

// Classify names the kind of err, a failure of s: [KindFull] for [ErrFull],
// [KindTimeout] and [KindCanceled] for the context's errors, else what s
// says as an [ErrorClassifier], else [KindOther]. A kind outside [Kinds]
// from a classifier is reported as KindOther, so metric labels stay a fixed
// set. A nil err gives "".
func Classify(s Store, err error) string {
	switch {
	case err == nil:
		return ""
	case errors.Is(err, ErrFull):
		return KindFull
	case errors.Is(err, context.Canceled):
		return KindCanceled
	case errors.Is(err, context.DeadlineExceeded):
		return KindTimeout
	}
	if c, ok := s.(ErrorClassifier); ok {
		switch k := c.ErrorKind(err); k {
		case KindTimeout, KindCanceled, KindConnection, KindScript, KindOOM, KindReadOnly,
			KindLoading, KindCluster, KindFull, KindPanic, KindBreakerOpen:
			return k
		}
	}
	return KindOther
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
