package benchmarks

import (
	"time"

	"github.com/ratekit/ratekit/middleware"
	"github.com/ratekit/ratekit/store/memory"
	"github.com/ratekit/ratekit/window"
)

// newRatekit is ratekit as documented: one middleware, both windows decided
// together by the exact sliding log in the default memory store.
func newRatekit(l Limits) (Middleware, func(), error) {
	return newRatekitWith(l, window.SlidingLog)
}

// RatekitCounter is ratekit in sliding-window-counter mode (the optional
// approximate algorithm), for the scenarios that compare its memory with the
// exact log's.
func RatekitCounter() Peer {
	return Peer{Name: "ratekit-counter", Clock: true, New: func(l Limits) (Middleware, func(), error) {
		return newRatekitWith(l, window.SlidingCounter)
	}}
}

func newRatekitWith(l Limits, alg window.Algorithm) (Middleware, func(), error) {
	s, err := memory.New(memory.Config{Now: l.Now})
	if err != nil {
		return nil, nil, err
	}
	p := policy(l)
	p.Algorithm = alg
	lim, err := middleware.New(middleware.Config{Policy: p, Store: s})
	if err != nil {
		s.Close()
		return nil, nil, err
	}
	return lim.Handler, func() { lim.Close(); s.Close() }, nil
}

// policy is l as a ratekit policy (SlidingLog, the exact default).
func policy(l Limits) window.Policy {
	var p window.Policy
	if l.PerMinute > 0 {
		p.Windows = append(p.Windows, window.Window{Length: time.Minute, Limit: l.PerMinute})
	}
	if l.PerSecond > 0 {
		p.Windows = append(p.Windows, window.Window{Length: time.Second, Limit: l.PerSecond})
	}
	return p
}
