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
// memory store drops it once it is idle, twice the longest window after the
// latest write. A clock step back of more than 24.8 days reads
// as a step forward and forgets the counts; a [Counter] would keep them.
//
// The zero value is an empty counter. A SmallCounter is not safe for
// concurrent use.
type SmallCounter struct {
	last uint32 // instant of the latest write, ms mod 2^32
	// prev and curr of window 0, then of window 1, in the low 14 bits of
	// each; the top 2 bits of the four hold 8 more (see spare): whether two
	// windows are stored, and for how many seconds after the latest write
	// the key stays limited.
	n [4]uint16
}

const (
	// SmallCounterMaxLimit is the largest window limit a [SmallCounter]
	// holds: counts are 14 bits.
	SmallCounterMaxLimit = 1<<14 - 1
	// SmallCounterMaxLength is the longest window a [SmallCounter] holds,
	// far enough below 12 days that twice the window, plus slack, stays
	// within the 24.8 days its clock arithmetic can tell apart.
	SmallCounterMaxLength = 7 * 24 * time.Hour

	smallCount = 1<<14 - 1
	smallTwo   = 1 << 7   // spare bit: two windows stored
	smallFor   = 1<<7 - 1 // spare bits: seconds limited after the write, saturating
)

// spare returns the 8 bits kept in the top 2 bits of each count word.
func (c *SmallCounter) spare() uint8 {
	var b uint8
	for i, w := range c.n {
		b |= uint8(w>>14) << (2 * i)
	}
	return b
}

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

// LimitedAt reports whether a request of cost 1 at now may still be refused
// because of what the latest TakeAt saw: it refused, or left a window with
// no room, and the wait it implied (whole seconds, rounded up) has not
// passed. Waits of 127 s or more are remembered as "until the state is
// idle", which its holder decides. now must be within 24.8 days of the
// latest write.
func (c *SmallCounter) LimitedAt(now time.Time) bool {
	d := int64(c.spare() & smallFor)
	if d == 0 {
		return false
	}
	if d == smallFor {
		return true
	}
	t := now.UnixMilli()
	return t < c.lastAt(t)+d*1000
}

// lastAt returns the instant of the latest write, read relative to t (within
// 24.8 days of it).
func (c *SmallCounter) lastAt(t int64) int64 { return t - int64(int32(uint32(t)-c.last)) }

// Reset forgets every count.
func (c *SmallCounter) Reset() { *c = SmallCounter{} }

// Counted returns the largest cost any window of c holds in its current and
// previous slots together, as [Counter.Counted] does.
func (c *SmallCounter) Counted() int {
	n := 1
	if c.spare()&smallTwo != 0 {
		n = 2
	}
	m := 0
	for i := range n {
		m = max(m, int(c.n[2*i]&smallCount)+int(c.n[2*i+1]&smallCount))
	}
	return m
}

func (c *SmallCounter) decide(t int64, p *Policy, cost int, record bool) Decision {
	// The state as a Counter's slots; a state kept for another number of
	// windows starts over, as if empty (zero slots), as a Counter's does.
	var cur [MaxWindows]slot
	if two := c.spare()&smallTwo != 0; two == (len(p.Windows) == 2) {
		last := c.lastAt(t)
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
	// How long a cost-1 request may be refused now: the refusal's wait, or
	// the longest reset among windows left without room.
	var wait time.Duration
	if !d.Allowed {
		wait = d.RetryAfter
	}
	var n [4]uint16
	for i := range d.N {
		// Counts never exceed the limit: an admission needs curr+cost <= limit.
		n[2*i] = uint16(min(rolled[i].prev, smallCount))
		n[2*i+1] = uint16(min(rolled[i].curr, smallCount))
		if d.Windows[i].Remaining == 0 {
			wait = max(wait, d.Windows[i].Reset)
		}
	}
	spare := uint8(min((wait+time.Second-1)/time.Second, smallFor))
	if d.N == 2 {
		spare |= smallTwo
	}
	for i := range n {
		n[i] |= uint16(spare>>(2*i)&3) << 14
	}
	if c.n != n || c.last != uint32(t) {
		c.last, c.n = uint32(t), n
	}
	return d
}
