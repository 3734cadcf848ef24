package redis

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/ratekit/ratekit/store"
	"github.com/ratekit/ratekit/window"
)

func TestNew(t *testing.T) {
	safe := goredis.NewClient(clientOptions("127.0.0.1:1"))
	t.Cleanup(func() { safe.Close() })
	retrying := goredis.NewClient(&goredis.Options{Addr: "127.0.0.1:1", ContextTimeoutEnabled: true})
	t.Cleanup(func() { retrying.Close() })
	noCtx := goredis.NewClient(&goredis.Options{Addr: "127.0.0.1:1", MaxRetries: -1})
	t.Cleanup(func() { noCtx.Close() })
	cluster := goredis.NewClusterClient(&goredis.ClusterOptions{Addrs: []string{"127.0.0.1:1"}, ContextTimeoutEnabled: true, MaxRetries: -1})
	t.Cleanup(func() { cluster.Close() })
	universal := goredis.NewUniversalClient(&goredis.UniversalOptions{Addrs: []string{"127.0.0.1:1"}, ContextTimeoutEnabled: true, MaxRetries: -1})
	t.Cleanup(func() { universal.Close() })
	failover := goredis.NewFailoverClient(&goredis.FailoverOptions{MasterName: "m", SentinelAddrs: []string{"127.0.0.1:1"}, ContextTimeoutEnabled: true, MaxRetries: -1})
	t.Cleanup(func() { failover.Close() })

	for _, tc := range []struct {
		name    string
		client  Scripter
		cfg     Config
		wantErr []string // substrings, all of which must appear
	}{
		{"defaults", safe, Config{}, nil},
		{"cluster client", cluster, Config{}, nil},
		{"universal client", universal, Config{}, nil},
		{"sentinel failover client", failover, Config{}, nil},
		{"all fields", safe, Config{Prefix: "app", Timeout: time.Second, Now: time.Now}, nil},
		{"nil client", nil, Config{}, []string{"nil client"}},
		{"default retries", retrying, Config{}, []string{"MaxRetries is 3"}},
		{"no context timeouts", noCtx, Config{}, []string{"ContextTimeoutEnabled"}},
		{"brace in prefix", safe, Config{Prefix: "a{b"}, []string{"prefix"}},
		{"every problem at once", noCtx, Config{Prefix: "}", Timeout: -time.Second}, []string{"prefix", "negative", "ContextTimeoutEnabled"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, err := New(tc.client, tc.cfg)
			if len(tc.wantErr) == 0 {
				if err != nil {
					t.Fatalf("New: %v", err)
				}
				s.Close()
				return
			}
			if err == nil {
				t.Fatalf("New(%s) succeeded, want an error", tc.name)
			}
			for _, w := range tc.wantErr {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("New error %q does not mention %q", err, w)
				}
			}
			for _, line := range strings.Split(err.Error(), "\n") {
				if !strings.HasPrefix(line, "store/redis: ") {
					t.Errorf("error line %q lacks the store/redis prefix", line)
				}
			}
		})
	}
}

// TestConfigCopied: editing the caller's Config after New changes nothing.
func TestConfigCopied(t *testing.T) {
	_, c := newMini(t)
	cfg := Config{Prefix: "before"}
	s := newStore(t, c, cfg)
	cfg.Prefix = "after"
	if s.prefix != "before" {
		t.Errorf("prefix = %q after editing the config, want %q", s.prefix, "before")
	}
}

func TestInvalidRequests(t *testing.T) {
	_, c := newMini(t)
	s := newStore(t, c, Config{})
	p := window.Default()
	for _, req := range []store.Request{
		{Policy: nil, Cost: 1},
		{Policy: &window.Policy{}, Cost: 1},
		{Policy: &p, Cost: 0},
	} {
		if _, err := s.Take(context.Background(), req); !errors.Is(err, store.ErrInvalidRequest) {
			t.Errorf("Take(%+v) error = %v, want ErrInvalidRequest", req, err)
		}
	}
	if _, err := s.Peek(context.Background(), store.Key{}, nil); !errors.Is(err, store.ErrInvalidRequest) {
		t.Errorf("Peek(nil policy) error = %v, want ErrInvalidRequest", err)
	}
}

// TestCallerDeadline: a caller deadline shorter than Timeout wins.
func TestCallerDeadline(t *testing.T) {
	srv := startServer(t)
	px := newProxy(t, srv.Addr, proxyBlackHole, 0)
	s := newStore(t, newClient(t, px.Addr), Config{Timeout: time.Second})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Millisecond)
	defer cancel()
	p := window.Default()
	start := time.Now()
	_, err := s.Take(ctx, store.Request{Key: testKey(1), Policy: &p, Cost: 1})
	if el := time.Since(start); err == nil || el > 50*time.Millisecond {
		t.Errorf("Take with a 30ms caller deadline: %v after %v, want an error within 50ms", err, el)
	}
}

func TestKind(t *testing.T) {
	for _, tc := range []struct {
		name string
		err  error
		want string
	}{
		{"nil", nil, ""},
		{"deadline", context.DeadlineExceeded, KindTimeout},
		{"canceled", context.Canceled, KindCanceled},
		{"closed client", goredis.ErrClosed, KindConnection},
		{"pool timeout", goredis.ErrPoolTimeout, KindConnection},
		{"closed store", store.ErrClosed, KindOther},
		{"bad reply", errBadReply, KindScript},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := Kind(tc.err); got != tc.want {
				t.Errorf("Kind(%v) = %q, want %q", tc.err, got, tc.want)
			}
		})
	}
}

// TestScriptErrorKind: a key holding another type makes the script fail;
// the error is classified as a script error.
func TestScriptErrorKind(t *testing.T) {
	m, c := newMini(t)
	s := newStore(t, c, Config{})
	m.HSet(Key("", testKey(1)), "f", "v")
	p := window.Default()
	_, err := s.Take(context.Background(), store.Request{Key: testKey(1), Policy: &p, Cost: 1})
	if k := Kind(err); k != KindScript {
		t.Errorf("Kind(%v) = %q, want %q", err, k, KindScript)
	}
}
