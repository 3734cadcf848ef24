package ratekitgrpc_test

import (
	"context"
	"fmt"
	"log"
	"net"
	"time"

	ratekitgrpc "github.com/ratekit/ratekit/contrib/grpc"
	"github.com/ratekit/ratekit/middleware"
	"github.com/ratekit/ratekit/store/memory"
	"github.com/ratekit/ratekit/store/storetest"
	"github.com/ratekit/ratekit/window"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

// A gRPC server limits its calls with the interceptors; a rule names the
// health service's methods with a service wildcard. The third call within
// the minute is refused with ResourceExhausted, a RetryInfo of the exact
// wait, and the rate-limit values as header metadata.
func ExampleNew() {
	clk := storetest.NewClock(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)) // time stands still
	st, err := memory.New(memory.Config{Now: clk.Now})
	if err != nil {
		log.Fatal(err)
	}
	defer st.Close()
	lim, err := middleware.New(middleware.Config{
		Store: st,
		Rules: []middleware.Rule{{Name: "health", Routes: []string{"/grpc.health.v1.Health/*"},
			Policy: window.Policy{Windows: []window.Window{{Length: time.Minute, Limit: 2}}}}},
	})
	if err != nil {
		log.Fatal(err)
	}
	defer lim.Close()
	ic, err := ratekitgrpc.New(lim, ratekitgrpc.Config{Routes: []string{"/grpc.health.v1.Health/*"}})
	if err != nil {
		log.Fatal(err)
	}

	srv := grpc.NewServer(grpc.ChainUnaryInterceptor(ic.Unary), grpc.ChainStreamInterceptor(ic.Stream))
	healthpb.RegisterHealthServer(srv, health.NewServer())
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	go srv.Serve(ln)
	defer srv.Stop()

	cc, err := grpc.NewClient("passthrough:///"+ln.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		log.Fatal(err)
	}
	defer cc.Close()
	client := healthpb.NewHealthClient(cc)
	for range 3 {
		var header metadata.MD
		_, err := client.Check(context.Background(), &healthpb.HealthCheckRequest{}, grpc.Header(&header))
		delay, _ := ratekitgrpc.RetryDelay(err)
		fmt.Printf("%v remaining %v retry-after %v, RetryInfo %v\n",
			status.Code(err), header.Get("x-ratelimit-remaining"), header.Get("retry-after"), delay)
	}
	// Output:
	// OK remaining [1] retry-after [], RetryInfo 0s
	// OK remaining [0] retry-after [], RetryInfo 0s
	// ResourceExhausted remaining [0] retry-after [60], RetryInfo 1m0.001s
}
