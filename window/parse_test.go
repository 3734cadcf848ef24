package window_test

import (
	"encoding/json"
	"errors"
	"math"
	"testing"
	"time"

	"github.com/ratekit/ratekit/window"
)

func TestParsePolicy(t *testing.T) {
	for _, tc := range []struct {
		name, in string
		want     string // Policy.String(), or "" for an error
	}{
		{"lindris", `{"windows":[{"name":"minute","length":"1m","limit":60},{"length":"1s","limit":2}]}`, "60/minute + 2/second (exact)"},
		{"counter", `{"algorithm":"counter","windows":[{"length":"1h","limit":1000}]}`, "1000/hour (counter)"},
		{"no windows", `{"windows":[]}`, ""},
		{"zero limit", `{"windows":[{"length":"1s","limit":0}]}`, ""},
		{"negative limit", `{"windows":[{"length":"1s","limit":-3}]}`, ""},
		{"limit overflows int32", `{"windows":[{"length":"1s","limit":4294967296}]}`, ""},
		{"limit overflows int64", `{"windows":[{"length":"1s","limit":99999999999999999999}]}`, ""},
		{"bad length", `{"windows":[{"length":"soon","limit":1}]}`, ""},
		{"negative length", `{"windows":[{"length":"-1s","limit":1}]}`, ""},
		{"microseconds", `{"windows":[{"length":"1500us","limit":1}]}`, ""},
		{"too long", `{"windows":[{"length":"8760h","limit":1}]}`, ""},
		{"unknown field", `{"windows":[{"length":"1s","limit":1,"burst":3}]}`, ""},
		{"unknown algorithm", `{"algorithm":"token-bucket","windows":[{"length":"1s","limit":1}]}`, ""},
		{"duplicate names", `{"windows":[{"length":"1s","limit":1},{"name":"second","length":"2s","limit":2}]}`, ""},
		{"trailing data", `{"windows":[{"length":"1s","limit":1}]} {}`, ""},
		{"stray closing brace", `{"windows":[{"length":"1s","limit":1}]}}`, ""},
		{"stray closing bracket", `{"windows":[{"length":"1s","limit":1}]}]`, ""},
		{"trailing white space", "{\"windows\":[{\"length\":\"1s\",\"limit\":1}]} \n\t", "1/second (exact)"},
		{"not json", `60/min`, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, err := window.ParsePolicy([]byte(tc.in))
			if tc.want == "" {
				if err == nil {
					t.Fatalf("ParsePolicy(%s) = %v, want an error", tc.in, p)
				}
				return
			}
			if err != nil || p.String() != tc.want {
				t.Fatalf("ParsePolicy(%s) = %q, %v; want %q", tc.in, p, err, tc.want)
			}
		})
	}
}

func TestPolicyJSONRoundTrip(t *testing.T) {
	p := window.Policy{Windows: []window.Window{{Name: "burst", Length: 1500 * time.Millisecond, Limit: 3}, {Length: 24 * time.Hour, Limit: 10000}}}
	data, err := json.Marshal(p)
	if err != nil {
		t.Fatal(err)
	}
	back, err := window.ParsePolicy(data)
	if err != nil || back.String() != p.String() || back.Windows[0].Length != p.Windows[0].Length {
		t.Fatalf("round trip of %s: %v, %v", data, back, err)
	}

	// Inside a configuration struct, through encoding/json both ways.
	type config struct {
		Policy  window.Policy
		Missing window.Policy
	}
	in := config{Policy: window.Policy{Algorithm: window.SlidingCounter, Windows: p.Windows}}
	if data, err = json.Marshal(struct{ Policy window.Policy }{in.Policy}); err != nil {
		t.Fatal(err)
	}
	var out config
	if err := json.Unmarshal(data, &out); err != nil || out.Policy.String() != in.Policy.String() {
		t.Fatalf("json round trip of %s: %v, %v; want %v", data, out.Policy, err, in.Policy)
	}
	if err := json.Unmarshal([]byte(`{"Policy":null}`), &out); err != nil || out.Policy.String() != in.Policy.String() {
		t.Errorf("null: %v, %v; want the policy unchanged", out.Policy, err)
	}
	if err := json.Unmarshal([]byte(`{"Policy":{"windows":[]}}`), &out); !errors.Is(err, window.ErrInvalidPolicy) {
		t.Errorf("a policy with no windows: %v, want ErrInvalidPolicy", err)
	}
}

func TestValidateListsEveryProblem(t *testing.T) {
	p := window.Policy{Windows: []window.Window{{Length: 0, Limit: 1}, {Length: time.Second, Limit: 0}}}
	err := p.Validate()
	if !errors.Is(err, window.ErrInvalidPolicy) {
		t.Fatalf("Validate error = %v, want ErrInvalidPolicy", err)
	}
	var joined interface{ Unwrap() []error }
	if !errors.As(err, &joined) || len(joined.Unwrap()) != 2 {
		t.Fatalf("Validate error = %v, want both problems listed", err)
	}
}

// FuzzPolicy is catalogue test 49: parsing never panics, and a policy that
// parses has positive, overflow-safe limits and windows that the log can
// enforce.
func FuzzPolicy(f *testing.F) {
	f.Add([]byte(`{"windows":[{"name":"minute","length":"1m","limit":60},{"length":"1s","limit":2}]}`))
	f.Add([]byte(`{"algorithm":"counter","windows":[{"length":"720h","limit":2147483647}]}`))
	f.Add([]byte(`{"windows":[{"length":"1ms","limit":1}]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		p, err := window.ParsePolicy(data)
		if err != nil {
			return
		}
		if len(p.Windows) == 0 || len(p.Windows) > window.MaxWindows {
			t.Fatalf("parsed %d windows", len(p.Windows))
		}
		for _, w := range p.Windows {
			if w.Limit < 1 || w.Limit > math.MaxInt32 || w.Length < time.Millisecond || w.Length > window.MaxLength {
				t.Fatalf("parsed window %+v out of range", w)
			}
		}
		// The policy must be enforceable: a limit-sized cost is admitted
		// once and the next request is refused with a positive wait.
		var l window.Log
		now := time.UnixMilli(1_700_000_000_000)
		if d := l.TakeAt(now, &p, p.MinLimit()); !d.Allowed {
			t.Fatalf("first request of cost %d rejected by %v", p.MinLimit(), p)
		}
		if d := l.TakeAt(now, &p, 1); d.Allowed || d.RetryAfter <= 0 {
			t.Fatalf("request past the limit: allowed=%v retry=%v", d.Allowed, d.RetryAfter)
		}
	})
}
