// Package config reads a whole limiter's configuration from a file, YAML
// or JSON: the policy, rules, plans and clients' own limits, who a request
// is from, the store (memory or Redis), the failure policy, and the
// headers and body of the answer. docs/config.md describes every field and
// shows a complete file for each published contract ratekit reproduces.
//
//	policy:
//	  windows:
//	    - {name: minute, length: 1m, limit: 60}
//	    - {name: second, length: 1s, limit: 2}
//	rules:
//	  - {name: health, routes: [/healthz], exempt: true}
//	headers: lindris
//	on_store_error: open
//
// [Load] (or [Parse]) reads and checks a file; [File.Build] builds the
// store and returns the [middleware.Config] it describes; the program adds
// what a file cannot hold (a KeyValidator, an Observer, hooks) and calls
// [middleware.New]:
//
//	f, err := config.Load("ratekit.yaml")
//	if err != nil {
//		log.Fatal(err) // every problem, each with file:line:column and field
//	}
//	cfg, closer, err := f.Build()
//	if err != nil {
//		log.Fatal(err)
//	}
//	defer closer.Close()
//	cfg.KeyValidator = lookupKey
//	lim, err := middleware.New(cfg)
//
// # Reloading
//
// The limits (policy, rules, plans, client_policies) can change while
// serving: load the file again and pass its Limits to
// [middleware.Limiter.SetLimits], which keeps counts. Everything else is
// fixed when the limiter is built; [File.NeedsRestart] names the fields of
// a newer file that differ and so wait for a restart. examples/chi does
// this on SIGHUP.
//
// # Strictness
//
// A configuration file is outside input, and a typo in one is usually a
// limit that silently does not apply (a rule with "route" for "routes"
// would match every route). So the file is decoded by a small walker over
// the YAML node tree, not by reflection: an unknown field, a value of the
// wrong type, a bad duration, limit, enum value, network prefix or header
// name, a duplicate key, an anchor or alias, an explicit tag, and every
// check [middleware.New] makes are reported together, each as an [*Error]
// naming the file, line, column and field. Anchors and aliases are
// refused outright, so a few lines cannot expand into gigabytes; files are
// at most [MaxSize] bytes, nested at most [MaxDepth] deep, and must be
// UTF-8 text.
//
// # Secrets
//
// The file holds no secret. The hash key that store keys are derived from
// is read from the environment variable hash_key_env names, and a Redis
// URL that carries a password from the one url_env names: a configuration
// file is committed, copied into images, printed in reviews and dumped by
// orchestrators, and a secret in it leaks to everyone who can read any of
// those; an environment variable is where secret stores (Kubernetes
// Secrets, systemd credentials, a vault agent) put secrets, and it can be
// rotated without touching the file. The variables are read once, when
// the file is parsed; a [File] keeps their values unexported, and no error
// quotes them.
//
// # What this package does not do
//
// It holds no code: a KeyValidator, an Observer, a Logger, a Router, the
// Refuse and OnRefusal hooks, and a Rule's CostFunc other than
// [middleware.CostFromContext] are the program's to set on the Config that
// Build returns. It does not watch the file; the program decides when to
// reload. It does not connect to Redis: an unreachable server is answered
// at request time by the file's on_store_error, like a Redis given in code.
package config
