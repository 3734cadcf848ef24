package storetest_test

import (
	"context"
	"errors"
	"testing"
	"testing/synctest"
	"time"

	"github.com/ratekit/ratekit/store"
	"github.com/ratekit/ratekit/store/memory"
	"github.com/ratekit/ratekit/store/storetest"
	"github.com/ratekit/ratekit/window"
)

var errDown = errors.New("connection refused")

func newFaulty(t *testing.T) *storetest.Faulty {
	t.Helper()
	m, err := memory.New(memory.Config{})
	if err != nil {
		t.Fatal(err)
	}
	f := storetest.NewFaulty(m)
	t.Cleanup(func() { f.Close() })
	return f
}

// TestFaultyFaults: each kind of fault fails calls as documented, and a
// Set wakes calls held by the fault before it.
func TestFaultyFaults(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFaulty(t)
		ctx := context.Background()
		p := window.Default()
		req := store.Request{Policy: &p, Cost: 1}
		if d, err := f.Take(ctx, req); err != nil || !d.Allowed {
			t.Fatalf("no fault: %+v, %v; want the inner store's admission", d, err)
		}
		f.Fail(errDown)
		if _, err := f.Take(ctx, req); !errors.Is(err, errDown) {
			t.Errorf("Fail: Take error %v, want %v", err, errDown)
		}
		if _, _, err := f.Acquire(ctx, req.Key, 1, time.Minute); !errors.Is(err, errDown) {
			t.Errorf("Fail: Acquire error %v, want %v", err, errDown)
		}

		f.Set(storetest.Fault{Err: errDown, Delay: 300 * time.Millisecond})
		start := time.Now()
		if _, err := f.Take(ctx, req); !errors.Is(err, errDown) || time.Since(start) != 300*time.Millisecond {
			t.Errorf("Delay: %v after %v, want %v after 300ms", err, time.Since(start), errDown)
		}
		short, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
		defer cancel()
		if _, err := f.Take(short, req); !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("Delay past the deadline: %v, want DeadlineExceeded", err)
		}

		f.Set(storetest.Fault{Hang: true})
		done := make(chan error)
		go func() {
			_, err := f.Take(ctx, req)
			done <- err
		}()
		synctest.Wait()
		select {
		case err := <-done:
			t.Fatalf("Hang: Take returned %v", err)
		default:
		}
		f.Fail(nil) // the server is back: the held call goes through
		if err := <-done; err != nil {
			t.Errorf("held call after healing: %v, want a decision", err)
		}
		if n := f.Takes(); n != 5 {
			t.Errorf("Takes() = %d, want 5", n)
		}
		if n := f.Acquires(); n != 1 {
			t.Errorf("Acquires() = %d, want 1", n)
		}
	})
}

// onlyTake is a store with nothing beyond Take and Close.
type onlyTake struct{}

func (onlyTake) Take(context.Context, store.Request) (window.Decision, error) {
	return window.Decision{}, nil
}
func (onlyTake) Close() error { return nil }

// TestFaultyForwards: Admin and Concurrency reach the inner store, or fail
// with ErrUnsupported when it lacks them; a Faulty store is never local.
func TestFaultyForwards(t *testing.T) {
	ctx := context.Background()
	p := window.Default()
	f := newFaulty(t)
	if store.IsLocal(f) {
		t.Error("a Faulty store says it is local")
	}
	if _, err := f.Take(ctx, store.Request{Policy: &p, Cost: 1}); err != nil {
		t.Fatal(err)
	}
	if d, err := f.Peek(ctx, store.Key{}, &p); err != nil || d.Windows[0].Remaining != 59 {
		t.Errorf("Peek through: %+v, %v", d, err)
	}
	if err := f.Reset(ctx, store.Key{}); err != nil {
		t.Errorf("Reset through: %v", err)
	}
	lease, ok, err := f.Acquire(ctx, store.Key{}, 1, time.Minute)
	if err != nil || !ok || f.Release(ctx, lease) != nil {
		t.Errorf("Acquire and Release through: %v, %v", ok, err)
	}
	bare := storetest.NewFaulty(onlyTake{})
	if _, err := bare.Peek(ctx, store.Key{}, &p); !errors.Is(err, storetest.ErrUnsupported) {
		t.Errorf("Peek on a store without Admin: %v, want ErrUnsupported", err)
	}
	if _, _, err := bare.Acquire(ctx, store.Key{}, 1, time.Minute); !errors.Is(err, storetest.ErrUnsupported) {
		t.Errorf("Acquire on a store without Concurrency: %v, want ErrUnsupported", err)
	}
}
