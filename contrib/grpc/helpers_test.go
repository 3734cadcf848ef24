package ratekitgrpc_test

import (
	"context"
	"io"
	"log/slog"
	"net"
	"sync"
	"testing"
	"time"

	ratekitgrpc "github.com/ratekit/ratekit/contrib/grpc"
	"github.com/ratekit/ratekit/middleware"
	"github.com/ratekit/ratekit/store/memory"
	"github.com/ratekit/ratekit/store/storetest"
	"github.com/ratekit/ratekit/window"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	testpb "google.golang.org/grpc/interop/grpc_testing"
)

// The full method names of the test service.
const (
	unaryCall   = "/grpc.testing.TestService/UnaryCall"
	emptyCall   = "/grpc.testing.TestService/EmptyCall"
	inputCall   = "/grpc.testing.TestService/StreamingInputCall"
	testService = "/grpc.testing.TestService/*"
)

// perMinute is a policy of n calls a minute.
func perMinute(n int) window.Policy {
	return window.Policy{Windows: []window.Window{{Length: time.Minute, Limit: n}}}
}

// seen records what the limiter reports, per call.
type seen struct {
	mu    sync.Mutex
	calls []string // "route method outcome"
}

func (s *seen) ObserveRequest(_ context.Context, route, method, outcome, _ string) {
	s.mu.Lock()
	s.calls = append(s.calls, route+" "+method+" "+outcome)
	s.mu.Unlock()
}
func (s *seen) ObserveDecision(context.Context, time.Duration) {}
func (s *seen) ObserveStoreError(context.Context, string)      {}
func (s *seen) ObserveFallback(bool)                           {}
func (s *seen) ObserveBreaker(int)                             {}
func (s *seen) ObserveDenyCacheHit(context.Context)            {}

func (s *seen) last() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.calls) == 0 {
		return ""
	}
	return s.calls[len(s.calls)-1]
}

// newLimiter returns a limiter on a memory store with a fake clock (unless
// cfg names a store), reporting to the returned observer.
func newLimiter(t *testing.T, cfg middleware.Config) (*middleware.Limiter, *seen) {
	t.Helper()
	if cfg.Store == nil {
		clk := storetest.NewClock(storetest.Start)
		mem, err := memory.New(memory.Config{Now: clk.Now})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { mem.Close() })
		cfg.Store = mem
	}
	obs := &seen{}
	cfg.Observer = obs
	cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	lim, err := middleware.New(cfg)
	if err != nil {
		t.Fatalf("middleware.New: %v", err)
	}
	t.Cleanup(func() { lim.Close() })
	return lim, obs
}

// service is the test service: UnaryCall and EmptyCall answer at once,
// StreamingInputCall counts the messages it receives.
type service struct {
	testpb.UnimplementedTestServiceServer
	mu    sync.Mutex
	calls int // handler invocations
}

func (s *service) hit() {
	s.mu.Lock()
	s.calls++
	s.mu.Unlock()
}

func (s *service) handled() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.calls
}

func (s *service) UnaryCall(context.Context, *testpb.SimpleRequest) (*testpb.SimpleResponse, error) {
	s.hit()
	return &testpb.SimpleResponse{Username: "ok"}, nil
}

func (s *service) EmptyCall(context.Context, *testpb.Empty) (*testpb.Empty, error) {
	s.hit()
	return &testpb.Empty{}, nil
}

func (s *service) StreamingInputCall(stream testpb.TestService_StreamingInputCallServer) error {
	s.hit()
	n := 0
	for {
		_, err := stream.Recv()
		if err == io.EOF {
			return stream.SendAndClose(&testpb.StreamingInputCallResponse{AggregatedPayloadSize: int32(n)})
		}
		if err != nil {
			return err
		}
		n++
	}
}

// server is a real gRPC server on a loopback port with the interceptor.
type server struct {
	addr string
	svc  *service
}

// start serves the test service on 127.0.0.1 behind an interceptor of lim
// built from cfg, with the unary and stream interceptors before.
func start(t *testing.T, lim *middleware.Limiter, cfg ratekitgrpc.Config, unary []grpc.UnaryServerInterceptor, stream []grpc.StreamServerInterceptor) *server {
	t.Helper()
	ic, err := ratekitgrpc.New(lim, cfg)
	if err != nil {
		t.Fatalf("ratekitgrpc.New: %v", err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer(
		grpc.ChainUnaryInterceptor(append(unary, ic.Unary)...),
		grpc.ChainStreamInterceptor(append(stream, ic.Stream)...),
	)
	s := &server{addr: ln.Addr().String(), svc: &service{}}
	testpb.RegisterTestServiceServer(srv, s.svc)
	go srv.Serve(ln)
	t.Cleanup(srv.Stop)
	return s
}

// client dials s from the loopback address from (127.0.0.1 when empty).
func (s *server) client(t *testing.T, from string, opts ...grpc.DialOption) testpb.TestServiceClient {
	t.Helper()
	if from != "" {
		d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(from)}}
		opts = append(opts, grpc.WithContextDialer(func(ctx context.Context, addr string) (net.Conn, error) {
			return d.DialContext(ctx, "tcp", addr)
		}))
	}
	opts = append(opts, grpc.WithTransportCredentials(insecure.NewCredentials()))
	cc, err := grpc.NewClient("passthrough:///"+s.addr, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cc.Close() })
	return testpb.NewTestServiceClient(cc)
}

// ctx returns a context for one call, ending with the test.
func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return c
}
