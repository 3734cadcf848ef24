// Package model is the brute-force reference for ratekit's exact algorithm:
// a plain list of (instant, cost) per key, scanned in full on every call. It
// is deliberately slow and obviously correct; window.Log and every store are
// compared against it.
//
// Instants are millisecond readings of a clock that truncates, so two
// readings d ms apart may be just over d-1 ms apart in truth. An entry admitted at
// reading e therefore counts in a window of length L at every reading t with
// t-e <= L, and stops counting at t = e+L+1: by then its true age is surely
// more than L, so no interval of L, however finely measured, holds more than
// the limit (see window.Window).
package model

import (
	"time"

	"github.com/ratekit/ratekit/window"
)

type entry struct {
	at   int64 // ms
	cost int
}

// Model is the reference limiter for one policy. The zero value is not
// usable; call New.
type Model struct {
	p    window.Policy
	keys map[string][]entry
}

// New returns an empty model enforcing p.
func New(p window.Policy) *Model {
	return &Model{p: p, keys: make(map[string][]entry)}
}

// Take decides a request of cost n for key at now, recording it if admitted.
// A clock that steps backwards moves every remembered instant back by the
// same amount, so entries keep their ages.
func (m *Model) Take(key string, now time.Time, n int) window.Decision {
	t := now.UnixMilli()
	es := m.keys[key]
	if len(es) > 0 && t < es[len(es)-1].at {
		delta := es[len(es)-1].at - t
		for i := range es {
			es[i].at -= delta
		}
	}
	d := m.decide(es, t, n)
	if d.Allowed {
		m.keys[key] = append(es, entry{at: t, cost: n})
		d = m.describe(m.keys[key], t, d)
	} else {
		d = m.describe(es, t, d)
	}
	return d
}

// Peek reports what a request of cost 1 for key at now would be told.
func (m *Model) Peek(key string, now time.Time) window.Decision {
	t := now.UnixMilli()
	es := m.keys[key]
	if len(es) > 0 && t < es[len(es)-1].at {
		t = es[len(es)-1].at
	}
	d := m.decide(es, t, 1)
	return m.describe(es, t, d)
}

// counts reports whether an entry admitted at reading at still counts at
// reading t in a window of length ms.
func counts(at, t, length int64) bool { return t-at <= length }

// leaves returns the first reading at which an entry admitted at reading at
// no longer counts in a window of length ms.
func leaves(at, length int64) int64 { return at + length + 1 }

func (m *Model) longest() int64 {
	var l int64
	for _, w := range m.p.Windows {
		l = max(l, w.Length.Milliseconds())
	}
	return l
}

// decide fills Allowed, RetryAfter and Limiting from the entries before the
// request.
func (m *Model) decide(es []entry, t int64, cost int) window.Decision {
	d := window.Decision{N: len(m.p.Windows), Allowed: true, Limiting: -1}
	var bestWait int64 = -1
	for i, w := range m.p.Windows {
		length := w.Length.Milliseconds()
		var wait int64
		switch {
		case cost > w.Limit:
			wait = m.longest()
		default:
			used := 0
			var in []entry
			for _, e := range es {
				if counts(e.at, t, length) {
					used += e.cost
					in = append(in, e)
				}
			}
			for _, e := range in {
				if used+cost <= w.Limit {
					break
				}
				used -= e.cost
				wait = leaves(e.at, length) - t
			}
		}
		if wait == 0 {
			continue
		}
		d.Allowed = false
		if wait > bestWait || (wait == bestWait && w.Length > m.p.Windows[d.Limiting].Length) {
			bestWait, d.Limiting = wait, i
		}
	}
	if !d.Allowed {
		d.RetryAfter = time.Duration(bestWait) * time.Millisecond
	}
	return d
}

// describe fills each window's state from the entries after the decision.
func (m *Model) describe(es []entry, t int64, d window.Decision) window.Decision {
	for i, w := range m.p.Windows {
		length := w.Length.Milliseconds()
		used := 0
		oldest, seen := int64(0), false
		for _, e := range es {
			if counts(e.at, t, length) {
				used += e.cost
				if !seen {
					oldest, seen = e.at, true
				}
			}
		}
		s := window.State{Limit: w.Limit, Remaining: max(w.Limit-used, 0)}
		if seen {
			s.Reset = time.Duration(leaves(oldest, length)-t) * time.Millisecond
		}
		d.Windows[i] = s
	}
	if d.Allowed {
		best := 0
		for i := range d.N {
			r, b := d.Windows[i].Remaining, d.Windows[best].Remaining
			if r < b || (r == b && m.p.Windows[i].Length > m.p.Windows[best].Length) {
				best = i
			}
		}
		d.Limiting = best
	}
	return d
}
