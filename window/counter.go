package window

import (
	"math"
	"time"
	"unsafe"
)

// Counter is the per-key state of the [SlidingCounter] algorithm. Each window of
// length W is split into fixed slots [kW, (k+1)W); the count in the sliding
// interval (t-W, t] is estimated as
//
//	prev * (W - elapsed) / W + curr
//
// where curr is the cost admitted in the current slot, prev the cost admitted
// in the previous one and elapsed how far t is into the current slot. The
// comparison with the limit is done in exact integer arithmetic.
//
// The state is one pointer-free allocation of 4-byte words: the number of
// windows, the instant of the latest write (ms, two words), then prev and
// curr per window — 28 bytes for two windows. Each window's current slot is
// not stored: every write happens at the latest write's instant, so slot k
// of window W is that instant divided by W.
//
// The zero value is an empty counter. A Counter is not safe for concurrent
// use; the store serialises access per key. Copying a Counter aliases its
// state.
type Counter struct {
	p *uint32 // nil when empty
}

// ctrHdr is the number of header words before the per-window counts.
const ctrHdr = 3

// load returns the counter's words, or nil.
func (c *Counter) load() []uint32 {
	if c.p == nil {
		return nil
	}
	n := int(*c.p)
	return unsafe.Slice(c.p, ctrHdr+2*n)
}

// slotsOf decodes the per-window slots of state b (len(b) > 0).
func slotsOf(b []uint32, p *Policy, out *[MaxWindows]slot) {
	last := int64(uint64(b[1]) | uint64(b[2])<<32)
	for i := range int(b[0]) {
		out[i] = slot{epoch: last / ms(p.Windows[i].Length), prev: b[ctrHdr+2*i], curr: b[ctrHdr+2*i+1]}
	}
}

// slot is one window's pair of fixed-window counts.
type slot struct {
	epoch      int64 // index k of the current fixed slot [kW, (k+1)W)
	prev, curr uint32
}

// Idle reports whether, at now, nothing counted in c affects any window of p.
func (c *Counter) Idle(now time.Time, p *Policy) bool {
	b := c.load()
	if len(b) == 0 || int(b[0]) != len(p.Windows) {
		return true
	}
	var w [MaxWindows]slot
	slotsOf(b, p, &w)
	t := now.UnixMilli()
	for i, s := range w[:b[0]] {
		if t/ms(p.Windows[i].Length) < s.epoch+2 && (s.prev > 0 || s.curr > 0) {
			return false
		}
	}
	return true
}

// Reset forgets every count and releases the state.
func (c *Counter) Reset() { c.p = nil }

// Counted returns the largest cost any window of c holds in its current and
// previous slots together, as of the latest write. No window's estimate
// exceeds it then or later, so a store that drops c can admit at most that
// much more in any window than c would have.
func (c *Counter) Counted() int {
	b := c.load()
	if len(b) == 0 {
		return 0
	}
	m := 0
	for i := range int(b[0]) {
		m = max(m, int(b[ctrHdr+2*i])+int(b[ctrHdr+2*i+1]))
	}
	return m
}

// TakeAt decides whether a request of cost n at now is admitted by every
// window of p and, if so, counts it in all of them. p must be valid; n must be
// at least 1. A clock that steps backwards re-anchors each window's current
// slot at now, keeping its counts: the jump frees nothing.
func (c *Counter) TakeAt(now time.Time, p *Policy, n int) Decision {
	return c.decide(now.UnixMilli(), p, n, true)
}

// PeekAt returns what a request of cost 1 at now would be told, without
// counting it.
func (c *Counter) PeekAt(now time.Time, p *Policy) Decision {
	return c.decide(now.UnixMilli(), p, 1, false)
}

func (c *Counter) decide(t int64, p *Policy, cost int, record bool) Decision {
	// A state kept for another number of windows starts over, as if empty.
	b := c.load()
	var cur [MaxWindows]slot
	if len(b) > 0 && int(b[0]) == len(p.Windows) {
		slotsOf(b, p, &cur)
	} else {
		b = nil
	}
	d, rolled := decideSlots(t, p, cost, record, &cur)
	if record {
		if b == nil {
			b = make([]uint32, ctrHdr+2*d.N)
			b[0] = uint32(d.N)
			c.p = &b[0]
		}
		b[1], b[2] = uint32(t), uint32(uint64(t)>>32)
		for i := range d.N {
			b[ctrHdr+2*i], b[ctrHdr+2*i+1] = rolled[i].prev, rolled[i].curr
		}
	}
	return d
}

// decideSlots decides a request of cost at t against each window's slot at
// the latest write (cur; zero slots for an empty state) and returns the
// decision with every window's slot at t, the request counted in them when
// it is admitted and record is set. [Counter] and [SmallCounter] share it,
// so their decisions cannot drift apart.
func decideSlots(t int64, p *Policy, cost int, record bool, cur *[MaxWindows]slot) (Decision, [MaxWindows]slot) {
	var d Decision
	var waits [MaxWindows]int64
	var rolled [MaxWindows]slot
	var rejecting uint32
	d.N = len(p.Windows)
	for i, w := range p.Windows {
		length := ms(w.Length)
		s := cur[i].rollTo(t, length)
		rolled[i] = s
		el := t - s.epoch*length
		room := int64(w.Limit) - int64(cost)
		if room < 0 {
			rejecting |= 1 << i
			waits[i] = maxLength(p)
		} else if wait := s.waitFor(room, el, length); wait > 0 {
			rejecting |= 1 << i
			waits[i] = wait
		}
	}
	d.Allowed = rejecting == 0
	if d.Allowed && record {
		for i := range rolled {
			rolled[i].curr += uint32(cost)
		}
	}
	for i, w := range p.Windows {
		length := ms(w.Length)
		s := rolled[i]
		el := t - s.epoch*length
		used := s.used(el, length)
		st := &d.Windows[i]
		st.Limit = w.Limit
		st.Remaining = int(max(int64(w.Limit)-used, 0))
		if used > 0 {
			st.Reset = dur(s.waitFor(used-1, el, length))
		}
	}
	d.pickLimiting(p, rejecting, &waits)
	return d, rolled
}

// rollTo returns s moved to the fixed slot containing t. A t before the
// current slot (clock stepped back) re-anchors the slot at t.
func (s slot) rollTo(t, length int64) slot {
	k := t / length
	switch {
	case k == s.epoch:
	case k == s.epoch+1:
		s.prev, s.curr = s.curr, 0
	case k > s.epoch+1:
		s.prev, s.curr = 0, 0
	}
	s.epoch = k
	return s
}

// weighted returns the estimate times length, prev*(length-el) +
// curr*length, saturated at math.MaxInt64. Each product fits in 63 bits
// (counts stay below 2^31, lengths below 2^32 ms), but their sum need not:
// after the clock steps back within a slot, el shrinks while both counts
// stay, and at the largest limits and lengths the sum passes 2^63. A
// saturated estimate refuses, which is the safe side.
func (s slot) weighted(el, length int64) int64 {
	sum := uint64(s.prev)*uint64(length-el) + uint64(s.curr)*uint64(length)
	return int64(min(sum, math.MaxInt64))
}

// used returns the estimate rounded up to whole units.
func (s slot) used(el, length int64) int64 {
	return int64((uint64(s.weighted(el, length)) + uint64(length) - 1) / uint64(length))
}

// waitFor returns how long until the estimate is at most room (0 if it
// already is), assuming nothing more is counted.
func (s slot) waitFor(room, el, length int64) int64 {
	if s.weighted(el, length) <= room*length {
		return 0
	}
	if int64(s.curr) <= room && s.prev > 0 {
		// Still in this slot: prev*(length-el') <= (room-curr)*length.
		at := length - (room-int64(s.curr))*length/int64(s.prev)
		if at < length {
			return at - el
		}
	}
	// Next slot: curr becomes prev and weighs curr*(length-el').
	at := int64(0)
	if s.curr > 0 {
		at = max(length-room*length/int64(s.curr), 0)
	}
	return length - el + at
}
