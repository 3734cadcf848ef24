// Package memory is the in-process [store.Store]: exact, bounded, and
// allocation-free per decision (but for one 400-byte grant per batch of up
// to 32,768 admissions of a hot key at very large limits; see below).
//
// Keys are spread over independently locked shards (64 by default). Each
// shard keeps its keys in open-addressing tables whose slots hold the
// key next to the key's state, and grows by a quarter at 85 % full,
// so it stays 68–85 % full. An exact key's state is a [window.Log]: one
// pointer to a single pointer-free buffer (a 20-byte header and 2-byte
// instants), so a decision touches the key's slot and its buffer and nothing
// else, and the garbage collector never scans inside the state. A tracked
// key under the default 60/min + 2/s with a full minute costs about 190–198
// bytes of heap, slot included (BenchmarkBytesPerKey). A sliding-window
// counter that fits a [window.SmallCounter] lives whole in a 24-byte slot
// keyed by an 8-byte fingerprint of its key: 32–36 bytes per key.
//
// # Bounded memory
//
// The store holds at most [Config.MaxKeys] keys, counted across shards. A
// new key in a full store takes the place of an idle key (one whose
// admissions have all left their windows): first one sampled in its shard,
// else those found by sweeping the shards that may hold one. Only
// when no idle key is left does it evict a live one: of 8 keys sampled in
// its shard, the one that is not limited and whose windows count the fewest
// requests ([window.Log.Counted]). A limited key, one whose latest decision
// refused or left a window with no room, until that wait has passed, is
// never evicted; if all 8 are limited, Take returns [store.ErrFull] for the
// middleware's failure policy to answer.
//
// So spraying new keys cannot touch a limited client, nor any client while
// fewer than MaxKeys keys are live (short of every shard holding idle keys
// being locked by other requests at that instant: a sweep never waits for a
// lock). Past that it can evict a client that still has room, which then
// starts afresh: it may be admitted, in each window's span, up to what that
// window counted for it beyond the limit. That is less than the limit, and
// the client is evicted only if each of the 7 other keys sampled with it is
// limited or counts at least as much: a client at 59 of 60 a minute survives
// a spray of keys that sent one request each (TestR51SprayAgainstAFullStore).
//
// Reaching ErrFull needs nearly every key of the store limited at once: with
// the default 60/min + 2/s, about MaxKeys identities each kept at its limit,
// which takes about one admitted request per identity per second; even then
// a new key fails only when all 8 keys sampled are limited: with 90 % of the
// keys limited, 43 % of new keys fail; with 50 %, 0.4 %. docs/algorithm.md
// has the details. One background goroutine drops idle keys; Close stops it.
//
// # Hot keys
//
// The clock is read under the shard's lock, so decisions on one key happen in
// clock order. There are two exceptions, both for a hot key. When the sliding
// log refuses a key twice with no other key of the shard refused in between,
// the refusal is published, and until something could change it (an
// admission, the first entry leaving a window, a clock step back, Reset,
// eviction or a sweep dropping the key) requests for that key with the
// same policy and cost are answered from it without the lock, with Reset and
// RetryAfter counted down to the instant asked. And when a key whose policy
// allows more requests than its longest window has milliseconds (see
// [window.Merges]) is admitted twice in a row under the lock in one
// millisecond, the lock path records a batch of further admissions in the
// same entry, while every window keeps twice the batch's cost in hand, and
// publishes it as a grant: until the
// millisecond ends, requests for that key with the same policy and cost are
// admitted from it by one atomic decrement each. Whatever a grant still holds
// is given back (window.Log.Unmerge) before anything reads the key's log
// again, so every decision is the one the lock would have given, in the
// order of the decrements.
package memory
