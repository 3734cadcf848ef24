package middleware

import (
	"fmt"
	"math/rand/v2"
	"net/http"
	"strings"
	"testing"
)

func TestR21HeaderVariants(t *testing.T) {
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
		{"headers differ", []string{"X-API-Key", k, "Authorization", "Bearer other"}, ""},
		{"bad x-api-key spoils good bearer", []string{"X-API-Key", "{bad}", "Authorization", "Bearer " + k}, ""},
		{"bad bearer spoils good x-api-key", []string{"X-API-Key", k, "Authorization", "Bearer {bad}"}, ""},
		{"neither", nil, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := newReq(t, "192.0.2.1:1", tc.kv...)
			got, ok := apiKey(r)
			if got != tc.want || ok != (tc.want != "") {
				t.Errorf("apiKey(%q) = %q, %t, want %q, %t", tc.kv, got, ok, tc.want, tc.want != "")
			}
		})
	}
}

func TestR22HostileKeys(t *testing.T) {
	hostile := map[string]string{
		"8 KiB":          strings.Repeat("a", 8<<10),
		"512 KiB":        strings.Repeat("a", 512<<10),
		"one over max":   strings.Repeat("a", maxKeyLen+1),
		"max with pad":   strings.Repeat("a", maxKeyLen) + "=",
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
		if !isKey(string(b)) { // the few random values that are keys are fine
			hostile[fmt.Sprintf("random %d", i)] = string(b)
		}
	}
	for name, v := range hostile {
		for _, kv := range [][]string{{"X-API-Key", v}, {"Authorization", "Bearer " + v}} {
			r := newReq(t, "192.0.2.1:1", kv...)
			got, ok := apiKey(r)
			if ok || got != "" {
				t.Errorf("apiKey(%s %.40q) = %.40q, %t, want \"\", false", kv[0], name, got, ok)
			}
		}
	}
}

func TestAPIKeyMaxLen(t *testing.T) {
	for _, n := range []int{1, maxKeyLen - 1, maxKeyLen} {
		k := strings.Repeat("a", n)
		r := newReq(t, "192.0.2.1:1", "Authorization", "Bearer "+k)
		if got, ok := apiKey(r); got != k || !ok {
			t.Errorf("apiKey(Bearer %d bytes) = %d bytes, %t, want %d bytes, true", n, len(got), ok, n)
		}
	}
}

func TestAPIKeyAllocs(t *testing.T) {
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
			if n := testing.AllocsPerRun(100, func() { apiKey(tc.r) }); n != 0 {
				t.Errorf("apiKey(%s) allocs = %v, want 0", tc.name, n)
			}
		})
	}
}

// BenchmarkAPIKey measures extracting the key from each header form.
func BenchmarkAPIKey(b *testing.B) {
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
				apiKey(tc.r)
			}
		})
	}
}

// FuzzAPIKey checks that whatever apiKey returns is a key by the grammar,
// within maxKeyLen, taken verbatim from a header, and returned again when
// presented alone in either header. Each argument holds that header's lines
// separated by "\n"; an empty argument means the header is absent.
func FuzzAPIKey(f *testing.F) {
	f.Fuzz(func(t *testing.T, xAPIKey, authorization string) {
		r := &http.Request{Header: http.Header{}}
		if xAPIKey != "" {
			r.Header["X-Api-Key"] = strings.Split(xAPIKey, "\n")
		}
		if authorization != "" {
			r.Header["Authorization"] = strings.Split(authorization, "\n")
		}
		got, ok := apiKey(r)
		if ok != (got != "") {
			t.Fatalf("apiKey(%q, %q) = %q, %t, want ok exactly when non-empty", xAPIKey, authorization, got, ok)
		}
		if !ok {
			return
		}
		if len(got) > maxKeyLen {
			t.Fatalf("apiKey(%q, %q) = %d bytes, want at most %d", xAPIKey, authorization, len(got), maxKeyLen)
		}
		body := strings.TrimRight(got, "=")
		if body == "" || strings.Trim(body, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-._~+/") != "" {
			t.Fatalf("apiKey(%q, %q) = %q, want a b64token", xAPIKey, authorization, got)
		}
		if got != xAPIKey && !strings.HasSuffix(authorization, " "+got) {
			t.Fatalf("apiKey(%q, %q) = %q, want a whole header value or bearer token", xAPIKey, authorization, got)
		}
		for _, h := range []struct{ name, value string }{{"X-Api-Key", got}, {"Authorization", "Bearer " + got}} {
			r := &http.Request{Header: http.Header{h.name: {h.value}}}
			if again, ok := apiKey(r); again != got || !ok {
				t.Fatalf("apiKey(%s: %q) = %q, %t, want %q, true", h.name, h.value, again, ok, got)
			}
		}
	})
}
