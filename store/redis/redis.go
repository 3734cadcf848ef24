package redis

import (
	"context"
	_ "embed"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/ratekit/ratekit/store"
	"github.com/ratekit/ratekit/window"
)

var (
	_ store.Store = (*Store)(nil)
	_ store.Admin = (*Store)(nil)
)

//go:embed take.lua
var takeSrc string

// Scripter is the part of a go-redis client the store uses: running Lua
// scripts. *goredis.Client (standalone or Sentinel failover),
// *goredis.ClusterClient, *goredis.Ring and goredis.UniversalClient all
// satisfy it.
type Scripter = goredis.Scripter

// DefaultPrefix is the key prefix used when [Config.Prefix] is empty.
const DefaultPrefix = "ratekit"

// DefaultTimeout is the per-decision deadline used when [Config.Timeout] is
// zero.
const DefaultTimeout = 50 * time.Millisecond

// Slack added to every key's TTL beyond the time its state can still matter.
// With the server's clock the script and the expiry agree, so a second
// covers rounding; with [Config.Now] the two clocks differ, so the margin
// also covers skew between the application and Redis.
const (
	serverClockSlack = time.Second
	appClockSlack    = time.Minute
)

// Config configures a [Store]. The zero value is valid: prefix "ratekit",
// 50ms per decision, time from the Redis server.
type Config struct {
	// Prefix starts every key the store writes: <Prefix>:{<32 hex>}:m.
	// Empty means [DefaultPrefix]. It must not contain '{' or '}', which
	// would change the Redis Cluster hash slot.
	Prefix string
	// Timeout bounds each decision (Take, Peek, Reset), on top of any
	// deadline the caller's context carries; the earlier one wins. Zero
	// means [DefaultTimeout]; negative is invalid. It is honoured only if the
	// client has ContextTimeoutEnabled set, which New checks where it can.
	Timeout time.Duration
	// Now, when set, supplies the time of each decision (milliseconds are
	// used) and is passed to the script. Nil, the production setting, means
	// the script reads the Redis server's TIME, so every application
	// instance agrees on time whatever its own clock says, and decisions
	// are stamped in the order the server runs them. Tests set a fake
	// clock. A Now read before the round trip can reach the server out of
	// order, which the script takes for a clock step back: the key's
	// entries then age by the gap, and a limit may admit that much early.
	Now func() time.Time
	// NoAutoPipeline sends each Take as its own EVALSHA on its own pooled
	// connection. By default, with a *goredis.Client (standalone or
	// Sentinel), concurrent Takes are written together as one go-redis
	// pipeline (still one EVALSHA, one reply and one deadline per
	// decision), which saves most of the system calls on both sides; set
	// this if you rely on go-redis process hooks seeing each EVALSHA (the
	// pipeline hooks see them instead). Cluster and Ring clients never
	// pipeline: a pipeline over several nodes waits for the slowest.
	NoAutoPipeline bool
}

// Store is a [store.Store] and [store.Admin] whose state lives in Redis.
// Every decision is one script call (EVALSHA, or EVAL after the server
// lost its script cache), evaluated atomically on the server, so any
// number of application instances share exact limits. It is safe for
// concurrent use.
type Store struct {
	client  Scripter
	script  *goredis.Script
	prefix  string
	timeout time.Duration
	now     func() time.Time
	slack   any // TTL slack in ms as a decimal string, boxed once
	sha     any // the script's SHA1, boxed once
	closed  atomic.Bool

	process  processClient                                    // nil: Take goes through client.EvalSha
	directFn func(context.Context, *goredis.Cmd) (any, error) // s.direct, bound once
	batch    *batcher                                         // nil: no auto-pipelining
	policies sync.Map                                         // *window.Policy → []any, see policyArgs
	cached   atomic.Int32                                     // entries in policies
}

// New returns a Store deciding through client. It sends nothing to Redis,
// so an unreachable server is not an error here; the first Take reports
// it. The store never closes client.
//
// New rejects a client whose options it can read (*goredis.Client,
// *goredis.ClusterClient) when they would break the store's guarantees:
// ContextTimeoutEnabled false (Timeout would not bound a decision) or
// MaxRetries left at its default of 3 retries (a decision sent, applied, and lost on the way back
// would be sent again and counted twice); set MaxRetries to -1. All
// problems are reported at once. A ClusterClient also re-sends after a
// network error up to MaxRedirects times; docs/redis.md weighs setting
// that to -1 too.
func New(client Scripter, cfg Config) (*Store, error) {
	var errs []error
	if client == nil {
		errs = append(errs, errors.New("store/redis: nil client"))
	}
	if cfg.Prefix == "" {
		cfg.Prefix = DefaultPrefix
	}
	for _, c := range cfg.Prefix {
		if c == '{' || c == '}' {
			errs = append(errs, fmt.Errorf("store/redis: prefix %q contains %q, which would move keys to another cluster slot", cfg.Prefix, c))
			break
		}
	}
	switch {
	case cfg.Timeout == 0:
		cfg.Timeout = DefaultTimeout
	case cfg.Timeout < 0:
		errs = append(errs, fmt.Errorf("store/redis: timeout %v is negative", cfg.Timeout))
	}
	errs = append(errs, checkClient(client)...)
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	slack := serverClockSlack
	if cfg.Now != nil {
		slack = appClockSlack
	}
	s := &Store{
		client:  client,
		script:  goredis.NewScript(takeSrc),
		prefix:  cfg.Prefix,
		timeout: cfg.Timeout,
		now:     cfg.Now,
		slack:   any(strconv.FormatInt(slack.Milliseconds(), 10)),
	}
	s.sha = any(s.script.Hash())
	s.directFn = s.direct
	s.process, _ = client.(processClient)
	// Only a client talking to one server pipelines: a Cluster or Ring
	// pipeline answers when its slowest node does, so one dead primary
	// would hold up decisions whose keys live on healthy ones.
	if c, ok := client.(*goredis.Client); ok && !cfg.NoAutoPipeline {
		s.batch = &batcher{client: c, src: takeSrc}
	}
	return s, nil
}

// checkClient reports client options that would break the store's
// guarantees, for the client types whose options can be read.
func checkClient(client Scripter) []error {
	var ctxTimeout bool
	var retries int
	switch c := client.(type) {
	case *goredis.Client:
		o := c.Options()
		ctxTimeout, retries = o.ContextTimeoutEnabled, o.MaxRetries
	case *goredis.ClusterClient:
		o := c.Options()
		ctxTimeout, retries = o.ContextTimeoutEnabled, o.MaxRetries
	default:
		return nil
	}
	var errs []error
	if !ctxTimeout {
		errs = append(errs, errors.New("store/redis: client has ContextTimeoutEnabled false, so the store's timeout would not bound a decision; set it to true"))
	}
	// go-redis turns MaxRetries -1 into 0 and 0 into 3 when it builds the
	// client, so here 0 means "never retry".
	if retries > 0 {
		errs = append(errs, fmt.Errorf("store/redis: client MaxRetries is %d, so a decision lost on its way back would be re-sent and counted twice; set it to -1", retries))
	}
	return errs
}

// Take decides req in one script call. The decision equals what
// [window.Log] (SlidingLog) or [window.Counter] (SlidingCounter) would answer
// for the same history. Errors are prefixed "store/redis: " and wrap the
// go-redis or context error; [Kind] classifies them. An error means the
// request may or may not have been recorded (the reply was lost), never
// that it was recorded twice.
func (s *Store) Take(ctx context.Context, req store.Request) (window.Decision, error) {
	if s.closed.Load() {
		return window.Decision{}, store.ErrClosed
	}
	if err := store.CheckRequest(&req); err != nil {
		return window.Decision{}, err
	}
	return s.run(ctx, req.Key, req.Policy, req.Cost, true)
}

// Peek returns what a request of cost 1 for key would be told now, writing
// nothing. It runs the same script read-only (EVALSHA_RO), so on Redis 7 it
// may be served by a replica.
func (s *Store) Peek(ctx context.Context, key store.Key, p *window.Policy) (window.Decision, error) {
	if s.closed.Load() {
		return window.Decision{}, store.ErrClosed
	}
	req := store.Request{Key: key, Policy: p, Cost: 1}
	if err := store.CheckRequest(&req); err != nil {
		return window.Decision{}, err
	}
	return s.run(ctx, key, p, 1, false)
}

// Reset deletes every key of key's identity (the window state).
func (s *Store) Reset(ctx context.Context, key store.Key) error {
	if s.closed.Load() {
		return store.ErrClosed
	}
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	// Scripter has no DEL: a one-line script keeps the interface narrow.
	err := resetScript.Run(ctx, s.client, []string{Key(s.prefix, key)}).Err()
	if err != nil && !errors.Is(err, goredis.Nil) {
		return fmt.Errorf("store/redis: reset: %w", err)
	}
	return nil
}

var resetScript = goredis.NewScript("return redis.call('DEL', KEYS[1])")

// Close marks the store closed; later calls return [store.ErrClosed]. The
// client is the caller's and stays open. Close is idempotent and always
// returns nil.
func (s *Store) Close() error {
	s.closed.Store(true)
	return nil
}

// run executes the decision script and decodes its reply. Take (record)
// goes through the auto-pipeline when the client supports it; Peek runs
// EVALSHA_RO directly.
func (s *Store) run(ctx context.Context, key store.Key, p *window.Policy, cost int, record bool) (window.Decision, error) {
	var reply any
	var err error
	if record && s.batch != nil {
		deadline := time.Now().Add(s.timeout)
		if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
			deadline = d
		}
		reply, err = s.batch.do(ctx, s.evalsha(ctx, key, p, cost), deadline, s.directFn)
	} else if record && s.process != nil {
		reply, err = s.direct(ctx, s.evalsha(ctx, key, p, cost))
	} else {
		reply, err = s.call(ctx, key, p, cost, record)
	}
	if err != nil {
		return window.Decision{}, fmt.Errorf("store/redis: %w", err)
	}
	return decode(reply, p)
}

// evalsha returns the EVALSHA command recording one decision.
func (s *Store) evalsha(ctx context.Context, key store.Key, p *window.Policy, cost int) *goredis.Cmd {
	cmd := goredis.NewCmd(ctx, s.command("evalsha", key, p, cost, true)...)
	cmd.SetFirstKeyPos(3) // as EvalSha does: Cluster routing needs no lookup
	return cmd
}

// command returns the arguments of one decision's script call:
//
//	<name> <sha> 1 <key> <now> <cost> <algorithm> <record> <slack> <length> <limit> ...
//
// The constant parts are boxed once per store, the windows once per policy
// (see policyArgs).
func (s *Store) command(name string, key store.Key, p *window.Policy, cost int, record bool) []any {
	pa := s.policyArgs(p)
	args := make([]any, 9, 9+len(pa))
	args[0], args[1], args[2], args[3] = name, s.sha, "1", Key(s.prefix, key)
	if s.now != nil {
		args[4] = s.now().UnixMilli()
	} else {
		args[4] = ""
	}
	args[5] = cost
	args[6], args[7] = "0", "0"
	if p.Algorithm == window.SlidingCounter {
		args[6] = "1"
	}
	if record {
		args[7] = "1"
	}
	args[8] = s.slack
	return append(args, pa...)
}

// maxCachedPolicies bounds policyArgs' cache: an application has a handful
// of policies; one building a policy per request must not grow the store.
// A limiter whose limits change while serving gets new policies with each
// change, so a full cache is emptied rather than frozen: the policies in
// use are cached again by their next decision.
const maxCachedPolicies = 64

// policyArgs returns p's windows as script arguments (length in ms, limit,
// ...), boxed once per policy: boxing a length above 255 allocates.
func (s *Store) policyArgs(p *window.Policy) []any {
	if v, ok := s.policies.Load(p); ok {
		pa := v.([]any)
		if policyMatches(pa, p) {
			return pa
		}
	}
	pa := make([]any, 0, 2*len(p.Windows))
	for _, w := range p.Windows {
		pa = append(pa, w.Length.Milliseconds(), w.Limit)
	}
	if s.cached.Load() >= maxCachedPolicies {
		s.policies.Clear()
		s.cached.Store(0)
	}
	if _, loaded := s.policies.Swap(p, pa); !loaded {
		s.cached.Add(1)
	}
	return pa
}

// policyMatches reports whether pa still encodes p's windows (a caller may
// have edited the policy it points to).
func policyMatches(pa []any, p *window.Policy) bool {
	if len(pa) != 2*len(p.Windows) {
		return false
	}
	for i, w := range p.Windows {
		if pa[2*i] != any(w.Length.Milliseconds()) || pa[2*i+1] != any(w.Limit) {
			return false
		}
	}
	return true
}

// direct runs one EVALSHA (then EVAL on NOSCRIPT) on its own, under the
// store's Timeout.
func (s *Store) direct(ctx context.Context, cmd *goredis.Cmd) (any, error) {
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	if err := s.process.Process(ctx, cmd); !isNoScript(err) {
		return cmd.Result()
	}
	args := cmd.Args()
	eval := goredis.NewCmd(ctx, append([]any{"eval", takeSrc}, args[2:]...)...)
	eval.SetFirstKeyPos(3)
	s.process.Process(ctx, eval)
	return eval.Result()
}

// call runs the script through the Scripter interface: Peek (EVALSHA_RO),
// and Take on clients that cannot pipeline.
func (s *Store) call(ctx context.Context, key store.Key, p *window.Policy, cost int, record bool) (any, error) {
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	args := s.command("", key, p, cost, record)[4:]
	keys := []string{Key(s.prefix, key)}
	var cmd *goredis.Cmd
	if record {
		cmd = s.script.Run(ctx, s.client, keys, args...)
	} else {
		cmd = s.script.RunRO(ctx, s.client, keys, args...)
		if err := cmd.Err(); err != nil && strings.Contains(err.Error(), "unknown command") {
			// Redis before 7 has no EVALSHA_RO; with record "0" the script
			// writes nothing, so the ordinary call is just as safe.
			cmd = s.script.Run(ctx, s.client, keys, args...)
		}
	}
	return cmd.Result()
}

// decode turns the script's reply into a Decision.
func decode(reply any, p *window.Policy) (window.Decision, error) {
	// Read the reply in place rather than through Int64Slice, which would
	// copy it into a new slice.
	vals, ok := reply.([]any)
	n := len(p.Windows)
	if !ok || len(vals) != 3+2*n {
		return window.Decision{}, fmt.Errorf("store/redis: script reply %T of %d values, want %d: %w", reply, len(vals), 3+2*n, errBadReply)
	}
	for _, v := range vals {
		if _, ok := v.(int64); !ok {
			return window.Decision{}, fmt.Errorf("store/redis: script reply holds %T, want integers: %w", v, errBadReply)
		}
	}
	at := func(i int) int64 { return vals[i].(int64) }
	d := window.Decision{
		Allowed:    at(0) == 1,
		Limiting:   int(at(1)),
		RetryAfter: time.Duration(at(2)) * time.Millisecond,
		N:          n,
	}
	for i, w := range p.Windows {
		d.Windows[i] = window.State{
			Limit:     w.Limit,
			Remaining: int(at(3 + 2*i)),
			Reset:     time.Duration(at(4+2*i)) * time.Millisecond,
		}
	}
	return d, nil
}

// errBadReply marks a script reply of the wrong shape (a script of another
// version under the same SHA, or a proxy mangling replies).
var errBadReply = errors.New("unexpected script reply")
