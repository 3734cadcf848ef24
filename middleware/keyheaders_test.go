package middleware

import (
	"fmt"
	"math/rand/v2"
	"net/http"
	"strings"
	"testing"
)

// testKeys reads keys as the default configuration does.
var testKeys = newKeyReader(nil, 0)

// TestKeyHeaderVariants: the same key in X-API-Key and in Authorization:
// Bearer is one key, and every near miss is none (catalogue R21). With both
// headers, the first in KeyHeaders' order decides.
func TestKeyHeaderVariants(t *testing.T) {
	const k = "k3y-AbC.123_~+/=="
	tests := []struct {
		name string
		kv   []string
		want string // "" for no key
	}{
		{"x-api-key", []string{"X-API-Key", k}, k},
		{"x-api-key lower-case name", []string{"x-api-key", k}, k},
		{"bearer", []string{"Authorization", "Bearer " + k}, k},
		{"bearer lower-case scheme", []string{"Authorization", "bearer " + k}, k},
		{"bearer upper-case scheme", []string{"Authorization", "BEARER " + k}, k},
		{"bearer two spaces (RFC 6750 1*SP)", []string{"Authorization", "Bearer  " + k}, k},
		{"both headers equal", []string{"X-API-Key", k, "Authorization", "Bearer " + k}, k},
		{"basic scheme ignored", []string{"X-API-Key", k, "Authorization", "Basic dXNlcjpwYXNz"}, k},
		{"xBearer", []string{"Authorization", "xBearer " + k}, ""},
		{"Bearerx", []string{"Authorization", "Bearerx " + k}, ""},
		{"bearer with junk", []string{"Authorization", "Bearer " + k + ",junk"}, ""},
		{"bearer alone", []string{"Authorization", "Bearer"}, ""},
		{"bearer and space", []string{"Authorization", "Bearer "}, ""},
		{"bearer tab", []string{"Authorization", "Bearer\t" + k}, ""},
		{"bearer trailing space", []string{"Authorization", "Bearer " + k + " "}, ""},
		{"bearer two tokens", []string{"Authorization", "Bearer a b"}, ""},
		{"bearer auth-param", []string{"Authorization", `Bearer realm="x"`}, ""},
		{"padding in the middle", []string{"X-API-Key", "ab=c"}, ""},
		{"only padding", []string{"X-API-Key", "=="}, ""},
		{"empty x-api-key", []string{"X-API-Key", ""}, ""},
		{"two x-api-key lines", []string{"X-API-Key", k, "X-API-Key", k}, ""},
		{"two authorization lines", []string{"Authorization", "Bearer " + k, "Authorization", "Bearer " + k}, ""},
		{"headers differ: the first decides", []string{"X-API-Key", k, "Authorization", "Bearer other"}, k},
		{"bad x-api-key spoils good bearer", []string{"X-API-Key", "{bad}", "Authorization", "Bearer " + k}, ""},
		{"bearer not read after a good x-api-key", []string{"X-API-Key", k, "Authorization", "Bearer {bad}"}, k},
		{"empty x-api-key spoils good bearer", []string{"X-API-Key", "", "Authorization", "Bearer " + k}, ""},
		{"neither", nil, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := newReq(t, "192.0.2.1:1", tc.kv...)
			got, ok := testKeys.read(r.Header)
			if got != tc.want || ok != (tc.want != "") {
				t.Errorf("read(%q) = %q, %t, want %q, %t", tc.kv, got, ok, tc.want, tc.want != "")
			}
		})
	}
}

// TestHostileKeys: oversized, hostile and random values are no key in
// either header (catalogue R22).
func TestHostileKeys(t *testing.T) {
	hostile := map[string]string{
		"8 KiB":          strings.Repeat("a", 8<<10),
		"512 KiB":        strings.Repeat("a", 512<<10),
		"one over max":   strings.Repeat("a", defaultMaxKeyLen+1),
		"max with pad":   strings.Repeat("a", defaultMaxKeyLen) + "=",
		"hash tag":       "{tag}",
		"reversed tags":  "a}{b",
		"300 braces":     strings.Repeat("{", 300),
		"non-utf-8":      "k\xff\xfe",
		"nul":            "k\x00ey",
		"percent nul":    "k%00ey",
		"star":           "*",
		"sql":            "' OR 1=1 --",
		"cyrillic":       "ключ",
		"colon":          "a:b",
		"space":          "a b",
		"newline":        "a\nb",
		"del":            "a\x7f",
		"quote":          `"key"`,
		"backslash":      `a\b`,
		"comma":          "a,b",
		"url-encoded":    "a%2Fb",
		"whitespace key": " ",
	}
	for i := range 1000 {
		rng := rand.New(rand.NewPCG(22, uint64(i)))
		b := make([]byte, 1+rng.IntN(64))
		for j := range b {
			b[j] = byte(rng.UintN(256))
		}
		if !testKeys.isKey(string(b)) { // the few random values that are keys are fine
			hostile[fmt.Sprintf("random %d", i)] = string(b)
		}
	}
	for name, v := range hostile {
		for _, kv := range [][]string{{"X-API-Key", v}, {"Authorization", "Bearer " + v}} {
			r := newReq(t, "192.0.2.1:1", kv...)
			got, ok := testKeys.read(r.Header)
			if ok || got != "" {
				t.Errorf("read(%s %.40q) = %.40q, %t, want \"\", false", kv[0], name, got, ok)
			}
		}
	}
}

// TestKeyMaxLen: keys up to MaxKeyLen are read, longer ones are not, for
// the default bound (which fits a JWT) and a chosen one.
func TestKeyMaxLen(t *testing.T) {
	jwt := "eyJhbGciOiJSUzI1NiIsInR5cCI6IkpXVCJ9." + strings.Repeat("eyJzdWIiOiIxMjM0NTY3ODkwIn0", 60) + ".c2lnbmF0dXJl_-"
	for _, tc := range []struct {
		maxLen, n int
		want      bool
	}{
		{0, 1, true}, {0, defaultMaxKeyLen - 1, true}, {0, defaultMaxKeyLen, true}, {0, defaultMaxKeyLen + 1, false},
		{64, 64, true}, {64, 65, false}, {maxMaxKeyLen, maxMaxKeyLen, true},
	} {
		kr := newKeyReader(nil, tc.maxLen)
		k := strings.Repeat("a", tc.n)
		r := newReq(t, "192.0.2.1:1", "Authorization", "Bearer "+k)
		if got, ok := kr.read(r.Header); ok != tc.want || (ok && got != k) {
			t.Errorf("MaxKeyLen %d: read(Bearer %d bytes) = %d bytes, %t, want ok %t", tc.maxLen, tc.n, len(got), ok, tc.want)
		}
	}
	r := newReq(t, "192.0.2.1:1", "Authorization", "Bearer "+jwt)
	if got, ok := testKeys.read(r.Header); !ok || got != jwt {
		t.Errorf("read(Bearer %d-byte JWT) = %d bytes, %t, want the JWT", len(jwt), len(got), ok)
	}
}

// TestCustomKeyHeaders: a configured list is read in order, Authorization
// meaning Bearer wherever it stands, and the names are matched without
// regard to case.
func TestCustomKeyHeaders(t *testing.T) {
	kr := newKeyReader([]string{"x-client-id", "AUTHORIZATION"}, 0)
	for _, tc := range []struct {
		name string
		kv   []string
		want string
	}{
		{"client id", []string{"X-Client-ID", "c-42"}, "c-42"},
		{"bearer", []string{"Authorization", "Bearer k1"}, "k1"},
		{"client id first", []string{"Authorization", "Bearer k1", "X-Client-Id", "c-42"}, "c-42"},
		{"x-api-key not listed", []string{"X-API-Key", "k1"}, ""},
		{"authmatech sends both", []string{"X-API-Key", "k1", "X-Client-ID", "c-42"}, "c-42"},
		{"bad client id spoils bearer", []string{"X-Client-ID", "c 42", "Authorization", "Bearer k1"}, ""},
		{"basic is not ours", []string{"Authorization", "Basic dXNlcjpwYXNz"}, ""},
	} {
		r := newReq(t, "192.0.2.1:1", tc.kv...)
		if got, ok := kr.read(r.Header); got != tc.want || ok != (tc.want != "") {
			t.Errorf("%s: read(%q) = %q, %t, want %q", tc.name, tc.kv, got, ok, tc.want)
		}
	}
}

func TestKeyHeadersAllocs(t *testing.T) {
	tests := []struct {
		name string
		r    *http.Request
	}{
		{"none", newReq(t, "192.0.2.1:1")},
		{"x-api-key", newReq(t, "192.0.2.1:1", "X-API-Key", "abc123")},
		{"bearer", newReq(t, "192.0.2.1:1", "Authorization", "Bearer abc123")},
		{"hostile", newReq(t, "192.0.2.1:1", "X-API-Key", strings.Repeat("{", 300))},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if n := testing.AllocsPerRun(100, func() { testKeys.read(tc.r.Header) }); n != 0 {
				t.Errorf("read(%s) allocs = %v, want 0", tc.name, n)
			}
		})
	}
}

// BenchmarkKeyHeaders measures extracting the key from each header form.
func BenchmarkKeyHeaders(b *testing.B) {
	key := "sk_live_" + strings.Repeat("A1b2", 8)
	cases := []struct {
		name string
		r    *http.Request
	}{
		{"none", newReq(b, "192.0.2.1:1")},
		{"x-api-key", newReq(b, "192.0.2.1:1", "X-API-Key", key)},
		{"bearer", newReq(b, "192.0.2.1:1", "Authorization", "Bearer "+key)},
		{"both", newReq(b, "192.0.2.1:1", "X-API-Key", key, "Authorization", "Bearer "+key)},
		{"hostile=8KiB", newReq(b, "192.0.2.1:1", "X-API-Key", strings.Repeat("a", 8<<10))},
	}
	for _, tc := range cases {
		b.Run(tc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				testKeys.read(tc.r.Header)
			}
		})
	}
}

// FuzzKeyHeaders checks that whatever read returns is a key by the grammar,
// within the default MaxKeyLen, taken verbatim from a header, and returned
// again when presented alone in either header; and that a reader of other
// header names finds the same key under them. Each argument holds that
// header's lines separated by "\n"; an empty argument means the header is
// absent.
func FuzzKeyHeaders(f *testing.F) {
	custom := newKeyReader([]string{"X-Client-Id", "Authorization"}, 0)
	f.Fuzz(func(t *testing.T, xAPIKey, authorization string) {
		r := &http.Request{Header: http.Header{}}
		if xAPIKey != "" {
			r.Header["X-Api-Key"] = strings.Split(xAPIKey, "\n")
		}
		if authorization != "" {
			r.Header["Authorization"] = strings.Split(authorization, "\n")
		}
		got, ok := testKeys.read(r.Header)
		if ok != (got != "") {
			t.Fatalf("read(%q, %q) = %q, %t, want ok exactly when non-empty", xAPIKey, authorization, got, ok)
		}
		renamed := http.Header{"Authorization": r.Header["Authorization"]}
		if v, ok := r.Header["X-Api-Key"]; ok {
			renamed["X-Client-Id"] = v
		}
		if got2, ok2 := custom.read(renamed); got2 != got || ok2 != ok {
			t.Fatalf("read(X-Client-ID %q, %q) = %q, %t; under X-API-Key %q, %t", xAPIKey, authorization, got2, ok2, got, ok)
		}
		if !ok {
			return
		}
		if len(got) > defaultMaxKeyLen {
			t.Fatalf("read(%q, %q) = %d bytes, want at most %d", xAPIKey, authorization, len(got), defaultMaxKeyLen)
		}
		body := strings.TrimRight(got, "=")
		if body == "" || strings.Trim(body, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-._~+/") != "" {
			t.Fatalf("read(%q, %q) = %q, want a b64token", xAPIKey, authorization, got)
		}
		if got != xAPIKey && !strings.HasSuffix(authorization, " "+got) {
			t.Fatalf("read(%q, %q) = %q, want a whole header value or bearer token", xAPIKey, authorization, got)
		}
		for _, h := range []struct{ name, value string }{{"X-Api-Key", got}, {"Authorization", "Bearer " + got}} {
			r := &http.Request{Header: http.Header{h.name: {h.value}}}
			if again, ok := testKeys.read(r.Header); again != got || !ok {
				t.Fatalf("read(%s: %q) = %q, %t, want %q, true", h.name, h.value, again, ok, got)
			}
		}
	})
}
