package config

import (
	"encoding/json"
	"flag"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/ratekit/ratekit/window"
)

var update = flag.Bool("update", false, "rewrite testdata/golden from what the files parse to")

// seedEnv sets the variables the testdata files name.
func seedEnv(t *testing.T) {
	t.Helper()
	t.Setenv("RATEKIT_HASH_KEY", testHashKey)
	t.Setenv("SCALEKIT_HASH_KEY", testHashKey)
	t.Setenv("SCALEKIT_REDIS_URL", "redis://scalekit:s3cret@localhost:6379/0")
}

// TestGolden parses each configuration in testdata and compares
// everything it decoded, written out in full, with testdata/golden.
// go test -run TestGolden -update rewrites the golden files; review the
// diff.
func TestGolden(t *testing.T) {
	seedEnv(t)
	files, _ := filepath.Glob("testdata/*.yaml")
	json, _ := filepath.Glob("testdata/*.json")
	files = append(files, json...)
	if len(files) < 6 {
		t.Fatalf("testdata holds %d configuration files, want the four seeds, their JSON twin and the reference", len(files))
	}
	for _, path := range files {
		t.Run(filepath.Base(path), func(t *testing.T) {
			f, err := Load(path)
			if err != nil {
				t.Fatal(err)
			}
			got := describe(f)
			golden := filepath.Join("testdata", "golden", strings.TrimSuffix(filepath.Base(path), filepath.Ext(path))+filepath.Ext(path)+".txt")
			if *update {
				if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run with -update to create it)", err)
			}
			if got != string(want) {
				t.Errorf("%s parses to\n%s\nwant (%s)\n%s", path, got, golden, want)
			}
			if strings.Contains(got, "s3cret") || strings.Contains(got, testHashKey) {
				t.Errorf("%s: the description shows a secret from the environment", path)
			}
		})
	}
}

// describe writes out everything f holds, one field a line, maps sorted.
func describe(f *File) string {
	var b strings.Builder
	line := func(format string, args ...any) { fmt.Fprintf(&b, format+"\n", args...) }
	pol := func(p window.Policy) string {
		if p.Windows == nil {
			return "none"
		}
		j, _ := json.Marshal(p)
		return string(j)
	}
	line("name: %s", f.Name)
	line("policy: %s", pol(f.Limits.Policy))
	line("rules:")
	for _, r := range f.Limits.Rules {
		line("  - name=%q routes=%q methods=%q cost=%d cost_from_context=%v exempt=%v shadow=%v",
			r.Name, r.Routes, r.Methods, r.Cost, r.CostFunc != nil, r.Exempt, r.Shadow)
		line("    policy: %s", pol(r.Policy))
	}
	policies := func(name string, m map[string]window.Policy) {
		line("%s:", name)
		for _, k := range slices.Sorted(maps.Keys(m)) {
			line("  %q: %s", k, pol(m[k]))
		}
	}
	policies("plans", f.Limits.Plans)
	policies("client_policies", f.Limits.ClientPolicies)
	id := f.Identity
	line("identity: context=%v key_headers=%q max_key_len=%d key_cache_ttl=%v key_cache_size=%d",
		id.Context, id.KeyHeaders, id.MaxKeyLen, id.KeyCacheTTL, id.KeyCacheSize)
	line("client_ip: trusted_proxies=%v header=%q ipv6_prefix=%d", f.ClientIP.TrustedProxies, f.ClientIP.Header, f.ClientIP.IPv6Prefix)
	line("exempt_ips: %v", f.ExemptIPs)
	line("hash_key_env: %q (%d bytes read)", f.HashKeyEnv, len(f.hashKey))
	switch s := f.Store; {
	case s.Redis != nil:
		r := s.Redis
		line("store: redis url=%q url_env=%q (%d bytes read) prefix=%q timeout=%v", r.URL, r.URLEnv, len(r.url), r.Prefix, r.Timeout)
	case s.Memory != nil:
		line("store: memory max_keys=%d shards=%d sweep_interval=%v", s.Memory.MaxKeys, s.Memory.Shards, s.Memory.SweepInterval)
	default:
		line("store: memory, defaults")
	}
	line("on_store_error: %v", f.OnStoreError)
	line("fallback_instances: %d", f.FallbackInstances)
	line("breaker: failures=%d cooldown=%v disabled=%v", f.Breaker.Failures, f.Breaker.Cooldown, f.Breaker.Disabled)
	line("deny_cache: size=%d ttl=%v disabled=%v", f.DenyCache.Size, f.DenyCache.TTL, f.DenyCache.Disabled)
	line("concurrency: limit=%d ttl=%v", f.Concurrency.Limit, f.Concurrency.TTL)
	line("headers: %q", f.Headers)
	e := f.Envelope
	line("envelope: name=%q message=%q unavailable_message=%q too_large_message=%q", e.Name, e.Message, e.UnavailableMessage, e.TooLargeMessage)
	line("partition_key: %v", f.PartitionKey)
	return b.String()
}
