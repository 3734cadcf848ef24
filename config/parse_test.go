package config

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/ratekit/ratekit/middleware"
	"github.com/ratekit/ratekit/window"
)

// setEnv sets the environment variables the error cases name.
func setEnv(t *testing.T) {
	t.Helper()
	t.Setenv("RATEKIT_TEST_EMPTY", "")
	t.Setenv("RATEKIT_TEST_SHORT", "short")
	t.Setenv("RATEKIT_TEST_KEY", "0123456789abcdef0123")
	t.Setenv("RATEKIT_TEST_URL", "redis://localhost:6379")
	t.Setenv("RATEKIT_TEST_BADURL", "redis://:secret@localhost:port")
}

// TestParseErrors checks every message Parse can give, with its position
// and field: each case is a file and the whole error text it gets, one
// line per problem, after "config: t.yaml".
func TestParseErrors(t *testing.T) {
	setEnv(t)
	for _, tc := range []struct {
		name, in string
		want     []string
	}{
		{"binary", "a: 1\nb: \xff\xfe\n", []string{
			":2:4: byte 0xff is not UTF-8 text; is this a binary file?",
		}},
		{"control character", "a: 1\n  b:\x00\n", []string{
			":2:5: control character U+0000; is this a binary file?",
		}},
		{"empty file", "", []string{
			": empty file; write {} for a configuration of defaults",
		}},
		{"blank file", "  \n\n", []string{
			": empty file; write {} for a configuration of defaults",
		}},
		{"only comments", "# nothing here\n", []string{
			": no configuration, only comments; write {} for a configuration of defaults",
		}},
		{"null document", "~\n", []string{
			":1:1: empty document; write {} for a configuration of defaults",
		}},
		{"scanner syntax error", "policy:\n  windows: @x\n", []string{
			":2: yaml syntax: found character that cannot start any token",
		}},
		{"parser syntax error", "a: 1\nrules: [/v1/{id}]\n", []string{
			":2: yaml syntax: did not find expected ',' or ']'",
		}},
		{"syntax error on line 1", "rules: [/v1/{id}]\n", []string{
			":1: yaml syntax: did not find expected ',' or ']'",
		}},
		{"second document", "{}\n---\n{}\n", []string{
			":2:1: a second YAML document; a configuration is one document",
		}},
		{"unknown anchor", "policy: *nope\n", []string{
			": yaml syntax: unknown anchor 'nope' referenced",
		}},
		{"alias and anchor", "plans:\n  a: &p {windows: [{length: 1m, limit: 5}]}\n  b: *p\n", []string{
			":2:6: anchor &p: anchors and aliases are not allowed",
			":3:6: alias *p: anchors and aliases are not allowed",
		}},
		{"explicit tag", "partition_key: !!bool true\nheaders: !custom lindris\n", []string{
			":1:16: explicit tag !!bool is not allowed; quote a value to make it a string",
			":2:10: explicit tag !custom is not allowed; quote a value to make it a string",
		}},
		{"too deep", "policy: [[[[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]]]]\n", []string{
			":1:9: policy: want a mapping with the fields algorithm, windows, got a list",
			":1:24: nested deeper than 16 levels",
		}},
		{"not a mapping at top", "- policy\n", []string{
			":1:1: want a mapping with the fields breaker, client_ip, client_policies, concurrency, deny_cache, envelope, exempt_ips, fallback_instances, hash_key_env, headers, identity, on_store_error, partition_key, plans, policy, rules, store, got a list",
		}},
		{"not a mapping", "identity: [context]\n", []string{
			":1:11: identity: want a mapping with the fields context, key_cache_size, key_cache_ttl, key_headers, max_key_len, got a list",
		}},
		{"field twice", "headers: lindris\nheaders: kinde\n", []string{
			":2:1: headers: given twice (first on line 1)",
		}},
		{"unknown field suggestion", "rules:\n  - name: x\n    route: [/a]\n", []string{
			":3:5: rules[0]: unknown field \"route\"; did you mean \"routes\"?",
		}},
		{"unknown field case", "identity: {KeyHeaders: [X-Key]}\n", []string{
			":1:12: identity: unknown field \"KeyHeaders\"; did you mean \"key_headers\"?",
		}},
		{"unknown field list", "breaker: {open: 5}\n", []string{
			":1:11: breaker: unknown field \"open\"; want one of cooldown, disabled, failures",
		}},
		{"key not a string", "plans:\n  1: {windows: [{length: 1m, limit: 5}]}\n", []string{
			":2:3: plans: a key must be a string, got the integer 1; quote it",
		}},
		{"entries not a mapping", "plans: [free]\n", []string{
			":1:8: plans: want a mapping of plan names to policies, got a list",
		}},
		{"entries empty name", "plans:\n  \"\": {windows: [{length: 1m, limit: 5}]}\n", []string{
			":2:3: plans: an empty name",
		}},
		{"entries twice", "client_policies:\n  acme: {windows: [{length: 1m, limit: 5}]}\n  acme: {windows: [{length: 1m, limit: 6}]}\n", []string{
			":3:3: client_policies.acme: given twice (first on line 2)",
		}},
		{"not a list", "rules: {name: x}\n", []string{
			":1:8: rules: want a list of rules, got a mapping",
		}},
		{"empty list", "rules:\n  - routes: []\n    methods: []\n", []string{
			":2:13: rules[0].routes: an empty list; leave routes out to match every route",
			":3:14: rules[0].methods: an empty list; leave methods out to match every method",
		}},
		{"wrong scalar", "partition_key: yes\nfallback_instances: two\n", []string{
			":1:16: partition_key: want true or false, got the string \"yes\"",
			":2:21: fallback_instances: want a whole number, got the string \"two\"",
		}},
		{"not decimal", "fallback_instances: 0x10\n", []string{
			":1:21: fallback_instances: want a whole number in decimal, got 0x10",
		}},
		{"out of range", "fallback_instances: 18446744073709551615\nbreaker: {failures: 99999999999999999999}\n", []string{
			":1:21: fallback_instances: 18446744073709551615 is out of range",
			":2:21: breaker.failures: want a whole number, got the number 99999999999999999999",
		}},
		{"negative", "fallback_instances: -1\nbreaker: {failures: -2}\n", []string{
			":1:21: fallback_instances: -1 is negative",
			":2:21: breaker.failures: -2 is negative",
		}},
		{"bad duration", "breaker: {cooldown: 5 seconds}\n", []string{
			":1:21: breaker.cooldown: want a duration such as 1m or 500ms, got \"5 seconds\"",
		}},
		{"duration not a string", "breaker: {cooldown: 5}\n", []string{
			":1:21: breaker.cooldown: want a duration such as 1m or 500ms, got the integer 5",
		}},
		{"negative duration", "deny_cache: {ttl: -1s}\n", []string{
			":1:19: deny_cache.ttl: -1s is negative",
		}},
		{"header name", "identity: {key_headers: [\"X API Key\"]}\n", []string{
			":1:26: identity.key_headers[0]: \"X API Key\" is not a header name",
		}},
		{"env name", "hash_key_env: \"not a name\"\n", []string{
			":1:15: hash_key_env: \"not a name\" is not the name of an environment variable",
		}},
		{"env not set", "hash_key_env: RATEKIT_TEST_UNSET\n", []string{
			":1:15: hash_key_env: environment variable RATEKIT_TEST_UNSET is not set",
		}},
		{"env empty", "hash_key_env: RATEKIT_TEST_EMPTY\n", []string{
			":1:15: hash_key_env: environment variable RATEKIT_TEST_EMPTY is empty",
		}},
		{"hash key short", "hash_key_env: RATEKIT_TEST_SHORT\n", []string{
			":1:15: hash_key_env: environment variable RATEKIT_TEST_SHORT holds 5 bytes; a hash key needs at least 16",
		}},
		{"prefixes", "exempt_ips: [10.0.0.0/33, 300.1.2.3, \"fe80::1%eth0\", \"::ffff:10.0.0.0/104\", 10.1.2.3/8, 5]\n", []string{
			":1:14: exempt_ips[0]: \"10.0.0.0/33\" is not a network prefix such as 10.0.0.0/8",
			":1:27: exempt_ips[1]: \"300.1.2.3\" is not a network prefix such as 10.0.0.0/8 or an address",
			":1:38: exempt_ips[2]: \"fe80::1%eth0\" is not a network prefix such as 10.0.0.0/8 or an address",
			":1:54: exempt_ips[3]: ::ffff:10.0.0.0/104 is IPv4-mapped; write it as an IPv4 prefix",
			":1:77: exempt_ips[4]: 10.1.2.3/8 has bits set after the first 8; did you mean 10.0.0.0/8?",
			":1:89: exempt_ips[5]: want a network such as 10.0.0.0/8 or an address, got the integer 5",
		}},
		{"on_store_error", "on_store_error: half-open\n", []string{
			":1:17: on_store_error: unknown failure policy \"half-open\"; want open, closed or local-fallback",
		}},
		{"algorithm", "policy: {algorithm: token-bucket, windows: [{length: 1m, limit: 5}]}\n", []string{
			":1:21: policy.algorithm: unknown algorithm \"token-bucket\"; want exact or counter",
		}},
		{"too many windows", "policy:\n  windows: [{length: 1s, limit: 1}, {length: 2s, limit: 2}, {length: 3s, limit: 3}, {length: 4s, limit: 4}, {length: 5s, limit: 5}, {length: 6s, limit: 6}, {length: 7s, limit: 7}, {length: 8s, limit: 8}, {length: 9s, limit: 9}]\n", []string{
			":2:12: policy.windows: 9 windows, at most 8",
		}},
		{"duplicate window name", "policy:\n  windows:\n    - {length: 1m, limit: 60}\n    - {name: minute, length: 2m, limit: 100}\n", []string{
			":4:7: policy.windows[1]: name \"minute\" already used by windows[0]; name one of them",
		}},
		{"no windows", "policy: {algorithm: exact}\nplans:\n  free: {windows: []}\n", []string{
			":1:9: policy.windows: no windows; a policy needs at least one, such as {length: 1m, limit: 60}",
			":3:19: plans.free.windows: no windows; a policy needs at least one, such as {length: 1m, limit: 60}",
		}},
		{"empty window", "policy:\n  windows:\n    -\n", []string{
			":3:6: policy.windows[0]: an empty window; write {length: 1m, limit: 60}",
		}},
		{"window lengths", "policy:\n  windows: [{length: 500us, limit: 1}, {length: 31d, limit: 1}, {length: 800h, limit: 1}, {length: 1500us, limit: 1}]\n", []string{
			":2:22: policy.windows[0].length: 500µs is below 1ms",
			":2:49: policy.windows[1].length: want a duration such as 1m or 500ms, got \"31d\"",
			":2:74: policy.windows[2].length: 800h0m0s is above 720h0m0s (30 days)",
			":2:100: policy.windows[3].length: 1.5ms is not a whole number of milliseconds",
		}},
		{"window limits", "policy:\n  windows: [{length: 1s, limit: 0}, {length: 1m, limit: 2147483648}]\n", []string{
			":2:33: policy.windows[0].limit: 0 is outside 1 to 2147483647",
			":2:57: policy.windows[1].limit: 2147483648 is outside 1 to 2147483647",
		}},
		{"window missing fields", "policy:\n  windows: [{name: x}]\n", []string{
			":2:13: policy.windows[0]: no length; a window needs one, such as length: 1m",
			":2:13: policy.windows[0]: no limit; a window needs one, such as limit: 60",
		}},
		{"empty rule", "rules:\n  -\n", []string{
			":2:4: rules[0]: an empty rule",
		}},
		{"routes", "rules:\n  - routes: [v1/people, GET /v1/people, 5]\n", []string{
			":2:14: rules[0].routes[0]: route \"v1/people\" does not start with /",
			":2:25: rules[0].routes[1]: route \"GET /v1/people\" does not start with /; a route is a pattern's path, the method goes in methods",
			":2:41: rules[0].routes[2]: want a route such as /v1/people/{id}, got the integer 5",
		}},
		{"methods", "rules:\n  - methods: [get, FETCH]\n", []string{
			":2:15: rules[0].methods[0]: method \"get\" is not a standard method; did you mean \"GET\"?",
			":2:20: rules[0].methods[1]: method \"FETCH\" is not a standard method; want one of GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS, CONNECT, TRACE",
		}},
		{"null policy in plans", "plans:\n  free:\n", []string{
			":2:8: plans.free: no policy; write one such as {windows: [{length: 1m, limit: 600}]}",
		}},
		{"max_key_len", "identity: {max_key_len: 70000}\n", []string{
			":1:25: identity.max_key_len: 70000 is outside 0 to 65536",
		}},
		{"client_ip", "client_ip: {header: X-Forwarded-For, ipv6_prefix: 129}\n", []string{
			":1:21: client_ip.header: X-Forwarded-For is a list; leave header out to read it",
			":1:51: client_ip.ipv6_prefix: 129 is outside 0 to 128",
		}},
		{"client_ip header alone", "client_ip: {header: X-Real-IP}\n", []string{
			":1:21: client_ip.header: set without trusted_proxies, so never honoured",
		}},
		{"store both", "hash_key_env: RATEKIT_TEST_KEY\nstore:\n  memory: {}\n  redis: {url: redis://localhost:6379}\n", []string{
			":4:10: store: both memory and redis; choose one",
		}},
		{"shards", "store: {memory: {shards: 3}}\n", []string{
			":1:26: store.memory.shards: 3 is not a power of two",
		}},
		{"redis prefix", "hash_key_env: RATEKIT_TEST_KEY\nstore: {redis: {url: redis://localhost:6379, prefix: \"a{b}\"}}\n", []string{
			":2:54: store.redis.prefix: \"a{b}\" contains { or }, which would move keys to another Redis Cluster slot",
		}},
		{"redis url and env", "hash_key_env: RATEKIT_TEST_KEY\nstore: {redis: {url: redis://localhost:6379, url_env: RATEKIT_TEST_URL}}\n", []string{
			":2:55: store.redis: both url and url_env; choose one",
		}},
		{"redis no url", "hash_key_env: RATEKIT_TEST_KEY\nstore: {redis: {prefix: x}}\n", []string{
			":2:16: store.redis: no url or url_env; name the server, such as url: redis://localhost:6379/0",
		}},
		{"redis bad url", "hash_key_env: RATEKIT_TEST_KEY\nstore: {redis: {url: \"http://localhost\"}}\n", []string{
			":2:22: store.redis.url: not a Redis URL: redis: invalid URL scheme: http",
		}},
		{"redis bad port", "hash_key_env: RATEKIT_TEST_KEY\nstore: {redis: {url: \"redis://localhost:port\"}}\n", []string{
			":2:22: store.redis.url: not a Redis URL: invalid port \":port\" after host",
		}},
		{"redis password", "hash_key_env: RATEKIT_TEST_KEY\nstore: {redis: {url: \"redis://:hunter2@localhost:6379\"}}\n", []string{
			":2:22: store.redis.url: holds a password; put the URL in the environment and name the variable with url_env",
		}},
		{"redis env bad url", "hash_key_env: RATEKIT_TEST_KEY\nstore: {redis: {url_env: RATEKIT_TEST_BADURL}}\n", []string{
			":2:26: store.redis.url_env: environment variable RATEKIT_TEST_BADURL: not a Redis URL: invalid port \":port\" after host",
		}},
		{"redis max retries", "hash_key_env: RATEKIT_TEST_KEY\nstore: {redis: {url: \"redis://localhost:6379?max_retries=3\"}}\n", []string{
			":2:22: store.redis.url: max_retries in the URL: the store needs -1, so that a decision applied but lost on the way back is never counted twice; leave it out",
		}},
		{"redis empty url", "hash_key_env: RATEKIT_TEST_KEY\nstore: {redis: {url: \"\", timeout: 1s}}\n", []string{
			":2:22: store.redis.url: an empty URL; name the server, such as redis://localhost:6379/0",
		}},
		{"redis url not a string", "hash_key_env: RATEKIT_TEST_KEY\nstore: {redis: {url: 6379}}\n", []string{
			":2:22: store.redis.url: want a Redis URL such as redis://localhost:6379/0, got the integer 6379",
		}},
		{"redis without hash key", "store:\n  redis: {url: redis://localhost:6379}\n", []string{
			":2:10: store.redis: a shared store needs hash_key_env, so that every instance derives the same store keys",
		}},
		{"headers", "headers: [lindris, fancy, lindris]\n", []string{
			":1:20: headers[1]: unknown header style \"fancy\"; want lindris, scalekit, kinde or ietf",
			":1:27: headers[2]: lindris listed twice",
		}},
		{"headers empty", "headers: []\n", []string{
			":1:10: headers: an empty list; leave headers out for lindris",
		}},
		{"headers wrong type", "headers: 5\n", []string{
			":1:10: headers: want a header style (lindris, scalekit, kinde, ietf) or a list of them, got the integer 5",
		}},
		{"envelope unknown", "envelope: json\n", []string{
			":1:11: envelope: unknown envelope \"json\"; want lindris, authmatech or problem",
		}},
		{"envelope type", "envelope: [lindris]\n", []string{
			":1:11: envelope: want an envelope name (lindris, authmatech, problem) or a mapping with a name and messages, got a list",
		}},
		{"envelope no name", "envelope: {message: hi}\n", []string{
			":1:11: envelope: no name; say which envelope: lindris, authmatech or problem",
		}},
		{"envelope fields", "envelope: {name: problem, message: hi, too_large_detail: big}\n", []string{
			":1:36: envelope: the problem envelope has no message; its texts are detail, unavailable_detail and too_large_detail",
		}},
		{"envelope fields lindris", "envelope: {name: authmatech, detail: hi}\n", []string{
			":1:38: envelope: the authmatech envelope has no detail; its texts are message, unavailable_message and too_large_message",
		}},
		{"cost above limit", "rules:\n  - {name: a, cost: 3}\n  - {name: b, cost: 6, policy: {windows: [{length: 1m, limit: 5}]}}\n  - {name: c, cost: 100, exempt: true}\n", []string{
			":2:21: rules[0].cost: cost 3 is above the smallest limit 2 of the default policy; no request could pass",
			":3:21: rules[1].cost: cost 6 is above the smallest limit 5 of its policy; no request could pass",
		}},
		{"reserved name", "rules:\n  - {name: default, routes: [/a]}\n", []string{
			":2:12: rules[0].name: the name default is reserved for requests no rule matches",
		}},
		{"shared name", "rules:\n  - {name: tier, routes: [/a]}\n  - {name: tier, routes: [/b], cost: 2}\n  - {name: tier, routes: [/c]}\n", []string{
			":3:12: rules[1].name: shares its name with the rule on line 2, which has another policy or cost; rules of one name share buckets, so they need the same",
		}},
		{"plan below cost", "policy: {windows: [{length: 1m, limit: 60}]}\nrules:\n  - {name: bulk, routes: [/bulk], cost: 10}\nplans:\n  free: {windows: [{length: 1m, limit: 5}]}\nclient_policies:\n  acme: {windows: [{length: 1m, limit: 8}]}\n", []string{
			":5:9: plans.free: rules[0] costs 10, above this policy's smallest limit 5: its clients could never pass it",
			":7:9: client_policies.acme: rules[0] costs 10, above this policy's smallest limit 8: its clients could never pass it",
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f, err := Parse("t.yaml", []byte(tc.in))
			if err == nil {
				t.Fatalf("Parse(%q) = %+v, nil; want an error", tc.in, f)
			}
			var want []string
			for _, w := range tc.want {
				want = append(want, "config: t.yaml"+w)
			}
			if got := strings.Split(err.Error(), "\n"); !reflect.DeepEqual(got, want) {
				t.Errorf("Parse(%q) error:\n%s\nwant:\n%s", tc.in, err, strings.Join(want, "\n"))
			}
			for _, e := range err.(interface{ Unwrap() []error }).Unwrap() {
				var ce *Error
				if !errors.As(e, &ce) || ce.File != "t.yaml" {
					t.Errorf("Parse(%q): %v is not an *Error of t.yaml", tc.in, e)
				}
			}
			if strings.Contains(err.Error(), "secret") {
				t.Errorf("Parse(%q) error quotes a secret from the environment: %v", tc.in, err)
			}
		})
	}
}

// TestParseValues: what valid files decode to.
func TestParseValues(t *testing.T) {
	minute := func(n int) window.Policy {
		return window.Policy{Windows: []window.Window{{Length: time.Minute, Limit: n}}}
	}
	for _, tc := range []struct {
		name, in string
		check    func(t *testing.T, f *File)
	}{
		{"an empty mapping is every default", "{}\n", func(t *testing.T, f *File) {
			if !reflect.DeepEqual(*f, File{Name: "t.yaml"}) {
				t.Errorf("got %+v, want the zero File", *f)
			}
		}},
		{"null sections are empty", "rules:\nplans:\nclient_policies:\nidentity:\nstore:\npolicy:\n", func(t *testing.T, f *File) {
			if !reflect.DeepEqual(*f, File{Name: "t.yaml"}) {
				t.Errorf("got %+v, want the zero File", *f)
			}
		}},
		{"an address is its own prefix", "exempt_ips: [203.0.113.7, \"2001:db8::1\", 10.0.0.0/8]\n", func(t *testing.T, f *File) {
			want := []netip.Prefix{netip.MustParsePrefix("203.0.113.7/32"), netip.MustParsePrefix("2001:db8::1/128"), netip.MustParsePrefix("10.0.0.0/8")}
			if !reflect.DeepEqual(f.ExemptIPs, want) {
				t.Errorf("ExemptIPs = %v, want %v", f.ExemptIPs, want)
			}
		}},
		{"one header style or a list", "headers: kinde\n", func(t *testing.T, f *File) {
			if !reflect.DeepEqual(f.Headers, []string{"kinde"}) {
				t.Errorf("Headers = %v, want [kinde]", f.Headers)
			}
		}},
		{"cost_from_context", "rules:\n  - {name: bulk, cost_from_context: true}\n  - {name: other, cost_from_context: false}\n", func(t *testing.T, f *File) {
			if f.Limits.Rules[0].CostFunc == nil || f.Limits.Rules[1].CostFunc != nil {
				t.Errorf("CostFunc set = %v, %v; want true, false", f.Limits.Rules[0].CostFunc != nil, f.Limits.Rules[1].CostFunc != nil)
			}
		}},
		{"plans and client policies", "plans: {free: {windows: [{length: 1m, limit: 5}]}}\nclient_policies: {\"acme corp\": {windows: [{length: 1m, limit: 500}]}}\n", func(t *testing.T, f *File) {
			want := middleware.Limits{Plans: map[string]window.Policy{"free": minute(5)}, ClientPolicies: map[string]window.Policy{"acme corp": minute(500)}}
			if !reflect.DeepEqual(f.Limits, want) {
				t.Errorf("Limits = %+v, want %+v", f.Limits, want)
			}
		}},
		{"a counter policy", "policy: {algorithm: counter, windows: [{name: m, length: 1m, limit: 60}]}\n", func(t *testing.T, f *File) {
			want := window.Policy{Algorithm: window.SlidingCounter, Windows: []window.Window{{Name: "m", Length: time.Minute, Limit: 60}}}
			if !reflect.DeepEqual(f.Limits.Policy, want) {
				t.Errorf("Policy = %+v, want %+v", f.Limits.Policy, want)
			}
		}},
		{"a byte-order mark and CRLF line ends", "\ufeffon_store_error: closed\r\nfallback_instances: 2\r\n", func(t *testing.T, f *File) {
			if f.OnStoreError != middleware.FailClosed || f.FallbackInstances != 2 {
				t.Errorf("OnStoreError, FallbackInstances = %v, %d; want closed, 2", f.OnStoreError, f.FallbackInstances)
			}
		}},
		{"the envelope's texts by name", "envelope: {name: problem, detail: d, unavailable_detail: u, too_large_detail: l}\n", func(t *testing.T, f *File) {
			want := Envelope{Name: "problem", Message: "d", UnavailableMessage: "u", TooLargeMessage: "l"}
			if f.Envelope != want {
				t.Errorf("Envelope = %+v, want %+v", f.Envelope, want)
			}
		}},
		{"a redis URL from the environment is kept out of sight", "hash_key_env: RATEKIT_TEST_KEY\nstore: {redis: {url_env: RATEKIT_TEST_URL, prefix: p, timeout: 20ms}}\n", func(t *testing.T, f *File) {
			want := RedisStore{URLEnv: "RATEKIT_TEST_URL", Prefix: "p", Timeout: 20 * time.Millisecond, url: "redis://localhost:6379"}
			if f.Store.Redis == nil || *f.Store.Redis != want {
				t.Errorf("Store.Redis = %+v, want %+v", f.Store.Redis, want)
			}
			if s := fmt.Sprintf("%+v", f); strings.Contains(s, "0123456789abcdef") {
				t.Errorf("the File prints its hash key: %s", s)
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			setEnv(t)
			f, err := Parse("t.yaml", []byte(tc.in))
			if err != nil {
				t.Fatalf("Parse(%q): %v", tc.in, err)
			}
			tc.check(t, f)
		})
	}
}

// TestParseJSON: the JSON twin of a seed's file parses to the same
// configuration as the YAML.
func TestParseJSON(t *testing.T) {
	y, err := Load("testdata/authmatech.yaml")
	if err != nil {
		t.Fatal(err)
	}
	j, err := Load("testdata/authmatech.json")
	if err != nil {
		t.Fatal(err)
	}
	y.Name, j.Name = "", ""
	if !reflect.DeepEqual(y, j) {
		t.Errorf("authmatech.json = %+v\nauthmatech.yaml = %+v", j, y)
	}
}

// TestLoad: Load names the file by its path, reads at most MaxSize bytes,
// and reports a file it cannot open.
func TestLoad(t *testing.T) {
	dir := t.TempDir()
	write := func(name string, data []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, data, 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	atLimit := append([]byte("{}\n"), bytes.Repeat([]byte("#"), MaxSize-3)...)
	if _, err := Load(write("max.yaml", atLimit)); err != nil {
		t.Errorf("Load of a valid file of exactly MaxSize bytes: %v", err)
	}
	big := write("big.yaml", append(atLimit, '\n'))
	if _, err := Load(big); err == nil || err.Error() != "config: "+big+": larger than 1048576 bytes (1 MiB); a configuration file is much smaller" {
		t.Errorf("Load of MaxSize+1 bytes: %v", err)
	}
	bad := write("bad.yaml", []byte("policy:\n  windows: [{length: 1m, limit: 0}]\n"))
	if _, err := Load(bad); err == nil || err.Error() != "config: "+bad+":2:33: policy.windows[0].limit: 0 is outside 1 to 2147483647" {
		t.Errorf("Load(%s): %v", bad, err)
	}
	missing := filepath.Join(dir, "missing.yaml")
	if _, err := Load(missing); !errors.Is(err, fs.ErrNotExist) || !strings.HasPrefix(err.Error(), "config: open "+missing) {
		t.Errorf("Load(%s) = %v, want a not-exist error prefixed config:", missing, err)
	}
}

// TestErrorPosition: an *Error carries the position and field apart from
// its text, for tools that jump to it.
func TestErrorPosition(t *testing.T) {
	_, err := Parse("t.yaml", []byte("rules:\n  - name: x\n    route: [/a]\n"))
	var e *Error
	if !errors.As(err, &e) {
		t.Fatalf("Parse error %v is not an *Error", err)
	}
	if e.File != "t.yaml" || e.Line != 3 || e.Column != 5 || e.Field != "rules[0]" {
		t.Errorf("Error = %+v, want t.yaml:3:5 in rules[0]", e)
	}
}
