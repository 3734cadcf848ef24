package redis

import (
	"encoding/hex"
	"strings"

	"github.com/ratekit/ratekit/store"
)

// Key returns the Redis key holding k's window state:
//
//	<prefix>:{<32 lower-case hex digits of k>}:m
//
// Its length is fixed for a prefix and it carries no client bytes (k is
// already a keyed hash). The braces are a Redis Cluster hash tag: every key
// of one identity (":m" here, ":s" reserved for concurrency leases) hashes to
// the same slot, so one script may touch all of them. An empty prefix means
// [DefaultPrefix].
func Key(prefix string, k store.Key) string {
	if prefix == "" {
		prefix = DefaultPrefix
	}
	var b strings.Builder
	b.Grow(len(prefix) + 2 + 2*len(k) + 3)
	b.WriteString(prefix)
	b.WriteString(":{")
	var h [32]byte
	hex.Encode(h[:], k[:])
	b.Write(h[:])
	b.WriteString("}:m")
	return b.String()
}

// KeySlot returns the Redis Cluster hash slot of key (0 to 16383): CRC16
// (XMODEM) of the hash tag, the part between the first '{' and the next
// '}' when that part is non-empty, else of the whole key. It matches the
// server's CLUSTER KEYSLOT.
func KeySlot(key string) int {
	if i := strings.IndexByte(key, '{'); i >= 0 {
		if j := strings.IndexByte(key[i+1:], '}'); j > 0 {
			key = key[i+1 : i+1+j]
		}
	}
	return int(crc16(key) % 16384)
}

// crc16 is CRC-16/XMODEM (polynomial 0x1021, initial value 0), bit by bit:
// keys are short and this is not on the request path.
func crc16(s string) uint16 {
	var crc uint16
	for i := 0; i < len(s); i++ {
		crc ^= uint16(s[i]) << 8
		for range 8 {
			if crc&0x8000 != 0 {
				crc = crc<<1 ^ 0x1021
			} else {
				crc <<= 1
			}
		}
	}
	return crc
}
