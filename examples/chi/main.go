// Command chi serves a small API on chi with everything ratekit offers in a
// few lines of configuration: the default 60/min + 2/s, a stricter limit on
// POST /v1/people (10/min + 1/s), an exempt health check, a choice of header
// style and 429 body, API keys read from the headers you name, Redis or
// memory, and Prometheus metrics on /metrics.
//
// The limiter is mounted inside the /v1 sub-router, the usual chi layout;
// its rules still name the full patterns ("/v1/people").
//
//	go run ./examples/chi -addr :8080 -headers ietf -envelope problem
//	go run ./examples/chi -key-headers X-API-Key,X-Client-ID
//	go run ./examples/chi -redis redis://127.0.0.1:6379/0
//
// # A configuration file
//
// With -config FILE the whole limiter comes from a YAML or JSON file (see
// docs/config.md; config/testdata holds one per published contract): the
// policy, rules, plans, client policies, identity, store, failure policy,
// headers and body. The flags that say the same things (-redis, -hash-key,
// -headers, -envelope) cannot be combined with it. -keys still names the
// known API keys, which a file never holds, as KEY, KEY:CLIENT or
// KEY:CLIENT:PLAN, so that the file's client_policies and plans apply to
// a key's client. -key-headers applies when the file does not set
// identity.key_headers; when it does, the file wins.
//
//	RATEKIT_HASH_KEY=... go run ./examples/chi -config ratekit.yaml -keys k1:acme,k2:initech:enterprise
//
// An invalid file at start is printed on stderr, every problem with its
// file:line:column and field, and the command exits with status 2. On
// SIGHUP it reads the file again: a valid file's policy, rules, plans and
// client policies apply from the next request on, counts kept; a changed
// field that only a restart applies (the store, the header style, the
// failure policy...) is logged as such; an invalid file is logged, and the
// running configuration stays.
//
//	kill -HUP $(pgrep -f examples/chi)
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	goredis "github.com/redis/go-redis/v9"

	"github.com/ratekit/ratekit/config"
	"github.com/ratekit/ratekit/headers"
	"github.com/ratekit/ratekit/metrics"
	"github.com/ratekit/ratekit/middleware"
	"github.com/ratekit/ratekit/store"
	"github.com/ratekit/ratekit/store/memory"
	redisstore "github.com/ratekit/ratekit/store/redis"
	"github.com/ratekit/ratekit/window"
)

// options are the command's flags.
type options struct {
	keys       []string // KEY, KEY:CLIENT or KEY:CLIENT:PLAN
	keyHeaders []string // nil: X-API-Key, Authorization
	redisURL   string   // empty: memory store
	hashKey    string
	headers    string
	envelope   string
	// file, from -config, replaces every flag above but keys (and
	// keyHeaders, when the file sets no key_headers).
	file *config.File
}

// fileFlags are the flags a configuration file replaces, with the field
// of the file that says the same.
var fileFlags = map[string]string{"redis": "store", "hash-key": "hash_key_env", "headers": "headers", "envelope": "envelope"}

func main() {
	addr := flag.String("addr", ":8080", "listen address")
	keys := flag.String("keys", "demo-key-1,demo-key-2", "comma-separated valid API keys, each KEY, KEY:CLIENT or KEY:CLIENT:PLAN")
	keyHeaders := flag.String("key-headers", "X-API-Key,Authorization", "comma-separated headers an API key is read from, in order; Authorization means its Bearer scheme")
	configPath := flag.String("config", "", "configuration file, YAML or JSON (docs/config.md); re-read on SIGHUP")
	var o options
	flag.StringVar(&o.redisURL, "redis", "", "Redis URL; empty keeps limits in memory")
	flag.StringVar(&o.hashKey, "hash-key", "demo-hash-key-change-me", "secret store keys are derived from (instances sharing Redis need the same)")
	flag.StringVar(&o.headers, "headers", "lindris", "header style: lindris, scalekit, kinde or ietf")
	flag.StringVar(&o.envelope, "envelope", "lindris", "429 body: lindris, authmatech or problem")
	flag.Parse()
	o.keys = strings.Split(*keys, ",")
	for _, h := range strings.Split(*keyHeaders, ",") {
		if h = strings.TrimSpace(h); h != "" {
			o.keyHeaders = append(o.keyHeaders, h)
		}
	}

	if *configPath != "" {
		var clash []string
		keyHeadersSet := false
		flag.Visit(func(f *flag.Flag) {
			if field, ok := fileFlags[f.Name]; ok {
				clash = append(clash, fmt.Sprintf("-%s (the file's %s says it)", f.Name, field))
			}
			keyHeadersSet = keyHeadersSet || f.Name == "key-headers"
		})
		if len(clash) > 0 {
			fmt.Fprintf(os.Stderr, "chi: -config cannot be combined with %s\n", strings.Join(clash, ", "))
			os.Exit(2)
		}
		f, err := config.Load(*configPath)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(2)
		}
		if keyHeadersSet && f.Identity.KeyHeaders != nil {
			log.Printf("-key-headers ignored: %s sets identity.key_headers", *configPath)
		}
		o.file = f
	}

	srv, err := newServer(o)
	if err != nil {
		if o.file != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(2)
		}
		log.Fatal(err)
	}
	defer srv.close()
	if o.file != nil {
		hup := make(chan os.Signal, 1)
		signal.Notify(hup, syscall.SIGHUP)
		go func() {
			running := o.file
			for range hup {
				running = reload(srv.lim, running, *configPath, log.Default())
			}
		}()
	}
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		log.Fatal(err)
	}
	hs := &http.Server{Handler: srv, ReadHeaderTimeout: 5 * time.Second}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	go func() {
		<-ctx.Done()
		shutdown, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		hs.Shutdown(shutdown)
	}()
	log.Printf("listening on %s: GET/POST /v1/people, GET /healthz, GET /metrics", ln.Addr())
	if err := hs.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
		log.Fatal(err)
	}
}

// reload reads the file at path again and applies what a running limiter
// can take: the policy, rules, plans and client policies, from the next
// request on, counts kept. A changed field that only a restart applies is
// logged; an invalid file is logged and changes nothing. It returns the
// configuration now in force.
func reload(lim *middleware.Limiter, running *config.File, path string, logger *log.Logger) *config.File {
	next, err := config.Load(path)
	if err != nil {
		logger.Printf("reload of %s refused; the running configuration stays:\n%v", path, err)
		return running
	}
	if err := lim.SetLimits(next.Limits); err != nil {
		logger.Printf("reload of %s refused by the limiter; the running configuration stays:\n%v", path, err)
		return running
	}
	logger.Printf("reloaded %s: policy, rules, plans and client policies apply from the next request", path)
	for _, field := range running.NeedsRestart(next) {
		logger.Printf("%s: %s changed; it needs a restart, the running value stays", path, field)
	}
	inForce := *running
	inForce.Limits = next.Limits
	return &inForce
}

var styles = map[string]headers.Style{
	"lindris": headers.Lindris{}, "scalekit": headers.Scalekit{}, "kinde": headers.Kinde{}, "ietf": headers.IETF{},
}

var envelopes = map[string]headers.Envelope{
	"lindris": headers.LindrisBody{}, "authmatech": headers.AuthmatechBody{}, "problem": headers.ProblemBody{},
}

// server is the command's router with its limiter.
type server struct {
	http.Handler
	lim   *middleware.Limiter
	close func() // releases the limiter and the store
}

// newServer builds the router, its limiter and the store: from o.file
// when set, else from the flags.
func newServer(o options) (*server, error) {
	var cfg middleware.Config
	var closers []func()
	closeAll := func() {
		for _, c := range closers {
			c()
		}
	}
	if o.file != nil {
		var closer io.Closer
		var err error
		if cfg, closer, err = o.file.Build(); err != nil {
			return nil, err
		}
		closers = append(closers, func() { closer.Close() })
		if cfg.KeyHeaders == nil {
			cfg.KeyHeaders = o.keyHeaders
		}
	} else {
		var closeStore func()
		var err error
		if cfg, closeStore, err = flagConfig(o); err != nil {
			return nil, err
		}
		closers = append(closers, closeStore)
	}

	col := metrics.Config{Store: "redis"}
	if mem, ok := cfg.Store.(*memory.Store); ok {
		col.Store, col.Keys = "memory", mem
	}
	collector := metrics.New(col)
	reg := prometheus.NewRegistry()
	reg.MustRegister(collector)
	cfg.Observer = collector
	cfg.KeyValidator = validator(o.keys)

	lim, err := middleware.New(cfg)
	if err != nil {
		closeAll()
		return nil, err
	}
	closers = append([]func(){func() { lim.Close() }}, closers...)

	r := chi.NewRouter()
	r.Get("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}).ServeHTTP) // outside the limiter
	// Exempt by its rule, and counted as such in the metrics.
	r.With(lim.Handler).Get("/healthz", func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("ok\n")) })
	r.Route("/v1", func(r chi.Router) {
		r.Use(lim.Handler)
		r.Get("/people", listPeople)
		r.Post("/people", createPerson)
	})
	return &server{Handler: r, lim: lim, close: closeAll}, nil
}

// flagConfig is the limiter's configuration when no file is given: the
// store, header style and body the flags name, and the example's rules. It
// returns with it a function that closes the store (and its Redis client).
func flagConfig(o options) (middleware.Config, func(), error) {
	style, ok := styles[o.headers]
	if !ok {
		return middleware.Config{}, nil, fmt.Errorf("-headers %q: want lindris, scalekit, kinde or ietf", o.headers)
	}
	envelope, ok := envelopes[o.envelope]
	if !ok {
		return middleware.Config{}, nil, fmt.Errorf("-envelope %q: want lindris, authmatech or problem", o.envelope)
	}
	var st store.Store
	var closeStore func()
	if o.redisURL == "" {
		mem, err := memory.New(memory.Config{})
		if err != nil {
			return middleware.Config{}, nil, err
		}
		st, closeStore = mem, func() { mem.Close() }
	} else {
		opt, err := goredis.ParseURL(o.redisURL)
		if err != nil {
			return middleware.Config{}, nil, err
		}
		opt.ContextTimeoutEnabled, opt.MaxRetries = true, -1 // deadlines honoured; a lost reply never counted twice
		opt.DialerRetries = 1                                // Redis down: fail at once, not after the timeout
		client := goredis.NewClient(opt)
		rs, err := redisstore.New(client, redisstore.Config{})
		if err != nil {
			client.Close()
			return middleware.Config{}, nil, err
		}
		st, closeStore = rs, func() { rs.Close(); client.Close() }
	}
	return middleware.Config{
		Store:      st,
		HashKey:    []byte(o.hashKey),
		KeyHeaders: o.keyHeaders,
		Rules: []middleware.Rule{
			{Name: "people-write", Routes: []string{"/v1/people"}, Methods: []string{"POST"},
				Policy: window.Policy{Windows: []window.Window{{Length: time.Minute, Limit: 10}, {Length: time.Second, Limit: 1}}}},
			{Name: "health", Routes: []string{"/healthz"}, Exempt: true},
		},
		Headers:      style,
		Envelope:     envelope,
		OnStoreError: middleware.LocalFallback,
	}, closeStore, nil
}

// validator returns a KeyValidator knowing keys, each KEY (its own
// client), KEY:CLIENT or KEY:CLIENT:PLAN. A colon is never part of a key.
func validator(keys []string) func(context.Context, string) (middleware.Client, bool) {
	known := map[string]middleware.Client{}
	for _, k := range keys {
		key, rest, _ := strings.Cut(strings.TrimSpace(k), ":")
		id, plan, _ := strings.Cut(rest, ":")
		if key != "" {
			known[key] = middleware.Client{ID: id, Plan: plan}
		}
	}
	return func(_ context.Context, key string) (middleware.Client, bool) {
		c, ok := known[key]
		return c, ok
	}
}

func listPeople(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	w.Write([]byte(`[{"id":1,"name":"Ada Lovelace"},{"id":2,"name":"Grace Hopper"}]` + "\n"))
}

func createPerson(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusCreated)
	w.Write([]byte(`{"id":3}` + "\n"))
}
