package window

import (
	"math"
	"time"
)

// Log is the per-key state of the [SlidingLog] algorithm: one ring of the instants
// at which requests were admitted, oldest first, shared by every window of the
// policy. Because an admitted request lands in every window at the same
// instant, a window of length W holds exactly the ring's suffix newer than
// t-W, so one ring answers all windows.
//
// Instants are milliseconds stored modulo 2^32 (4 bytes each) and decoded
// relative to the newest entry; entries older than the longest window are
// dropped before the ring could become ambiguous. The ring grows on demand up
// to the largest limit of the policy, so memory follows what is actually in
// the window, not the limit. Requests costing more than 1 add a parallel ring
// of running totals, allocated the first time such a request is admitted.
//
// The zero value is an empty log. A Log is not safe for concurrent use; the
// store serialises access per key.
type Log struct {
	// buf is the ring of admission instants in milliseconds, starting at
	// head. While the longest window fits in 65535 ms each entry is one
	// uint16 (instant mod 2^16); otherwise two (instant mod 2^32, high half
	// first). Entries decode relative to newest, which is exact because
	// every live entry is younger than the longest window.
	buf    []uint16
	costs  *costs // nil while every entry costs 1
	head   uint32
	n      uint32
	newest int64 // ms of the newest entry; meaningful when n > 0
	wide   bool
}

// costs holds running cost totals for logs in which some entry costs more
// than 1: before[i] is the total before ring entry i, mod 2^32.
type costs struct {
	before []uint32
	total  uint32 // total after the newest entry
}

// Len returns the number of entries the log holds.
func (l *Log) Len() int { return int(l.n) }

// Newest returns the instant of the most recent admission, and false when
// the log is empty.
func (l *Log) Newest() (time.Time, bool) {
	if l.n == 0 {
		return time.Time{}, false
	}
	return time.UnixMilli(l.newest), true
}

// Idle reports whether, at now, no entry of l counts in any window of p: the
// state can be dropped without changing any future decision.
func (l *Log) Idle(now time.Time, p *Policy) bool {
	return l.n == 0 || now.UnixMilli()-l.newest >= maxLength(p)
}

// Limited reports whether a request of cost 1 would be rejected at now.
func (l *Log) Limited(now time.Time, p *Policy) bool {
	d := l.PeekAt(now, p)
	return !d.Allowed
}

// Reset forgets every entry.
func (l *Log) Reset() {
	l.head, l.n = 0, 0
	l.costs = nil
}

// TakeAt decides whether a request of cost n at now is admitted by every
// window of p and, if so, records it in all of them. p must be valid (see
// [Policy.Validate]); n must be at least 1.
//
// A clock that steps backwards (now before the newest entry) is treated as if
// no time had passed since the newest entry: every entry keeps its age, so the
// jump neither frees nor extends any window.
func (l *Log) TakeAt(now time.Time, p *Policy, n int) Decision {
	return l.decide(now.UnixMilli(), p, n, true)
}

// PeekAt returns what a request of cost 1 at now would be told, without
// recording anything.
func (l *Log) PeekAt(now time.Time, p *Policy) Decision {
	return l.decide(now.UnixMilli(), p, 1, false)
}

func (l *Log) decide(t int64, p *Policy, cost int, record bool) Decision {
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
		first := l.firstAfter(t - length)
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
			waits[i] = l.at(j) + length - t
		}
		d.Windows[i].Remaining = int(int64(w.Limit) - used)
	}
	d.Allowed = rejecting == 0
	if d.Allowed && record {
		if l.n > 0 && t-l.at(0) >= longest {
			l.prune(t - longest)
			for i := range p.Windows {
				firsts[i] = l.firstAfter(t - ms(p.Windows[i].Length))
			}
		}
		l.push(t, c, p)
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
			s.Reset = dur(l.at(first) + ms(w.Length) - t)
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

// capacity returns how many entries buf holds.
func (l *Log) capacity() uint32 {
	if l.wide {
		return uint32(len(l.buf) / 2)
	}
	return uint32(len(l.buf))
}

// idx maps a logical position (0 = oldest) to a ring slot.
func (l *Log) idx(i uint32) uint32 {
	j := l.head + i
	if c := l.capacity(); j >= c {
		j -= c
	}
	return j
}

// raw returns the stored instant of ring slot j, widened to 32 bits.
func (l *Log) raw(j uint32) uint32 {
	if l.wide {
		return uint32(l.buf[2*j])<<16 | uint32(l.buf[2*j+1])
	}
	return uint32(l.buf[j])
}

// setRaw stores instant t (ms) in ring slot j.
func (l *Log) setRaw(j uint32, t int64) {
	if l.wide {
		l.buf[2*j], l.buf[2*j+1] = uint16(uint32(t)>>16), uint16(t)
		return
	}
	l.buf[j] = uint16(t)
}

// at returns the instant of entry i in milliseconds.
func (l *Log) at(i uint32) int64 {
	r := l.raw(l.idx(i))
	if l.wide {
		return l.newest - int64(uint32(l.newest)-r)
	}
	return l.newest - int64(uint16(l.newest)-uint16(r))
}

// cumBefore returns the running cost total before entry i (i may be l.n, for
// the total after the newest). Only differences are meaningful.
func (l *Log) cumBefore(i uint32) uint32 {
	if l.costs == nil {
		return i
	}
	if i == l.n {
		return l.costs.total
	}
	return l.costs.before[l.idx(i)]
}

// firstAfter returns the position of the oldest entry newer than cut, or l.n.
func (l *Log) firstAfter(cut int64) uint32 {
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
func (l *Log) firstCumAtLeast(from uint32, need uint32) uint32 {
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

// prune drops entries at or before cut.
func (l *Log) prune(cut int64) {
	k := l.firstAfter(cut)
	l.head = l.idx(k)
	l.n -= k
	if l.n == 0 {
		l.head = 0
	}
}

// shift moves every entry back by delta milliseconds, keeping their ages
// relative to the newest.
func (l *Log) shift(delta int64) {
	for i := uint32(0); i < l.n; i++ {
		j := l.idx(i)
		l.setRaw(j, int64(l.raw(j))-delta)
	}
	l.newest -= delta
}

// push appends an entry of cost c at t, which is not before l.newest.
func (l *Log) push(t int64, c uint32, p *Policy) {
	wide := maxLength(p) > math.MaxUint16
	if l.n == l.capacity() || wide != l.wide {
		l.resize(p, wide)
	}
	if c != 1 && l.costs == nil {
		l.costs = &costs{before: make([]uint32, l.capacity()), total: l.n}
		for i := uint32(0); i < l.n; i++ {
			l.costs.before[l.idx(i)] = i
		}
	}
	j := l.idx(l.n)
	l.setRaw(j, t)
	if l.costs != nil {
		l.costs.before[j] = l.costs.total
		l.costs.total += c
	}
	l.n++
	l.newest = t
}

// resize re-lays the ring out from slot 0 with room for at least one more
// entry, in the encoding wide asks for. Capacity doubles up to the largest
// limit of p: no window can hold more entries than its limit, and every live
// entry is inside the longest window.
func (l *Log) resize(p *Policy, wide bool) {
	bound := 0
	for _, w := range p.Windows {
		bound = max(bound, w.Limit)
	}
	size := int(l.capacity())
	if l.n == l.capacity() {
		size = min(max(2*size, 4), bound)
	}
	size = max(size, int(l.n)+1)
	at := make([]int64, 0, l.n)
	for i := uint32(0); i < l.n; i++ {
		at = append(at, l.at(i))
	}
	var before []uint32
	if l.costs != nil {
		before = make([]uint32, size)
		for i := uint32(0); i < l.n; i++ {
			before[i] = l.costs.before[l.idx(i)]
		}
		l.costs.before = before
	}
	l.wide, l.head = wide, 0
	if wide {
		l.buf = make([]uint16, 2*size)
	} else {
		l.buf = make([]uint16, size)
	}
	for i, t := range at {
		l.setRaw(uint32(i), t)
	}
}
