package redis_test

import (
	"context"
	"fmt"
	"log"
	"time"

	"github.com/alicebob/miniredis/v2"
	goredis "github.com/redis/go-redis/v9"

	"github.com/ratekit/ratekit/store"
	redisstore "github.com/ratekit/ratekit/store/redis"
	"github.com/ratekit/ratekit/window"
)

func ExampleNew() {
	srv, err := miniredis.Run() // in production: your Redis address
	if err != nil {
		log.Fatal(err)
	}
	defer srv.Close()

	client := goredis.NewClient(&goredis.Options{
		Addr:                  srv.Addr(),
		ContextTimeoutEnabled: true, // the store's 50ms timeout must reach the socket
		MaxRetries:            -1,   // a retried decision could count twice
	})
	defer client.Close() // the store never closes a client it did not create

	st, err := redisstore.New(client, redisstore.Config{
		// A fixed clock so this example's output never changes; leave Now
		// nil in production to use the Redis server's clock.
		Now: func() time.Time { return time.UnixMilli(1_700_000_000_000) },
	})
	if err != nil {
		log.Fatal(err)
	}
	defer st.Close()

	p := window.Default() // 60 per minute and 2 per second
	var key store.Key     // the middleware derives it with a keyed hash
	for range 3 {
		d, err := st.Take(context.Background(), store.Request{Key: key, Policy: &p, Cost: 1})
		if err != nil {
			log.Fatal(err) // the middleware applies its failure policy
		}
		fmt.Printf("allowed=%v remaining=%d/%d retry-after=%v\n",
			d.Allowed, d.Windows[0].Remaining, d.Windows[1].Remaining, d.RetryAfter)
	}
	// Output:
	// allowed=true remaining=59/1 retry-after=0s
	// allowed=true remaining=58/0 retry-after=0s
	// allowed=false remaining=58/0 retry-after=1.001s
}
