package keyhash

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/sha256"
	"encoding/binary"
	"net/netip"

	"github.com/ratekit/ratekit/store"
)

// Hasher derives store keys from client identities with AES-CMAC (RFC
// 4493), a pseudo-random function keyed by a secret: without the secret a
// store key reveals nothing about the API key or address behind it, not
// even by trying every IPv4 address. AES-CMAC costs about one AES block per
// 16 bytes of input (nanoseconds with AES-NI), where HMAC-SHA-256 costs two
// compression functions per call at least.
type Hasher struct {
	block  cipher.Block
	k1, k2 [16]byte
}

// New derives the AES-128 key from secret, so that secrets of any length
// work and the same secret yields the same store keys on every instance.
func New(secret []byte) *Hasher {
	h := sha256.New()
	h.Write([]byte("ratekit store key v1\x00"))
	h.Write(secret)
	sum := h.Sum(nil)
	b, err := aes.NewCipher(sum[:16])
	if err != nil {
		panic(err) // impossible: 16 bytes is a valid AES key length
	}
	return fromBlock(b)
}

// fromBlock returns the hasher of an AES cipher, with its CMAC subkeys.
func fromBlock(b cipher.Block) *Hasher {
	kh := &Hasher{block: b}
	var l [16]byte
	b.Encrypt(l[:], l[:])
	kh.k1 = dbl(l)
	kh.k2 = dbl(kh.k1)
	return kh
}

// dbl multiplies by x in GF(2^128), the CMAC subkey step.
func dbl(in [16]byte) [16]byte {
	hi, lo := binary.BigEndian.Uint64(in[:8]), binary.BigEndian.Uint64(in[8:])
	carry := hi >> 63
	hi, lo = hi<<1|lo>>63, lo<<1
	lo ^= 0x87 * carry
	var out [16]byte
	binary.BigEndian.PutUint64(out[:8], hi)
	binary.BigEndian.PutUint64(out[8:], lo)
	return out
}

// Scope names a policy scope inside store keys (a rule's, or the
// concurrency limiter's): requests under different scopes count in
// different buckets. Every store key's message starts with the scope's
// name. The zero Scope is a valid scope of its own.
type Scope struct {
	name [8]byte
	// v4 is where the CMAC of every IPv4 /32 key of this scope stands
	// before its last AES block, once the part of that block that does not
	// depend on the address is mixed in (see Hasher.Prepare). h is the
	// hasher v4 was computed with; nil until prepared.
	v4 [16]byte
	h  *Hasher
}

// ScopeOf returns the scope called name, not yet prepared (see
// [Hasher.Prepare]).
func ScopeOf(name string) Scope {
	sum := sha256.Sum256([]byte(name))
	return Scope{name: [8]byte(sum[:8])}
}

// Identity kinds inside the hashed message.
const (
	kindIP    = 'i'
	kindKey   = 'k'
	kindCache = 'c' // validator cache entries, never a store key
)

// Buf is the working memory of one key derivation. The caller keeps it on
// the heap (a pooled per-request scratch): on the stack it would escape
// through cipher.Block's interface call, an allocation per request.
type Buf struct {
	c cmac
}

// Client returns the store key of the client called id within s: the
// AES-CMAC of s's name, the client kind and id.
func (h *Hasher) Client(s *Scope, id string, b *Buf) store.Key {
	c := &b.c
	c.reset(h)
	c.write(s.name[:])
	c.writeByte(kindKey)
	c.writeString(id)
	return c.sum()
}

// Addr returns the store key of the address bucket p within s. An IPv4 /32
// in a scope h has prepared costs one AES block, anything else two.
func (h *Hasher) Addr(s *Scope, p netip.Prefix, b *Buf) store.Key {
	if a := p.Addr(); a.Is4() && p.Bits() == 32 && s.h == h {
		return h.ipv4Key(s, a.As4(), &b.c.state)
	}
	return h.ipKey(s, p, &b.c.state)
}

// Cache returns the key a validator answer for the API key key is cached
// under: its own kind, so it is never a store key of any scope.
func (h *Hasher) Cache(key string, b *Buf) store.Key {
	c := &b.c
	c.reset(h)
	c.writeByte(kindCache)
	c.writeString(key)
	return c.sum()
}

// The message of an address key is 26 bytes, two AES blocks:
//
//	block 1: scope name (8) | kindIP | prefix bits | address bytes 0-5
//	block 2: address bytes 6-15 | 0x80 | 0 (5)     (padded, so K2)
//
// The 16 address bytes are netip's As16 form. For an IPv4 /32 key bytes 0-5
// are zero and bits is 32, so block 1, and its encryption, is the same for
// every IPv4 client of a scope: prepare computes it once, and ipv4Key
// needs one AES block per request instead of two.
const (
	ipKeyLen  = 8 + 1 + 1 + 16
	v4MapByte = 10 // As16 of an IPv4 address has 0xff at bytes 10 and 11
)

// Prepare readies s for h's one-block IPv4 keys: it sets s.v4 to the
// encryption of block 1 of an IPv4 /32 key, xored with K2 and with block 2
// minus the four IPv4 bytes. A scope prepared for another hasher, or not
// at all, still gives the right keys, with two blocks.
func (h *Hasher) Prepare(s *Scope) {
	var st [16]byte
	copy(st[:8], s.name[:])
	st[8], st[9] = kindIP, 32
	h.block.Encrypt(st[:], st[:])
	var b2 [16]byte
	b2[v4MapByte-6], b2[v4MapByte-6+1] = 0xff, 0xff
	b2[ipKeyLen-16] = 0x80
	xor16(&st, &b2)
	xor16(&st, &h.k2)
	s.v4, s.h = st, h
}

// ipv4Key returns the key of the IPv4 /32 bucket a in s, which h has
// prepared, using st as the (heap) buffer the cipher works in: the same
// bytes as the general CMAC of the 26-byte message, with one AES block.
func (h *Hasher) ipv4Key(s *Scope, a [4]byte, st *[16]byte) store.Key {
	*st = s.v4
	// Block 2 holds address bytes 6-15; the IPv4 bytes 12-15 sit at 6-9.
	v := binary.LittleEndian.Uint32(st[6:10]) ^ binary.LittleEndian.Uint32(a[:])
	binary.LittleEndian.PutUint32(st[6:10], v)
	h.block.Encrypt(st[:], st[:])
	return store.Key(*st)
}

// ipKey returns the key of the address bucket p in s for any prefix, two
// AES blocks, using st as the cipher's buffer.
func (h *Hasher) ipKey(s *Scope, p netip.Prefix, st *[16]byte) store.Key {
	a := p.Addr().As16()
	copy(st[:8], s.name[:])
	st[8], st[9] = kindIP, byte(p.Bits())
	copy(st[10:], a[:6])
	h.block.Encrypt(st[:], st[:])
	var b2 [16]byte
	copy(b2[:], a[6:])
	b2[ipKeyLen-16] = 0x80
	xor16(st, &b2)
	xor16(st, &h.k2)
	h.block.Encrypt(st[:], st[:])
	return store.Key(*st)
}

// xor16 sets dst to dst ^ src, eight bytes at a time.
func xor16(dst, src *[16]byte) {
	binary.LittleEndian.PutUint64(dst[:8], binary.LittleEndian.Uint64(dst[:8])^binary.LittleEndian.Uint64(src[:8]))
	binary.LittleEndian.PutUint64(dst[8:], binary.LittleEndian.Uint64(dst[8:])^binary.LittleEndian.Uint64(src[8:]))
}

// cmac is one AES-CMAC computation fed in pieces without allocating.
type cmac struct {
	h     *Hasher
	state [16]byte // CBC chaining value
	buf   [16]byte // pending bytes, never a full block unless more follow
	n     int
}

// reset starts a new computation keyed by h.
func (c *cmac) reset(h *Hasher) {
	c.h, c.state, c.n = h, [16]byte{}, 0
}

// flush mixes the full pending block into the chaining value. It runs only
// when more bytes follow: the last block is sum's.
func (c *cmac) flush() {
	xor16(&c.state, &c.buf)
	c.h.block.Encrypt(c.state[:], c.state[:])
	c.n = 0
}

func (c *cmac) write(p []byte)       { cmacWrite(c, p) }
func (c *cmac) writeString(s string) { cmacWrite(c, s) }

// cmacWrite appends p to the message, for bytes and strings alike.
func cmacWrite[T string | []byte](c *cmac, p T) {
	for len(p) > 0 {
		if c.n == 16 {
			c.flush()
		}
		k := copy(c.buf[c.n:], p)
		c.n += k
		p = p[k:]
	}
}

func (c *cmac) writeByte(b byte) {
	if c.n == 16 {
		c.flush()
	}
	c.buf[c.n] = b
	c.n++
}

func (c *cmac) sum() store.Key {
	k := &c.h.k1
	if c.n < 16 {
		c.buf[c.n] = 0x80
		clear(c.buf[c.n+1:])
		k = &c.h.k2
	}
	xor16(&c.state, &c.buf)
	xor16(&c.state, k)
	c.h.block.Encrypt(c.state[:], c.state[:])
	return store.Key(c.state)
}
