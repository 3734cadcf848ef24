// Command example serves gRPC's health service behind ratekit, or calls it.
// Calls are limited to 60/min + 2/s per client by default, and the health
// service's Watch streams to 5 opens a minute; a known API key in x-api-key
// or authorization: Bearer metadata gets a bucket of its own.
//
//	go run ./example -addr 127.0.0.1:50051 &
//	go run ./example -addr 127.0.0.1:50051 -call 3
//	go run ./example -addr 127.0.0.1:50051 -call 3 -key demo-key-1 -retry
package main

import (
	"context"
	"flag"
	"fmt"
	"log"
	"net"
	"os"
	"os/signal"
	"syscall"
	"time"

	ratekitgrpc "github.com/ratekit/ratekit/contrib/grpc"
	"github.com/ratekit/ratekit/middleware"
	"github.com/ratekit/ratekit/window"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:50051", "address to serve on, or to call")
	calls := flag.Int("call", 0, "if set, call Check this many times as a client instead of serving")
	key := flag.String("key", "", "API key the client sends in x-api-key")
	retry := flag.Bool("retry", false, "the client retries refused calls after the RetryInfo delay")
	flag.Parse()
	if *calls > 0 {
		call(*addr, *calls, *key, *retry)
		return
	}
	serve(*addr)
}

func serve(addr string) {
	lim, err := middleware.New(middleware.Config{
		KeyValidator: func(_ context.Context, key string) (middleware.Client, bool) {
			return middleware.Client{}, key == "demo-key-1" || key == "demo-key-2"
		},
		Rules: []middleware.Rule{{
			Name: "watch", Routes: []string{"/grpc.health.v1.Health/Watch"},
			Policy: window.Policy{Windows: []window.Window{{Length: time.Minute, Limit: 5}}},
		}},
	})
	if err != nil {
		log.Fatal(err)
	}
	defer lim.Close()
	ic, err := ratekitgrpc.New(lim, ratekitgrpc.Config{})
	if err != nil {
		log.Fatal(err)
	}
	srv := grpc.NewServer(grpc.ChainUnaryInterceptor(ic.Unary), grpc.ChainStreamInterceptor(ic.Stream))
	healthpb.RegisterHealthServer(srv, health.NewServer())
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		log.Fatal(err)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	go func() {
		<-ctx.Done()
		srv.GracefulStop()
	}()
	log.Printf("serving grpc.health.v1.Health on %s", ln.Addr())
	if err := srv.Serve(ln); err != nil {
		log.Fatal(err)
	}
}

func call(addr string, n int, key string, retry bool) {
	opts := []grpc.DialOption{grpc.WithTransportCredentials(insecure.NewCredentials())}
	if retry {
		opts = append(opts, grpc.WithUnaryInterceptor(ratekitgrpc.UnaryClientInterceptor(ratekitgrpc.RetryConfig{})))
	}
	cc, err := grpc.NewClient("passthrough:///"+addr, opts...)
	if err != nil {
		log.Fatal(err)
	}
	defer cc.Close()
	client := healthpb.NewHealthClient(cc)
	for i := range n {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		if key != "" {
			ctx = metadata.AppendToOutgoingContext(ctx, "x-api-key", key)
		}
		var header metadata.MD
		began := time.Now()
		_, err := client.Check(ctx, &healthpb.HealthCheckRequest{}, grpc.Header(&header))
		cancel()
		delay, _ := ratekitgrpc.RetryDelay(err)
		fmt.Printf("call %d: %v after %v, remaining %v/%v, RetryInfo %v\n", i+1, status.Code(err),
			time.Since(began).Round(time.Millisecond), header.Get("x-ratelimit-remaining"),
			header.Get("x-ratelimit-remaining-second"), delay)
	}
}
