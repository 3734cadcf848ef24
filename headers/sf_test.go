package headers

import (
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// This file is a small Structured Fields parser (RFC 9651 section 4.2),
// written from the RFC's parsing algorithms and independent of the encoder
// in ietf.go, so that tests read the IETF fields the way a client would.
// It handles Lists of Items with Parameters; Inner Lists, Dates and Display
// Strings are rejected, since the draft's fields never contain them.

// sfToken is a Token bare item, kept apart from Strings.
type sfToken string

// sfParam is one parameter; order is kept, as the RFC's maps are ordered.
type sfParam struct {
	key   string
	value any // int64, float64, string, sfToken, []byte or bool
}

// sfItem is an Item: a bare item and its parameters.
type sfItem struct {
	value  any
	params []sfParam
}

// param returns the value of key, and whether it is present.
func (it sfItem) param(key string) (any, bool) {
	for _, p := range it.params {
		if p.key == key {
			return p.value, true
		}
	}
	return nil, false
}

// keys returns the parameter keys in order.
func (it sfItem) keys() []string {
	var ks []string
	for _, p := range it.params {
		ks = append(ks, p.key)
	}
	return ks
}

type sfParser struct {
	s string
	i int
}

var errSF = errors.New("sf: parse error")

// parseSFList parses a field value as a List, after combining field lines
// with ", " as HTTP does.
func parseSFList(lines []string) ([]sfItem, error) {
	p := &sfParser{s: strings.Trim(strings.Join(lines, ", "), " ")}
	var items []sfItem
	for p.i < len(p.s) {
		it, err := p.item()
		if err != nil {
			return nil, err
		}
		items = append(items, it)
		p.ows()
		if p.i == len(p.s) {
			return items, nil
		}
		if p.s[p.i] != ',' {
			return nil, p.fail("want ','")
		}
		p.i++
		p.ows()
		if p.i == len(p.s) {
			return nil, p.fail("trailing comma")
		}
	}
	return items, nil
}

func (p *sfParser) fail(what string) error {
	return fmt.Errorf("%w at %d in %q: %s", errSF, p.i, p.s, what)
}

func (p *sfParser) ows() {
	for p.i < len(p.s) && (p.s[p.i] == ' ' || p.s[p.i] == '\t') {
		p.i++
	}
}

func (p *sfParser) item() (sfItem, error) {
	v, err := p.bare()
	if err != nil {
		return sfItem{}, err
	}
	it := sfItem{value: v}
	for p.i < len(p.s) && p.s[p.i] == ';' {
		p.i++
		for p.i < len(p.s) && p.s[p.i] == ' ' {
			p.i++
		}
		k, err := p.key()
		if err != nil {
			return sfItem{}, err
		}
		var val any = true
		if p.i < len(p.s) && p.s[p.i] == '=' {
			p.i++
			if val, err = p.bare(); err != nil {
				return sfItem{}, err
			}
		}
		replaced := false
		for j := range it.params {
			if it.params[j].key == k {
				it.params[j].value, replaced = val, true
			}
		}
		if !replaced {
			it.params = append(it.params, sfParam{k, val})
		}
	}
	return it, nil
}

func (p *sfParser) key() (string, error) {
	start := p.i
	if p.i == len(p.s) || !(isLcalpha(p.s[p.i]) || p.s[p.i] == '*') {
		return "", p.fail("key must start with lcalpha or '*'")
	}
	for p.i < len(p.s) {
		c := p.s[p.i]
		if !(isLcalpha(c) || isDigit(c) || c == '_' || c == '-' || c == '.' || c == '*') {
			break
		}
		p.i++
	}
	return p.s[start:p.i], nil
}

func (p *sfParser) bare() (any, error) {
	if p.i == len(p.s) {
		return nil, p.fail("empty bare item")
	}
	switch c := p.s[p.i]; {
	case c == '-' || isDigit(c):
		return p.number()
	case c == '"':
		return p.str()
	case c == ':':
		return p.binary()
	case c == '?':
		return p.boolean()
	case isAlpha(c) || c == '*':
		return p.token(), nil
	}
	return nil, p.fail("unknown bare item")
}

func (p *sfParser) number() (any, error) {
	start := p.i
	if p.s[p.i] == '-' {
		p.i++
	}
	digits, dot := 0, -1
	for p.i < len(p.s) {
		c := p.s[p.i]
		if isDigit(c) {
			digits++
			p.i++
		} else if c == '.' && dot < 0 {
			if digits > 12 {
				return nil, p.fail("decimal too long")
			}
			dot = digits
			p.i++
		} else {
			break
		}
	}
	num := p.s[start:p.i]
	if digits == 0 {
		return nil, p.fail("number without digits")
	}
	if dot < 0 {
		if digits > 15 {
			return nil, p.fail("integer too long")
		}
		return strconv.ParseInt(num, 10, 64)
	}
	if frac := digits - dot; frac < 1 || frac > 3 || num[len(num)-1] == '.' {
		return nil, p.fail("bad decimal fraction")
	}
	return strconv.ParseFloat(num, 64)
}

func (p *sfParser) str() (any, error) {
	p.i++ // opening quote
	var b strings.Builder
	for p.i < len(p.s) {
		c := p.s[p.i]
		p.i++
		switch {
		case c == '\\':
			if p.i == len(p.s) || (p.s[p.i] != '"' && p.s[p.i] != '\\') {
				return nil, p.fail("bad escape")
			}
			b.WriteByte(p.s[p.i])
			p.i++
		case c == '"':
			return b.String(), nil
		case c < 0x20 || c > 0x7e:
			return nil, p.fail("byte outside printable ASCII in string")
		default:
			b.WriteByte(c)
		}
	}
	return nil, p.fail("unterminated string")
}

func (p *sfParser) binary() (any, error) {
	p.i++ // opening colon
	end := strings.IndexByte(p.s[p.i:], ':')
	if end < 0 {
		return nil, p.fail("unterminated byte sequence")
	}
	enc := p.s[p.i : p.i+end]
	for j := 0; j < len(enc); j++ {
		if c := enc[j]; !(isAlpha(c) || isDigit(c) || c == '+' || c == '/' || c == '=') {
			return nil, p.fail("byte outside base64 alphabet")
		}
	}
	p.i += end + 1
	b, err := base64.StdEncoding.DecodeString(enc)
	if err != nil {
		return nil, p.fail(err.Error())
	}
	if b == nil {
		b = []byte{}
	}
	return b, nil
}

func (p *sfParser) boolean() (any, error) {
	p.i++
	if p.i < len(p.s) && (p.s[p.i] == '0' || p.s[p.i] == '1') {
		p.i++
		return p.s[p.i-1] == '1', nil
	}
	return nil, p.fail("bad boolean")
}

func (p *sfParser) token() sfToken {
	start := p.i
	p.i++
	for p.i < len(p.s) {
		c := p.s[p.i]
		// tchar, ':' and '/'
		if !(isAlpha(c) || isDigit(c) || strings.IndexByte("!#$%&'*+-.^_`|~:/", c) >= 0) {
			break
		}
		p.i++
	}
	return sfToken(p.s[start:p.i])
}

func isLcalpha(c byte) bool { return 'a' <= c && c <= 'z' }
func isAlpha(c byte) bool   { return isLcalpha(c) || ('A' <= c && c <= 'Z') }
func isDigit(c byte) bool   { return '0' <= c && c <= '9' }
