package storetest

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ratekit/ratekit/store"
	"github.com/ratekit/ratekit/window"
)

// Fault is how the calls of a [Faulty] store fail. The zero Fault passes
// every call through to the inner store.
type Fault struct {
	// Err, when not nil, fails every call with it; the inner store is not
	// asked.
	Err error
	// Delay holds every call this long before it goes on (to Err, or to
	// the inner store), as a slow or timing-out server would. A call whose
	// context ends first returns the context's error.
	Delay time.Duration
	// Hang holds every call until its context ends, as a black-holed
	// server does: a call without a deadline never returns until the fault
	// is changed.
	Hang bool
}

// Faulty wraps a store and fails its calls on demand, for testing what a
// caller of a Store does when it fails: errors, slowness, black holes, and
// recovery. It forwards [store.Store], [store.Admin] and
// [store.Concurrency] to the inner store (Admin and Concurrency calls fail
// with [ErrUnsupported] when the inner store lacks them), and counts the
// calls that reach it, faulty or not.
//
// A Faulty store never says it is [store.Local], whatever it wraps: callers
// treat it as a shared store, the kind that fails.
//
// It is safe for concurrent use; a Set takes effect for calls that start
// after it, and wakes calls held by the previous fault.
type Faulty struct {
	inner store.Store

	takes, acquires, releases atomic.Int64

	mu      sync.Mutex
	fault   Fault
	changed chan struct{} // closed and replaced by Set
}

var (
	_ store.Store       = (*Faulty)(nil)
	_ store.Admin       = (*Faulty)(nil)
	_ store.Concurrency = (*Faulty)(nil)
)

// ErrUnsupported is returned by Faulty's Admin and Concurrency methods when
// the inner store does not implement them.
var ErrUnsupported = errors.New("store/storetest: the inner store does not implement this call")

// NewFaulty returns inner wrapped, passing every call through until [Faulty.Set]
// says otherwise. Close closes inner.
func NewFaulty(inner store.Store) *Faulty {
	return &Faulty{inner: inner, changed: make(chan struct{})}
}

// Set makes f's calls fail as ft says, from now on.
func (f *Faulty) Set(ft Fault) {
	f.mu.Lock()
	f.fault = ft
	close(f.changed)
	f.changed = make(chan struct{})
	f.mu.Unlock()
}

// Fail is Set(Fault{Err: err}); Fail(nil) heals the store.
func (f *Faulty) Fail(err error) { f.Set(Fault{Err: err}) }

// Takes, Acquires and Releases count the calls made so far of Take (and
// Peek), Acquire and Release.
func (f *Faulty) Takes() int64    { return f.takes.Load() }
func (f *Faulty) Acquires() int64 { return f.acquires.Load() }
func (f *Faulty) Releases() int64 { return f.releases.Load() }

// enter applies the current fault to a call with ctx: it waits as the
// fault says and returns the error the call must fail with, or nil to go
// on to the inner store.
func (f *Faulty) enter(ctx context.Context) error {
	for {
		f.mu.Lock()
		ft, changed := f.fault, f.changed
		f.mu.Unlock()
		if !ft.Hang && ft.Delay <= 0 {
			return ft.Err
		}
		var timer *time.Timer
		var wait <-chan time.Time
		if !ft.Hang {
			timer = time.NewTimer(ft.Delay)
			wait = timer.C
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-wait:
			return ft.Err
		case <-changed:
			// The fault changed while this call was held: apply the new
			// one, as a server that came back would answer.
			if timer != nil {
				timer.Stop()
			}
		}
	}
}

// Take fails as the fault says, or asks the inner store.
func (f *Faulty) Take(ctx context.Context, req store.Request) (window.Decision, error) {
	f.takes.Add(1)
	if err := f.enter(ctx); err != nil {
		return window.Decision{}, err
	}
	return f.inner.Take(ctx, req)
}

// Peek fails as the fault says, or asks the inner store.
func (f *Faulty) Peek(ctx context.Context, key store.Key, p *window.Policy) (window.Decision, error) {
	f.takes.Add(1)
	if err := f.enter(ctx); err != nil {
		return window.Decision{}, err
	}
	a, ok := f.inner.(store.Admin)
	if !ok {
		return window.Decision{}, ErrUnsupported
	}
	return a.Peek(ctx, key, p)
}

// Reset fails as the fault says, or asks the inner store.
func (f *Faulty) Reset(ctx context.Context, key store.Key) error {
	if err := f.enter(ctx); err != nil {
		return err
	}
	a, ok := f.inner.(store.Admin)
	if !ok {
		return ErrUnsupported
	}
	return a.Reset(ctx, key)
}

// Acquire fails as the fault says, or asks the inner store.
func (f *Faulty) Acquire(ctx context.Context, key store.Key, limit int, ttl time.Duration) (store.Lease, bool, error) {
	f.acquires.Add(1)
	if err := f.enter(ctx); err != nil {
		return store.Lease{}, false, err
	}
	c, ok := f.inner.(store.Concurrency)
	if !ok {
		return store.Lease{}, false, ErrUnsupported
	}
	return c.Acquire(ctx, key, limit, ttl)
}

// Release fails as the fault says, or asks the inner store.
func (f *Faulty) Release(ctx context.Context, lease store.Lease) error {
	f.releases.Add(1)
	if err := f.enter(ctx); err != nil {
		return err
	}
	c, ok := f.inner.(store.Concurrency)
	if !ok {
		return ErrUnsupported
	}
	return c.Release(ctx, lease)
}

// Close closes the inner store, whatever the fault.
func (f *Faulty) Close() error { return f.inner.Close() }
