package main

import (
	"bytes"
	"log"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ratekit/ratekit/config"
)

// writeConfig writes text to name in dir and returns its path.
func writeConfig(t *testing.T, dir, name, text string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestChiConfigFile: with a file, the limits, identity, headers and body
// are the file's; -keys names each key's client and plan, so the file's
// plans and client policies apply; the file's key_headers win over
// -key-headers, which applies when the file sets none.
func TestChiConfigFile(t *testing.T) {
	dir := t.TempDir()
	const limits = `policy: {windows: [{name: minute, length: 1m, limit: 5}]}
rules: [{name: health, routes: [/healthz], exempt: true}]
plans: {gold: {windows: [{name: minute, length: 1m, limit: 50}]}}
client_policies: {acme: {windows: [{name: minute, length: 1m, limit: 500}]}}
headers: kinde
envelope: authmatech
`
	f, err := config.Load(writeConfig(t, dir, "with.yaml", limits+"identity: {key_headers: [X-Client-ID]}\n"))
	if err != nil {
		t.Fatal(err)
	}
	srv := start(t, options{file: f, keys: []string{"k1:acme", "k2:globex:gold", "k3"}, keyHeaders: []string{"X-API-Key"}})
	for _, tc := range []struct {
		name  string
		hdr   []string
		limit string
	}{
		{"no key: the file's policy", nil, "5"},
		{"a key of acme: its own limits", []string{"X-Client-ID", "k1"}, "500"},
		{"a key of a gold client: the plan", []string{"X-Client-ID", "k2"}, "50"},
		{"a key of no named client: the policy", []string{"X-Client-ID", "k3"}, "5"},
		{"X-API-Key is not the file's key header: the address", []string{"X-API-Key", "k1"}, "5"},
	} {
		resp, _ := call(t, srv, "GET", "/v1/people", tc.hdr...)
		if resp.StatusCode != 200 || resp.Header.Get("RateLimit-Limit") != tc.limit {
			t.Errorf("%s: %d, RateLimit-Limit %q; want 200, %s", tc.name, resp.StatusCode, resp.Header.Get("RateLimit-Limit"), tc.limit)
		}
	}
	var resp, body = call(t, srv, "GET", "/v1/people")
	for range 3 {
		resp, body = call(t, srv, "GET", "/v1/people")
	}
	if resp.StatusCode != 429 || !strings.Contains(body, `"httpStatus":"TOO_MANY_REQUESTS"`) {
		t.Errorf("the address's sixth request: %d %s, want 429 with the Authmatech envelope", resp.StatusCode, body)
	}
	if resp, _ := call(t, srv, "GET", "/healthz"); resp.StatusCode != 200 || resp.Header.Get("RateLimit-Limit") != "" {
		t.Errorf("/healthz: %d %v, want 200 without headers (exempt by the file's rule)", resp.StatusCode, resp.Header)
	}

	f, err = config.Load(writeConfig(t, dir, "without.yaml", limits))
	if err != nil {
		t.Fatal(err)
	}
	srv = start(t, options{file: f, keys: []string{"k1:acme"}, keyHeaders: []string{"X-API-Key"}})
	if resp, _ := call(t, srv, "GET", "/v1/people", "X-API-Key", "k1"); resp.Header.Get("RateLimit-Limit") != "500" {
		t.Errorf("a file without key_headers, -key-headers X-API-Key: RateLimit-Limit %q, want acme's 500", resp.Header.Get("RateLimit-Limit"))
	}
}

// TestChiReload: reload applies a valid file's limits with counts kept,
// names what needs a restart, and refuses an invalid file, logging its
// problems with file, line and field, and keeping the limits in force.
func TestChiReload(t *testing.T) {
	dir := t.TempDir()
	path := writeConfig(t, dir, "ratekit.yaml", "policy: {windows: [{name: minute, length: 1m, limit: 5}]}\n")
	f, err := config.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	s, err := newServer(options{file: f})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.close)
	var logged bytes.Buffer
	logger := log.New(&logged, "", 0)
	srv := startHandler(t, s)
	get := func() (limit, remaining string) {
		resp, _ := call(t, srv, "GET", "/v1/people")
		return resp.Header.Get("X-Ratelimit-Limit"), resp.Header.Get("X-Ratelimit-Remaining")
	}
	get()
	get()

	writeConfig(t, dir, "ratekit.yaml", "policy: {windows: [{name: minute, length: 1m, limit: 10}]}\nheaders: kinde\n")
	running := reload(s.lim, f, path, logger)
	if l, r := get(); l != "10" || r != "7" {
		t.Errorf("after a reload to 10/min: limit %s remaining %s, want 10 and 7 (three used, counts kept)", l, r)
	}
	want := "reloaded " + path + ": policy, rules, plans and client policies apply from the next request\n" +
		path + ": headers changed; it needs a restart, the running value stays\n"
	if logged.String() != want {
		t.Errorf("log:\n%s\nwant:\n%s", &logged, want)
	}
	if running.Headers != nil {
		t.Errorf("the configuration in force has headers %q, want the running (none, lindris)", running.Headers)
	}

	logged.Reset()
	writeConfig(t, dir, "ratekit.yaml", "policy:\n  windows: [{name: minute, length: 1m, limit: 0}]\nrules: [{route: [/v1/people]}]\n")
	if got := reload(s.lim, running, path, logger); got != running {
		t.Error("an invalid file changed the configuration in force")
	}
	if l, r := get(); l != "10" || r != "6" {
		t.Errorf("after an invalid file: limit %s remaining %s, want 10 and 6", l, r)
	}
	want = "reload of " + path + " refused; the running configuration stays:\n" +
		"config: " + path + ":2:47: policy.windows[0].limit: 0 is outside 1 to 2147483647\n" +
		"config: " + path + `:3:10: rules[0]: unknown field "route"; did you mean "routes"?` + "\n"
	if logged.String() != want {
		t.Errorf("log:\n%s\nwant:\n%s", &logged, want)
	}
}
