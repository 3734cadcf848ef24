package window

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"
)

// policyJSON is the file form of a Policy.
type policyJSON struct {
	Algorithm string       `json:"algorithm,omitempty"`
	Windows   []windowJSON `json:"windows"`
}

type windowJSON struct {
	Name   string `json:"name,omitempty"`
	Length string `json:"length"`
	Limit  int64  `json:"limit"`
}

// ParsePolicy reads a policy from JSON, as it would come from a
// configuration file:
//
//	{"algorithm": "exact", "windows": [
//	    {"name": "minute", "length": "1m", "limit": 60},
//	    {"name": "second", "length": "1s", "limit": 2}]}
//
// Lengths are Go duration strings ("1m", "1.5s", "24h"); "algorithm" is
// "exact" (the default when omitted) or "counter"; "name" may be omitted.
// Unknown fields are errors, and the result is validated with
// [Policy.Validate], so a nil error means the policy can be enforced.
func ParsePolicy(data []byte) (Policy, error) {
	var pj policyJSON
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&pj); err != nil {
		return Policy{}, fmt.Errorf("window: parse policy: %w", err)
	}
	// Anything but white space after the object is an error; More alone
	// would let a stray '}' or ']' through.
	if _, err := dec.Token(); err != io.EOF {
		return Policy{}, fmt.Errorf("window: parse policy: data after the policy object: %w", ErrInvalidPolicy)
	}
	var p Policy
	switch pj.Algorithm {
	case "", "exact":
		p.Algorithm = SlidingLog
	case "counter":
		p.Algorithm = SlidingCounter
	default:
		return Policy{}, fmt.Errorf("window: parse policy: algorithm %q, want exact or counter: %w", pj.Algorithm, ErrInvalidPolicy)
	}
	if len(pj.Windows) > MaxWindows {
		return Policy{}, fmt.Errorf("window: parse policy: %d windows, at most %d: %w", len(pj.Windows), MaxWindows, ErrInvalidPolicy)
	}
	for i, wj := range pj.Windows {
		length, err := time.ParseDuration(wj.Length)
		if err != nil {
			return Policy{}, fmt.Errorf("window: parse policy: window %d: length: %w", i, err)
		}
		if wj.Limit < 1 || wj.Limit > MaxLimit {
			return Policy{}, fmt.Errorf("window: parse policy: window %d: limit %d outside 1..%d: %w", i, wj.Limit, MaxLimit, ErrInvalidPolicy)
		}
		p.Windows = append(p.Windows, Window{Name: wj.Name, Length: length, Limit: int(wj.Limit)})
	}
	if err := p.Validate(); err != nil {
		return Policy{}, err
	}
	return p, nil
}

// UnmarshalJSON reads p as [ParsePolicy] does, validated, so a policy
// inside a larger configuration struct round-trips through encoding/json.
// JSON null leaves p unchanged.
func (p *Policy) UnmarshalJSON(data []byte) error {
	if string(bytes.TrimSpace(data)) == "null" {
		return nil
	}
	q, err := ParsePolicy(data)
	if err != nil {
		return err
	}
	*p = q
	return nil
}

// MarshalJSON writes p in the form [ParsePolicy] reads.
func (p Policy) MarshalJSON() ([]byte, error) {
	pj := policyJSON{Algorithm: p.Algorithm.String(), Windows: make([]windowJSON, len(p.Windows))}
	for i, w := range p.Windows {
		pj.Windows[i] = windowJSON{Name: w.Name, Length: w.Length.String(), Limit: int64(w.Limit)}
	}
	return json.Marshal(pj)
}

// String describes p for logs: "60/minute + 2/second (exact)".
func (p Policy) String() string {
	var b strings.Builder
	for i, w := range p.Windows {
		if i > 0 {
			b.WriteString(" + ")
		}
		b.WriteString(strconv.Itoa(w.Limit))
		b.WriteByte('/')
		b.WriteString(w.Label())
	}
	b.WriteString(" (")
	b.WriteString(p.Algorithm.String())
	b.WriteByte(')')
	return b.String()
}
