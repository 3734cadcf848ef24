package ratekitgrpc_test

import (
	"context"
	"io"
	"log/slog"
	"net"
	"sync/atomic"
	"testing"
	"time"

	ratekitgrpc "github.com/ratekit/ratekit/contrib/grpc"
	"github.com/ratekit/ratekit/middleware"
	"github.com/ratekit/ratekit/store/memory"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	testpb "google.golang.org/grpc/interop/grpc_testing"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/peer"
)

// BenchmarkUnary measures one admitted unary call, UnaryCall from one
// client over loopback TCP, with a limiter of the default policy (60/min +
// 2/s) on a memory store whose clock advances a second per decision, so
// every call is admitted and the store's log keeps its size:
//
//   - loopback/grpc: grpc-go's own per-call cost, no interceptor;
//   - loopback/grpc+ratekitgrpc: the same with the interceptor, and the
//     rate-limit values sent as header metadata;
//   - interceptor: ic.Unary called directly with a peer and metadata in
//     the context and a handler that does nothing, the interceptor's cost
//     without the network.
//
// Besides ns/op each reports cpu-ns/op (see loopCPU): the process's CPU
// time per call over loopback, where client and server goroutines share
// the cores, and the benchmark thread's for the interceptor alone.
func BenchmarkUnary(b *testing.B) {
	for _, withLimiter := range []bool{false, true} {
		name := "loopback/grpc"
		if withLimiter {
			name = "loopback/grpc+ratekitgrpc"
		}
		b.Run(name, func(b *testing.B) {
			var cfg *ratekitgrpc.Config
			if withLimiter {
				cfg = &ratekitgrpc.Config{}
			}
			c := loopbackClient(b, cfg)
			req := &testpb.SimpleRequest{}
			ctx := context.Background()
			b.ReportAllocs()
			loopCPU(b, false, func() {
				if _, err := c.UnaryCall(ctx, req); err != nil {
					b.Fatal(err)
				}
			})
		})
	}
	b.Run("interceptor", func(b *testing.B) {
		ic, err := ratekitgrpc.New(benchLimiter(b), ratekitgrpc.Config{Metadata: ratekitgrpc.MetadataNone})
		if err != nil {
			b.Fatal(err)
		}
		ctx := peer.NewContext(context.Background(), &peer.Peer{Addr: &net.TCPAddr{IP: net.IPv4(192, 0, 2, 1), Port: 40000}})
		ctx = metadata.NewIncomingContext(ctx, metadata.Pairs("user-agent", "grpc-go/1.85.0"))
		info := &grpc.UnaryServerInfo{FullMethod: unaryCall}
		handler := func(context.Context, any) (any, error) { return nil, nil }
		b.ReportAllocs()
		loopCPU(b, true, func() {
			if _, err := ic.Unary(ctx, nil, info, handler); err != nil {
				b.Fatal(err)
			}
		})
	})
}

// BenchmarkUnaryShare is BenchmarkUnary's loopback comparison made robust
// to a busy machine: calls through a server without the interceptor, one
// with it sending no metadata, and one with it sending the rate-limit
// values as header metadata (the default) alternate in blocks of 32, so
// all three are sampled in the same instants whatever else the machine
// does. It reports each one's wall time and process CPU time per call,
// and the interceptor's CPU overhead per call in both configurations.
func BenchmarkUnaryShare(b *testing.B) {
	const block = 32
	clients := [3]testpb.TestServiceClient{
		loopbackClient(b, nil),
		loopbackClient(b, &ratekitgrpc.Config{Metadata: ratekitgrpc.MetadataNone}),
		loopbackClient(b, &ratekitgrpc.Config{}),
	}
	names := [3]string{"grpc", "grpc+ratekitgrpc/nometadata", "grpc+ratekitgrpc"}
	var wall, cpu [3]time.Duration
	req := &testpb.SimpleRequest{}
	ctx := context.Background()
	if _, ok := cpuTime(0); !ok {
		b.Skip("no process CPU time on this platform")
	}
	b.ReportAllocs()
	for b.Loop() {
		for i, c := range clients {
			c0, _ := cpuTime(0)
			t0 := time.Now()
			for range block {
				if _, err := c.UnaryCall(ctx, req); err != nil {
					b.Fatal(err)
				}
			}
			wall[i] += time.Since(t0)
			c1, _ := cpuTime(0)
			cpu[i] += c1 - c0
		}
	}
	per := func(d time.Duration) float64 { return float64(d) / float64(b.N*block) }
	for i, name := range names {
		b.ReportMetric(per(wall[i]), name+"-ns/call")
		b.ReportMetric(per(cpu[i]), name+"-cpu-ns/call")
	}
	b.ReportMetric(per(cpu[1]-cpu[0]), "nometadata-overhead-cpu-ns/call")
	b.ReportMetric(per(cpu[2]-cpu[0]), "overhead-cpu-ns/call")
}

// loopbackClient serves the test service on a loopback port, with an
// interceptor configured by cfg on a limiter of its own unless cfg is
// nil, and returns a connected client.
func loopbackClient(b *testing.B, cfg *ratekitgrpc.Config) testpb.TestServiceClient {
	b.Helper()
	var opts []grpc.ServerOption
	if cfg != nil {
		ic, err := ratekitgrpc.New(benchLimiter(b), *cfg)
		if err != nil {
			b.Fatal(err)
		}
		opts = append(opts, grpc.UnaryInterceptor(ic.Unary))
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	srv := grpc.NewServer(opts...)
	testpb.RegisterTestServiceServer(srv, &service{})
	go srv.Serve(ln)
	b.Cleanup(srv.Stop)
	cc, err := grpc.NewClient("passthrough:///"+ln.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { cc.Close() })
	c := testpb.NewTestServiceClient(cc)
	if _, err := c.UnaryCall(context.Background(), &testpb.SimpleRequest{}); err != nil { // connect outside the loop
		b.Fatal(err)
	}
	return c
}

// benchLimiter returns a limiter with the default policy on a memory
// store whose clock advances a second per decision.
func benchLimiter(b *testing.B) *middleware.Limiter {
	b.Helper()
	var n atomic.Int64
	start := time.UnixMilli(1_700_000_000_000)
	st, err := memory.New(memory.Config{Now: func() time.Time { return start.Add(time.Duration(n.Add(1)) * time.Second) }})
	if err != nil {
		b.Fatal(err)
	}
	lim, err := middleware.New(middleware.Config{Store: st, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { lim.Close(); st.Close() })
	return lim
}
