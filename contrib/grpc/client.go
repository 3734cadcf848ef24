package ratekitgrpc

import (
	"context"
	"math/rand/v2"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// RetryDelay returns the delay of the google.rpc.RetryInfo detail in
// err's gRPC status, and false when err carries none: the wait after which
// a call the interceptor refused would be admitted.
func RetryDelay(err error) (time.Duration, bool) {
	st, ok := status.FromError(err)
	if !ok || err == nil {
		return 0, false
	}
	for _, d := range st.Details() {
		if ri, ok := d.(*errdetails.RetryInfo); ok && ri.GetRetryDelay() != nil {
			if delay := ri.GetRetryDelay().AsDuration(); delay >= 0 {
				return delay, true
			}
		}
	}
	return 0, false
}

// RetryConfig configures [UnaryClientInterceptor]. The zero value makes
// at most 3 attempts, waits at most 10s at a time, and adds up to a tenth
// of each delay at random.
type RetryConfig struct {
	// Attempts is the most calls made for one invocation, the first
	// included. Zero means 3; 1 means no retry.
	Attempts int
	// MaxDelay is the longest wait before a retry: a refusal asking for
	// more is returned at once. Zero means 10s.
	MaxDelay time.Duration
	// Jitter is the largest random extra wait before the first retry, as a
	// fraction of the delay the server asked for; it doubles at each
	// further retry, so clients refused together spread out. Zero means
	// 0.1.
	Jitter float64
}

// UnaryClientInterceptor returns a grpc.UnaryClientInterceptor that
// retries a call ended with ResourceExhausted or Unavailable when its
// status carries a RetryInfo detail (as this package's server interceptor
// sends): it waits the delay plus jitter, as cfg says, and tries again.
// It never waits past the call's deadline, returns at once when the
// context ends, and returns the last error when the attempts run out. A
// status without RetryInfo is returned as it came: a server that does not
// say when to come back is not hammered.
//
// Only idempotent methods should be retried; mount it on the connections
// or calls of those.
func UnaryClientInterceptor(cfg RetryConfig) grpc.UnaryClientInterceptor {
	attempts, maxDelay, jitter := cfg.Attempts, cfg.MaxDelay, cfg.Jitter
	if attempts <= 0 {
		attempts = 3
	}
	if maxDelay <= 0 {
		maxDelay = 10 * time.Second
	}
	if jitter <= 0 {
		jitter = 0.1
	}
	return func(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
		for n := 1; ; n++ {
			err := invoker(ctx, method, req, reply, cc, opts...)
			if err == nil || n >= attempts {
				return err
			}
			if c := status.Code(err); c != codes.ResourceExhausted && c != codes.Unavailable {
				return err
			}
			delay, ok := RetryDelay(err)
			if !ok || delay > maxDelay {
				return err
			}
			wait := delay + time.Duration(rand.Float64()*jitter*float64(int64(1)<<(n-1))*float64(delay))
			if dl, ok := ctx.Deadline(); ok && time.Until(dl) < wait {
				return err
			}
			t := time.NewTimer(wait)
			select {
			case <-ctx.Done():
				t.Stop()
				return err
			case <-t.C:
			}
		}
	}
}
