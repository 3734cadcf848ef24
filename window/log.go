package window

import (
	"math"
	"time"
	"unsafe"
)

// Log is the per-key state of the [SlidingLog] algorithm: one ring of the instants
// at which requests were admitted, oldest first, shared by every window of the
// policy. Because an admitted request lands in every window at the same
// instant, a window of length W holds exactly the ring's suffix from t-W
// on (see [Window] for why t-W itself still counts), so one ring answers all
// windows.
//
// Instants are milliseconds stored modulo 2^16 while the longest window fits
// in 65,535 ms (2 bytes each), else modulo 2^32 (4 bytes), and decoded
// relative to the newest entry; entries that no longer count in the longest
// window are dropped before the ring could become ambiguous. The ring grows
// on demand up to the largest limit of the policy, so memory follows what is
// actually in the window, not the limit. Requests costing more than 1 add
// running cost totals to the ring, the first time such a request is
// admitted. When a policy allows more requests than its longest window has
// milliseconds, admissions in the same millisecond merge into one entry, so
// the ring never holds more entries than the longest window spans
// millisecond readings (its length plus one): at a limit of a billion a
// minute a key costs at most 60,001 entries, not a billion.
//
// The whole state lives in one pointer-free allocation, so a Log is one
// pointer wide: a store can keep millions of them without giving the garbage
// collector anything to scan but the pointers themselves.
//
// The zero value is an empty log. A Log is not safe for concurrent use; the
// store serialises access per key. PeekAt, and a TakeAt that refuses without
// the clock stepping back, only read the state, so a key refused from many
// cores keeps its cache lines shared. Copying a Log aliases its state.
type Log struct {
	p *uint16 // first word of the state buffer; nil when empty
}

// The state buffer is a []uint16 laid out as:
//
//	[0:2]  capacity in entries, with costsBit set when cost totals follow
//	[2:4]  ring position of the oldest entry, with wideBit set for 4-byte instants
//	[4:6]  number of entries
//	[6:10] newest instant, ms since the Unix epoch
//	[10:]  capacity entries of 1 (narrow) or 2 (wide) words: instant mod 2^16 or 2^32
//	then, with costsBit: capacity running totals of 2 words (total before the
//	entry in that ring slot, mod 2^32) and the total after the newest entry.
//
// Multi-word values are little-endian in 16-bit words.
const (
	hdrWords = 10
	costsBit = 1 << 31
	wideBit  = 1 << 31
)

// ring is a decoded view of a Log's buffer, used for one decision and
// written back by save.
type ring struct {
	all    []uint16 // the whole buffer
	buf    []uint16 // the instants: capacity entries of 1 or 2 words
	before []uint16 // running totals, 2 words per slot; nil while every entry costs 1
	total  uint32   // total after the newest entry, when before != nil
	head   uint32
	n      uint32
	cap    uint32
	newest int64 // ms of the newest entry; meaningful when n > 0
	wide   bool
}

func get32(b []uint16) uint32    { return uint32(b[0]) | uint32(b[1])<<16 }
func put32(b []uint16, v uint32) { b[0], b[1] = uint16(v), uint16(v>>16) }
func get64(b []uint16) int64     { return int64(uint64(get32(b)) | uint64(get32(b[2:]))<<32) }
func put64(b []uint16, v int64)  { put32(b, uint32(v)); put32(b[2:], uint32(uint64(v)>>32)) }
func words(cap uint32, wide, costs bool) int {
	n := hdrWords + int(cap)
	if wide {
		n += int(cap)
	}
	if costs {
		n += 2*int(cap) + 2
	}
	return n
}

// load decodes l's buffer.
func (l *Log) load() ring {
	var r ring
	if l.p == nil {
		return r
	}
	h := unsafe.Slice(l.p, hdrWords)
	c, hd := get32(h[0:]), get32(h[2:])
	r.cap, r.head = c&^costsBit, hd&^wideBit
	r.wide = hd&wideBit != 0
	costs := c&costsBit != 0
	r.n, r.newest = get32(h[4:]), get64(h[6:])
	r.all = unsafe.Slice(l.p, words(r.cap, r.wide, costs))
	end := hdrWords + int(r.cap)
	if r.wide {
		end += int(r.cap)
	}
	r.buf = r.all[hdrWords:end]
	if costs {
		r.before = r.all[end : len(r.all)-2]
		r.total = get32(r.all[len(r.all)-2:])
	}
	return r
}

// save writes r's scalar fields back into its buffer and points l at the
// buffer, which relayout may have replaced.
func (r *ring) save(l *Log) {
	if r.all == nil {
		return
	}
	l.p = &r.all[0]
	c, hd := r.cap, r.head
	if r.before != nil {
		c |= costsBit
		if get32(r.all[len(r.all)-2:]) != r.total {
			put32(r.all[len(r.all)-2:], r.total)
		}
	}
	if r.wide {
		hd |= wideBit
	}
	// Words that did not change are not written: a request merged into the
	// newest millisecond changes only the total at the buffer's end, and an
	// unwritten header stays shared between CPU caches when one key is hot.
	if get32(r.all[0:]) != c || get32(r.all[2:]) != hd {
		put32(r.all[0:], c)
		put32(r.all[2:], hd)
	}
	if get32(r.all[4:]) != r.n || get64(r.all[6:]) != r.newest {
		put32(r.all[4:], r.n)
		put64(r.all[6:], r.newest)
	}
}

// entries returns the number of entries the log holds. Admissions merged
// into one millisecond count as one entry.
func (l *Log) entries() int {
	if l.p == nil {
		return 0
	}
	return int(get32(unsafe.Slice(l.p, hdrWords)[4:]))
}

// Counted returns the total cost of the admissions l holds: those not
// already older than the longest window when the latest admission was
// recorded. No window of the policy counts more, then or later, so a store
// that drops l can admit at most that much more in any window than l would
// have.
func (l *Log) Counted() int {
	r := l.load()
	return int(r.cumBefore(r.n) - r.cumBefore(0))
}

// size returns the size of the log's state allocation, 0 when empty.
func (l *Log) size() int {
	if l.p == nil {
		return 0
	}
	r := l.load()
	return 2 * len(r.all)
}

// Reset forgets every entry and releases the state.
func (l *Log) Reset() { l.p = nil }

// TakeAt decides whether a request of cost n at now is admitted by every
// window of p and, if so, records it in all of them. p must be valid (see
// [Policy.Validate]); n must be at least 1.
//
// A clock that steps backwards (now before the newest entry) is treated as if
// no time had passed since the newest entry: every entry keeps its age, so the
// jump neither frees nor extends any window as seen from the newest entry.
func (l *Log) TakeAt(now time.Time, p *Policy, n int) Decision {
	r := l.load()
	t := now.UnixMilli()
	back := r.n > 0 && t < r.newest
	d := r.decide(t, p, n, true)
	// A refusal changes nothing unless the clock stepped back (shift):
	// leaving the buffer unwritten keeps it shared between CPU caches when
	// one key is refused from many goroutines.
	if d.Allowed || back {
		r.save(l)
	}
	return d
}

// Merges reports whether p allows more requests than its longest window has
// milliseconds, so that a Log under p merges admissions in the same
// millisecond into one entry: a request admitted at the newest entry's
// millisecond then only adds its cost to that entry.
func Merges(p *Policy) bool { return int64(maxLimit(p)) > maxLength(p) }

// Unmerge takes n units of cost back out of the newest entry, undoing part
// of an admission that was merged into it (see [Merges]), and reports
// whether it did. The entry must keep at least one unit; otherwise, or when
// the log holds no merged entries, the log is left unchanged and Unmerge
// returns false.
//
// It lets a store record a batch of admissions in one TakeAt and give back
// those it did not use before the log is read again. The caller must know
// that the n units were merged: they were admitted by a TakeAt at the
// newest entry's millisecond, under a policy that merges, after an
// admission at that millisecond, and nothing was recorded since. Then
// Unmerge(n) leaves every later decision exactly as if those n units had
// not been taken. Unmerge cannot check this: given a single admission of
// cost 5, Unmerge(3) rewrites it as an admission of cost 2.
func (l *Log) Unmerge(n int) bool {
	r := l.load()
	if n <= 0 || r.n == 0 || r.before == nil {
		return n == 0
	}
	newest := r.total - r.cumBefore(r.n-1)
	if uint64(n) >= uint64(newest) {
		return false
	}
	r.total -= uint32(n)
	r.save(l)
	return true
}

// PeekAt returns what a request of cost 1 at now would be told, without
// recording anything.
func (l *Log) PeekAt(now time.Time, p *Policy) Decision {
	r := l.load()
	return r.decide(now.UnixMilli(), p, 1, false)
}

func (l *ring) decide(t int64, p *Policy, cost int, record bool) Decision {
	longest := maxLength(p)
	if l.n > 0 && t < l.newest {
		if record {
			l.shift(l.newest - t)
		} else {
			t = l.newest // evaluating at newest equals shifting, without writing
		}
	}

	var d Decision
	var waits [MaxWindows]int64
	var rejecting uint32
	var firsts [MaxWindows]uint32
	d.N = len(p.Windows)
	total := l.cumBefore(l.n)
	c := uint32(cost)
	for i, w := range p.Windows {
		length := ms(w.Length)
		first := l.firstCounted(t, length)
		firsts[i] = first
		used := int64(total - l.cumBefore(first))
		d.Windows[i].Limit = w.Limit
		if cost > w.Limit {
			rejecting |= 1 << i
			waits[i] = longest
		} else if used+int64(cost) > int64(w.Limit) {
			// The window admits once enough of its oldest entries leave:
			// the first entry j whose removal (with all before it) brings
			// used+cost to the limit.
			rejecting |= 1 << i
			need := total + c - uint32(w.Limit) // cumAfter(j) must reach this
			j := l.firstCumAtLeast(first, need)
			waits[i] = leaves(l.at(j), length) - t
		}
		d.Windows[i].Remaining = int(int64(w.Limit) - used)
	}
	d.Allowed = rejecting == 0
	if d.Allowed && record {
		if l.n > 0 && t >= leaves(l.at(0), longest) {
			l.prune(t, longest)
			for i := range p.Windows {
				firsts[i] = l.firstCounted(t, ms(p.Windows[i].Length))
			}
		}
		l.push(t, c, p, longest)
	}
	for i, w := range p.Windows {
		s := &d.Windows[i]
		if d.Allowed && record {
			s.Remaining -= cost
		}
		if s.Remaining < 0 {
			s.Remaining = 0
		}
		if first := firsts[i]; first < l.n {
			s.Reset = dur(leaves(l.at(first), ms(w.Length)) - t)
		}
	}
	d.pickLimiting(p, rejecting, &waits)
	return d
}

// maxLength returns the longest window of p in milliseconds.
func maxLength(p *Policy) int64 {
	var m int64
	for _, w := range p.Windows {
		m = max(m, ms(w.Length))
	}
	return m
}

// maxLimit returns the largest limit of p.
func maxLimit(p *Policy) int {
	m := 0
	for _, w := range p.Windows {
		m = max(m, w.Limit)
	}
	return m
}

// idx maps a logical position (0 = oldest) to a ring slot.
func (l *ring) idx(i uint32) uint32 {
	j := l.head + i
	if j >= l.cap {
		j -= l.cap
	}
	return j
}

// raw returns the stored instant of ring slot j, widened to 32 bits.
func (l *ring) raw(j uint32) uint32 {
	if l.wide {
		return get32(l.buf[2*j:])
	}
	return uint32(l.buf[j])
}

// setRaw stores instant t (ms) in ring slot j.
func (l *ring) setRaw(j uint32, t int64) {
	if l.wide {
		put32(l.buf[2*j:], uint32(t))
		return
	}
	l.buf[j] = uint16(t)
}

// at returns the instant of entry i in milliseconds.
func (l *ring) at(i uint32) int64 {
	r := l.raw(l.idx(i))
	if l.wide {
		return l.newest - int64(uint32(l.newest)-r)
	}
	return l.newest - int64(uint16(l.newest)-uint16(r))
}

// cumBefore returns the running cost total before entry i (i may be l.n, for
// the total after the newest). Only differences are meaningful.
func (l *ring) cumBefore(i uint32) uint32 {
	if l.before == nil {
		return i
	}
	if i == l.n {
		return l.total
	}
	return get32(l.before[2*l.idx(i):])
}

// firstCounted returns the position of the oldest entry that counts at t in
// a window of length ms (see leaves), or l.n when none does.
func (l *ring) firstCounted(t, length int64) uint32 {
	return l.firstAfter(t - length - 1)
}

// firstAfter returns the position of the oldest entry newer than cut, or l.n.
func (l *ring) firstAfter(cut int64) uint32 {
	lo, hi := uint32(0), l.n
	for lo < hi {
		mid := lo + (hi-lo)/2
		if l.at(mid) > cut {
			hi = mid
		} else {
			lo = mid + 1
		}
	}
	return lo
}

// firstCumAtLeast returns the first position j >= from whose running total
// after it, counted from the total before from, reaches need-cumBefore(from).
func (l *ring) firstCumAtLeast(from uint32, need uint32) uint32 {
	base := l.cumBefore(from)
	want := need - base
	lo, hi := from, l.n-1
	for lo < hi {
		mid := lo + (hi-lo)/2
		if l.cumBefore(mid+1)-base >= want {
			hi = mid
		} else {
			lo = mid + 1
		}
	}
	return lo
}

// prune drops the entries that no longer count at t in a window of length
// ms.
func (l *ring) prune(t, length int64) {
	k := l.firstCounted(t, length)
	l.head = l.idx(k)
	l.n -= k
	if l.n == 0 {
		l.head = 0
	}
}

// shift moves every entry back by delta milliseconds, keeping their ages
// relative to the newest.
func (l *ring) shift(delta int64) {
	for i := uint32(0); i < l.n; i++ {
		j := l.idx(i)
		l.setRaw(j, int64(l.raw(j))-delta)
	}
	l.newest -= delta
}

// merges reports whether admissions at the newest entry's millisecond join
// that entry instead of taking a new one: when running totals exist anyway,
// or when p allows more requests than its longest window has milliseconds
// (then merging is what bounds the ring).
func (l *ring) merges(p *Policy) bool {
	return l.before != nil || int64(maxLimit(p)) > maxLength(p)
}

// push appends an entry of cost c at t, which is not before l.newest, or adds
// c to the newest entry when both fall in the same millisecond and p merges.
// longest is p's longest window in milliseconds.
func (l *ring) push(t int64, c uint32, p *Policy, longest int64) {
	if l.n > 0 && t == l.newest && l.merges(p) {
		if l.before == nil {
			l.relayout(l.cap, l.wide, true)
		}
		l.total += c
		return
	}
	wide := longest > math.MaxUint16
	costs := l.before != nil || c != 1
	if l.n == l.cap || wide != l.wide || costs != (l.before != nil) {
		size := l.cap
		if l.n == l.cap {
			size = min(max(2*size, 4), l.bound(p))
		}
		l.relayout(max(size, l.n+1), wide, costs)
	}
	j := l.idx(l.n)
	l.setRaw(j, t)
	if l.before != nil {
		put32(l.before[2*j:], l.total)
		l.total += c
	}
	l.n++
	l.newest = t
}

// bound returns the most entries a ring under p can need: no window holds
// more entries than its limit, every live entry is inside the longest
// window, and when p merges there is at most one entry per millisecond of
// it, of which there are its length plus one (see leaves).
func (l *ring) bound(p *Policy) uint32 {
	b := int64(maxLimit(p))
	if l.merges(p) {
		b = min(b, maxLength(p)+1)
	}
	return uint32(max(b, 1))
}

// relayout copies the ring into a new buffer of size entries (at least
// l.n), laid out from slot 0, in the encoding wide asks for, with running
// totals when costs is set; save points the log at it.
func (l *ring) relayout(size uint32, wide, costs bool) {
	size = max(size, l.n)
	all := make([]uint16, words(size, wide, costs))
	nr := ring{all: all, cap: size, n: l.n, newest: l.newest, wide: wide}
	end := hdrWords + int(size)
	if wide {
		end += int(size)
	}
	nr.buf = all[hdrWords:end]
	if costs {
		nr.before = all[end : len(all)-2]
	}
	for i := uint32(0); i < l.n; i++ {
		nr.setRaw(i, l.at(i))
		if costs {
			put32(nr.before[2*i:], l.cumBefore(i))
		}
	}
	if costs {
		nr.total = l.cumBefore(l.n)
	}
	*l = nr
}
