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
	s, err := memory.New(memory.Config{Now: l.Now})
	if err != nil {
		return nil, nil, err
	}
	lim, err := middleware.New(middleware.Config{Policy: policy(l), Store: s})
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
