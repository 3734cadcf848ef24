package headers

import (
	"bytes"
	"encoding/json"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/ratekit/ratekit/window"
)

// refusedBySecond is the third request within a second under the Lindris
// policy: the second window binds with 800ms to wait.
var refusedBySecond = &Input{Now: t0, Policy: lindrisPolicy, Decision: decision(1, 800*time.Millisecond,
	window.State{Limit: 60, Remaining: 58, Reset: 59800 * time.Millisecond},
	window.State{Limit: 2, Remaining: 0, Reset: 800 * time.Millisecond})}

// decodeStrict decodes body into v, refusing unknown members and trailing
// data, so that a test states the whole shape of a body.
func decodeStrict(t *testing.T, body []byte, v any) {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		t.Fatalf("decode %s: %v", body, err)
	}
	if dec.More() {
		t.Fatalf("decode %s: trailing data", body)
	}
}

func TestLindrisBody(t *testing.T) {
	type lindrisDoc struct {
		Message    *string `json:"message"`
		StatusCode *int    `json:"status_code"`
		RetryAfter *int    `json:"retry_after"`
	}
	for _, tc := range []struct {
		name    string
		env     LindrisBody
		in      *Input
		message string
		status  int
		retry   int
	}{
		{"default 429", LindrisBody{}, refusedBySecond, "You have exceeded your rate limit.", 429, 1},
		{"custom message", LindrisBody{Message: "Slow down."}, refusedBySecond, "Slow down.", 429, 1},
		{"long wait", LindrisBody{}, &Input{Policy: minuteOnly, Decision: decision(0, 42100*time.Millisecond,
			window.State{Limit: 60, Remaining: 0, Reset: 42100 * time.Millisecond})}, "You have exceeded your rate limit.", 429, 43},
		{"503 without decision", LindrisBody{Message: "unused"}, &Input{Status: 503},
			"The rate limiter is temporarily unavailable. Please retry later.", 503, 1},
		{"503 custom with suggested wait", LindrisBody{UnavailableMessage: "Back soon."},
			&Input{Status: 503, Decision: &window.Decision{RetryAfter: 5 * time.Second}}, "Back soon.", 503, 5},
		{"nil input", LindrisBody{}, nil, "You have exceeded your rate limit.", 429, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			body := tc.env.AppendBody(nil, tc.in)
			var doc lindrisDoc
			decodeStrict(t, body, &doc)
			if doc.Message == nil || *doc.Message != tc.message {
				t.Errorf("AppendBody message = %v, want %q", doc.Message, tc.message)
			}
			if doc.StatusCode == nil || *doc.StatusCode != tc.status {
				t.Errorf("AppendBody status_code = %v, want %d", doc.StatusCode, tc.status)
			}
			if doc.RetryAfter == nil || *doc.RetryAfter != tc.retry {
				t.Errorf("AppendBody retry_after = %v, want %d", doc.RetryAfter, tc.retry)
			}
		})
	}
	// The member order and spacing are part of the contract.
	got := string(LindrisBody{}.AppendBody([]byte("prefix:"), refusedBySecond))
	want := `prefix:{"message":"You have exceeded your rate limit.","status_code":429,"retry_after":1}`
	if got != want {
		t.Errorf("AppendBody = %s, want %s", got, want)
	}
	if ct := (LindrisBody{}).ContentType(); ct != "application/json" {
		t.Errorf("ContentType() = %q, want application/json", ct)
	}
}

func TestAuthmatechBody(t *testing.T) {
	type message struct {
		Type       *string `json:"type"`
		Message    *string `json:"message"`
		HTTPStatus *string `json:"httpStatus"`
	}
	type authmatechDoc struct {
		Success  *bool           `json:"success"`
		Messages []message       `json:"messages"`
		Data     json.RawMessage `json:"data"`
	}
	for _, tc := range []struct {
		name       string
		env        AuthmatechBody
		in         *Input
		message    string
		httpStatus string
	}{
		{"default 429", AuthmatechBody{}, refusedBySecond, "Rate limit exceeded.", "TOO_MANY_REQUESTS"},
		{"custom", AuthmatechBody{Message: "Quota spent."}, refusedBySecond, "Quota spent.", "TOO_MANY_REQUESTS"},
		{"503", AuthmatechBody{}, &Input{Status: 503}, "Service temporarily unavailable.", "SERVICE_UNAVAILABLE"},
		{"other status", AuthmatechBody{}, &Input{Status: 403}, "Rate limit exceeded.", "FORBIDDEN"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			body := tc.env.AppendBody(nil, tc.in)
			var doc authmatechDoc
			decodeStrict(t, body, &doc)
			if doc.Success == nil || *doc.Success {
				t.Errorf("AppendBody success = %v, want false", doc.Success)
			}
			if string(doc.Data) != "null" {
				t.Errorf("AppendBody data = %s, want null", doc.Data)
			}
			if len(doc.Messages) != 1 {
				t.Fatalf("AppendBody messages = %d entries, want 1", len(doc.Messages))
			}
			m := doc.Messages[0]
			if m.Type == nil || *m.Type != "FAILURE" {
				t.Errorf("AppendBody messages[0].type = %v, want FAILURE", m.Type)
			}
			if m.Message == nil || *m.Message != tc.message {
				t.Errorf("AppendBody messages[0].message = %v, want %q", m.Message, tc.message)
			}
			if m.HTTPStatus == nil || *m.HTTPStatus != tc.httpStatus {
				t.Errorf("AppendBody messages[0].httpStatus = %v, want %q", m.HTTPStatus, tc.httpStatus)
			}
		})
	}
	got := string(AuthmatechBody{}.AppendBody(nil, refusedBySecond))
	want := `{"success":false,"messages":[{"type":"FAILURE","message":"Rate limit exceeded.","httpStatus":"TOO_MANY_REQUESTS"}],"data":null}`
	if got != want {
		t.Errorf("AppendBody = %s, want %s", got, want)
	}
}

func TestProblemBody(t *testing.T) {
	type problemDoc struct {
		Type       *string   `json:"type"`
		Title      *string   `json:"title"`
		Status     *int      `json:"status"`
		Detail     *string   `json:"detail"`
		Violated   *[]string `json:"violated-policies"`
		RetryAfter *int      `json:"retry_after"`
	}
	const (
		exceeded = "https://iana.org/assignments/http-problem-types#quota-exceeded"
		reduced  = "https://iana.org/assignments/http-problem-types#temporary-reduced-capacity"
	)
	three := policy(
		window.Window{Length: time.Minute, Limit: 60},
		window.Window{Length: time.Second, Limit: 5},
		window.Window{Name: "burst", Length: 100 * time.Millisecond, Limit: 3})
	for _, tc := range []struct {
		name     string
		env      ProblemBody
		in       *Input
		typ      string
		title    string
		status   int
		detail   string
		violated []string // nil: member absent
		retry    int
	}{
		{"binding window", ProblemBody{}, refusedBySecond, exceeded, "Request quota exceeded", 429,
			"Request quota exceeded. Retry after 1 second.", []string{"second"}, 1},
		{"cost 2 rejected by two windows", ProblemBody{}, &Input{Policy: three, Cost: 2, Decision: decision(1, 2500*time.Millisecond,
			window.State{Limit: 60, Remaining: 30, Reset: 40 * time.Second},
			window.State{Limit: 5, Remaining: 0, Reset: 2500 * time.Millisecond},
			window.State{Limit: 3, Remaining: 1, Reset: 50 * time.Millisecond})},
			exceeded, "Request quota exceeded", 429, "Request quota exceeded. Retry after 3 seconds.", []string{"second", "burst"}, 3},
		{"cost 1 lists only windows with nothing left", ProblemBody{}, &Input{Policy: three, Decision: decision(1, 2500*time.Millisecond,
			window.State{Limit: 60, Remaining: 30, Reset: 40 * time.Second},
			window.State{Limit: 5, Remaining: 0, Reset: 2500 * time.Millisecond},
			window.State{Limit: 3, Remaining: 1, Reset: 50 * time.Millisecond})},
			exceeded, "Request quota exceeded", 429, "Request quota exceeded. Retry after 3 seconds.", []string{"second"}, 3},
		{"custom detail", ProblemBody{Detail: "Too fast."}, refusedBySecond, exceeded, "Request quota exceeded", 429,
			"Too fast.", []string{"second"}, 1},
		{"no decision", ProblemBody{}, &Input{}, exceeded, "Request quota exceeded", 429,
			"Request quota exceeded. Retry after 1 second.", []string{}, 1},
		{"503", ProblemBody{Detail: "unused"}, &Input{Status: 503, Decision: &window.Decision{RetryAfter: 30 * time.Second}},
			reduced, "Rate limiter temporarily unavailable", 503,
			"The rate limiter is temporarily unavailable. Retry after 30 seconds.", nil, 30},
		{"503 custom", ProblemBody{UnavailableDetail: "Maintenance."}, &Input{Status: 503}, reduced,
			"Rate limiter temporarily unavailable", 503, "Maintenance.", nil, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			body := tc.env.AppendBody(nil, tc.in)
			var doc problemDoc
			decodeStrict(t, body, &doc)
			check := func(member string, got *string, want string) {
				t.Helper()
				if got == nil || *got != want {
					t.Errorf("AppendBody %s = %v, want %q", member, got, want)
				}
			}
			check("type", doc.Type, tc.typ)
			check("title", doc.Title, tc.title)
			check("detail", doc.Detail, tc.detail)
			if doc.Status == nil || *doc.Status != tc.status {
				t.Errorf("AppendBody status = %v, want %d", doc.Status, tc.status)
			}
			if doc.RetryAfter == nil || *doc.RetryAfter != tc.retry {
				t.Errorf("AppendBody retry_after = %v, want %d", doc.RetryAfter, tc.retry)
			}
			switch {
			case tc.violated == nil && doc.Violated != nil:
				t.Errorf("AppendBody violated-policies = %q, want absent", *doc.Violated)
			case tc.violated != nil && (doc.Violated == nil || !slices.Equal(*doc.Violated, tc.violated)):
				t.Errorf("AppendBody violated-policies = %v, want %q", doc.Violated, tc.violated)
			}
		})
	}
	if ct := (ProblemBody{}).ContentType(); ct != "application/problem+json" {
		t.Errorf("ContentType() = %q, want application/problem+json", ct)
	}
}

// nastyStrings are messages users might set that a naive encoder would turn
// into invalid JSON.
var nastyStrings = []string{
	"",
	`"quoted" and \backslashed\ and \"both\"`,
	"control \x00\x01\x08\t\n\f\r\x1b\x1f\x7f end",
	"invalid UTF-8 \xff\xfe and truncated \xe2\x82",
	"surrogate half \xed\xa0\x80 and overlong \xc0\xaf",
	"line separators \u2028 \u2029",
	"emoji 🚦 and accents déjà vu",
	"</script><script>alert(1)</script>&",
	`{"message":"injected"}`,
}

// TestMessagesEscaped checks that every envelope yields valid JSON for any
// message, and that a client decodes what encoding/json would have encoded.
func TestMessagesEscaped(t *testing.T) {
	for _, msg := range nastyStrings {
		checkEscaped(t, msg)
	}
}

func FuzzMessage(f *testing.F) {
	for _, s := range nastyStrings {
		f.Add(s)
	}
	f.Fuzz(checkEscaped)
}

func checkEscaped(t *testing.T, msg string) {
	t.Helper()
	// What a client should read: encoding/json's own rendering, decoded.
	var want string
	enc, _ := json.Marshal(msg)
	if err := json.Unmarshal(enc, &want); err != nil {
		t.Fatalf("json round trip of %q: %v", msg, err)
	}
	for _, tc := range []struct {
		env  Envelope
		in   *Input
		read func(map[string]any) any
	}{
		{LindrisBody{Message: msg}, refusedBySecond, func(m map[string]any) any { return m["message"] }},
		{LindrisBody{UnavailableMessage: msg}, &Input{Status: 503}, func(m map[string]any) any { return m["message"] }},
		{AuthmatechBody{Message: msg}, refusedBySecond, func(m map[string]any) any {
			return m["messages"].([]any)[0].(map[string]any)["message"]
		}},
		{ProblemBody{Detail: msg}, refusedBySecond, func(m map[string]any) any { return m["detail"] }},
		{ProblemBody{}, &Input{Policy: policy(window.Window{Name: msg, Length: time.Second, Limit: 1}),
			Decision: decision(0, time.Second, window.State{Limit: 1, Reset: time.Second})},
			func(m map[string]any) any { return m["violated-policies"].([]any)[0] }},
	} {
		body := tc.env.AppendBody(nil, tc.in)
		if !json.Valid(body) {
			t.Fatalf("%T.AppendBody with %q = %s, not valid JSON", tc.env, msg, body)
		}
		var m map[string]any
		if err := json.Unmarshal(body, &m); err != nil {
			t.Fatalf("%T.AppendBody with %q: %v", tc.env, msg, err)
		}
		if got := tc.read(m); got != want && msg != "" {
			t.Errorf("%T.AppendBody with %q decodes to %q, want %q", tc.env, msg, got, want)
		}
	}
}

func TestAppendStatusName(t *testing.T) {
	for _, tc := range []struct {
		status int
		want   string
	}{
		{http.StatusTooManyRequests, "TOO_MANY_REQUESTS"},
		{http.StatusServiceUnavailable, "SERVICE_UNAVAILABLE"},
		{http.StatusNonAuthoritativeInfo, "NON_AUTHORITATIVE_INFORMATION"},
		{http.StatusTeapot, "I_M_A_TEAPOT"},
		{599, "599"},
	} {
		if got := string(appendStatusName(nil, tc.status)); got != tc.want {
			t.Errorf("appendStatusName(%d) = %q, want %q", tc.status, got, tc.want)
		}
	}
}

// TestLindrisBodyDefaultIsTheGeneralForm checks the prebuilt default 429
// against the body the general path builds from the same message.
func TestLindrisBodyDefaultIsTheGeneralForm(t *testing.T) {
	for _, in := range []*Input{
		refusedBySecond,
		{Status: 429},
		{Policy: lindrisPolicy, Decision: decision(0, 42100*time.Millisecond,
			window.State{Limit: 60, Remaining: 0, Reset: 42100 * time.Millisecond},
			window.State{Limit: 2, Remaining: 2})},
	} {
		// The default message set explicitly takes the general path.
		general := LindrisBody{Message: defaultMessage}.AppendBody(nil, in)
		if got := (LindrisBody{}).AppendBody(nil, in); !bytes.Equal(got, general) {
			t.Errorf("default body %s, general form %s", got, general)
		}
	}
}

// TestTooLargeBodies: a 413, a cost no window could ever admit, gets each
// envelope's "never" wording and no wait anywhere in the body.
func TestTooLargeBodies(t *testing.T) {
	p := &window.Policy{Windows: []window.Window{{Length: time.Minute, Limit: 100}, {Length: time.Second, Limit: 10}}}
	in := &Input{Status: 413, Policy: p, Cost: 50}
	for _, tc := range []struct {
		name string
		e    Envelope
		want string
	}{
		{"lindris", LindrisBody{}, `{"message":"This request costs more than the rate limit allows in any window; it can never be accepted as sent.","status_code":413}`},
		{"lindris custom", LindrisBody{TooLargeMessage: "Send at most 10 items."}, `{"message":"Send at most 10 items.","status_code":413}`},
		{"authmatech", AuthmatechBody{}, `{"success":false,"messages":[{"type":"FAILURE","message":"Request exceeds the rate limit.","httpStatus":"REQUEST_ENTITY_TOO_LARGE"}],"data":null}`},
		{"problem", ProblemBody{}, `{"type":"about:blank","title":"Request cost exceeds the quota","status":413,"detail":"This request costs 50; the smallest limit is 10.","violated-policies":["second"]}`},
		{"problem custom", ProblemBody{TooLargeDetail: "At most 10 items."}, `{"type":"about:blank","title":"Request cost exceeds the quota","status":413,"detail":"At most 10 items.","violated-policies":["second"]}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := string(tc.e.AppendBody(nil, in))
			if got != tc.want {
				t.Errorf("AppendBody(413) = %s\nwant %s", got, tc.want)
			}
			var v map[string]any
			decodeStrict(t, []byte(got), &v)
			if _, ok := v["retry_after"]; ok {
				t.Errorf("a 413 body promises a wait: %s", got)
			}
		})
	}
}
