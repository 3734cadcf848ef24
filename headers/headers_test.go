package headers

import (
	"bytes"
	"maps"
	"net/http"
	"net/textproto"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/ratekit/ratekit/window"
)

// t0 is the fake instant of the hand-built decisions: a whole second plus
// 250ms, so that timestamps exercise rounding up.
var t0 = time.Date(2025, 1, 2, 3, 4, 5, 250*int(time.Millisecond), time.UTC)

// decision builds a Decision by hand: allowed unless retry > 0.
func decision(limiting int, retry time.Duration, states ...window.State) *window.Decision {
	d := &window.Decision{Allowed: retry == 0, Limiting: limiting, RetryAfter: retry, N: len(states)}
	copy(d.Windows[:], states)
	return d
}

func policy(ws ...window.Window) *window.Policy { return &window.Policy{Windows: ws} }

var (
	lindrisPolicy = policy(window.Window{Length: time.Minute, Limit: 60}, window.Window{Length: time.Second, Limit: 2})
	minuteOnly    = policy(window.Window{Length: time.Minute, Limit: 60})
)

// styleCase is one rendering of one style: the Input and every field the
// style must leave in a header that started with only Content-Type.
type styleCase struct {
	name string
	in   *Input
	want map[string]string
}

// runStyle renders each case into a fresh header holding a foreign field,
// and checks that exactly the wanted fields (plus the foreign one) are set,
// each with one value.
func runStyle(t *testing.T, s Style, cases []styleCase) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h := http.Header{"Content-Type": {"text/plain"}}
			s.WriteHeaders(h, tc.in)
			want := maps.Clone(tc.want)
			if want == nil {
				want = map[string]string{}
			}
			want["Content-Type"] = "text/plain"
			for _, k := range slices.Sorted(maps.Keys(h)) {
				v := h[k]
				if len(v) != 1 {
					t.Errorf("WriteHeaders: %s has %d values %q, want 1", k, len(v), v)
					continue
				}
				if w, ok := want[k]; !ok {
					t.Errorf("WriteHeaders: %s = %q, want no such field", k, v[0])
				} else if v[0] != w {
					t.Errorf("WriteHeaders: %s = %q, want %q", k, v[0], w)
				}
			}
			for k, w := range want {
				if _, ok := h[k]; !ok {
					t.Errorf("WriteHeaders: %s missing, want %q", k, w)
				}
			}
		})
	}
}

func TestLindris(t *testing.T) {
	runStyle(t, Lindris{}, []styleCase{
		{
			name: "admitted, second binds",
			in: &Input{Policy: lindrisPolicy, Decision: decision(1, 0,
				window.State{Limit: 60, Remaining: 45, Reset: 12300 * time.Millisecond},
				window.State{Limit: 2, Remaining: 1, Reset: 400 * time.Millisecond})},
			want: map[string]string{
				"X-Ratelimit-Limit": "60", "X-Ratelimit-Remaining": "45",
				"X-Ratelimit-Limit-Second": "2", "X-Ratelimit-Remaining-Second": "1",
				"X-Ratelimit-Reset": "1", "X-Ratelimit-Limited-By": "second",
			},
		},
		{
			name: "refused by minute, reset rounds up",
			in: &Input{Policy: lindrisPolicy, Decision: decision(0, 12002*time.Millisecond,
				window.State{Limit: 60, Remaining: 0, Reset: 12002 * time.Millisecond},
				window.State{Limit: 2, Remaining: 2})},
			want: map[string]string{
				"X-Ratelimit-Limit": "60", "X-Ratelimit-Remaining": "0",
				"X-Ratelimit-Limit-Second": "2", "X-Ratelimit-Remaining-Second": "2",
				"X-Ratelimit-Reset": "13", "X-Ratelimit-Limited-By": "minute",
				"Retry-After": "13",
			},
		},
		{
			name: "refused, exact second not rounded",
			in: &Input{Policy: lindrisPolicy, Decision: decision(1, time.Second,
				window.State{Limit: 60, Remaining: 50, Reset: 30 * time.Second},
				window.State{Limit: 2, Remaining: 0, Reset: time.Second})},
			want: map[string]string{
				"X-Ratelimit-Limit": "60", "X-Ratelimit-Remaining": "50",
				"X-Ratelimit-Limit-Second": "2", "X-Ratelimit-Remaining-Second": "0",
				"X-Ratelimit-Reset": "1", "X-Ratelimit-Limited-By": "second",
				"Retry-After": "1",
			},
		},
		{
			name: "retry never below binding reset",
			in: &Input{Policy: lindrisPolicy, Decision: decision(1, 500*time.Millisecond,
				window.State{Limit: 60, Remaining: 50, Reset: 30 * time.Second},
				window.State{Limit: 2, Remaining: 0, Reset: 2500 * time.Millisecond})},
			want: map[string]string{
				"X-Ratelimit-Limit": "60", "X-Ratelimit-Remaining": "50",
				"X-Ratelimit-Limit-Second": "2", "X-Ratelimit-Remaining-Second": "0",
				"X-Ratelimit-Reset": "3", "X-Ratelimit-Limited-By": "second",
				"Retry-After": "3",
			},
		},
		{
			name: "refused with a sub-millisecond wait still says 1",
			in: &Input{Policy: minuteOnly, Decision: decision(0, time.Nanosecond,
				window.State{Limit: 60, Remaining: 0})},
			want: map[string]string{
				"X-Ratelimit-Limit": "60", "X-Ratelimit-Remaining": "0",
				"X-Ratelimit-Reset": "0", "X-Ratelimit-Limited-By": "minute",
				"Retry-After": "1",
			},
		},
		{
			name: "single window has no second fields",
			in: &Input{Policy: minuteOnly, Decision: decision(0, 0,
				window.State{Limit: 60, Remaining: 59, Reset: time.Minute})},
			want: map[string]string{
				"X-Ratelimit-Limit": "60", "X-Ratelimit-Remaining": "59",
				"X-Ratelimit-Reset": "60", "X-Ratelimit-Limited-By": "minute",
			},
		},
		{
			name: "numbers of three digits and more",
			in: &Input{
				Policy: policy(window.Window{Length: time.Minute, Limit: 1000}, window.Window{Length: time.Second, Limit: 150}),
				Decision: decision(0, 3_600_000*time.Second,
					window.State{Limit: 1000, Remaining: 999, Reset: 123 * time.Second},
					window.State{Limit: 150, Remaining: 100, Reset: 7 * time.Second})},
			want: map[string]string{
				"X-Ratelimit-Limit": "1000", "X-Ratelimit-Remaining": "999",
				"X-Ratelimit-Limit-Second": "150", "X-Ratelimit-Remaining-Second": "100",
				"X-Ratelimit-Reset": "123", "X-Ratelimit-Limited-By": "minute",
				"Retry-After": "3600000",
			},
		},
		{
			name: "no minute: longest first, then shortest other",
			in: &Input{
				Policy: policy(
					window.Window{Length: 10 * time.Second, Limit: 5},
					window.Window{Length: time.Hour, Limit: 100},
					window.Window{Length: 30 * time.Second, Limit: 10}),
				Decision: decision(0, 0,
					window.State{Limit: 5, Remaining: 1, Reset: 2 * time.Second},
					window.State{Limit: 100, Remaining: 90, Reset: time.Hour},
					window.State{Limit: 10, Remaining: 6, Reset: 20 * time.Second})},
			want: map[string]string{
				"X-Ratelimit-Limit": "100", "X-Ratelimit-Remaining": "90",
				"X-Ratelimit-Limit-Second": "5", "X-Ratelimit-Remaining-Second": "1",
				"X-Ratelimit-Reset": "2", "X-Ratelimit-Limited-By": "10s",
			},
		},
		{
			name: "names win over lengths",
			in: &Input{
				Policy: policy(
					window.Window{Name: "second", Length: 2 * time.Second, Limit: 3},
					window.Window{Length: time.Hour, Limit: 100},
					window.Window{Name: "minute", Length: 90 * time.Second, Limit: 20},
					window.Window{Length: time.Second, Limit: 9, Name: "burst"}),
				Decision: decision(2, 0,
					window.State{Limit: 3, Remaining: 2, Reset: time.Second},
					window.State{Limit: 100, Remaining: 90, Reset: time.Hour},
					window.State{Limit: 20, Remaining: 1, Reset: 80 * time.Second},
					window.State{Limit: 9, Remaining: 8, Reset: 1 * time.Second})},
			want: map[string]string{
				"X-Ratelimit-Limit": "20", "X-Ratelimit-Remaining": "1",
				"X-Ratelimit-Limit-Second": "3", "X-Ratelimit-Remaining-Second": "2",
				"X-Ratelimit-Reset": "80", "X-Ratelimit-Limited-By": "minute",
			},
		},
		{
			name: "minute is the shortest window",
			in: &Input{
				Policy: policy(window.Window{Name: "minute", Length: time.Second, Limit: 3}, window.Window{Length: time.Hour, Limit: 100}),
				Decision: decision(1, 0,
					window.State{Limit: 3, Remaining: 2, Reset: time.Second},
					window.State{Limit: 100, Remaining: 2, Reset: time.Hour})},
			want: map[string]string{
				"X-Ratelimit-Limit": "3", "X-Ratelimit-Remaining": "2",
				"X-Ratelimit-Limit-Second": "100", "X-Ratelimit-Remaining-Second": "2",
				"X-Ratelimit-Reset": "3600", "X-Ratelimit-Limited-By": "hour",
			},
		},
		{
			name: "label that could split a field",
			in: &Input{
				Policy:   policy(window.Window{Name: "min\r\nSet-Cookie: a=b", Length: time.Minute, Limit: 60}),
				Decision: decision(0, 0, window.State{Limit: 60, Remaining: 1, Reset: time.Second})},
			want: map[string]string{
				"X-Ratelimit-Limit": "60", "X-Ratelimit-Remaining": "1",
				"X-Ratelimit-Reset": "1", "X-Ratelimit-Limited-By": "min??Set-Cookie: a=b",
			},
		},
	})
}

func TestScalekit(t *testing.T) {
	states := []window.State{
		{Limit: 60, Remaining: 45, Reset: 12300 * time.Millisecond},
		{Limit: 2, Remaining: 0, Reset: 750 * time.Millisecond},
	}
	runStyle(t, Scalekit{}, []styleCase{
		{
			name: "admitted, minute binds, instant rounds up",
			in:   &Input{Policy: lindrisPolicy, Decision: decision(0, 0, states...), Now: t0},
			// 05.250 + 12.300 = 17.550, sent as 18.
			want: map[string]string{
				"X-Ratelimit-Limit": "60", "X-Ratelimit-Remaining": "45",
				"X-Ratelimit-Reset": "1735787058",
			},
		},
		{
			name: "refused by second, instant on a whole second",
			in:   &Input{Policy: lindrisPolicy, Decision: decision(1, 750*time.Millisecond, states...), Now: t0},
			want: map[string]string{
				"X-Ratelimit-Limit": "2", "X-Ratelimit-Remaining": "0",
				"X-Ratelimit-Reset": "1735787046", "Retry-After": "1",
			},
		},
		{
			name: "nothing counted is now, rounded up",
			in:   &Input{Policy: minuteOnly, Decision: decision(0, 0, window.State{Limit: 60, Remaining: 60}), Now: t0},
			want: map[string]string{
				"X-Ratelimit-Limit": "60", "X-Ratelimit-Remaining": "60",
				"X-Ratelimit-Reset": "1735787046",
			},
		},
	})
}

// TestScalekitZeroNowReadsTheClock: a caller that leaves Now zero gets the
// reset counted from the clock, never a date in year 1.
func TestScalekitZeroNowReadsTheClock(t *testing.T) {
	in := &Input{Policy: lindrisPolicy, Decision: decision(1, 750*time.Millisecond,
		window.State{Limit: 60, Remaining: 45, Reset: 12300 * time.Millisecond},
		window.State{Limit: 2, Remaining: 0, Reset: 750 * time.Millisecond})}
	h := http.Header{}
	before := time.Now()
	Scalekit{}.WriteHeaders(h, in)
	after := time.Now()
	got, err := strconv.ParseInt(h.Get("X-Ratelimit-Reset"), 10, 64)
	lo, hi := before.Add(750*time.Millisecond).Unix(), after.Add(750*time.Millisecond).Unix()+1
	if err != nil || got < lo || got > hi {
		t.Errorf("Scalekit with zero Now: X-RateLimit-Reset = %q, want a Unix time in [%d, %d]", h.Get("X-Ratelimit-Reset"), lo, hi)
	}
}

func TestKinde(t *testing.T) {
	runStyle(t, Kinde{}, []styleCase{
		{
			name: "admitted",
			in: &Input{Policy: lindrisPolicy, Decision: decision(0, 0,
				window.State{Limit: 60, Remaining: 45, Reset: 12300 * time.Millisecond},
				window.State{Limit: 2, Remaining: 1, Reset: 750 * time.Millisecond})},
			want: map[string]string{"Ratelimit-Limit": "60", "Ratelimit-Remaining": "45", "Ratelimit-Reset": "13"},
		},
		{
			name: "refused",
			in: &Input{Policy: lindrisPolicy, Decision: decision(1, 750*time.Millisecond,
				window.State{Limit: 60, Remaining: 45, Reset: 12300 * time.Millisecond},
				window.State{Limit: 2, Remaining: 0, Reset: 750 * time.Millisecond})},
			want: map[string]string{"Ratelimit-Limit": "2", "Ratelimit-Remaining": "0", "Ratelimit-Reset": "1", "Retry-After": "1"},
		},
	})
}

// TestUnrenderable checks that every style survives inputs that do not add
// up, writing at most Retry-After.
func TestUnrenderable(t *testing.T) {
	refusedNoWindows := &window.Decision{RetryAfter: 2500 * time.Millisecond}
	cases := []styleCase{
		{name: "nil input", in: nil},
		{name: "nil decision", in: &Input{Policy: lindrisPolicy}},
		{name: "nil policy", in: &Input{Decision: decision(0, 0, window.State{Limit: 1})}},
		{name: "nil policy refused", in: &Input{Decision: decision(0, time.Second, window.State{Limit: 1})},
			want: map[string]string{"Retry-After": "1"}},
		{name: "window count mismatch", in: &Input{Policy: lindrisPolicy, Decision: decision(0, 0, window.State{Limit: 1})}},
		{name: "limiting out of range", in: &Input{Policy: minuteOnly, Decision: decision(1, 0, window.State{Limit: 1})}},
		{name: "limiting negative", in: &Input{Policy: minuteOnly, Decision: decision(-1, 0, window.State{Limit: 1})}},
		{name: "too many windows", in: &Input{Policy: minuteOnly, Decision: &window.Decision{Allowed: true, N: window.MaxWindows + 1}}},
		{name: "503 with a suggested wait", in: &Input{Policy: lindrisPolicy, Decision: refusedNoWindows, Status: 503},
			want: map[string]string{"Retry-After": "3"}},
	}
	for _, s := range []struct {
		name  string
		style Style
	}{{"Lindris", Lindris{}}, {"Scalekit", Scalekit{}}, {"Kinde", Kinde{}}, {"IETF", IETF{}}, {"Multi", Multi(Lindris{}, nil, IETF{})}} {
		t.Run(s.name, func(t *testing.T) { runStyle(t, s.style, cases) })
	}
}

// TestCanonicalKeys checks that the spellings assigned directly into the
// header map are the canonical forms Get and Set look up.
func TestCanonicalKeys(t *testing.T) {
	for _, k := range []string{
		keyRetryAfter, keyXLimit, keyXRemaining, keyXLimitSecond, keyXRemainingSec,
		keyXReset, keyXLimitedBy, keyLimit, keyRemaining, keyReset, keyRateLimit, keyRateLimitPolicy,
	} {
		if got := textproto.CanonicalMIMEHeaderKey(k); got != k {
			t.Errorf("CanonicalMIMEHeaderKey(%q) = %q, want %q", k, got, k)
		}
	}
	// The documented spellings resolve to the same fields.
	h := http.Header{}
	Multi(Lindris{}, IETF{}).WriteHeaders(h, &Input{Policy: lindrisPolicy, Decision: decision(1, time.Second,
		window.State{Limit: 60, Remaining: 1, Reset: time.Second}, window.State{Limit: 2, Remaining: 0, Reset: time.Second})})
	for _, k := range []string{"X-RateLimit-Limit", "X-RateLimit-Remaining", "X-RateLimit-Limit-Second",
		"X-RateLimit-Remaining-Second", "X-RateLimit-Reset", "X-RateLimit-Limited-By", "Retry-After",
		"RateLimit", "RateLimit-Policy"} {
		if h.Get(k) == "" {
			t.Errorf("Get(%q) = \"\" after WriteHeaders, want a value", k)
		}
	}
}

// TestSharedBackingArray checks that the values sharing one array stay
// independent: appending to one field must not overwrite the next.
func TestSharedBackingArray(t *testing.T) {
	for _, s := range []struct {
		name  string
		style Style
	}{{"Lindris", Lindris{}}, {"Scalekit", Scalekit{}}, {"Kinde", Kinde{}}, {"IETF", IETF{}}} {
		t.Run(s.name, func(t *testing.T) {
			h := http.Header{}
			s.style.WriteHeaders(h, &Input{Now: t0, Policy: lindrisPolicy, Decision: decision(1, time.Second,
				window.State{Limit: 60, Remaining: 1, Reset: time.Second}, window.State{Limit: 2, Remaining: 0, Reset: time.Second})})
			before := http.Header{}
			for k, v := range h {
				before[k] = slices.Clone(v)
			}
			for k := range h {
				h.Add(k, "appended")
			}
			for k, v := range h {
				want := append(slices.Clone(before[k]), "appended")
				if !slices.Equal(v, want) {
					t.Errorf("after Add on every field, %s = %q, want %q", k, v, want)
				}
			}
		})
	}
}

func TestMultiOrder(t *testing.T) {
	in := &Input{Now: t0, Policy: lindrisPolicy, Decision: decision(1, 0,
		window.State{Limit: 60, Remaining: 45, Reset: time.Second}, window.State{Limit: 2, Remaining: 1, Reset: time.Second})}
	for _, tc := range []struct {
		name  string
		style Style
		want  string
	}{
		{"Lindris then Scalekit", Multi(Lindris{}, Scalekit{}), "2"},
		{"Scalekit then Lindris", Multi(Scalekit{}, Lindris{}), "60"},
		{"empty", Multi(), ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := http.Header{}
			tc.style.WriteHeaders(h, in)
			if got := h.Get("X-RateLimit-Limit"); got != tc.want {
				t.Errorf("X-RateLimit-Limit = %q, want %q", got, tc.want)
			}
		})
	}
	// Multi copies its arguments.
	styles := []Style{Lindris{}}
	m := Multi(styles...)
	styles[0] = Kinde{}
	h := http.Header{}
	m.WriteHeaders(h, in)
	if h.Get("X-RateLimit-Limit") == "" || h.Get("RateLimit-Limit") != "" {
		t.Errorf("Multi(styles...) changed after styles was modified: got %v", h)
	}
}

func TestCeilSeconds(t *testing.T) {
	for _, tc := range []struct {
		d    time.Duration
		want int64
	}{
		{-time.Second, 0}, {0, 0}, {time.Nanosecond, 1}, {time.Millisecond, 1}, {999 * time.Millisecond, 1},
		{time.Second, 1}, {1001 * time.Millisecond, 2}, {time.Minute, 60}, {1<<63 - 1, 9223372037},
	} {
		if got := ceilSeconds(tc.d); got != tc.want {
			t.Errorf("ceilSeconds(%v) = %d, want %d", tc.d, got, tc.want)
		}
	}
}

// TestStylesNeedNoNow: the styles Input.Now's comment names as never
// reading it render the same without it, so a caller may leave it zero.
func TestStylesNeedNoNow(t *testing.T) {
	in := &Input{Now: t0, Policy: lindrisPolicy, Decision: decision(1, 800*time.Millisecond,
		window.State{Limit: 60, Remaining: 45, Reset: 12300 * time.Millisecond},
		window.State{Limit: 2, Remaining: 0, Reset: 800 * time.Millisecond})}
	noNow := *in
	noNow.Now = time.Time{}
	for _, s := range []Style{Lindris{}, Kinde{}, IETF{}} {
		a, b := http.Header{}, http.Header{}
		s.WriteHeaders(a, in)
		s.WriteHeaders(b, &noNow)
		if !maps.EqualFunc(a, b, slices.Equal) {
			t.Errorf("%T renders differently without Now: %v vs %v", s, a, b)
		}
	}
}

// TestEnvelopesNeedNoNow: the package's envelopes render the same without
// Now, refused or admitted.
func TestEnvelopesNeedNoNow(t *testing.T) {
	for _, d := range []*window.Decision{
		decision(1, 800*time.Millisecond,
			window.State{Limit: 60, Remaining: 45, Reset: 12300 * time.Millisecond},
			window.State{Limit: 2, Remaining: 0, Reset: 800 * time.Millisecond}),
		{Allowed: true, N: 2, Windows: [window.MaxWindows]window.State{{Limit: 60, Remaining: 1}, {Limit: 2, Remaining: 1}}},
	} {
		in := &Input{Now: t0, Policy: lindrisPolicy, Decision: d, Status: 429}
		noNow := *in
		noNow.Now = time.Time{}
		for _, e := range []Envelope{LindrisBody{}, AuthmatechBody{}, ProblemBody{}} {
			if a, b := e.AppendBody(nil, in), e.AppendBody(nil, &noNow); !bytes.Equal(a, b) {
				t.Errorf("%T renders differently without Now: %s vs %s", e, a, b)
			}
		}
	}
}

// TestWaitSeconds: the millisecond a decision may hold for the clock's
// resolution is not a second to wait; anything beyond it rounds up.
func TestWaitSeconds(t *testing.T) {
	for _, tc := range []struct {
		d    time.Duration
		want int64
	}{
		{0, 0}, {time.Nanosecond, 1}, {time.Millisecond, 1}, {time.Millisecond + time.Nanosecond, 1},
		{800 * time.Millisecond, 1}, {1001 * time.Millisecond, 1}, {1002 * time.Millisecond, 2},
		{60001 * time.Millisecond, 60}, {-time.Second, 0},
	} {
		if got := waitSeconds(tc.d); got != tc.want {
			t.Errorf("waitSeconds(%v) = %d, want %d", tc.d, got, tc.want)
		}
	}
	// A fresh client's per-second window, as a store reports it.
	h := http.Header{}
	Lindris{}.WriteHeaders(h, &Input{Policy: lindrisPolicy, Decision: decision(1, 0,
		window.State{Limit: 60, Remaining: 59, Reset: 60001 * time.Millisecond},
		window.State{Limit: 2, Remaining: 1, Reset: 1001 * time.Millisecond})})
	if got := h.Get("X-Ratelimit-Reset"); got != "1" {
		t.Errorf("fresh client: X-RateLimit-Reset = %q, want 1", got)
	}
}
