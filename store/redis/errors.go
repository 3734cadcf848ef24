package redis

import (
	"context"
	"errors"
	"io"
	"net"
	"os"
	"strings"

	goredis "github.com/redis/go-redis/v9"
)

// Error kinds returned by [Kind]. They are stable strings, fit for a metric
// label.
const (
	KindTimeout    = "timeout"    // the store's Timeout or the caller's deadline passed
	KindCanceled   = "canceled"   // the caller's context was cancelled
	KindConnection = "connection" // dial, reset, EOF, closed client or pool exhausted
	KindScript     = "script"     // the script failed on the server, or its reply was malformed
	KindOOM        = "oom"        // maxmemory reached under noeviction
	KindReadOnly   = "readonly"   // the node is a replica (failover in progress)
	KindLoading    = "loading"    // the server is loading its dataset after a restart
	KindCluster    = "cluster"    // CLUSTERDOWN, TRYAGAIN, CROSSSLOT, MOVED or ASK left unresolved
	KindOther      = "other"      // anything else, including store.ErrClosed
)

// Kind classifies an error returned by the store, for metrics and logs: one
// of the Kind* constants. A nil error gives "".
func Kind(err error) string {
	switch {
	case err == nil:
		return ""
	case errors.Is(err, context.DeadlineExceeded) || errors.Is(err, os.ErrDeadlineExceeded):
		return KindTimeout
	case errors.Is(err, context.Canceled):
		return KindCanceled
	case errors.Is(err, errBadReply):
		return KindScript
	}
	var rerr goredis.Error
	if errors.As(err, &rerr) && !errors.Is(err, goredis.ErrClosed) {
		msg := rerr.Error()
		switch {
		case strings.HasPrefix(msg, "OOM "):
			return KindOOM
		case strings.HasPrefix(msg, "READONLY "):
			return KindReadOnly
		case strings.HasPrefix(msg, "LOADING "):
			return KindLoading
		case strings.HasPrefix(msg, "CLUSTERDOWN ") || strings.HasPrefix(msg, "TRYAGAIN ") ||
			strings.HasPrefix(msg, "CROSSSLOT ") || strings.HasPrefix(msg, "MOVED ") || strings.HasPrefix(msg, "ASK "):
			return KindCluster
		case strings.HasPrefix(msg, "ERR ") || strings.HasPrefix(msg, "NOSCRIPT ") ||
			strings.HasPrefix(msg, "BUSY ") || strings.HasPrefix(msg, "WRONGTYPE "):
			return KindScript
		}
		return KindOther
	}
	var nerr net.Error
	var operr *net.OpError
	switch {
	case errors.As(err, &nerr) && nerr.Timeout():
		return KindTimeout
	case errors.As(err, &operr), errors.Is(err, goredis.ErrClosed),
		errors.Is(err, net.ErrClosed), errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF),
		errors.Is(err, goredis.ErrPoolTimeout):
		return KindConnection
	}
	return KindOther
}
