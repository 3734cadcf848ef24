package ratekitgrpc_test

import (
	"context"
	"errors"
	"io"
	"net/netip"
	"strings"
	"testing"
	"time"

	ratekitgrpc "github.com/ratekit/ratekit/contrib/grpc"
	"github.com/ratekit/ratekit/middleware"
	"github.com/ratekit/ratekit/store/memory"
	"github.com/ratekit/ratekit/store/storetest"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	testpb "google.golang.org/grpc/interop/grpc_testing"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

func TestNewValidates(t *testing.T) {
	lim, _ := newLimiter(t, middleware.Config{})
	for _, tc := range []struct {
		name string
		cfg  ratekitgrpc.Config
		bad  []string // substrings of the error; none: valid
	}{
		{"zero", ratekitgrpc.Config{}, nil},
		{"service wildcard and method", ratekitgrpc.Config{Routes: []string{"/a.B/*", "/a.B/C"}}, nil},
		{"every mistake listed", ratekitgrpc.Config{
			Routes:            []string{"a.B/C", "/a.B", "/a.B/C/D", "//C"},
			KeyMetadata:       []string{"x api key", "grpc-status"},
			Metadata:          ratekitgrpc.MetadataNone + 1,
			StreamMessageCost: -1,
		}, []string{`Routes 0: "a.B/C"`, `Routes 1: "/a.B"`, `Routes 2: "/a.B/C/D"`, `Routes 3: "//C"`,
			`KeyMetadata 0`, `KeyMetadata 1`, "Metadata 3 unknown", "StreamMessageCost -1"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ratekitgrpc.New(lim, tc.cfg)
			if len(tc.bad) == 0 {
				if err != nil {
					t.Fatalf("New(%+v) = %v, want no error", tc.cfg, err)
				}
				return
			}
			if !errors.Is(err, ratekitgrpc.ErrInvalidConfig) {
				t.Fatalf("New(%+v) = %v, want ErrInvalidConfig", tc.cfg, err)
			}
			for _, s := range tc.bad {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("New error %q does not mention %q", err, s)
				}
			}
		})
	}
	if _, err := ratekitgrpc.New(nil, ratekitgrpc.Config{}); !errors.Is(err, ratekitgrpc.ErrInvalidConfig) {
		t.Errorf("New(nil) = %v, want ErrInvalidConfig", err)
	}
}

func TestRouteRules(t *testing.T) {
	rules := []middleware.Rule{
		{Name: "unary", Routes: []string{unaryCall}, Policy: perMinute(1)},
		{Name: "service", Routes: []string{testService}, Policy: perMinute(2)},
	}
	type call struct {
		empty  bool // EmptyCall, else UnaryCall
		want   codes.Code
		report string
	}
	for _, tc := range []struct {
		name   string
		routes []string
		calls  []call
	}{
		{"wildcard and exact method", []string{testService, unaryCall}, []call{
			{false, codes.OK, unaryCall + " OTHER allowed"},
			{false, codes.ResourceExhausted, unaryCall + " OTHER limited"},
			{true, codes.OK, testService + " OTHER allowed"},
			{true, codes.OK, testService + " OTHER allowed"},
			{true, codes.ResourceExhausted, testService + " OTHER limited"},
		}},
		{"wildcard covers the method not listed", []string{testService}, []call{
			{false, codes.OK, testService + " OTHER allowed"},
			{true, codes.OK, testService + " OTHER allowed"},
			{false, codes.ResourceExhausted, testService + " OTHER limited"},
		}},
		{"no Routes: full method names only", nil, []call{
			{false, codes.OK, unaryCall + " OTHER allowed"},
			{false, codes.ResourceExhausted, unaryCall + " OTHER limited"},
			{true, codes.OK, emptyCall + " OTHER allowed"}, // the default 60/min + 2/s
			{true, codes.OK, emptyCall + " OTHER allowed"},
			{true, codes.ResourceExhausted, emptyCall + " OTHER limited"},
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			lim, obs := newLimiter(t, middleware.Config{Rules: rules})
			c := start(t, lim, ratekitgrpc.Config{Routes: tc.routes}, nil, nil).client(t, "")
			for i, cl := range tc.calls {
				var err error
				if cl.empty {
					_, err = c.EmptyCall(ctx(t), &testpb.Empty{})
				} else {
					_, err = c.UnaryCall(ctx(t), &testpb.SimpleRequest{})
				}
				if got := status.Code(err); got != cl.want {
					t.Errorf("call %d = %v (%v), want %v", i, got, err, cl.want)
				}
				if got := obs.last(); got != cl.report {
					t.Errorf("call %d reported %q, want %q", i, got, cl.report)
				}
			}
		})
	}
}

func TestIdentity(t *testing.T) {
	validator := func(_ context.Context, key string) (middleware.Client, bool) {
		return middleware.Client{ID: "acct-" + strings.TrimSuffix(key, "-2")}, strings.HasPrefix(key, "k1")
	}
	// auth stands in for an authentication interceptor: x-user names the
	// caller.
	auth := func(ctx context.Context, req any, _ *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
		md, _ := metadata.FromIncomingContext(ctx)
		if u := md.Get("x-user"); len(u) == 1 {
			ctx = middleware.WithClient(ctx, middleware.Client{ID: u[0]})
		}
		return h(ctx, req)
	}
	type call struct {
		from string   // loopback address the client dials from
		md   []string // metadata pairs
		want codes.Code
	}
	for _, tc := range []struct {
		name     string
		identify bool
		keys     []string
		calls    []call
	}{
		{"peer address: two addresses, two buckets", false, nil, []call{
			{"127.0.0.1", nil, codes.OK}, {"127.0.0.2", nil, codes.OK}, {"127.0.0.1", nil, codes.ResourceExhausted},
		}},
		{"x-api-key: one client from two addresses", false, nil, []call{
			{"127.0.0.1", []string{"x-api-key", "k1"}, codes.OK},
			{"127.0.0.2", []string{"authorization", "Bearer k1"}, codes.ResourceExhausted},
			{"127.0.0.2", []string{"authorization", "bearer   k1-2"}, codes.ResourceExhausted}, // same account
			{"127.0.0.2", nil, codes.OK},
		}},
		{"unknown, malformed, doubled and Basic keys count by address", false, nil, []call{
			{"127.0.0.1", []string{"x-api-key", "nope"}, codes.OK},
			{"127.0.0.1", []string{"x-api-key", "k1 k1"}, codes.ResourceExhausted},
			{"127.0.0.1", []string{"x-api-key", "k1", "x-api-key", "k1"}, codes.ResourceExhausted},
			{"127.0.0.1", []string{"authorization", "Basic azE6"}, codes.ResourceExhausted},
			{"127.0.0.1", []string{"x-api-key", "k1"}, codes.OK},
		}},
		{"the first key present decides", false, nil, []call{
			{"127.0.0.1", []string{"x-api-key", "bad key", "authorization", "Bearer k1"}, codes.OK},
			{"127.0.0.1", []string{"authorization", "Bearer k1"}, codes.OK},
			{"127.0.0.1", nil, codes.ResourceExhausted},
		}},
		{"KeyMetadata names another key", false, []string{"X-Client-Key"}, []call{
			{"127.0.0.1", []string{"x-client-key", "k1"}, codes.OK},
			{"127.0.0.1", []string{"x-api-key", "k1"}, codes.OK}, // not read: by address
			{"127.0.0.1", []string{"x-client-key", "k1"}, codes.ResourceExhausted},
		}},
		{"Identify: the client the auth interceptor stored", true, nil, []call{
			{"127.0.0.1", []string{"x-user", "alice"}, codes.OK},
			{"127.0.0.2", []string{"x-user", "alice"}, codes.ResourceExhausted},
			{"127.0.0.1", []string{"x-user", "bob", "x-api-key", "k1"}, codes.OK}, // the client wins over the key
			{"127.0.0.2", []string{"x-api-key", "k1"}, codes.OK},
		}},
		{"exempt address", false, nil, []call{
			{"127.0.0.3", nil, codes.OK}, {"127.0.0.3", nil, codes.OK}, {"127.0.0.3", []string{"x-api-key", "k1"}, codes.OK},
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			lim, _ := newLimiter(t, middleware.Config{Policy: perMinute(1), KeyValidator: validator,
				ExemptIPs: []netip.Prefix{netip.MustParsePrefix("127.0.0.3/32")}})
			cfg := ratekitgrpc.Config{KeyMetadata: tc.keys}
			if tc.identify {
				cfg.Identify = ratekitgrpc.ClientFromContext
			}
			srv := start(t, lim, cfg, []grpc.UnaryServerInterceptor{auth}, nil)
			clients := map[string]testpb.TestServiceClient{}
			for i, cl := range tc.calls {
				c, ok := clients[cl.from]
				if !ok {
					c = srv.client(t, cl.from)
					clients[cl.from] = c
				}
				cx := metadata.AppendToOutgoingContext(ctx(t), cl.md...)
				_, err := c.UnaryCall(cx, &testpb.SimpleRequest{})
				if got := status.Code(err); got != cl.want {
					t.Errorf("call %d from %s %v = %v (%v), want %v", i, cl.from, cl.md, got, err, cl.want)
				}
			}
		})
	}
}

// TestRefusal checks everything a refused call carries: the code, the
// exact RetryInfo delay, and the rate-limit metadata where Config.Metadata
// puts it.
func TestRefusal(t *testing.T) {
	want := map[string]string{
		"x-ratelimit-limit": "1", "x-ratelimit-remaining": "0", "x-ratelimit-reset": "60",
		"retry-after": "60", "x-ratelimit-limited-by": "minute",
	}
	for _, tc := range []struct {
		name  string
		place ratekitgrpc.Metadata
	}{
		{"header", ratekitgrpc.MetadataHeader},
		{"trailer", ratekitgrpc.MetadataTrailer},
		{"none", ratekitgrpc.MetadataNone},
	} {
		t.Run(tc.name, func(t *testing.T) {
			lim, obs := newLimiter(t, middleware.Config{Policy: perMinute(1)})
			srv := start(t, lim, ratekitgrpc.Config{Metadata: tc.place}, nil, nil)
			c := srv.client(t, "")
			var header, trailer metadata.MD
			if _, err := c.UnaryCall(ctx(t), &testpb.SimpleRequest{}, grpc.Header(&header), grpc.Trailer(&trailer)); err != nil {
				t.Fatalf("first call: %v", err)
			}
			admitted := header
			if tc.place == ratekitgrpc.MetadataTrailer {
				admitted = trailer
			}
			if tc.place != ratekitgrpc.MetadataNone && first(admitted, "x-ratelimit-remaining") != "0" {
				t.Errorf("admitted call's metadata %v, want x-ratelimit-remaining 0", admitted)
			}
			header, trailer = nil, nil
			_, err := c.UnaryCall(ctx(t), &testpb.SimpleRequest{}, grpc.Header(&header), grpc.Trailer(&trailer))
			st := status.Convert(err)
			if st.Code() != codes.ResourceExhausted || st.Message() != "ratekit: rate limit exceeded (minute window)" {
				t.Errorf("second call = %v %q, want ResourceExhausted \"ratekit: rate limit exceeded (minute window)\"", st.Code(), st.Message())
			}
			// The clock stands still: the same call is admitted in exactly a minute.
			// The decision's own wait: a minute and the millisecond an entry
			// stays past its window's length (see window.Window).
			if d, ok := ratekitgrpc.RetryDelay(err); !ok || d != time.Minute+time.Millisecond {
				t.Errorf("RetryDelay = %v, %v; want 1m0.001s, true", d, ok)
			}
			got := header
			if tc.place == ratekitgrpc.MetadataTrailer {
				got = trailer
			}
			for k, v := range want {
				wantV := v
				if tc.place == ratekitgrpc.MetadataNone {
					wantV = ""
				}
				if g := first(got, k); g != wantV {
					t.Errorf("refusal metadata %s = %q, want %q", k, g, wantV)
				}
			}
			if n := srv.svc.handled(); n != 1 {
				t.Errorf("handler ran %d times, want 1", n)
			}
			if got, want := obs.last(), unaryCall+" OTHER limited"; got != want {
				t.Errorf("reported %q, want %q", got, want)
			}
		})
	}
}

// first returns md's first value of key, or "".
func first(md metadata.MD, key string) string {
	if v := md.Get(key); len(v) > 0 {
		return v[0]
	}
	return ""
}

func TestStoreDown(t *testing.T) {
	for _, tc := range []struct {
		name     string
		policy   middleware.FailurePolicy
		want     []codes.Code
		degraded string
		delay    time.Duration // RetryInfo of the last call
	}{
		{"FailOpen", middleware.FailOpen, []codes.Code{codes.OK, codes.OK, codes.OK}, "true", 0},
		{"FailClosed", middleware.FailClosed, []codes.Code{codes.Unavailable, codes.Unavailable}, "", time.Second},
		{"LocalFallback", middleware.LocalFallback, []codes.Code{codes.OK, codes.OK, codes.ResourceExhausted}, "true", -1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			mem, err := memory.New(memory.Config{})
			if err != nil {
				t.Fatal(err)
			}
			faulty := storetest.NewFaulty(mem)
			t.Cleanup(func() { faulty.Close() })
			faulty.Fail(errors.New("connection refused"))
			lim, obs := newLimiter(t, middleware.Config{Store: faulty, HashKey: []byte("k"), OnStoreError: tc.policy})
			srv := start(t, lim, ratekitgrpc.Config{}, nil, nil)
			c := srv.client(t, "")
			var header metadata.MD
			for i, want := range tc.want {
				header = nil
				_, err = c.UnaryCall(ctx(t), &testpb.SimpleRequest{}, grpc.Header(&header))
				if got := status.Code(err); got != want {
					t.Errorf("call %d with the store down = %v (%v), want %v", i, got, err, want)
				}
			}
			if got := first(header, "x-ratelimit-degraded"); got != tc.degraded {
				t.Errorf("x-ratelimit-degraded = %q, want %q", got, tc.degraded)
			}
			d, ok := ratekitgrpc.RetryDelay(err)
			switch {
			case tc.delay == 0 && ok:
				t.Errorf("RetryDelay = %v on an admitted call, want none", d)
			case tc.delay > 0 && d != tc.delay:
				t.Errorf("RetryDelay = %v, %v; want %v", d, ok, tc.delay)
			case tc.delay < 0 && (!ok || d <= 0 || d > time.Second):
				t.Errorf("RetryDelay = %v, %v; want the local fallback's, within a second", d, ok)
			}
			if tc.policy == middleware.FailClosed && srv.svc.handled() != 0 {
				t.Errorf("handler ran %d times under FailClosed, want 0", srv.svc.handled())
			}
			if faulty.Takes() == 0 {
				t.Error("the store was never asked")
			}
			if tc.policy != middleware.LocalFallback && !strings.HasSuffix(obs.last(), " error") {
				t.Errorf("reported %q, want outcome error", obs.last())
			}
		})
	}
}

func TestStreams(t *testing.T) {
	// send opens a StreamingInputCall, sends n messages and returns the
	// count the server saw, the error and the trailer.
	send := func(t *testing.T, c testpb.TestServiceClient, n int) (int32, error, metadata.MD) {
		t.Helper()
		s, err := c.StreamingInputCall(ctx(t))
		if err != nil {
			t.Fatal(err)
		}
		for range n {
			if err := s.Send(&testpb.StreamingInputCallRequest{}); err == io.EOF {
				break // the server ended the stream; CloseAndRecv says why
			} else if err != nil {
				t.Fatal(err)
			}
		}
		resp, err := s.CloseAndRecv()
		return resp.GetAggregatedPayloadSize(), err, s.Trailer()
	}
	t.Run("charged once when it opens", func(t *testing.T) {
		lim, obs := newLimiter(t, middleware.Config{Policy: perMinute(2)})
		srv := start(t, lim, ratekitgrpc.Config{}, nil, nil)
		c := srv.client(t, "")
		for i, want := range []codes.Code{codes.OK, codes.OK, codes.ResourceExhausted} {
			got, err, _ := send(t, c, 5)
			if status.Code(err) != want || (want == codes.OK && got != 5) {
				t.Errorf("stream %d = %d messages, %v; want 5, %v", i, got, err, want)
			}
		}
		if srv.svc.handled() != 2 {
			t.Errorf("handler ran %d times, want 2: a refused stream never reaches it", srv.svc.handled())
		}
		if got, want := obs.last(), inputCall+" OTHER limited"; got != want {
			t.Errorf("reported %q, want %q", got, want)
		}
	})
	t.Run("StreamMessageCost charges each message", func(t *testing.T) {
		lim, _ := newLimiter(t, middleware.Config{Policy: perMinute(4)})
		srv := start(t, lim, ratekitgrpc.Config{StreamMessageCost: 1}, nil, nil)
		c := srv.client(t, "")
		// The open costs 1, so three messages pass and the fourth is refused.
		got, err, trailer := send(t, c, 10)
		if status.Code(err) != codes.ResourceExhausted || got != 0 {
			t.Errorf("stream = %d, %v; want ResourceExhausted", got, err)
		}
		if d, ok := ratekitgrpc.RetryDelay(err); !ok || d != time.Minute+time.Millisecond {
			t.Errorf("RetryDelay = %v, %v; want 1m0.001s", d, ok)
		}
		if first(trailer, "x-ratelimit-remaining") != "0" || first(trailer, "retry-after") != "60" {
			t.Errorf("trailer %v, want x-ratelimit-remaining 0 and retry-after 60", trailer)
		}
	})
}

// TestRetryingClient runs the client interceptor against the server
// interceptor over loopback: a refused call is retried after the delay
// its RetryInfo gives, and succeeds. Real time: about 200ms.
func TestRetryingClient(t *testing.T) {
	lim, _ := newLimiter(t, middleware.Config{Store: realClockStore(t), Policy: window200ms})
	srv := start(t, lim, ratekitgrpc.Config{}, nil, nil)
	c := srv.client(t, "", grpc.WithUnaryInterceptor(ratekitgrpc.UnaryClientInterceptor(ratekitgrpc.RetryConfig{})))
	began := time.Now()
	for i := range 2 {
		if _, err := c.UnaryCall(ctx(t), &testpb.SimpleRequest{}); err != nil {
			t.Fatalf("call %d through the retrying client: %v", i, err)
		}
	}
	if took := time.Since(began); took < 150*time.Millisecond {
		t.Errorf("two calls under 1 per 200ms took %v, want a wait of about 200ms", took)
	}
	if srv.svc.handled() != 2 {
		t.Errorf("handler ran %d times, want 2", srv.svc.handled())
	}
}
