package ratekitgrpc

import (
	"context"
	"net"
	"net/netip"

	"github.com/ratekit/ratekit/middleware"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/peer"
)

// keySource is one metadata key an API key is read from.
type keySource struct {
	name   string // lower case
	bearer bool   // authorization: the Bearer scheme
}

// unknownPeer stands for the address of a peer that has none (a Unix
// socket): all such calls share its bucket. Take needs some identity, and
// the unspecified address is no client's.
var unknownPeer = netip.IPv6Unspecified()

// identity returns who makes the call in ctx: the client Identify names,
// else the API key in the metadata, and always the peer's address (for
// ExemptIPs, and for a key the limiter does not accept).
func (i *Interceptor) identity(ctx context.Context) middleware.Identity {
	var who middleware.Identity
	if i.identify != nil {
		if c, ok := i.identify(ctx); ok && c.ID != "" {
			who.Client = c
		}
	}
	if who.Client.ID == "" {
		who.Key = i.key(ctx)
	}
	who.Addr = peerAddr(ctx)
	return who
}

// key returns the API key the call's metadata presents, or "" for none;
// the limiter checks its grammar and asks the KeyValidator.
func (i *Interceptor) key(ctx context.Context) string {
	for _, ks := range i.keys {
		// Not FromIncomingContext: it copies the whole metadata per call.
		vals := metadata.ValueFromIncomingContext(ctx, ks.name)
		if len(vals) == 0 {
			continue
		}
		if len(vals) > 1 {
			// Two values: which one the application reads is unknown, so
			// neither counts.
			return ""
		}
		v := vals[0]
		if ks.bearer {
			var isBearer bool
			if v, isBearer = bearerCredentials(v); !isBearer {
				continue // Basic and the like: as if absent
			}
		}
		return v
	}
	return ""
}

// bearerCredentials returns what follows "Bearer" and its spaces (the
// scheme without regard to case, RFC 9110 section 11.1), and false when v
// is of another scheme.
func bearerCredentials(v string) (string, bool) {
	const scheme = "bearer"
	if len(v) < len(scheme) {
		return "", false
	}
	for j := 0; j < len(scheme); j++ {
		if c := v[j] | 0x20; c != scheme[j] {
			return "", false
		}
	}
	rest := v[len(scheme):]
	if rest == "" {
		return "", true // "Bearer" alone: ours, and no key
	}
	if rest[0] != ' ' {
		return "", false // "Bearerx ...": another scheme
	}
	for rest != "" && rest[0] == ' ' {
		rest = rest[1:]
	}
	return rest, true
}

// peerAddr returns the IP address of the call's peer, or unknownPeer.
func peerAddr(ctx context.Context) netip.Addr {
	p, ok := peer.FromContext(ctx)
	if !ok || p.Addr == nil {
		return unknownPeer
	}
	if tcp, ok := p.Addr.(*net.TCPAddr); ok {
		if a, ok := netip.AddrFromSlice(tcp.IP); ok {
			return a.Unmap()
		}
		return unknownPeer
	}
	if ap, err := netip.ParseAddrPort(p.Addr.String()); err == nil {
		return ap.Addr().Unmap()
	}
	return unknownPeer
}

// ClientFromContext returns the Client that [middleware.WithClient] put in
// ctx, for [Config.Identify]: an authentication interceptor chained before
// the limiter stores the caller it found, and the call counts against it.
//
// The middleware package reads that Client only off an *http.Request, so
// this wraps ctx in an empty one: one small allocation per call.
func ClientFromContext(ctx context.Context) (middleware.Client, bool) {
	return middleware.ClientFrom(ctx)
}
