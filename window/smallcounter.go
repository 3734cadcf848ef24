package window

import "time"

// SmallCounter is the [SlidingCounter] state of a key in 12 bytes with no
// pointer, for the policies [SmallCounterFits] accepts: one or two windows,
// limits up to [SmallCounterMaxLimit], windows up to [SmallCounterMaxLength].
// It decides exactly as a [Counter] does (both call the same code), so a
// store can hold it inline, next to the key, instead of a pointer to a
// separate allocation.
//
// The instant of the latest write is kept in milliseconds modulo 2³² and
// read back relative to the decision's instant, which is unambiguous while
// the two are less than 2³¹ ms (24.8 days) apart. A state left untouched
// longer than that must be dropped by its holder rather than consulted: the
// memory store drops it once it is idle, at most twice the longest window
// after the latest admission. A clock step back of more than 24.8 days reads
// as a step forward and forgets the counts; a [Counter] would keep them.
//
// The zero value is an empty counter. A SmallCounter is not safe for
// concurrent use.
type SmallCounter struct {
	last uint32 // instant of the latest write, ms mod 2^32
	// prev and curr of window 0, then of window 1. The top bit of n[0] is
	// the limited flag, the top bit of n[1] says two windows are stored.
	n [4]uint16
}

const (
	// SmallCounterMaxLimit is the largest window limit a [SmallCounter]
	// holds: counts are 15 bits.
	SmallCounterMaxLimit = 1<<15 - 1
	// SmallCounterMaxLength is the longest window a [SmallCounter] holds,
	// far enough below 12 days that twice the window, plus slack, stays
	// within the 24.8 days its clock arithmetic can tell apart.
	SmallCounterMaxLength = 7 * 24 * time.Hour

	smallFlag  = 1 << 15
	smallCount = smallFlag - 1
)

// SmallCounterFits reports whether a [SmallCounter] can hold the state of p:
// at most two windows, each no longer than [SmallCounterMaxLength] and
// limited to at most [SmallCounterMaxLimit].
func SmallCounterFits(p *Policy) bool {
	if len(p.Windows) == 0 || len(p.Windows) > 2 {
		return false
	}
	for _, w := range p.Windows {
		if w.Limit > SmallCounterMaxLimit || w.Length > SmallCounterMaxLength {
			return false
		}
	}
	return true
}

// TakeAt decides whether a request of cost n at now is admitted by every
// window of p and, if so, counts it in all of them, as [Counter.TakeAt]
// does. p must be valid and fit ([SmallCounterFits]); n must be at least 1.
func (c *SmallCounter) TakeAt(now time.Time, p *Policy, n int) Decision {
	return c.decide(now.UnixMilli(), p, n, true)
}

// PeekAt returns what a request of cost 1 at now would be told, without
// counting it.
func (c *SmallCounter) PeekAt(now time.Time, p *Policy) Decision {
	return c.decide(now.UnixMilli(), p, 1, false)
}

// Limited reports whether the latest TakeAt refused its request or left a
// window with no room. It says nothing about time since: a holder that
// needs to know whether the key is limited now also checks that the state
// is not idle.
func (c *SmallCounter) Limited() bool { return c.n[0]&smallFlag != 0 }

// Reset forgets every count.
func (c *SmallCounter) Reset() { *c = SmallCounter{} }

func (c *SmallCounter) decide(t int64, p *Policy, cost int, record bool) Decision {
	// The state as a Counter's slots; a state kept for another number of
	// windows starts over, as if empty (zero slots), as a Counter's does.
	var cur [MaxWindows]slot
	if two := c.n[1]&smallFlag != 0; two == (len(p.Windows) == 2) {
		last := t - int64(int32(uint32(t)-c.last))
		for i := range p.Windows {
			cur[i] = slot{
				epoch: last / ms(p.Windows[i].Length),
				prev:  uint32(c.n[2*i] & smallCount),
				curr:  uint32(c.n[2*i+1] & smallCount),
			}
		}
	}
	d, rolled := decideSlots(t, p, cost, record, &cur)
	if !record {
		return d
	}
	var n [4]uint16
	limited := !d.Allowed
	for i := range d.N {
		// Counts never exceed the limit: an admission needs curr+cost <= limit.
		n[2*i] = uint16(min(rolled[i].prev, smallCount))
		n[2*i+1] = uint16(min(rolled[i].curr, smallCount))
		limited = limited || d.Windows[i].Remaining == 0
	}
	if limited {
		n[0] |= smallFlag
	}
	if d.N == 2 {
		n[1] |= smallFlag
	}
	if c.n != n || c.last != uint32(t) {
		c.last, c.n = uint32(t), n
	}
	return d
}
