package config

import (
	"errors"
	"fmt"
	"io"
	"net/netip"
	"net/url"
	"os"
	"slices"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/ratekit/ratekit/headers"
	"github.com/ratekit/ratekit/middleware"
	"github.com/ratekit/ratekit/store/memory"
	redisstore "github.com/ratekit/ratekit/store/redis"
)

// MaxSize is the largest file [Load] and [Parse] read, 1 MiB: a limiter's
// configuration with a few thousand client policies fits many times over,
// and a file that does not is a mistake (a log, a dump) rather than a
// configuration.
const MaxSize = 1 << 20

// MaxDepth is the deepest nesting of lists and mappings a file may have.
// The deepest field of the format (a window's limit inside a rule's
// policy) is at depth 6.
const MaxDepth = 16

// File is a configuration file, parsed and checked: everything a
// [middleware.Config] holds that is data rather than code. Each field
// means what the [middleware.Config] field of the same name means,
// zero values included; docs/config.md shows the file form of each.
//
// A File from [Parse] or [Load] is valid: [File.Build] turns it into a
// working configuration, and its Limits can be given to
// [middleware.Limiter.SetLimits] while serving. It holds no secret: the
// hash key and a Redis URL named through the environment are kept
// unexported, so a File can be printed or logged.
type File struct {
	// Name is the name errors give the file: Load's path or Parse's name.
	Name string

	// Limits are the default policy, the rules, the plans and the
	// clients' own policies: the part that can change while serving
	// (file fields policy, rules, plans, client_policies).
	Limits middleware.Limits

	// Identity says who a request is from (file field identity).
	Identity Identity
	// ClientIP is how the client address is found (file field client_ip).
	ClientIP middleware.ClientIP
	// ExemptIPs are networks never limited (file field exempt_ips).
	ExemptIPs []netip.Prefix

	// HashKeyEnv names the environment variable the hash key
	// ([middleware.Config.HashKey]) was read from when the file was parsed
	// (file field hash_key_env). Empty means a random key per process,
	// which only an in-memory store allows.
	HashKeyEnv string
	// Store is where counts are kept (file field store).
	Store Store
	// OnStoreError is the failure policy (file field on_store_error).
	OnStoreError middleware.FailurePolicy
	// FallbackInstances divides the limits of the local fallback (file
	// field fallback_instances).
	FallbackInstances int
	// Breaker configures the circuit breaker in front of a shared store
	// (file field breaker).
	Breaker middleware.Breaker
	// DenyCache configures the cache of recent refusals in front of a
	// shared store (file field deny_cache).
	DenyCache DenyCache
	// Concurrency bounds the requests each client has in flight (file
	// field concurrency).
	Concurrency Concurrency

	// Headers names the header styles, in order: "lindris", "scalekit",
	// "kinde" or "ietf" (file field headers). Empty means lindris; several
	// are combined with [headers.Multi].
	Headers []string
	// Envelope is the body of refusals (file field envelope).
	Envelope Envelope
	// PartitionKey sends the IETF style's pk parameter (file field
	// partition_key).
	PartitionKey bool

	hashKey []byte // from HashKeyEnv
}

// Identity is who a request is from: the file's identity section.
type Identity struct {
	// Context sets [middleware.Config.Identify] to
	// [middleware.ClientFromContext]: the client an authentication
	// middleware that runs before the limiter stored with
	// [middleware.WithClient].
	Context bool
	// KeyHeaders, MaxKeyLen, KeyCacheTTL and KeyCacheSize are the
	// [middleware.Config] fields of the same names. API keys are read only
	// when the program sets a KeyValidator, which a file cannot hold.
	KeyHeaders   []string
	MaxKeyLen    int
	KeyCacheTTL  time.Duration
	KeyCacheSize int
}

// Store says where counts are kept: in this process's memory (the
// default) or in Redis, shared by every instance. At most one of Memory
// and Redis is set; neither means memory with its defaults.
type Store struct {
	Memory *MemoryStore
	Redis  *RedisStore
}

// MemoryStore is the file's store.memory: the [memory.Config] fields of
// the same names.
type MemoryStore struct {
	MaxKeys       int
	Shards        int
	SweepInterval time.Duration
}

// RedisStore is the file's store.redis: a Redis server reached by URL
// (redis://, rediss:// for TLS, or unix://; go-redis's query options such
// as pool_size and dial_timeout apply), and the [redisstore.Config] fields
// Prefix and Timeout.
type RedisStore struct {
	// URL is the server's URL, written in the file. It may not carry a
	// password: put such a URL in the environment and name it in URLEnv.
	URL string
	// URLEnv names the environment variable the URL was read from when the
	// file was parsed. The URL itself is kept unexported, never printed.
	URLEnv string
	// Prefix starts every key; empty means [redisstore.DefaultPrefix].
	Prefix string
	// Timeout bounds each decision; zero means [redisstore.DefaultTimeout].
	Timeout time.Duration

	url string // from URLEnv, or URL
}

// DenyCache is the file's deny_cache: [middleware.Config.DenyCacheSize],
// DenyCacheTTL and DisableDenyCache.
type DenyCache struct {
	Size     int
	TTL      time.Duration
	Disabled bool
}

// Concurrency is the file's concurrency: [middleware.Config.Concurrency]
// (Limit, zero for none) and ConcurrencyTTL (TTL).
type Concurrency struct {
	Limit int
	TTL   time.Duration
}

// Envelope is the file's envelope: the body of a refusal. Name is
// "lindris" (the default when empty), "authmatech" or "problem". The
// messages replace the envelope's defaults when not empty: for lindris
// and authmatech the message of a 429, a 503 and a 413 (the fields
// Message, UnavailableMessage and TooLargeMessage of
// [headers.LindrisBody] and [headers.AuthmatechBody]); for problem the
// detail member of each ([headers.ProblemBody]'s Detail,
// UnavailableDetail and TooLargeDetail).
type Envelope struct {
	Name               string
	Message            string
	UnavailableMessage string
	TooLargeMessage    string
}

// Load reads the file at path and parses it as [Parse] does, naming it by
// path in errors. A file larger than [MaxSize] is an error, read no
// further.
func Load(path string) (*File, error) {
	fh, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	defer fh.Close()
	data, err := io.ReadAll(io.LimitReader(fh, MaxSize+1))
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	return Parse(path, data)
}

// Parse reads a configuration from data, YAML or JSON, naming it name in
// errors. It reads the environment variables the file names (hash_key_env,
// a Redis url_env) and checks everything [middleware.New] would (by
// building a throwaway limiter on a memory store after its own checks), so
// that after a nil error [File.Build] and middleware.New succeed.
//
// It is strict: an unknown field, a value of the wrong type, a bad
// duration, limit, enum value, network prefix or header name, a duplicate
// key, an anchor or alias, an explicit tag, nesting deeper than
// [MaxDepth], more than one document, data over [MaxSize], invalid UTF-8
// or control characters are all errors. Every problem is reported at
// once, each an [*Error] with the file, line, column and field, joined with
// [errors.Join]. An empty file is an error; "{}" is the all-defaults
// configuration.
func Parse(name string, data []byte) (f *File, err error) {
	defer func() {
		// The YAML library has panicked on hostile input before; a bad
		// file must be an error, whatever the library does with it.
		if v := recover(); v != nil {
			f, err = nil, &Error{File: name, Err: fmt.Errorf("yaml parser failed: %v", v)}
		}
	}()
	d := &decoder{file: name}
	root := d.read(data)
	if root == nil {
		return nil, joinSorted(d.errs)
	}
	f = d.top(root)
	d.crossCheck(f)
	if len(d.errs) == 0 {
		d.backstop(f)
	}
	if len(d.errs) > 0 {
		return nil, joinSorted(d.errs)
	}
	return f, nil
}

// Build builds the store the file names and returns the
// [middleware.Config] it describes, with the hash key read from the
// environment, and the store's closer. The program adds what a file
// cannot hold (a KeyValidator, an Observer, a Logger, hooks) and passes
// the Config to [middleware.New]; after the limiter is closed it closes
// the returned Closer (the store, and the Redis client Build made).
//
// A Redis store is built without contacting the server: an unreachable
// server is not an error here but at request time, where the file's
// on_store_error answers. The go-redis client gets the options the store
// needs whatever the URL says: ContextTimeoutEnabled, MaxRetries -1 (a
// decision applied but lost on the way back is never sent twice) and
// DialerRetries 1 (a server that is down fails a decision at once).
func (f *File) Build() (middleware.Config, io.Closer, error) {
	cfg, err := f.config()
	if err != nil {
		return middleware.Config{}, nil, err
	}
	if r := f.Store.Redis; r != nil {
		opt, err := redisOptions(r.resolved())
		if err != nil {
			return middleware.Config{}, nil, &Error{File: f.Name, Field: "store.redis", Err: err}
		}
		client := goredis.NewClient(opt)
		rs, err := redisstore.New(client, redisstore.Config{Prefix: r.Prefix, Timeout: r.Timeout})
		if err != nil {
			client.Close()
			return middleware.Config{}, nil, err
		}
		cfg.Store = rs
		return cfg, closeFunc(func() error { return errors.Join(rs.Close(), client.Close()) }), nil
	}
	var mc memory.Config
	if m := f.Store.Memory; m != nil {
		mc = memory.Config{MaxKeys: m.MaxKeys, Shards: m.Shards, SweepInterval: m.SweepInterval}
	}
	ms, err := memory.New(mc)
	if err != nil {
		return middleware.Config{}, nil, err
	}
	cfg.Store = ms
	return cfg, ms, nil
}

// closeFunc is an io.Closer made of a function.
type closeFunc func() error

func (c closeFunc) Close() error { return c() }

// resolved returns the URL to connect to: from the environment, or as
// written.
func (r *RedisStore) resolved() string {
	if r.url != "" {
		return r.url
	}
	return r.URL
}

// redisOptions parses a Redis URL into the client options the store
// needs. Errors never quote the URL, which may hold a password.
func redisOptions(raw string) (*goredis.Options, error) {
	opt, err := goredis.ParseURL(raw)
	if err != nil {
		// url.Parse's errors quote the whole URL; say only what is wrong.
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return nil, fmt.Errorf("not a Redis URL: %w", err)
	}
	if opt.MaxRetries > 0 {
		return nil, errors.New("max_retries in the URL: the store needs -1, so that a decision applied but lost on the way back is never counted twice; leave it out")
	}
	// Deadlines honoured; a lost reply never counted twice; a server that
	// is down fails a decision at once, not after the timeout.
	opt.ContextTimeoutEnabled, opt.MaxRetries, opt.DialerRetries = true, -1, 1
	return opt, nil
}

// config returns the middleware.Config of everything but the store. Its
// error is an *Error.
func (f *File) config() (middleware.Config, error) {
	style, err := styleOf(f.Headers)
	if err != nil {
		return middleware.Config{}, &Error{File: f.Name, Field: "headers", Err: err}
	}
	env, err := envelopeOf(f.Envelope)
	if err != nil {
		return middleware.Config{}, &Error{File: f.Name, Field: "envelope", Err: err}
	}
	cfg := middleware.Config{
		KeyHeaders:        slices.Clone(f.Identity.KeyHeaders),
		MaxKeyLen:         f.Identity.MaxKeyLen,
		KeyCacheTTL:       f.Identity.KeyCacheTTL,
		KeyCacheSize:      f.Identity.KeyCacheSize,
		ClientIP:          f.ClientIP,
		ExemptIPs:         slices.Clone(f.ExemptIPs),
		HashKey:           slices.Clone(f.hashKey),
		Policy:            f.Limits.Policy,
		Rules:             f.Limits.Rules,
		Plans:             f.Limits.Plans,
		ClientPolicies:    f.Limits.ClientPolicies,
		OnStoreError:      f.OnStoreError,
		FallbackInstances: f.FallbackInstances,
		Breaker:           f.Breaker,
		DenyCacheSize:     f.DenyCache.Size,
		DenyCacheTTL:      f.DenyCache.TTL,
		DisableDenyCache:  f.DenyCache.Disabled,
		Concurrency:       f.Concurrency.Limit,
		ConcurrencyTTL:    f.Concurrency.TTL,
		Headers:           style,
		Envelope:          env,
		PartitionKey:      f.PartitionKey,
	}
	cfg.ClientIP.TrustedProxies = slices.Clone(cfg.ClientIP.TrustedProxies)
	if f.Identity.Context {
		cfg.Identify = middleware.ClientFromContext
	}
	return cfg, nil
}

// styles are the header styles a file can name.
var styles = map[string]headers.Style{
	"lindris": headers.Lindris{}, "scalekit": headers.Scalekit{}, "kinde": headers.Kinde{}, "ietf": headers.IETF{},
}

// styleOf returns the style of names: nil (the default) for none, the
// style itself for one, headers.Multi for several.
func styleOf(names []string) (headers.Style, error) {
	var out []headers.Style
	for _, n := range names {
		s, ok := styles[n]
		if !ok {
			return nil, fmt.Errorf("unknown header style %q; want lindris, scalekit, kinde or ietf", n)
		}
		out = append(out, s)
	}
	switch len(out) {
	case 0:
		return nil, nil
	case 1:
		return out[0], nil
	}
	return headers.Multi(out...), nil
}

// envelopeOf returns the envelope e describes.
func envelopeOf(e Envelope) (headers.Envelope, error) {
	switch e.Name {
	case "", "lindris":
		return headers.LindrisBody{Message: e.Message, UnavailableMessage: e.UnavailableMessage, TooLargeMessage: e.TooLargeMessage}, nil
	case "authmatech":
		return headers.AuthmatechBody{Message: e.Message, UnavailableMessage: e.UnavailableMessage, TooLargeMessage: e.TooLargeMessage}, nil
	case "problem":
		return headers.ProblemBody{Detail: e.Message, UnavailableDetail: e.UnavailableMessage, TooLargeDetail: e.TooLargeMessage}, nil
	}
	return nil, fmt.Errorf("unknown envelope %q; want lindris, authmatech or problem", e.Name)
}

// NeedsRestart compares f, the configuration a limiter was built from,
// with next, a newer version of the file, and returns the fields (as
// written in the file, such as "store" or "identity.key_headers") that
// differ and that a running limiter cannot take: everything but policy,
// rules, plans and client_policies, which [middleware.Limiter.SetLimits]
// applies. Nil means next can be applied in full while serving.
func (f *File) NeedsRestart(next *File) []string {
	var out []string
	diff := func(field string, same bool) {
		if !same {
			out = append(out, field)
		}
	}
	a, b := f, next
	diff("identity.context", a.Identity.Context == b.Identity.Context)
	diff("identity.key_headers", slices.Equal(a.Identity.KeyHeaders, b.Identity.KeyHeaders))
	diff("identity.max_key_len", a.Identity.MaxKeyLen == b.Identity.MaxKeyLen)
	diff("identity.key_cache_ttl", a.Identity.KeyCacheTTL == b.Identity.KeyCacheTTL)
	diff("identity.key_cache_size", a.Identity.KeyCacheSize == b.Identity.KeyCacheSize)
	diff("client_ip.trusted_proxies", slices.Equal(a.ClientIP.TrustedProxies, b.ClientIP.TrustedProxies))
	diff("client_ip.header", a.ClientIP.Header == b.ClientIP.Header)
	diff("client_ip.ipv6_prefix", a.ClientIP.IPv6Prefix == b.ClientIP.IPv6Prefix)
	diff("exempt_ips", slices.Equal(a.ExemptIPs, b.ExemptIPs))
	diff("hash_key_env", a.HashKeyEnv == b.HashKeyEnv && string(a.hashKey) == string(b.hashKey))
	diff("store", sameStore(a.Store, b.Store))
	diff("on_store_error", a.OnStoreError == b.OnStoreError)
	diff("fallback_instances", a.FallbackInstances == b.FallbackInstances)
	diff("breaker", a.Breaker == b.Breaker)
	diff("deny_cache", a.DenyCache == b.DenyCache)
	diff("concurrency", a.Concurrency == b.Concurrency)
	diff("headers", slices.Equal(a.Headers, b.Headers))
	diff("envelope", a.Envelope == b.Envelope)
	diff("partition_key", a.PartitionKey == b.PartitionKey)
	return out
}

// sameStore reports whether a and b describe the same store.
func sameStore(a, b Store) bool {
	switch {
	case (a.Redis == nil) != (b.Redis == nil):
		return false
	case a.Redis != nil:
		return *a.Redis == *b.Redis
	}
	var am, bm MemoryStore
	if a.Memory != nil {
		am = *a.Memory
	}
	if b.Memory != nil {
		bm = *b.Memory
	}
	return am == bm
}
