package headers

import (
	"strconv"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/ratekit/ratekit/window"
)

// Header values shared between responses.
//
// A style runs on every response, so the values it writes most (limits,
// remaining counts and waits below [sharedInts], the labels of the usual
// windows, recent Unix timestamps) are built once and the same []string is
// stored in every response's header map: no formatting, no allocation, and
// no garbage for the collector. Every shared slice has len == cap == 1, so
// http.Header.Add (or any append) on such a field copies it before writing;
// Set, Del and assigning a new slice are equally safe. Only writing into the
// slice in place (h[k][0] = v) would change it for every later response, and
// nothing in net/http does that. gin shares its Content-Type values the same
// way. docs/headers.md tells users.

// sharedInts is the number of integers, from 0, whose decimal forms are
// shared. Limits, remaining counts and waits in seconds of ordinary
// policies are all below it (a one-day window's reset is not: 86400 is
// formatted per call).
const sharedInts = 1024

// intVals[n][:] is the shared value of the decimal form of n. Built at
// initialisation, never written afterwards.
var intVals = func() *[sharedInts][1]string {
	var t [sharedInts][1]string
	var b []byte
	var ends [sharedInts]int
	for n := range sharedInts {
		b = strconv.AppendInt(b, int64(n), 10)
		ends[n] = len(b)
	}
	digits := string(b) // one string backs every value
	start := 0
	for n := range sharedInts {
		t[n][0] = digits[start:ends[n]]
		start = ends[n]
	}
	return &t
}()

// intValue returns the shared value of n, or nil when n is not shared.
func intValue(n int64) []string {
	if uint64(n) < sharedInts {
		return intVals[n][:]
	}
	return nil
}

// intValues sets out[i] to a value holding the decimal form of vals[i]:
// the shared one when there is one, otherwise one formatted for this call
// by formatMissing. Bit i of limits says vals[i] is a limit, a constant of
// the policy: a limit too large for the shared table is shared through
// largeLimits instead. So a call allocates nothing when every value is
// shared, and otherwise once, plus once per limit not in the cache yet (or
// pushed out of its slot by another). len(out) must equal len(vals), at most
// maxInts.
func intValues(out [][]string, vals []int64, limits uint) {
	missing := 0
	for i, v := range vals {
		if out[i] = intValue(v); out[i] == nil {
			if limits&(1<<i) != 0 {
				out[i] = limitValue(v)
			} else {
				missing++
			}
		}
	}
	if missing > 0 {
		// Apart, so that the common call does not reserve its frame.
		formatMissing(out, vals, missing)
	}
}

// A call's unshared values and the digits they point into, in one
// allocation: fewValues when there are at most two (the remaining counts of
// a policy whose limits are large), else manyValues.
type (
	fewValues struct {
		s [2]string
		b [2 * 20]byte // 20 bytes hold any int64
	}
	manyValues struct {
		s [maxInts]string
		b [maxInts * 20]byte
	}
)

// maxInts is the most values one intValues call sets.
const maxInts = 8

// formatMissing fills the n entries of out that intValues left nil.
func formatMissing(out [][]string, vals []int64, n int) {
	var strs []string
	var digits []byte // room for every value, so appends stay in place
	if n <= 2 {
		f := new(fewValues)
		strs, digits = f.s[:], f.b[:0]
	} else {
		f := new(manyValues)
		strs, digits = f.s[:], f.b[:0]
	}
	j := 0
	for i, v := range vals {
		if out[i] != nil {
			continue
		}
		start := len(digits)
		digits = strconv.AppendInt(digits, v, 10)
		// The digits are never written again: the string may point into them.
		strs[j] = unsafe.String(&digits[start], len(digits)-start)
		out[i] = strs[j : j+1 : j+1]
		j++
	}
}

// The labels of the windows that have a name of their own in
// [window.Window.Label], shared.
var (
	labelSecond = [1]string{"second"}
	labelMinute = [1]string{"minute"}
	labelHour   = [1]string{"hour"}
	labelDay    = [1]string{"day"}
)

// labelValue returns a value holding w's label made header-safe (see
// headerSafe): a shared one for the usual labels and, for other names,
// one cached by labelCache.
func labelValue(w *window.Window) []string {
	name := w.Name
	if name == "" {
		switch w.Length {
		case time.Second:
			return labelSecond[:]
		case time.Minute:
			return labelMinute[:]
		case time.Hour:
			return labelHour[:]
		case 24 * time.Hour:
			return labelDay[:]
		}
	}
	switch name {
	case "second":
		return labelSecond[:]
	case "minute":
		return labelMinute[:]
	case "hour":
		return labelHour[:]
	case "day":
		return labelDay[:]
	}
	return labels.value(w)
}

// maxLabels bounds labelCache. Labels come from configuration, so a
// process has few; past the bound, values are built per call.
const maxLabels = 256

// labelKey identifies a label: the window's name, or its length when it
// has none.
type labelKey struct {
	name   string
	length time.Duration
}

// labelCache shares the values of custom window labels. Readers load an
// immutable map; a miss copies it with the new entry (copy on write), which
// happens at most maxLabels times in a process.
type labelCache struct {
	mu sync.Mutex
	m  atomic.Pointer[map[labelKey][]string]
}

var labels labelCache

func (c *labelCache) value(w *window.Window) []string {
	k := labelKey{name: w.Name}
	if k.name == "" {
		k.length = w.Length
	}
	if m := c.m.Load(); m != nil {
		if v, ok := (*m)[k]; ok {
			return v
		}
	}
	v := []string{headerSafe(w.Label())}
	c.mu.Lock()
	defer c.mu.Unlock()
	old := c.m.Load()
	if old == nil {
		m := map[labelKey][]string{k: v}
		c.m.Store(&m)
		return v
	}
	if cached, ok := (*old)[k]; ok {
		return cached
	}
	if len(*old) >= maxLabels {
		return v
	}
	m := make(map[labelKey][]string, len(*old)+1)
	for ok, ov := range *old {
		m[ok] = ov
	}
	m[k] = v
	c.m.Store(&m)
	return v
}

// intCache shares the values of integers that recur without being small:
// recent Unix timestamps and large limits. Each slot holds the last integer
// that mapped to it; a miss formats it and replaces the slot's. Readers and
// writers meet only through the atomic slot, so a hit costs one load.
type intCache []atomic.Pointer[cachedInt]

// cachedInt is one integer in an intCache, its value and the digits the
// value points into: a miss allocates once.
type cachedInt struct {
	n      int64
	v      [1]string
	digits [20]byte // any int64
}

// value returns the value of n, which maps to slot i (modulo the size, a
// power of two).
func (c intCache) value(n int64, i uint64) []string {
	slot := &c[i&uint64(len(c)-1)]
	if v := slot.Load(); v != nil && v.n == n {
		return v.v[:]
	}
	v := &cachedInt{n: n}
	d := strconv.AppendInt(v.digits[:0], n, 10) // fits: no new array
	v.v[0] = unsafe.String(&d[0], len(d))
	slot.Store(v)
	return v.v[:]
}

// stamps shares recent Unix timestamps (seconds), so that every response
// sending the same second sends one string. Timestamps sent at one instant
// spread over the longest window's reset; 128 slots, taken by the second
// modulo 128, cover two minutes without two of them sharing a slot.
var stamps = make(intCache, 128)

// stampValue returns the value of the Unix timestamp sec.
func stampValue(sec int64) []string { return stamps.value(sec, uint64(sec)) }

// largeLimits shares limits at or above sharedInts. A process has few distinct
// limits (they come from configuration), so each slot of the 256 settles on
// one; a multiplicative hash spreads round numbers over them.
var largeLimits = make(intCache, 256)

// limitSlot is the slot of largeLimits that n maps to.
func limitSlot(n int64) uint64 { return uint64(n) * 0x9e3779b97f4a7c15 >> 56 }

// limitValue returns the value of the limit n.
func limitValue(n int64) []string { return largeLimits.value(n, limitSlot(n)) }
