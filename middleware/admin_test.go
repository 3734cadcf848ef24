package middleware_test

import (
	"context"
	"errors"
	"net/netip"
	"testing"

	"github.com/ratekit/ratekit/middleware"
)

func TestAdminPeekAndReset(t *testing.T) {
	f := newFixture(t, middleware.Config{KeyValidator: validKeys("K1"), Rules: []middleware.Rule{postPeople}})
	ctx := context.Background()
	f.do("192.0.2.90:1")
	f.do("192.0.2.90:1")
	f.do("192.0.2.91:1", "X-API-Key", "K1")

	d, p, err := f.lim.Peek(ctx, middleware.Who{IP: netip.MustParseAddr("::ffff:192.0.2.90")}, "")
	if err != nil || d.Allowed || d.Windows[0].Remaining != 58 || p.Windows[0].Limit != 60 {
		t.Fatalf("Peek(IP) = %+v, %v, %v; want limited with 58 left of 60", d, p, err)
	}
	d, _, _ = f.lim.Peek(ctx, middleware.Who{ClientID: "K1"}, "")
	if !d.Allowed || d.Windows[0].Remaining != 59 {
		t.Fatalf("Peek(client) = %+v; want 59 left", d)
	}
	d, p, _ = f.lim.Peek(ctx, middleware.Who{ClientID: "K1"}, "people-write")
	if d.Windows[0].Remaining != 10 || p.Windows[0].Limit != 10 {
		t.Fatalf("Peek(client, people-write) = %+v %v; want an untouched 10/min bucket", d, p)
	}
	if err := f.lim.Reset(ctx, middleware.Who{IP: netip.MustParseAddr("192.0.2.90")}, ""); err != nil {
		t.Fatal(err)
	}
	if c := f.do("192.0.2.90:1").Code; c != 200 {
		t.Errorf("after Reset: %d, want 200", c)
	}
	for _, tc := range []struct {
		who  middleware.Who
		rule string
	}{
		{middleware.Who{}, ""},
		{middleware.Who{ClientID: "a", IP: netip.MustParseAddr("192.0.2.1")}, ""},
		{middleware.Who{ClientID: "a"}, "no-such-rule"},
	} {
		if _, _, err := f.lim.Peek(ctx, tc.who, tc.rule); err == nil {
			t.Errorf("Peek(%+v, %q) succeeded, want an error", tc.who, tc.rule)
		}
	}
	noAdmin := newFixture(t, middleware.Config{Store: failingStore{}, HashKey: []byte("k")})
	if _, _, err := noAdmin.lim.Peek(ctx, middleware.Who{ClientID: "a"}, ""); !errors.Is(err, middleware.ErrNoAdmin) {
		t.Errorf("Peek on a store without Admin: %v, want ErrNoAdmin", err)
	}
}
