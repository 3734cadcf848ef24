package ratekitgrpc

import (
	"maps"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ratekit/ratekit/middleware"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"
)

// unavailableDelay is the RetryInfo of a call refused because the store
// failed under FailClosed: the Retry-After: 1 of the HTTP 503.
const unavailableDelay = time.Second

// recorder is the http.ResponseWriter Limiter.Answer writes onto: the
// header fields are kept for the metadata, the body of a refusal is
// dropped (the status carries the refusal).
type recorder struct {
	h http.Header
}

// Header returns the fields written so far.
func (r *recorder) Header() http.Header { return r.h }

// Write drops the body of a refusal.
func (r *recorder) Write(p []byte) (int, error) { return len(p), nil }

// WriteHeader drops the status: the gRPC code says it.
func (r *recorder) WriteHeader(int) {}

// answer renders res as the limiter's configured header style would over
// HTTP, and returns those fields as metadata (nil when there are none, or
// Config.Metadata is MetadataNone), and the status that ends the call when
// the limiter does not let it through.
func (i *Interceptor) answer(res *middleware.Result) (metadata.MD, error) {
	rec := i.recorders.Get().(*recorder)
	defer func() {
		clear(rec.h)
		i.recorders.Put(rec)
	}()
	proceed := i.lim.Answer(rec, nil, res) // no http.Request: refusal hooks get nil
	var md metadata.MD
	if i.place != MetadataNone && len(rec.h) > 0 {
		md = make(metadata.MD, len(rec.h))
		for k, v := range rec.h {
			if k == "Content-Type" {
				continue // the refusal body's; gRPC reserves the name (and drops it)
			}
			// The values are shared, read-only slices of package headers
			// (len == cap == 1): gRPC only reads them, and an append copies.
			md[i.names.lower(k)] = v
		}
	}
	if proceed {
		return md, nil
	}
	return md, statusOf(res)
}

// retryDelay is the wait a refusal advertises in RetryInfo: exactly the
// decision's RetryAfter, but never before the binding window frees
// capacity, nor under a millisecond.
func retryDelay(res *middleware.Result) time.Duration {
	d := res.Decision.RetryAfter
	if l := res.Decision.Limiting; l >= 0 && l < res.Decision.N {
		d = max(d, res.Decision.Windows[l].Reset)
	}
	return max(d, time.Millisecond)
}

// withRetry returns the status error of code and msg with a RetryInfo
// detail of delay.
func withRetry(code codes.Code, msg string, delay time.Duration) error {
	st, err := status.New(code, msg).WithDetails(&errdetails.RetryInfo{RetryDelay: durationpb.New(delay)})
	if err != nil {
		// Only a detail that cannot be marshalled fails, and RetryInfo
		// always can.
		return status.Error(code, msg)
	}
	return st.Err()
}

// lowerNames caches the lower-case form of the header names the limiter's
// style writes: a handful per style, so a call lower-cases nothing.
type lowerNames struct {
	m  atomic.Pointer[map[string]string]
	mu sync.Mutex
}

// maxNames bounds the cache; a custom style writing ever new names (it
// should not) has the rest lower-cased per call.
const maxNames = 64

// lower returns k in lower case.
func (ln *lowerNames) lower(k string) string {
	if m := ln.m.Load(); m != nil {
		if v, ok := (*m)[k]; ok {
			return v
		}
	}
	v := strings.ToLower(k)
	ln.mu.Lock()
	defer ln.mu.Unlock()
	var cur map[string]string
	if m := ln.m.Load(); m != nil {
		cur = *m
	}
	if len(cur) < maxNames {
		next := make(map[string]string, len(cur)+1)
		maps.Copy(next, cur)
		next[k] = v
		ln.m.Store(&next)
	}
	return v
}
