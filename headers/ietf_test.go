package headers

import (
	"bytes"
	"net/http"
	"testing"
	"time"

	"github.com/ratekit/ratekit/window"
)

// TestSFParser checks the test's own parser against examples from RFC 9651
// and the draft, so that a bug there cannot hide one in the encoder.
func TestSFParser(t *testing.T) {
	for _, tc := range []struct {
		name  string
		field string
		ok    bool
	}{
		{"draft policy", `"burst";q=100;w=60,"daily";q=1000;w=86400`, true},
		{"draft partition", `"peruser";q=65535;qu="content-bytes";w=10;pk=:sdfjLJUOUH==:`, true},
		{"draft limit", `"default";r=50;t=30`, true},
		{"token and boolean", `foo;a;b=?0, *bar;c=1.5`, true},
		{"escaped string", `"a\"b\\c"`, true},
		{"bad escape", `"a\nb"`, false},
		{"trailing comma", `"a", `, false},
		{"missing comma", `"a" "b"`, false},
		{"key with upper case", `"a";Q=1`, false},
		{"integer too long", `1234567890123456`, false},
		{"non-ASCII in string", "\"caf\xc3\xa9\"", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := parseSFList([]string{tc.field})
			if (err == nil) != tc.ok {
				t.Errorf("parseSFList(%q) error = %v, want ok %v", tc.field, err, tc.ok)
			}
		})
	}
	items, err := parseSFList([]string{`"a\"b\\c";x=-12;y=:aGk=:;z;w=tok/en`})
	if err != nil {
		t.Fatalf("parseSFList: %v", err)
	}
	it := items[0]
	x, _ := it.param("x")
	y, _ := it.param("y")
	z, _ := it.param("z")
	w, _ := it.param("w")
	if it.value != `a"b\c` || x != int64(-12) || !bytes.Equal(y.([]byte), []byte("hi")) || z != true || w != sfToken("tok/en") {
		t.Errorf("parseSFList: got %#v, want a\"b\\c;x=-12;y=hi;z;w=tok/en", it)
	}
}

// ietfWant is what one window must read as in both fields.
type ietfWant struct {
	name    string
	q, w, r int64
	t       int64 // -1: no t parameter
}

func TestIETF(t *testing.T) {
	for _, tc := range []struct {
		name      string
		p         *window.Policy
		d         *window.Decision
		partition string
		want      []ietfWant
		retry     string
	}{
		{
			name: "two windows admitted",
			p:    lindrisPolicy,
			d: decision(1, 0,
				window.State{Limit: 60, Remaining: 45, Reset: 11500 * time.Millisecond},
				window.State{Limit: 2, Remaining: 1, Reset: 300 * time.Millisecond}),
			want: []ietfWant{{"minute", 60, 60, 45, 12}, {"second", 2, 1, 1, 1}},
		},
		{
			name: "refused, retry not before the binding t",
			p:    lindrisPolicy,
			d: decision(0, 100*time.Millisecond,
				window.State{Limit: 60, Remaining: 0, Reset: 2100 * time.Millisecond},
				window.State{Limit: 2, Remaining: 2}),
			want:  []ietfWant{{"minute", 60, 60, 0, 3}, {"second", 2, 1, 2, -1}},
			retry: "3",
		},
		{
			name:      "partition on every item",
			p:         minuteOnly,
			d:         decision(0, 0, window.State{Limit: 60, Remaining: 59, Reset: time.Minute}),
			partition: "\x00\xff tenant/42 \"quoted\"",
			want:      []ietfWant{{"minute", 60, 60, 59, 60}},
		},
		{
			name: "odd names and lengths",
			p: policy(
				window.Window{Name: `say "hi" \o/`, Length: 1500 * time.Millisecond, Limit: 3},
				window.Window{Name: "caf\xc3\xa9\r\n", Length: time.Millisecond, Limit: 1},
				window.Window{Length: 36 * time.Hour, Limit: 100000}),
			d: decision(1, 0,
				window.State{Limit: 3, Remaining: 1, Reset: time.Millisecond},
				window.State{Limit: 1, Remaining: 0, Reset: time.Millisecond},
				window.State{Limit: 100000, Remaining: 99998, Reset: 36 * time.Hour}),
			want: []ietfWant{{`say "hi" \o/`, 3, 2, 1, 1}, {"caf????", 1, 1, 0, 1}, {"36h0m0s", 100000, 129600, 99998, 129600}},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := http.Header{}
			IETF{}.WriteHeaders(h, &Input{Policy: tc.p, Decision: tc.d, Partition: tc.partition, Now: t0})
			pol, err := parseSFList(h.Values("RateLimit-Policy"))
			if err != nil {
				t.Fatalf("RateLimit-Policy %q: %v", h.Values("RateLimit-Policy"), err)
			}
			lim, err := parseSFList(h.Values("RateLimit"))
			if err != nil {
				t.Fatalf("RateLimit %q: %v", h.Values("RateLimit"), err)
			}
			if len(pol) != len(tc.want) || len(lim) != len(tc.want) {
				t.Fatalf("RateLimit-Policy has %d items, RateLimit %d, want %d each", len(pol), len(lim), len(tc.want))
			}
			for i, w := range tc.want {
				checkItem(t, "RateLimit-Policy", pol[i], w.name, tc.partition, map[string]int64{"q": w.q, "w": w.w})
				params := map[string]int64{"r": w.r}
				if w.t >= 0 {
					params["t"] = w.t
				}
				checkItem(t, "RateLimit", lim[i], w.name, tc.partition, params)
			}
			if got := h.Get("Retry-After"); got != tc.retry {
				t.Errorf("Retry-After = %q, want %q", got, tc.retry)
			}
		})
	}
}

// checkItem checks that it names the policy name and has exactly the
// integer params, plus pk when partition is not empty.
func checkItem(t *testing.T, field string, it sfItem, name, partition string, params map[string]int64) {
	t.Helper()
	if s, ok := it.value.(string); !ok || s != name {
		t.Errorf("%s item = %#v, want String %q", field, it.value, name)
	}
	want := len(params)
	if partition != "" {
		want++
		pk, ok := it.param("pk")
		if b, isBytes := pk.([]byte); !ok || !isBytes || string(b) != partition {
			t.Errorf("%s %q pk = %#v, want Byte Sequence %q", field, name, pk, partition)
		}
	}
	if len(it.params) != want {
		t.Errorf("%s %q parameters = %q, want %d", field, name, it.keys(), want)
	}
	for k, v := range params {
		if got, _ := it.param(k); got != v {
			t.Errorf("%s %q %s = %#v, want %d", field, name, k, got, v)
		}
	}
}

// FuzzIETF checks that whatever windows are named and whatever partition
// key is passed, both fields parse as Lists and carry the names and the key.
func FuzzIETF(f *testing.F) {
	f.Add("minute", "second", "")
	f.Add(`a"b\c`, "\r\n\x00\xff", "\x00\x01\x02")
	f.Add("", "", "k")
	f.Fuzz(func(t *testing.T, name0, name1, partition string) {
		p := policy(
			window.Window{Name: name0, Length: 2500 * time.Millisecond, Limit: 7},
			window.Window{Name: name1, Length: time.Hour, Limit: 9})
		d := decision(0, time.Second,
			window.State{Limit: 7, Remaining: 0, Reset: time.Second},
			window.State{Limit: 9, Remaining: 3, Reset: time.Minute})
		h := http.Header{}
		IETF{}.WriteHeaders(h, &Input{Policy: p, Decision: d, Partition: partition})
		for _, field := range []string{"RateLimit-Policy", "RateLimit"} {
			items, err := parseSFList(h.Values(field))
			if err != nil {
				t.Fatalf("%s %q: %v", field, h.Values(field), err)
			}
			if len(items) != 2 {
				t.Fatalf("%s has %d items, want 2", field, len(items))
			}
			for i, it := range items {
				if got, want := it.value, sfName(p.Windows[i].Label()); got != want {
					t.Errorf("%s item %d = %q, want %q", field, i, got, want)
				}
				pk, ok := it.param("pk")
				if (partition != "") != ok || (ok && !bytes.Equal(pk.([]byte), []byte(partition))) {
					t.Errorf("%s item %d pk = %v, want %q", field, i, pk, partition)
				}
			}
		}
	})
}

// sfName is what a client reads for a window named label: printable ASCII
// kept, every other byte '?'.
func sfName(label string) string {
	b := []byte(label)
	for i, c := range b {
		if c < 0x20 || c > 0x7e {
			b[i] = '?'
		}
	}
	return string(b)
}
