package config_test

import (
	"fmt"
	"log"
	"net/http"
	"net/http/httptest"

	"github.com/ratekit/ratekit/config"
	"github.com/ratekit/ratekit/middleware"
)

func ExampleParse() {
	f, err := config.Parse("ratekit.yaml", []byte(`
policy:
  windows:
    - {name: minute, length: 1m, limit: 100}
rules:
  - {name: bulk, routes: [/v1/import], methods: [POST], cost: 10}
headers: [lindris, ietf]
on_store_error: closed
`))
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(f.Limits.Policy, f.Limits.Rules[0].Name, f.Limits.Rules[0].Cost)
	fmt.Println(f.Headers, f.OnStoreError)
	// Output:
	// 100/minute (exact) bulk 10
	// [lindris ietf] closed
}

func ExampleParse_errors() {
	_, err := config.Parse("ratekit.yaml", []byte(`
policy:
  windows: [{length: 60, limit: 100}]
rules:
  - name: bulk
    route: [/v1/import]
    cost: 500
`))
	fmt.Println(err)
	// Output:
	// config: ratekit.yaml:3:22: policy.windows[0].length: want a duration such as 1m or 500ms, got the integer 60
	// config: ratekit.yaml:6:5: rules[0]: unknown field "route"; did you mean "routes"?
}

func ExampleFile_Build() {
	f, err := config.Parse("ratekit.yaml", []byte(`
policy: {windows: [{name: minute, length: 1m, limit: 100}]}
headers: kinde
`))
	if err != nil {
		log.Fatal(err)
	}
	cfg, closer, err := f.Build() // the store (memory here), and the Config
	if err != nil {
		log.Fatal(err)
	}
	defer closer.Close()
	// What a file cannot hold is code: a KeyValidator, an Observer, hooks.
	lim, err := middleware.New(cfg)
	if err != nil {
		log.Fatal(err)
	}
	defer lim.Close()

	w := httptest.NewRecorder()
	lim.Handler(http.NotFoundHandler()).ServeHTTP(w, httptest.NewRequest("GET", "/", nil))
	fmt.Println(w.Header().Get("RateLimit-Limit"), w.Header().Get("RateLimit-Remaining"))
	// Output:
	// 100 99
}

func ExampleFile_NeedsRestart() {
	running, err := config.Parse("ratekit.yaml", []byte("policy: {windows: [{length: 1m, limit: 60}]}\n"))
	if err != nil {
		log.Fatal(err)
	}
	next, err := config.Parse("ratekit.yaml", []byte("policy: {windows: [{length: 1m, limit: 120}]}\nheaders: ietf\non_store_error: closed\n"))
	if err != nil {
		log.Fatal(err)
	}
	// lim.SetLimits(next.Limits) applies the new policy while serving;
	// the rest waits for a restart.
	fmt.Println(running.NeedsRestart(next))
	// Output:
	// [on_store_error headers]
}
