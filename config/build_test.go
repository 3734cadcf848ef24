package config

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"

	"github.com/ratekit/ratekit/headers"
	"github.com/ratekit/ratekit/middleware"
	"github.com/ratekit/ratekit/store"
	"github.com/ratekit/ratekit/store/memory"
	redisstore "github.com/ratekit/ratekit/store/redis"
	"github.com/ratekit/ratekit/window"
)

const testHashKey = "0123456789abcdef-test"

// parse parses text as t.yaml, failing the test on an error.
func parse(t *testing.T, text string) *File {
	t.Helper()
	f, err := Parse("t.yaml", []byte(text))
	if err != nil {
		t.Fatalf("Parse:\n%s\n%v", text, err)
	}
	return f
}

// build builds f and a limiter from it, released with the test.
func build(t *testing.T, f *File) (*middleware.Limiter, middleware.Config) {
	t.Helper()
	cfg, closer, err := f.Build()
	if err != nil {
		t.Fatalf("Build: %v", err)
	}
	t.Cleanup(func() { closer.Close() })
	cfg.Logger = slog.New(slog.DiscardHandler)
	lim, err := middleware.New(cfg)
	if err != nil {
		t.Fatalf("middleware.New(Build()): %v", err)
	}
	t.Cleanup(func() { lim.Close() })
	return lim, cfg
}

// serve sends one GET for path through h from addr and returns the
// response.
func serve(h http.Handler, path, addr string, hdr ...string) *http.Response {
	r := httptest.NewRequest("GET", path, nil)
	r.RemoteAddr = addr
	for i := 0; i+1 < len(hdr); i += 2 {
		r.Header.Set(hdr[i], hdr[i+1])
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w.Result()
}

var ok200 = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {})

// TestBuildReference: every field of the reference file reaches the
// middleware.Config Build returns.
func TestBuildReference(t *testing.T) {
	t.Setenv("RATEKIT_HASH_KEY", testHashKey)
	f, err := Load("testdata/reference.yaml")
	if err != nil {
		t.Fatal(err)
	}
	cfg, closer, err := f.Build()
	if err != nil {
		t.Fatal(err)
	}
	defer closer.Close()
	if _, ok := cfg.Store.(*memory.Store); !ok {
		t.Errorf("Store = %T, want *memory.Store", cfg.Store)
	}
	if cfg.Identify == nil {
		t.Error("Identify = nil, want middleware.ClientFromContext (identity.context: true)")
	}
	for _, c := range []struct {
		field     string
		got, want any
	}{
		{"KeyHeaders", cfg.KeyHeaders, []string{"X-API-Key", "Authorization"}},
		{"MaxKeyLen", cfg.MaxKeyLen, 8192},
		{"KeyCacheTTL", cfg.KeyCacheTTL, 30 * time.Second},
		{"KeyCacheSize", cfg.KeyCacheSize, 50000},
		{"ClientIP", cfg.ClientIP, middleware.ClientIP{
			TrustedProxies: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("fd00::/8")},
			Header:         "X-Real-IP", IPv6Prefix: 56}},
		{"ExemptIPs", cfg.ExemptIPs, []netip.Prefix{netip.MustParsePrefix("192.0.2.10/32"), netip.MustParsePrefix("198.51.100.0/24")}},
		{"HashKey", string(cfg.HashKey), testHashKey},
		{"Policy", cfg.Policy, window.Policy{Windows: []window.Window{{Name: "minute", Length: time.Minute, Limit: 100}, {Length: time.Second, Limit: 5}}}},
		{"Rules names", ruleNames(cfg.Rules), []string{"people-write", "import", "search-trial", "health"}},
		{"Rules[0]", fmt.Sprint(cfg.Rules[0].Routes, cfg.Rules[0].Methods, cfg.Rules[0].Policy, cfg.Rules[0].Cost), "[/v1/people /v1/people/{id}] [POST PUT PATCH DELETE] 20/minute (exact) 2"},
		{"Rules[1].CostFunc", cfg.Rules[1].CostFunc != nil, true},
		{"Rules[2].Shadow", cfg.Rules[2].Shadow, true},
		{"Rules[3].Exempt", cfg.Rules[3].Exempt, true},
		{"Plans", fmt.Sprint(cfg.Plans), "map[enterprise:1000/minute + 50/second (exact)]"},
		{"ClientPolicies", fmt.Sprint(cfg.ClientPolicies), "map[acme:5000/minute (exact)]"},
		{"OnStoreError", cfg.OnStoreError, middleware.LocalFallback},
		{"FallbackInstances", cfg.FallbackInstances, 3},
		{"Breaker", cfg.Breaker, middleware.Breaker{Failures: 3, Cooldown: 2 * time.Second}},
		{"DenyCacheSize", cfg.DenyCacheSize, 10000},
		{"DenyCacheTTL", cfg.DenyCacheTTL, 500 * time.Millisecond},
		{"DisableDenyCache", cfg.DisableDenyCache, false},
		{"Concurrency", cfg.Concurrency, 20},
		{"ConcurrencyTTL", cfg.ConcurrencyTTL, 2 * time.Minute},
		{"Headers", cfg.Headers, headers.Multi(headers.Lindris{}, headers.IETF{})},
		{"Envelope", cfg.Envelope, headers.LindrisBody{Message: "Slow down.", UnavailableMessage: "Try again shortly.", TooLargeMessage: "This request is too big."}},
		{"PartitionKey", cfg.PartitionKey, true},
	} {
		if !reflect.DeepEqual(c.got, c.want) {
			t.Errorf("Build().%s = %#v, want %#v", c.field, c.got, c.want)
		}
	}
}

func ruleNames(rules []middleware.Rule) []string {
	var out []string
	for _, r := range rules {
		out = append(out, r.Name)
	}
	return out
}

// TestBuildMemoryStore: the memory options reach the store, and the
// closer closes it.
func TestBuildMemoryStore(t *testing.T) {
	f := parse(t, "store: {memory: {max_keys: 2}}\n")
	cfg, closer, err := f.Build()
	if err != nil {
		t.Fatal(err)
	}
	st := cfg.Store.(*memory.Store)
	p := window.Default()
	ctx := context.Background()
	for i := range 3 {
		if _, err := st.Take(ctx, store.Request{Key: store.Key{byte(i)}, Policy: &p, Cost: 1}); err != nil && !errors.Is(err, store.ErrFull) {
			t.Fatalf("Take %d: %v", i, err)
		}
	}
	if n := st.Len(); n > 2 {
		t.Errorf("store holds %d keys with max_keys 2", n)
	}
	if err := closer.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := st.Take(ctx, store.Request{Key: store.Key{9}, Policy: &p, Cost: 1}); !errors.Is(err, store.ErrClosed) {
		t.Errorf("Take after the closer ran: %v, want store.ErrClosed", err)
	}
}

// closedAddr returns a loopback address nothing listens on.
func closedAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// TestRedisUnreachable: a file naming a Redis nobody answers at opens and
// builds fine (nothing is sent until a request), and requests get the
// file's failure policy, as with a Redis given in code.
func TestRedisUnreachable(t *testing.T) {
	t.Setenv("RATEKIT_HASH_KEY", testHashKey)
	addr := closedAddr(t)
	for _, tc := range []struct {
		policy   string
		statuses []int
		check    func(t *testing.T, resp *http.Response)
	}{
		{"open", []int{200, 200, 200}, func(t *testing.T, resp *http.Response) {
			if resp.Header.Get("X-Ratelimit-Degraded") != "true" || resp.Header.Get("X-Ratelimit-Limit") != "" {
				t.Errorf("fail open: headers %v, want X-Ratelimit-Degraded and no limits", resp.Header)
			}
		}},
		{"closed", []int{503, 503, 503}, func(t *testing.T, resp *http.Response) {
			body, _ := io.ReadAll(resp.Body)
			if resp.Header.Get("Retry-After") != "1" || !strings.Contains(string(body), "temporarily unavailable") {
				t.Errorf("fail closed: Retry-After %q, body %s", resp.Header.Get("Retry-After"), body)
			}
		}},
		{"local-fallback", []int{200, 200, 429}, func(t *testing.T, resp *http.Response) {
			if resp.Header.Get("X-Ratelimit-Degraded") != "true" || resp.Header.Get("X-Ratelimit-Limit") != "60" {
				t.Errorf("local fallback: headers %v, want X-Ratelimit-Degraded and the limits", resp.Header)
			}
		}},
	} {
		t.Run(tc.policy, func(t *testing.T) {
			f := parse(t, fmt.Sprintf("hash_key_env: RATEKIT_HASH_KEY\nstore: {redis: {url: \"redis://%s/0\"}}\non_store_error: %s\n", addr, tc.policy))
			lim, cfg := build(t, f)
			if _, ok := cfg.Store.(*redisstore.Store); !ok {
				t.Fatalf("Store = %T, want *redis.Store", cfg.Store)
			}
			h := lim.Handler(ok200)
			var resp *http.Response
			// Fake time is not needed: the local fallback's 2/s is only
			// checked to refuse the third of three requests sent at once,
			// which holds however slow the machine.
			for i, want := range tc.statuses {
				resp = serve(h, "/", "192.0.2.1:1")
				if resp.StatusCode != want {
					t.Fatalf("request %d: status %d, want %d", i+1, resp.StatusCode, want)
				}
				if i == 0 {
					tc.check(t, resp)
				}
			}
		})
	}
}

// TestRedisShared: two instances built from one file count in the same
// buckets in Redis: the hash key comes from the environment both read,
// and the URL from url_env.
func TestRedisShared(t *testing.T) {
	mr := miniredis.RunT(t)
	t.Setenv("RATEKIT_HASH_KEY", testHashKey)
	t.Setenv("RATEKIT_REDIS_URL", "redis://"+mr.Addr()+"/0")
	text := "hash_key_env: RATEKIT_HASH_KEY\nstore: {redis: {url_env: RATEKIT_REDIS_URL, prefix: shared, timeout: 1s}}\npolicy: {windows: [{length: 1h, limit: 3}]}\n"
	a, _ := build(t, parse(t, text))
	b, _ := build(t, parse(t, text))
	ha, hb := a.Handler(ok200), b.Handler(ok200)
	for i, h := range []http.Handler{ha, hb, ha, hb} {
		resp := serve(h, "/", "192.0.2.7:1")
		want := 200
		if i == 3 {
			want = 429
		}
		if resp.StatusCode != want {
			t.Fatalf("request %d (instance %c): %d, want %d", i+1, "abab"[i], resp.StatusCode, want)
		}
	}
	if keys := mr.Keys(); len(keys) != 1 || !strings.HasPrefix(keys[0], "shared:") {
		t.Errorf("Redis keys %v, want one under the prefix shared:", keys)
	}
}

// TestNeedsRestart: a newer file's limits can be applied while serving;
// every other field that changed is named.
func TestNeedsRestart(t *testing.T) {
	t.Setenv("RATEKIT_HASH_KEY", testHashKey)
	t.Setenv("RATEKIT_OTHER_KEY", testHashKey+"-other")
	t.Setenv("RATEKIT_REDIS_URL", "redis://localhost:6379/0")
	base := "headers: lindris\n"
	for _, tc := range []struct {
		name, next string
		want       []string
	}{
		{"the same file", base, nil},
		{"limits only", base + "policy: {windows: [{length: 1m, limit: 5}]}\nrules: [{routes: [/a], exempt: true}]\nplans: {p: {windows: [{length: 1m, limit: 9}]}}\nclient_policies: {c: {windows: [{length: 1m, limit: 9}]}}\n", nil},
		{"identity", base + "identity: {context: true, key_headers: [X-Key], max_key_len: 10, key_cache_ttl: 1s, key_cache_size: 5}\n",
			[]string{"identity.context", "identity.key_headers", "identity.max_key_len", "identity.key_cache_ttl", "identity.key_cache_size"}},
		{"client addresses", base + "client_ip: {trusted_proxies: [10.0.0.0/8], header: X-Real-IP, ipv6_prefix: 48}\nexempt_ips: [192.0.2.1]\n",
			[]string{"client_ip.trusted_proxies", "client_ip.header", "client_ip.ipv6_prefix", "exempt_ips"}},
		{"the store and the hash key", "headers: [lindris]\nhash_key_env: RATEKIT_HASH_KEY\nstore: {redis: {url_env: RATEKIT_REDIS_URL}}\n", []string{"hash_key_env", "store"}},
		{"memory options", base + "store: {memory: {max_keys: 10}}\n", []string{"store"}},
		{"memory defaults written out", base + "store: {memory: {}}\n", nil},
		{"the failure policy", base + "on_store_error: closed\nfallback_instances: 2\nbreaker: {failures: 1}\ndeny_cache: {disabled: true}\nconcurrency: {limit: 3}\n",
			[]string{"on_store_error", "fallback_instances", "breaker", "deny_cache", "concurrency"}},
		{"the answer", "headers: kinde\nenvelope: problem\npartition_key: true\n", []string{"headers", "envelope", "partition_key"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cur, next := parse(t, base), parse(t, tc.next)
			if got := cur.NeedsRestart(next); !reflect.DeepEqual(got, tc.want) {
				t.Errorf("NeedsRestart = %q, want %q", got, tc.want)
			}
		})
	}
	a := parse(t, "hash_key_env: RATEKIT_HASH_KEY\n")
	b := parse(t, "hash_key_env: RATEKIT_OTHER_KEY\n")
	if got := a.NeedsRestart(b); !reflect.DeepEqual(got, []string{"hash_key_env"}) {
		t.Errorf("another hash key: NeedsRestart = %q, want [hash_key_env]", got)
	}
}
