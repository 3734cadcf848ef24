package client

import "strconv"

// A small parser for the parts of Structured Field Values (RFC 9651) that
// the IETF rate-limit fields use: Lists (draft-ietf-httpapi-ratelimit-headers
// -08 and later) and Dictionaries (draft -07, still written by
// express-rate-limit). It accepts every bare item type of RFC 8941 plus
// Dates; Display Strings, which no rate-limit draft uses, fail the field.
// As RFC 9651 asks, any syntax error fails the whole field: the caller then
// ignores it.

// sfKind is the type of a bare item.
type sfKind uint8

const (
	sfInteger sfKind = iota + 1
	sfDecimal
	sfString
	sfToken
	sfBytes
	sfBoolean
	sfDate
)

// sfBare is a bare item. Integers, Booleans (0 or 1) and Dates are in i;
// Decimals in i as thousandths; Strings and Tokens in s, unescaped; Byte
// Sequences in s as their base64 text.
type sfBare struct {
	kind sfKind
	i    int64
	s    string
}

// sfParam is one parameter, key and value (Boolean true when the field
// gives only the key).
type sfParam struct {
	key string
	val sfBare
}

// sfMember is one member of a List or a Dictionary: an Item, or an Inner
// List (inner set, bare unset: the rate-limit drafts have no use for them).
// key is set for Dictionary members only.
type sfMember struct {
	key    string
	bare   sfBare
	inner  bool
	params []sfParam
}

// param returns the value of the parameter named key.
func (m *sfMember) param(key string) (sfBare, bool) {
	for _, p := range m.params {
		if p.key == key {
			return p.val, true
		}
	}
	return sfBare{}, false
}

// sfParser holds the input and the offset of the next byte.
type sfParser struct {
	s string
	i int
}

// parseSFList parses s as a List. ok is false on any syntax error.
func parseSFList(s string) (members []sfMember, ok bool) {
	p := sfParser{s: s}
	p.skipSP()
	for !p.done() {
		m, ok := p.member()
		if !ok {
			return nil, false
		}
		members = append(members, m)
		if !p.next() {
			return nil, false
		}
	}
	return members, p.trailingOK()
}

// parseSFDict parses s as a Dictionary. A key given twice keeps its last
// value, as RFC 9651 says. ok is false on any syntax error.
func parseSFDict(s string) (members []sfMember, ok bool) {
	p := sfParser{s: s}
	p.skipSP()
	for !p.done() {
		key, ok := p.key()
		if !ok {
			return nil, false
		}
		var m sfMember
		if p.peek() == '=' {
			p.i++
			if m, ok = p.member(); !ok {
				return nil, false
			}
		} else {
			m.bare = sfBare{kind: sfBoolean, i: 1}
			if m.params, ok = p.params(); !ok {
				return nil, false
			}
		}
		m.key = key
		replaced := false
		for j := range members {
			if members[j].key == key {
				members[j], replaced = m, true
			}
		}
		if !replaced {
			members = append(members, m)
		}
		if !p.next() {
			return nil, false
		}
	}
	return members, p.trailingOK()
}

// next consumes the separator after a member: optional whitespace, then
// either the end of input or a comma followed by another member. It
// reports false for anything else.
func (p *sfParser) next() bool {
	p.skipOWS()
	if p.done() {
		return true
	}
	if p.s[p.i] != ',' {
		return false
	}
	p.i++
	p.skipOWS()
	// A trailing comma is an error: a member must follow.
	return !p.done()
}

// trailingOK is the end-of-input check after the last member; next has
// already rejected a trailing comma.
func (p *sfParser) trailingOK() bool { return p.done() }

func (p *sfParser) done() bool { return p.i >= len(p.s) }

func (p *sfParser) peek() byte {
	if p.done() {
		return 0
	}
	return p.s[p.i]
}

func (p *sfParser) skipSP() {
	for !p.done() && p.s[p.i] == ' ' {
		p.i++
	}
}

func (p *sfParser) skipOWS() {
	for !p.done() && (p.s[p.i] == ' ' || p.s[p.i] == '\t') {
		p.i++
	}
}

// member parses an Item or an Inner List, with parameters.
func (p *sfParser) member() (sfMember, bool) {
	var m sfMember
	var ok bool
	if p.peek() == '(' {
		if !p.innerList() {
			return m, false
		}
		m.inner = true
	} else if m.bare, ok = p.bare(); !ok {
		return m, false
	}
	m.params, ok = p.params()
	return m, ok
}

// innerList parses and discards an Inner List's items; its parameters are
// left for member.
func (p *sfParser) innerList() bool {
	p.i++ // '('
	for !p.done() {
		p.skipSP()
		if p.peek() == ')' {
			p.i++
			return true
		}
		if _, ok := p.bare(); !ok {
			return false
		}
		if _, ok := p.params(); !ok {
			return false
		}
		if c := p.peek(); c != ' ' && c != ')' {
			return false
		}
	}
	return false
}

// params parses zero or more ";key[=value]".
func (p *sfParser) params() ([]sfParam, bool) {
	var ps []sfParam
	for p.peek() == ';' {
		p.i++
		p.skipSP()
		key, ok := p.key()
		if !ok {
			return nil, false
		}
		val := sfBare{kind: sfBoolean, i: 1}
		if p.peek() == '=' {
			p.i++
			if val, ok = p.bare(); !ok {
				return nil, false
			}
		}
		replaced := false
		for j := range ps {
			if ps[j].key == key {
				ps[j].val, replaced = val, true
			}
		}
		if !replaced {
			ps = append(ps, sfParam{key: key, val: val})
		}
	}
	return ps, true
}

// key parses a key: lcalpha or '*', then lcalpha, DIGIT, '_', '-', '.', '*'.
func (p *sfParser) key() (string, bool) {
	start := p.i
	if c := p.peek(); !(c >= 'a' && c <= 'z' || c == '*') {
		return "", false
	}
	p.i++
	for !p.done() {
		c := p.s[p.i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '_' || c == '-' || c == '.' || c == '*') {
			break
		}
		p.i++
	}
	return p.s[start:p.i], true
}

// bare parses a bare item.
func (p *sfParser) bare() (sfBare, bool) {
	switch c := p.peek(); {
	case c == '-' || c >= '0' && c <= '9':
		return p.number()
	case c == '"':
		return p.str()
	case c == ':':
		return p.bytes()
	case c == '?':
		return p.boolean()
	case c == '@':
		p.i++
		b, ok := p.number()
		if !ok || b.kind != sfInteger {
			return sfBare{}, false
		}
		b.kind = sfDate
		return b, true
	case c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c == '*':
		return p.token()
	}
	return sfBare{}, false
}

// number parses an Integer (at most 15 digits) or a Decimal (at most 12
// integer and 3 fractional digits).
func (p *sfParser) number() (sfBare, bool) {
	neg := false
	if p.peek() == '-' {
		neg = true
		p.i++
	}
	start := p.i
	for !p.done() && p.s[p.i] >= '0' && p.s[p.i] <= '9' {
		p.i++
	}
	intDigits := p.i - start
	if intDigits == 0 {
		return sfBare{}, false
	}
	if p.peek() != '.' {
		if intDigits > 15 {
			return sfBare{}, false
		}
		n, _ := strconv.ParseInt(p.s[start:p.i], 10, 64) // at most 15 digits: cannot fail
		if neg {
			n = -n
		}
		return sfBare{kind: sfInteger, i: n}, true
	}
	if intDigits > 12 {
		return sfBare{}, false
	}
	whole, _ := strconv.ParseInt(p.s[start:p.i], 10, 64)
	p.i++ // '.'
	fstart := p.i
	for !p.done() && p.s[p.i] >= '0' && p.s[p.i] <= '9' {
		p.i++
	}
	frac := p.s[fstart:p.i]
	if len(frac) == 0 || len(frac) > 3 {
		return sfBare{}, false
	}
	f, _ := strconv.ParseInt(frac, 10, 64)
	for range 3 - len(frac) {
		f *= 10
	}
	n := whole*1000 + f
	if neg {
		n = -n
	}
	return sfBare{kind: sfDecimal, i: n}, true
}

// str parses a String: printable ASCII between double quotes, with \" and
// \\ the only escapes.
func (p *sfParser) str() (sfBare, bool) {
	p.i++ // '"'
	var buf []byte
	start := p.i
	for !p.done() {
		c := p.s[p.i]
		switch {
		case c == '\\':
			if p.i+1 >= len(p.s) || (p.s[p.i+1] != '"' && p.s[p.i+1] != '\\') {
				return sfBare{}, false
			}
			if buf == nil {
				buf = append([]byte(nil), p.s[start:p.i]...)
			}
			buf = append(buf, p.s[p.i+1])
			p.i += 2
		case c == '"':
			s := p.s[start:p.i]
			if buf != nil {
				s = string(buf)
			}
			p.i++
			return sfBare{kind: sfString, s: s}, true
		case c < 0x20 || c > 0x7e:
			return sfBare{}, false
		default:
			if buf != nil {
				buf = append(buf, c)
			}
			p.i++
		}
	}
	return sfBare{}, false // unterminated
}

// token parses a Token: ALPHA or '*', then tchar, ':' and '/'.
func (p *sfParser) token() (sfBare, bool) {
	start := p.i
	p.i++
	for !p.done() && isTokenChar(p.s[p.i]) {
		p.i++
	}
	return sfBare{kind: sfToken, s: p.s[start:p.i]}, true
}

func isTokenChar(c byte) bool {
	switch {
	case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		return true
	}
	switch c {
	case '!', '#', '$', '%', '&', '\'', '*', '+', '-', '.', '^', '_', '`', '|', '~', ':', '/':
		return true
	}
	return false
}

// bytes parses a Byte Sequence and keeps its base64 text.
func (p *sfParser) bytes() (sfBare, bool) {
	p.i++ // ':'
	start := p.i
	for !p.done() {
		c := p.s[p.i]
		switch {
		case c == ':':
			s := p.s[start:p.i]
			p.i++
			return sfBare{kind: sfBytes, s: s}, true
		case c >= 'A' && c <= 'Z', c >= 'a' && c <= 'z', c >= '0' && c <= '9', c == '+', c == '/', c == '=':
			p.i++
		default:
			return sfBare{}, false
		}
	}
	return sfBare{}, false
}

// boolean parses ?0 or ?1.
func (p *sfParser) boolean() (sfBare, bool) {
	if p.i+1 >= len(p.s) {
		return sfBare{}, false
	}
	var v int64
	switch p.s[p.i+1] {
	case '0':
	case '1':
		v = 1
	default:
		return sfBare{}, false
	}
	p.i += 2
	return sfBare{kind: sfBoolean, i: v}, true
}
