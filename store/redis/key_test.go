package redis

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"regexp"
	"strings"
	"testing"

	goredis "github.com/redis/go-redis/v9"

	"github.com/ratekit/ratekit/store"
)

var keyRE = regexp.MustCompile(`^ratekit:\{([0-9a-f]{32})\}:m$`)

// identityKey derives a store key from an identity the way the middleware
// does in kind: a keyed hash, 16 bytes (the middleware's is AES-CMAC; any
// keyed hash serves here).
func identityKey(identity []byte) store.Key {
	m := hmac.New(sha256.New, []byte("test secret"))
	m.Write(identity)
	var k store.Key
	copy(k[:], m.Sum(nil))
	return k
}

func TestKey(t *testing.T) {
	for _, tc := range []struct {
		name   string
		prefix string
		key    store.Key
		want   string
	}{
		{"zero key, default prefix", "", store.Key{}, "ratekit:{00000000000000000000000000000000}:m"},
		{"custom prefix", "app", store.Key{0xde, 0xad, 15: 0x01}, "app:{dead0000000000000000000000000001}:m"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := Key(tc.prefix, tc.key); got != tc.want {
				t.Errorf("Key(%q, %x) = %q, want %q", tc.prefix, tc.key, got, tc.want)
			}
		})
	}
}

func TestKeySlot(t *testing.T) {
	// Values from the Redis Cluster specification and CLUSTER KEYSLOT.
	for _, tc := range []struct {
		key  string
		want int
	}{
		{"123456789", 12739}, // CRC16/XMODEM check value 0x31C3
		{"foo", 12182},
		{"{user1000}.following", 3443},
		{"{user1000}.followers", 3443},
		{"foo{}{bar}", 8363},    // empty tag: whole key
		{"foo{{bar}}zap", 4015}, // tag "{bar"
		{"foo{bar}{zap}", 5061}, // first tag only
	} {
		if got := KeySlot(tc.key); got != tc.want {
			t.Errorf("KeySlot(%q) = %d, want %d", tc.key, got, tc.want)
		}
	}
}

// FuzzRedisKey (catalogue 48): whatever the identity, its key matches the
// layout, never contains the identity's bytes, and the m and s keys of one
// identity share a cluster slot.
func FuzzRedisKey(f *testing.F) {
	for _, seed := range []string{"", "{tag}", "a}{b", strings.Repeat("{", 300), "\xff\xfe", "nul\x00", "%00", "*", "' OR 1=1 --", "Привет"} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, identity []byte) {
		sk := identityKey(identity)
		k := Key("", sk)
		m := keyRE.FindStringSubmatch(k)
		if m == nil {
			t.Fatalf("Key = %q, does not match %s", k, keyRE)
		}
		// What keeps the identity out: the only part of the key that
		// varies is the hex of its keyed hash, nothing else.
		if m[1] != hex.EncodeToString(sk[:]) {
			t.Fatalf("Key %q: digest %s, want the hex of the store key %x", k, m[1], sk)
		}
		// And the catalogue's check itself. 32 hex digits spell a given
		// 4-digit input about once in 2,300 keys (the fuzzer found "1db1"),
		// an 8-digit one about once in 170 million: from 8 bytes on,
		// showing up is a leak, not chance.
		if len(identity) >= 8 && strings.Contains(m[1], string(identity)) {
			t.Fatalf("Key %q contains the identity %q", k, identity)
		}
		s := strings.TrimSuffix(k, ":m") + ":s"
		if KeySlot(k) != KeySlot(s) {
			t.Fatalf("slots differ: %q in %d, %q in %d", k, KeySlot(k), s, KeySlot(s))
		}
	})
}

// TestR48KeySlotMatchesServer cross-checks KeySlot against CLUSTER KEYSLOT
// on a cluster-enabled redis-server for store keys and hostile strings.
func TestR48KeySlotMatchesServer(t *testing.T) {
	srv := startServer(t, "--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf")
	c := goredis.NewClient(clientOptions(srv.Addr))
	t.Cleanup(func() { c.Close() })
	ctx := context.Background()
	keys := []string{"", "{", "}", "{}", "a{b}c", "a{}{b}", "{{{", "\xff{\x00}"}
	for _, id := range hostileIdentities()[:200] {
		k := Key("", identityKey(id))
		keys = append(keys, k, strings.TrimSuffix(k, ":m")+":s", string(id))
	}
	for _, k := range keys {
		want, err := c.ClusterKeySlot(ctx, k).Result()
		if err != nil {
			t.Fatalf("CLUSTER KEYSLOT %q: %v", k, err)
		}
		if got := KeySlot(k); int64(got) != want {
			t.Errorf("KeySlot(%q) = %d, server says %d", k, got, want)
		}
	}
}
