// Command client sends N GET requests to a rate-limited API through
// ratekit's client transport, C at a time, and prints what happened as its
// last line, one JSON object:
//
//	go run ./examples/basic &
//	go run ./examples/client -url http://localhost:8080/v1/people -n 20 -c 4
//	{"sent":20,"ok":20,"limited":0,"retries":0,"failed":0,"elapsed_ms":9004}
//
// ok counts requests that ended 2xx, limited the 429 answers seen (retried
// or not), retries the requests sent again, failed the requests that never
// succeeded. The exit status is 0 when none failed, 1 otherwise, 2 for bad
// flags. With -key, the key is sent in -key-header (X-API-Key by default)
// and the quota is tracked per key. Anything unusual goes to stderr; the
// key never does.
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ratekit/ratekit/client"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// summary is the last line of output. Field order is the contract.
type summary struct {
	Sent      int   `json:"sent"`
	OK        int   `json:"ok"`
	Limited   int64 `json:"limited"`
	Retries   int64 `json:"retries"`
	Failed    int   `json:"failed"`
	ElapsedMS int64 `json:"elapsed_ms"`
}

// counter is a client.Observer counting 429s and retries.
type counter struct {
	limited, retries atomic.Int64
}

func (c *counter) ObserveWait(string, string, time.Duration) {}
func (c *counter) ObserveGiveUp(string, int, string)         {}
func (c *counter) ObserveRetry(string, int, time.Duration)   { c.retries.Add(1) }
func (c *counter) ObserveRefusal(_ string, status int, _ time.Duration) {
	if status == http.StatusTooManyRequests {
		c.limited.Add(1)
	}
}

// run is the command: args without the program name. It returns the exit
// status.
func run(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("client", flag.ContinueOnError)
	fs.SetOutput(stderr)
	target := fs.String("url", "", "URL to GET (required)")
	n := fs.Int("n", 10, "number of requests")
	c := fs.Int("c", 1, "requests in flight at once")
	key := fs.String("key", "", "API key to send; empty sends none")
	keyHeader := fs.String("key-header", "X-API-Key", "header carrying -key (quota is tracked per key)")
	maxAttempts := fs.Int("max-attempts", 5, "attempts per request, the first included")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	usage := func(format string, a ...any) int {
		fmt.Fprintf(stderr, "client: "+format+"\n", a...)
		fs.Usage()
		return 2
	}
	u, err := url.Parse(*target)
	switch {
	case *target == "":
		return usage("-url is required")
	case err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "":
		return usage("-url %q: want an http or https URL", *target)
	case *n < 0:
		return usage("-n %d: want 0 or more", *n)
	case *c < 1:
		return usage("-c %d: want 1 or more", *c)
	case *maxAttempts < 1:
		return usage("-max-attempts %d: want 1 or more", *maxAttempts)
	case fs.NArg() > 0:
		return usage("unexpected arguments %q", fs.Args())
	}

	var seen counter
	cfg := client.Config{
		MaxAttempts: *maxAttempts,
		Observer:    &seen,
		Logger:      slog.New(slog.NewTextHandler(stderr, nil)),
	}
	if *key != "" {
		cfg.KeyHeader = *keyHeader
	}
	tr, err := client.New(cfg)
	if err != nil {
		fmt.Fprintln(stderr, err) // names the flag's field: -key-header is KeyHeader
		return 2
	}
	hc := &http.Client{Transport: tr}
	defer hc.CloseIdleConnections()

	var mu sync.Mutex
	ok := 0
	jobs := make(chan int)
	var wg sync.WaitGroup
	start := time.Now()
	for range *c {
		wg.Go(func() {
			for i := range jobs {
				status, err := get(hc, *target, *keyHeader, *key)
				switch {
				case err != nil:
					fmt.Fprintf(stderr, "request %d: %v\n", i, err)
				case status < 200 || status > 299:
					fmt.Fprintf(stderr, "request %d: status %d\n", i, status)
				default:
					mu.Lock()
					ok++
					mu.Unlock()
				}
			}
		})
	}
	for i := range *n {
		jobs <- i
	}
	close(jobs)
	wg.Wait()

	s := summary{
		Sent:      *n,
		OK:        ok,
		Limited:   seen.limited.Load(),
		Retries:   seen.retries.Load(),
		Failed:    *n - ok,
		ElapsedMS: time.Since(start).Milliseconds(),
	}
	line, _ := json.Marshal(s) // a struct of numbers: cannot fail
	fmt.Fprintf(stdout, "%s\n", line)
	if s.Failed > 0 {
		return 1
	}
	return 0
}

// get sends one GET, the key in header h when key is set, reads the body
// to the end so the connection is reused, and returns the status.
func get(hc *http.Client, target, h, key string) (int, error) {
	req, err := http.NewRequest(http.MethodGet, target, nil)
	if err != nil {
		return 0, err
	}
	if key != "" {
		req.Header.Set(h, key)
	}
	resp, err := hc.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	if _, err := io.Copy(io.Discard, resp.Body); err != nil {
		return 0, err
	}
	return resp.StatusCode, nil
}
