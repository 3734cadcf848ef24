package ratekitgrpc

import (
	"testing"
	"time"

	"github.com/ratekit/ratekit/middleware"
	"github.com/ratekit/ratekit/window"
)

func TestRetryDelayOfResult(t *testing.T) {
	withReset := func(retryAfter, reset time.Duration) *middleware.Result {
		d := window.Decision{RetryAfter: retryAfter, N: 2, Limiting: 1}
		d.Windows[0].Reset = time.Hour // not the binding window
		d.Windows[1].Reset = reset
		return &middleware.Result{Decision: d}
	}
	for _, tc := range []struct {
		name string
		res  *middleware.Result
		want time.Duration
	}{
		{"RetryAfter exactly", withReset(1500*time.Millisecond, time.Second), 1500 * time.Millisecond},
		{"never before the binding window resets", withReset(200*time.Millisecond, 2*time.Second), 2 * time.Second},
		{"a binding window out of range is ignored", &middleware.Result{Decision: window.Decision{RetryAfter: time.Second, Limiting: 3, N: 1}}, time.Second},
		{"at least a millisecond", &middleware.Result{}, time.Millisecond},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := retryDelay(tc.res); got != tc.want {
				t.Errorf("retryDelay(%+v) = %v, want %v", tc.res.Decision, got, tc.want)
			}
		})
	}
}

func TestRoute(t *testing.T) {
	i := &Interceptor{exact: map[string]bool{"/a.B/Get": true}, services: map[string]string{"/a.B/": "/a.B/*"}}
	for _, tc := range []struct{ full, want string }{
		{"/a.B/Get", "/a.B/Get"},
		{"/a.B/List", "/a.B/*"},
		{"/a.C/List", "/a.C/List"},
		{"/a.BB/List", "/a.BB/List"},
		{"odd", "odd"},
	} {
		if got := i.route(tc.full); got != tc.want {
			t.Errorf("route(%q) = %q, want %q", tc.full, got, tc.want)
		}
	}
}
