package ratekitgrpc

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"

	"github.com/ratekit/ratekit/middleware"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

// Metadata says where the rate-limit values of a decision are sent.
type Metadata uint8

const (
	// MetadataHeader sends them as response header metadata, with every
	// decided call: the zero value. Clients read them with grpc.Header,
	// also on a refused call.
	MetadataHeader Metadata = iota
	// MetadataTrailer sends them as trailer metadata (grpc.Trailer).
	MetadataTrailer
	// MetadataNone sends none; the RetryInfo detail of a refusal is still
	// sent.
	MetadataNone
)

// Config configures an [Interceptor]. The zero value decides every call
// by its full method name, reads API keys from x-api-key and
// authorization: Bearer metadata, sends the rate-limit values as header
// metadata, and charges a stream once.
type Config struct {
	// Routes groups methods under service wildcards: "/pkg.Service/*"
	// reports every method of pkg.Service under that one route, so one
	// rule naming it covers the service. A full method name listed beside
	// its service's wildcard ("/pkg.Service/Get") keeps its own route. A
	// method no entry covers is reported under its full name, which is
	// what a rule naming a single method matches. Each entry is
	// "/service/method" or "/service/*".
	Routes []string
	// KeyMetadata names the metadata keys an API key is read from, in
	// order; "authorization" means its Bearer scheme. As over HTTP, the
	// first key present decides: a key with two values, or a value that is
	// not one well-formed key, gives the call no key (it counts against
	// its address) and later keys are not read; authorization of another
	// scheme counts as absent. Names are case-insensitive. Nil means
	// x-api-key, then authorization. Keys count only when the limiter has
	// a KeyValidator.
	KeyMetadata []string
	// Identify, when set, names the client of a call before any key is
	// read, as [middleware.Config.Identify] does for HTTP: typically the
	// principal the application's authentication interceptor, chained
	// before this one, put in the context. [ClientFromContext] reads a
	// Client stored with [middleware.WithClient]. A Client with an empty
	// ID, or ok false, leaves the call to its key and address. It must not
	// panic.
	Identify func(ctx context.Context) (client middleware.Client, ok bool)
	// Metadata says where the rate-limit values go. Zero value:
	// [MetadataHeader].
	Metadata Metadata
	// StreamMessageCost, when positive, charges every message a client
	// sends on a stream this much, besides the charge when the stream
	// opens. It may not exceed the smallest limit of the policy a call is
	// decided against (such messages would fail with codes.Internal).
	// Zero means a stream is charged only when it opens.
	StreamMessageCost int
}

// Interceptor limits gRPC calls with a [middleware.Limiter]. Its Unary
// and Stream methods are a grpc.UnaryServerInterceptor and a
// grpc.StreamServerInterceptor. It is safe for concurrent use.
type Interceptor struct {
	lim      *middleware.Limiter
	exact    map[string]bool   // full methods listed in Config.Routes
	services map[string]string // "/pkg.Service/" → "/pkg.Service/*"
	keys     []keySource
	identify func(context.Context) (middleware.Client, bool)
	place    Metadata
	msgCost  int
	names    lowerNames
	// recorders pools the header maps Limiter.Answer writes onto: one per
	// call would be an allocation on every call.
	recorders sync.Pool // of *recorder
}

// ErrInvalidConfig is wrapped by every error [New] returns.
var ErrInvalidConfig = errors.New("ratekitgrpc: invalid config")

// New returns an Interceptor deciding calls with lim as cfg says. It
// validates and copies cfg, and reports every invalid field, each
// wrapping [ErrInvalidConfig].
func New(lim *middleware.Limiter, cfg Config) (*Interceptor, error) {
	var errs []error
	bad := func(format string, args ...any) {
		errs = append(errs, fmt.Errorf("%w: "+format, append([]any{ErrInvalidConfig}, args...)...))
	}
	if lim == nil {
		bad("nil Limiter")
	}
	i := &Interceptor{lim: lim, exact: map[string]bool{}, services: map[string]string{},
		identify: cfg.Identify, place: cfg.Metadata, msgCost: cfg.StreamMessageCost}
	for n, r := range cfg.Routes {
		svc, method, ok := splitMethod(r)
		switch {
		case !ok:
			bad("Routes %d: %q is not /service/method or /service/*", n, r)
		case method == "*":
			i.services["/"+svc+"/"] = r
		default:
			i.exact[r] = true
		}
	}
	names := cfg.KeyMetadata
	if names == nil {
		names = []string{"x-api-key", "authorization"}
	}
	for n, k := range names {
		k = strings.ToLower(k)
		if !validMetadataKey(k) {
			bad("KeyMetadata %d: %q is not a metadata key", n, k)
			continue
		}
		i.keys = append(i.keys, keySource{name: k, bearer: k == "authorization"})
	}
	if cfg.Metadata > MetadataNone {
		bad("Metadata %d unknown", cfg.Metadata)
	}
	if cfg.StreamMessageCost < 0 {
		bad("StreamMessageCost %d negative", cfg.StreamMessageCost)
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	i.recorders.New = func() any { return &recorder{h: make(http.Header, 8)} }
	return i, nil
}

// splitMethod splits "/service/method" into its two parts, both non-empty
// and without a slash.
func splitMethod(full string) (service, method string, ok bool) {
	if !strings.HasPrefix(full, "/") {
		return "", "", false
	}
	service, method, ok = strings.Cut(full[1:], "/")
	return service, method, ok && service != "" && method != "" && !strings.Contains(method, "/")
}

// validMetadataKey reports whether k is a lower-case metadata key gRPC
// lets an application send: 0-9 a-z - _ . and not reserved.
func validMetadataKey(k string) bool {
	if k == "" || strings.HasPrefix(k, "grpc-") {
		return false
	}
	for i := 0; i < len(k); i++ {
		c := k[i]
		if !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-' || c == '_' || c == '.') {
			return false
		}
	}
	return true
}

// route returns the route a call of the full method name counts under.
func (i *Interceptor) route(full string) string {
	if len(i.services) == 0 || i.exact[full] {
		return full
	}
	if j := strings.LastIndexByte(full, '/'); j > 0 {
		if r, ok := i.services[full[:j+1]]; ok {
			return r
		}
	}
	return full
}

// Unary is a grpc.UnaryServerInterceptor: it decides the call, and calls
// handler only if the limiter lets it through.
func (i *Interceptor) Unary(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	who := i.identity(ctx)
	md, err := i.decide(ctx, &who, info.FullMethod, 0)
	if md != nil {
		if i.place == MetadataTrailer {
			grpc.SetTrailer(ctx, md)
		} else {
			grpc.SetHeader(ctx, md)
		}
	}
	if err != nil {
		return nil, err
	}
	return handler(ctx, req)
}

// Stream is a grpc.StreamServerInterceptor: it decides the stream once,
// when it opens, and calls handler only if the limiter lets it through;
// with [Config.StreamMessageCost], every message received is decided too.
func (i *Interceptor) Stream(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
	ctx := ss.Context()
	who := i.identity(ctx)
	md, err := i.decide(ctx, &who, info.FullMethod, 0)
	if md != nil {
		if i.place == MetadataTrailer {
			ss.SetTrailer(md)
		} else {
			ss.SetHeader(md)
		}
	}
	if err != nil {
		return err
	}
	if i.msgCost > 0 {
		ss = &meteredStream{ServerStream: ss, i: i, who: who, method: info.FullMethod}
	}
	return handler(srv, ss)
}

// meteredStream charges every message the client sends.
type meteredStream struct {
	grpc.ServerStream
	i      *Interceptor
	who    middleware.Identity
	method string
}

// RecvMsg receives a message, then charges it; a refused message is not
// handed to the handler, and the stream's answer is the refusal.
func (s *meteredStream) RecvMsg(m any) error {
	if err := s.ServerStream.RecvMsg(m); err != nil {
		return err
	}
	md, err := s.i.decide(s.Context(), &s.who, s.method, s.i.msgCost)
	if err != nil && md != nil {
		// Headers are usually gone by now: the trailer carries the values
		// of the refusal.
		s.SetTrailer(md)
	}
	return err
}

// decide takes the decision for one call (or message) of who on the full
// method, and returns the metadata to send (nil for none) and the status
// error that ends a call the limiter does not let through.
func (i *Interceptor) decide(ctx context.Context, who *middleware.Identity, full string, cost int) (metadata.MD, error) {
	res, err := i.lim.Take(ctx, middleware.Request{Identity: *who, Route: i.route(full), Cost: cost})
	if err != nil {
		// A request that can never be decided: a cost above the limit, a
		// configuration mistake rather than the client's.
		return nil, status.Error(codes.Internal, "ratekitgrpc: the call cannot be rate-limited: "+err.Error())
	}
	return i.answer(&res)
}

// statusOf builds the status of a refused call: ResourceExhausted with the
// delay the decision gives, or Unavailable when no decision could be taken.
func statusOf(res *middleware.Result) error {
	if res.Outcome == middleware.OutcomeError {
		return withRetry(codes.Unavailable, "ratekit: rate limiter unavailable", unavailableDelay)
	}
	msg := "ratekit: rate limit exceeded"
	if res.LimitedBy != "" {
		msg += " (" + res.LimitedBy + " window)"
	}
	return withRetry(codes.ResourceExhausted, msg, retryDelay(res))
}
