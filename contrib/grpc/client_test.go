package ratekitgrpc_test

import (
	"context"
	"errors"
	"testing"
	"time"

	ratekitgrpc "github.com/ratekit/ratekit/contrib/grpc"
	"github.com/ratekit/ratekit/store/memory"
	"github.com/ratekit/ratekit/window"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"
)

// window200ms admits one call per 200ms.
var window200ms = window.Policy{Windows: []window.Window{{Length: 200 * time.Millisecond, Limit: 1}}}

// realClockStore is a memory store on the real clock, for the few tests
// that wait.
func realClockStore(t *testing.T) *memory.Store {
	t.Helper()
	s, err := memory.New(memory.Config{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// refused is a status error of code with a RetryInfo of delay.
func refused(code codes.Code, delay time.Duration) error {
	st, err := status.New(code, "no").WithDetails(&errdetails.RetryInfo{RetryDelay: durationpb.New(delay)})
	if err != nil {
		panic(err)
	}
	return st.Err()
}

func TestRetryDelay(t *testing.T) {
	for _, tc := range []struct {
		name  string
		err   error
		delay time.Duration
		ok    bool
	}{
		{"nil", nil, 0, false},
		{"not a status", errors.New("eof"), 0, false},
		{"status without details", status.Error(codes.ResourceExhausted, "no"), 0, false},
		{"RetryInfo", refused(codes.ResourceExhausted, 1500*time.Millisecond), 1500 * time.Millisecond, true},
		{"negative RetryInfo", refused(codes.ResourceExhausted, -time.Second), 0, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d, ok := ratekitgrpc.RetryDelay(tc.err)
			if d != tc.delay || ok != tc.ok {
				t.Errorf("RetryDelay(%v) = %v, %v; want %v, %v", tc.err, d, ok, tc.delay, tc.ok)
			}
		})
	}
}

// TestUnaryClientInterceptor drives the retrying interceptor with an
// invoker that answers from a script; delays are milliseconds.
func TestUnaryClientInterceptor(t *testing.T) {
	ms := time.Millisecond
	for _, tc := range []struct {
		name     string
		cfg      ratekitgrpc.RetryConfig
		deadline time.Duration // 0: none
		script   []error       // the invoker's answers, in order; then nil
		calls    int
		want     codes.Code
	}{
		{"success at once", ratekitgrpc.RetryConfig{}, 0, nil, 1, codes.OK},
		{"refused, then admitted", ratekitgrpc.RetryConfig{}, 0, []error{refused(codes.ResourceExhausted, ms)}, 2, codes.OK},
		{"unavailable with RetryInfo is retried", ratekitgrpc.RetryConfig{}, 0, []error{refused(codes.Unavailable, ms)}, 2, codes.OK},
		{"no RetryInfo: not retried", ratekitgrpc.RetryConfig{}, 0, []error{status.Error(codes.ResourceExhausted, "no")}, 1, codes.ResourceExhausted},
		{"another code: not retried", ratekitgrpc.RetryConfig{}, 0, []error{refused(codes.PermissionDenied, ms)}, 1, codes.PermissionDenied},
		{"attempts run out", ratekitgrpc.RetryConfig{}, 0,
			[]error{refused(codes.ResourceExhausted, ms), refused(codes.ResourceExhausted, ms), refused(codes.ResourceExhausted, ms)},
			3, codes.ResourceExhausted},
		{"Attempts 1: no retry", ratekitgrpc.RetryConfig{Attempts: 1}, 0, []error{refused(codes.ResourceExhausted, ms)}, 1, codes.ResourceExhausted},
		{"delay above MaxDelay", ratekitgrpc.RetryConfig{MaxDelay: ms}, 0, []error{refused(codes.ResourceExhausted, time.Second)}, 1, codes.ResourceExhausted},
		{"delay past the deadline", ratekitgrpc.RetryConfig{}, 50 * ms, []error{refused(codes.ResourceExhausted, time.Second)}, 1, codes.ResourceExhausted},
	} {
		t.Run(tc.name, func(t *testing.T) {
			calls := 0
			invoker := func(context.Context, string, any, any, *grpc.ClientConn, ...grpc.CallOption) error {
				calls++
				if calls <= len(tc.script) {
					return tc.script[calls-1]
				}
				return nil
			}
			c := context.Background()
			if tc.deadline > 0 {
				var cancel context.CancelFunc
				c, cancel = context.WithTimeout(c, tc.deadline)
				defer cancel()
			}
			began := time.Now()
			err := ratekitgrpc.UnaryClientInterceptor(tc.cfg)(c, "/a.B/C", nil, nil, nil, invoker)
			if status.Code(err) != tc.want || calls != tc.calls {
				t.Errorf("interceptor = %v after %d calls, want %v after %d", err, calls, tc.want, tc.calls)
			}
			if took := time.Since(began); took > 5*time.Second {
				t.Errorf("took %v", took)
			}
		})
	}
}

// TestRetryWaitsForTheDelay: the interceptor waits at least the delay the
// server asked for, and returns at once when the context ends meanwhile.
func TestRetryWaitsForTheDelay(t *testing.T) {
	invoker := func(context.Context, string, any, any, *grpc.ClientConn, ...grpc.CallOption) error {
		return refused(codes.ResourceExhausted, 100*time.Millisecond)
	}
	began := time.Now()
	ratekitgrpc.UnaryClientInterceptor(ratekitgrpc.RetryConfig{Attempts: 2})(context.Background(), "/a.B/C", nil, nil, nil, invoker)
	if took := time.Since(began); took < 100*time.Millisecond {
		t.Errorf("retried after %v, want at least the 100ms asked for", took)
	}
	c, cancel := context.WithCancel(context.Background())
	time.AfterFunc(20*time.Millisecond, cancel)
	began = time.Now()
	slow := func(context.Context, string, any, any, *grpc.ClientConn, ...grpc.CallOption) error {
		return refused(codes.ResourceExhausted, 5*time.Second)
	}
	err := ratekitgrpc.UnaryClientInterceptor(ratekitgrpc.RetryConfig{})(c, "/a.B/C", nil, nil, nil, slow)
	if took := time.Since(began); took > 2*time.Second || status.Code(err) != codes.ResourceExhausted {
		t.Errorf("cancelled wait returned %v after %v, want ResourceExhausted at once", err, took)
	}
}
