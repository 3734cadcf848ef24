package headers_test

import (
	"fmt"
	"net/http"
	"os"
	"slices"
	"time"

	"github.com/ratekit/ratekit/headers"
	"github.com/ratekit/ratekit/window"
)

// printHeader prints h sorted by name, one field per line.
func printHeader(h http.Header) {
	for _, k := range slices.Sorted(func(yield func(string) bool) {
		for k := range h {
			if !yield(k) {
				return
			}
		}
	}) {
		fmt.Printf("%s: %s\n", k, h[k][0])
	}
}

// thirdInASecond returns the Lindris policy and the decision for the third
// request within 200ms: refused by the per-second window. The clock is
// fake, so the output never depends on timing.
func thirdInASecond() (*window.Policy, *window.Decision, time.Time) {
	p := window.Default()
	t0 := time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)
	var l window.Log
	l.TakeAt(t0, &p, 1)
	l.TakeAt(t0.Add(100*time.Millisecond), &p, 1)
	now := t0.Add(200 * time.Millisecond)
	d := l.TakeAt(now, &p, 1)
	return &p, &d, now
}

func ExampleLindris() {
	p, d, now := thirdInASecond()
	h := http.Header{}
	headers.Lindris{}.WriteHeaders(h, &headers.Input{Policy: p, Decision: d, Now: now})
	printHeader(h)
	// Output:
	// Retry-After: 1
	// X-Ratelimit-Limit: 60
	// X-Ratelimit-Limit-Second: 2
	// X-Ratelimit-Limited-By: second
	// X-Ratelimit-Remaining: 58
	// X-Ratelimit-Remaining-Second: 0
	// X-Ratelimit-Reset: 1
}

func ExampleIETF() {
	p, d, now := thirdInASecond()
	h := http.Header{}
	headers.IETF{}.WriteHeaders(h, &headers.Input{Policy: p, Decision: d, Now: now})
	printHeader(h)
	// Output:
	// Ratelimit: "minute";r=58;t=60, "second";r=0;t=1
	// Ratelimit-Policy: "minute";q=60;w=60, "second";q=2;w=1
	// Retry-After: 1
}

func ExampleScalekit() {
	p, d, now := thirdInASecond()
	h := http.Header{}
	headers.Scalekit{}.WriteHeaders(h, &headers.Input{Policy: p, Decision: d, Now: now})
	printHeader(h)
	// Output:
	// Retry-After: 1
	// X-Ratelimit-Limit: 2
	// X-Ratelimit-Remaining: 0
	// X-Ratelimit-Reset: 1735787047
}

func ExampleKinde() {
	p, d, now := thirdInASecond()
	h := http.Header{}
	headers.Kinde{}.WriteHeaders(h, &headers.Input{Policy: p, Decision: d, Now: now})
	printHeader(h)
	// Output:
	// Ratelimit-Limit: 2
	// Ratelimit-Remaining: 0
	// Ratelimit-Reset: 1
	// Retry-After: 1
}

func ExampleMulti() {
	p, d, now := thirdInASecond()
	h := http.Header{}
	style := headers.Multi(headers.Kinde{}, headers.IETF{})
	style.WriteHeaders(h, &headers.Input{Policy: p, Decision: d, Now: now, Partition: "k7Qz"})
	printHeader(h)
	// Output:
	// Ratelimit: "minute";r=58;t=60;pk=:azdReg==:, "second";r=0;t=1;pk=:azdReg==:
	// Ratelimit-Limit: 2
	// Ratelimit-Policy: "minute";q=60;w=60;pk=:azdReg==:, "second";q=2;w=1;pk=:azdReg==:
	// Ratelimit-Remaining: 0
	// Ratelimit-Reset: 1
	// Retry-After: 1
}

func ExampleLindrisBody() {
	p, d, _ := thirdInASecond()
	body := headers.LindrisBody{}
	fmt.Println(body.ContentType())
	os.Stdout.Write(body.AppendBody(nil, &headers.Input{Policy: p, Decision: d}))
	fmt.Println()

	// Fail closed: the store could not decide.
	os.Stdout.Write(body.AppendBody(nil, &headers.Input{Status: http.StatusServiceUnavailable}))
	fmt.Println()
	// Output:
	// application/json
	// {"message":"You have exceeded your rate limit.","status_code":429,"retry_after":1}
	// {"message":"The rate limiter is temporarily unavailable. Please retry later.","status_code":503,"retry_after":1}
}

func ExampleLindrisBody_message() {
	p, d, _ := thirdInASecond()
	body := headers.LindrisBody{Message: `Slow down, "robot".`}
	os.Stdout.Write(body.AppendBody(nil, &headers.Input{Policy: p, Decision: d}))
	fmt.Println()
	// Output:
	// {"message":"Slow down, \"robot\".","status_code":429,"retry_after":1}
}

func ExampleAuthmatechBody() {
	p, d, _ := thirdInASecond()
	body := headers.AuthmatechBody{}
	fmt.Println(body.ContentType())
	os.Stdout.Write(body.AppendBody(nil, &headers.Input{Policy: p, Decision: d}))
	fmt.Println()
	os.Stdout.Write(body.AppendBody(nil, &headers.Input{Status: http.StatusServiceUnavailable}))
	fmt.Println()
	// Output:
	// application/json
	// {"success":false,"messages":[{"type":"FAILURE","message":"Rate limit exceeded.","httpStatus":"TOO_MANY_REQUESTS"}],"data":null}
	// {"success":false,"messages":[{"type":"FAILURE","message":"Service temporarily unavailable.","httpStatus":"SERVICE_UNAVAILABLE"}],"data":null}
}

func ExampleProblemBody() {
	p, d, _ := thirdInASecond()
	body := headers.ProblemBody{}
	fmt.Println(body.ContentType())
	os.Stdout.Write(body.AppendBody(nil, &headers.Input{Policy: p, Decision: d}))
	fmt.Println()
	os.Stdout.Write(body.AppendBody(nil, &headers.Input{Status: http.StatusServiceUnavailable}))
	fmt.Println()
	// Output:
	// application/problem+json
	// {"type":"https://iana.org/assignments/http-problem-types#quota-exceeded","title":"Request quota exceeded","status":429,"detail":"Request quota exceeded. Retry after 1 second.","violated-policies":["second"],"retry_after":1}
	// {"type":"https://iana.org/assignments/http-problem-types#temporary-reduced-capacity","title":"Rate limiter temporarily unavailable","status":503,"detail":"The rate limiter is temporarily unavailable. Retry after 1 second.","retry_after":1}
}
