package middleware

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/sha256"
	"encoding/binary"

	"github.com/ratekit/ratekit/store"
)

// keyHasher derives store keys from client identities with AES-CMAC (RFC
// 4493), a pseudo-random function keyed by a secret: without the secret a
// store key reveals nothing about the API key or address behind it, not
// even by trying every IPv4 address. AES-CMAC costs about one AES block per
// 16 bytes of input (nanoseconds with AES-NI), where HMAC-SHA-256 costs two
// compression functions per call at least.
type keyHasher struct {
	block  cipher.Block
	k1, k2 [16]byte
}

// newKeyHasher derives the AES-128 key from secret, so that secrets of any
// length work and the same secret yields the same store keys on every
// instance.
func newKeyHasher(secret []byte) keyHasher {
	h := sha256.New()
	h.Write([]byte("ratekit store key v1\x00"))
	h.Write(secret)
	sum := h.Sum(nil)
	b, err := aes.NewCipher(sum[:16])
	if err != nil {
		panic(err) // impossible: 16 bytes is a valid AES key length
	}
	var kh keyHasher
	kh.block = b
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

// cmac is one AES-CMAC computation fed in pieces without allocating.
type cmac struct {
	h     *keyHasher
	state [16]byte // CBC chaining value
	buf   [16]byte // pending bytes, never a full block unless more follow
	n     int
}

// reset starts a new computation keyed by h.
func (c *cmac) reset(h *keyHasher) {
	c.h, c.state, c.n = h, [16]byte{}, 0
}

func (c *cmac) write(p []byte) {
	for _, b := range p {
		c.writeByte(b)
	}
}

func (c *cmac) writeString(s string) {
	for i := 0; i < len(s); i++ {
		c.writeByte(s[i])
	}
}

func (c *cmac) writeByte(b byte) {
	if c.n == 16 {
		// Only now do we know this block is not the last one.
		for i := range c.state {
			c.state[i] ^= c.buf[i]
		}
		c.h.block.Encrypt(c.state[:], c.state[:])
		c.n = 0
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
	for i := range c.state {
		c.state[i] ^= c.buf[i] ^ k[i]
	}
	c.h.block.Encrypt(c.state[:], c.state[:])
	return store.Key(c.state)
}
