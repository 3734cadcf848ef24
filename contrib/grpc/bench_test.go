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
func BenchmarkUnary(b *testing.B) {
	for _, withLimiter := range []bool{false, true} {
		name := "loopback/grpc"
		if withLimiter {
			name = "loopback/grpc+ratekitgrpc"
		}
		b.Run(name, func(b *testing.B) {
			var opts []grpc.ServerOption
			if withLimiter {
				ic, err := ratekitgrpc.New(benchLimiter(b), ratekitgrpc.Config{})
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
			req := &testpb.SimpleRequest{}
			ctx := context.Background()
			if _, err := c.UnaryCall(ctx, req); err != nil { // connect outside the loop
				b.Fatal(err)
			}
			b.ReportAllocs()
			for b.Loop() {
				if _, err := c.UnaryCall(ctx, req); err != nil {
					b.Fatal(err)
				}
			}
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
		for b.Loop() {
			if _, err := ic.Unary(ctx, nil, info, handler); err != nil {
				b.Fatal(err)
			}
		}
	})
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
