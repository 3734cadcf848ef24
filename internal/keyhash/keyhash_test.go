package keyhash

import (
	"crypto/aes"
	"encoding/hex"
	"math/rand/v2"
	"net/netip"
	"testing"

	"github.com/ratekit/ratekit/store"
)

// TestCMACVectors checks the CMAC against RFC 4493's test vectors.
func TestCMACVectors(t *testing.T) {
	key, _ := hex.DecodeString("2b7e151628aed2a6abf7158809cf4f3c")
	msg, _ := hex.DecodeString("6bc1bee22e409f96e93d7e117393172aae2d8a571e03ac9c9eb76fac45af8e5130c81c46a35ce411e5fbc1191a0a52eff69f2445df4f9b17ad2b417be66c3710")
	b, _ := aes.NewCipher(key)
	h := fromBlock(b)
	if got := hex.EncodeToString(h.k1[:]); got != "fbeed618357133667c85e08f7236a8de" {
		t.Fatalf("K1 = %s", got)
	}
	for _, tc := range []struct {
		n    int
		want string
	}{
		{0, "bb1d6929e95937287fa37d129b756746"},
		{16, "070a16b46b4d4144f79bdd9dd04a287c"},
		{40, "dfa66747de9ae63030ca32611497c827"},
		{64, "51f0bebf7e3b9d92fc49741779363cfe"},
	} {
		c := cmac{h: h}
		c.write(msg[:tc.n])
		got := c.sum()
		if hex.EncodeToString(got[:]) != tc.want {
			t.Errorf("CMAC(%d bytes) = %x, want %s", tc.n, got, tc.want)
		}
	}

	// Split writes of every size go through the same blocks.
	for _, n := range []int{0, 1, 15, 16, 17, 31, 32, 33, 40, 64} {
		c := cmac{h: h}
		c.write(msg[:n/3])
		c.writeString(string(msg[n/3 : n/2]))
		for _, b := range msg[n/2 : n] {
			c.writeByte(b)
		}
		if got, want := c.sum(), refCMAC(h, msg[:n]); got != want {
			t.Errorf("CMAC(%d bytes, split writes) = %v, want %v", n, got, want)
		}
	}
}

// refCMAC is RFC 4493 section 2.4 written out plainly, block by block: the
// reference the streaming cmac and the address fast paths must match.
func refCMAC(h *Hasher, msg []byte) store.Key {
	n := (len(msg) + 15) / 16
	complete := n > 0 && len(msg)%16 == 0
	if n == 0 {
		n = 1
	}
	var last [16]byte
	if complete {
		copy(last[:], msg[16*(n-1):])
		for i := range last {
			last[i] ^= h.k1[i]
		}
	} else {
		rest := msg[16*(n-1):]
		copy(last[:], rest)
		last[len(rest)] = 0x80
		for i := range last {
			last[i] ^= h.k2[i]
		}
	}
	var x [16]byte
	for b := range n - 1 {
		for i := range x {
			x[i] ^= msg[16*b+i]
		}
		h.block.Encrypt(x[:], x[:])
	}
	for i := range x {
		x[i] ^= last[i]
	}
	h.block.Encrypt(x[:], x[:])
	return store.Key(x)
}

// identity is a client ID (keyed) or an address bucket, for the tables.
type identity struct {
	keyed bool
	id    string
	ip    netip.Prefix
}

// keyOf derives id's key in s with the fast paths.
func keyOf(h *Hasher, s *Scope, id *identity, b *Buf) store.Key {
	if id.keyed {
		return h.Client(s, id.id, b)
	}
	return h.Addr(s, id.ip, b)
}

// refKey is the message Client and Addr MAC, built the obvious way.
func refKey(h *Hasher, s *Scope, id *identity) store.Key {
	msg := append([]byte(nil), s.name[:]...)
	if id.keyed {
		msg = append(msg, kindKey)
		msg = append(msg, id.id...)
	} else {
		a := id.ip.Addr().As16()
		msg = append(msg, kindIP, byte(id.ip.Bits()))
		msg = append(msg, a[:]...)
	}
	return refCMAC(h, msg)
}

// TestStoreKeysUnchanged pins store keys computed by the byte-at-a-time
// CMAC that derived them before the fast paths existed: keys already in a
// shared store (Redis) must not move when the code changes.
func TestStoreKeysUnchanged(t *testing.T) {
	h := New([]byte("ratekit test secret"))
	var buf Buf
	for _, tc := range []struct {
		scope, prefix string
		keyed         bool
		id, want      string
	}{
		{"default", "203.0.113.9/32", false, "", "5c8b9c1cac6417664c1649bf36510c17"},
		{"default", "0.0.0.0/32", false, "", "86bf964f8c48eeee80182230da196ac9"},
		{"default", "2001:db8:1:2::/64", false, "", "6eddda7d74f24fef34dc5ad4b2c07f9a"},
		{"default", "", true, "k_live_0123456789abcdef", "0fb5982f0818e63d56c673ee20078a60"},
		{"default", "", true, "", "78f47cd16bc07bd2abe180ea6c0a2eff"},
		{"rule:search", "203.0.113.9/32", false, "", "11810ffb5ab857cff71db32639330fee"},
		{"rule:search", "0.0.0.0/32", false, "", "7af4549f391a50b573e6cfa5ea23a583"},
		{"rule:search", "2001:db8:1:2::/64", false, "", "9dcb15c56696ee8c4c2abfa6a4d6a48b"},
		{"rule:search", "", true, "k_live_0123456789abcdef", "a3b819bf4c02c3b6a8ce85e9be0d0f66"},
		{"rule:search", "", true, "", "2de3c71ebe4ea1e9f023839e6700cd54"},
		{"concurrency", "203.0.113.9/32", false, "", "9e9d9c84113e02c178b8f81d43acd48d"},
		{"concurrency", "0.0.0.0/32", false, "", "d131419421fb42888fafe4130f6fcc63"},
		{"concurrency", "2001:db8:1:2::/64", false, "", "45c616234afb989e6a6a94915a7d43b9"},
		{"concurrency", "", true, "k_live_0123456789abcdef", "43fa21375ddf1484013b478d1ed14459"},
		{"concurrency", "", true, "", "9349c1bdb44794a7064c9436dff9f935"},
	} {
		id := identity{keyed: tc.keyed, id: tc.id}
		if !tc.keyed {
			id.ip = netip.MustParsePrefix(tc.prefix)
		}
		prepared := ScopeOf(tc.scope)
		h.Prepare(&prepared)
		for _, s := range []Scope{ScopeOf(tc.scope), prepared} {
			if got := keyOf(h, &s, &id, &buf); got.String() != tc.want {
				t.Errorf("key(%s, %+v, prepared %v) = %v, want %s", tc.scope, id, s.h != nil, got, tc.want)
			}
		}
	}
}

// TestKeysMatchReference compares Client and Addr with the plain CMAC of its
// message for random IPv4 clients, IPv6 buckets of every prefix length,
// IPv4 prefixes other than /32, and API-key identities of every length
// around the block boundaries, in prepared and unprepared scopes.
func TestKeysMatchReference(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	h := New([]byte("another secret"))
	var buf Buf
	other := New([]byte("a third secret"))
	scopes := []Scope{ScopeOf("default"), ScopeOf("rule:x"), ScopeOf("concurrency")}
	for i := range scopes {
		h.Prepare(&scopes[i])
	}
	foreign := ScopeOf("default")
	other.Prepare(&foreign) // prepared for another hasher: must not be used
	scopes = append(scopes, ScopeOf("unprepared"), foreign)
	check := func(s *Scope, id identity) {
		t.Helper()
		if got, want := keyOf(h, s, &id, &buf), refKey(h, s, &id); got != want {
			t.Fatalf("keyOf(%x, %+v) = %v, want %v", s.name, id, got, want)
		}
	}
	for i := range scopes {
		s := &scopes[i]
		for _, a := range []string{"0.0.0.0", "255.255.255.255", "10.0.0.1", "127.0.0.1"} {
			check(s, identity{ip: netip.PrefixFrom(netip.MustParseAddr(a), 32)})
		}
		for range 2000 {
			var b4 [4]byte
			var b16 [16]byte
			for j := range b16 {
				b16[j] = byte(rng.Uint32())
			}
			copy(b4[:], b16[:])
			check(s, identity{ip: netip.PrefixFrom(netip.AddrFrom4(b4), 32)})
			bits := rng.IntN(129)
			p, _ := netip.AddrFrom16(b16).Prefix(bits)
			check(s, identity{ip: p})
			p4, _ := netip.AddrFrom4(b4).Prefix(rng.IntN(33))
			check(s, identity{ip: p4})
		}
		for n := range 80 {
			id := make([]byte, n)
			for j := range id {
				id[j] = byte(rng.Uint32())
			}
			check(s, identity{keyed: true, id: string(id)})
		}
	}
}

// TestKeysAllocs holds the keyed hash to no allocation.
func TestKeysAllocs(t *testing.T) {
	h := New([]byte("secret"))
	s := ScopeOf("default")
	h.Prepare(&s)
	buf := new(Buf)
	for _, id := range []identity{
		{ip: netip.MustParsePrefix("203.0.113.9/32")},
		{ip: netip.MustParsePrefix("2001:db8::/64")},
		{keyed: true, id: "k_live_0123456789abcdef0123456789"},
	} {
		if n := testing.AllocsPerRun(100, func() { keyOf(h, &s, &id, buf) }); n != 0 {
			t.Errorf("key of %+v allocates %v times, want 0", id, n)
		}
	}
}

// TestCacheKeyIsNoStoreKey: a validator cache key is never the store key of
// a client of any scope, even one whose name and ID are chosen to line the
// messages up.
func TestCacheKeyIsNoStoreKey(t *testing.T) {
	h := New([]byte("secret"))
	var buf Buf
	ck := h.Cache("k_live_1", &buf)
	var zero Scope
	for _, s := range []Scope{zero, ScopeOf("default")} {
		if got := h.Client(&s, "k_live_1", &buf); got == ck {
			t.Errorf("Client(%x, k_live_1) = Cache(k_live_1) = %v", s.name, got)
		}
	}
	if want := refCMAC(h, []byte("ck_live_1")); ck != want {
		t.Errorf("Cache(k_live_1) = %v, want the CMAC of \"c\"+key, %v", ck, want)
	}
}
