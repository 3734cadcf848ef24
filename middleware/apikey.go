package middleware

import "net/http"

// maxKeyLen is the longest API key, in bytes, that apiKey returns. Longer
// values are not keys: no issuer needs more, and a bound keeps hostile
// values from costing hashing time.
const maxKeyLen = 256

// apiKey returns the API key a request presents, and false when it presents
// none that we can use; the caller then limits by client address.
//
// A key is read from two headers:
//
//   - X-API-Key: exactly one header line whose whole value is the key.
//   - Authorization: exactly one header line "Bearer" 1*SP key (RFC 6750
//     section 2.1). The scheme is matched without regard to case (RFC 9110
//     section 11.1), so "bearer K" is accepted, and so is more than one
//     space, as the grammar allows. Other schemes (Basic, Digest) are not
//     ours and are ignored as if the header were absent.
//
// A key must match RFC 6750's b64token: 1*( ALPHA / DIGIT / "-" / "." / "_"
// / "~" / "+" / "/" ) *"=", at most maxKeyLen bytes, and nothing else on
// the line. Therefore "Bearer K,junk", "Bearer" alone, "xBearer K", keys
// with spaces, control bytes, braces, percent signs or non-ASCII bytes are
// not keys. The same grammar applies to both headers, so a key works in
// either and lands in one bucket.
//
// A header present more than once, or present with an unusable value,
// spoils the request: it yields no key rather than falling through to the
// other header. When both headers carry a usable key, they must be equal;
// if they differ there is no key, because the application may authenticate
// one while we would count the other, letting a client charge its requests
// to a key that is not its own.
//
// apiKey does not allocate: the key is a substring of a header value.
func apiKey(r *http.Request) (string, bool) {
	xk, xs := keyFromXAPIKey(r.Header["X-Api-Key"])
	bk, bs := keyFromAuthorization(r.Header["Authorization"])
	switch {
	case xs == keyAbsent && bs == keyAbsent:
		return "", false
	case xs == keyAbsent:
		return bk, bs == keyValid
	case bs == keyAbsent:
		return xk, xs == keyValid
	case xs == keyValid && bs == keyValid && xk == bk:
		return xk, true
	}
	return "", false
}

// keyState is what one header says about the key.
type keyState uint8

const (
	keyAbsent  keyState = iota // the header says nothing about a key
	keyInvalid                 // the header tries to present a key and fails
	keyValid
)

func keyFromXAPIKey(lines []string) (string, keyState) {
	switch {
	case len(lines) == 0:
		return "", keyAbsent
	case len(lines) == 1 && isKey(lines[0]):
		return lines[0], keyValid
	}
	return "", keyInvalid
}

func keyFromAuthorization(lines []string) (string, keyState) {
	if len(lines) == 0 {
		return "", keyAbsent
	}
	if len(lines) > 1 {
		// Two credentials: we cannot know which one the application
		// reads, so we use neither.
		return "", keyInvalid
	}
	v := lines[0]
	const scheme = "bearer"
	if len(v) < len(scheme) || !asciiEqualFold(v[:len(scheme)], scheme) {
		return "", keyAbsent
	}
	rest := v[len(scheme):]
	if len(rest) > 0 && rest[0] != ' ' {
		// "Bearerx ...": a different scheme, not ours.
		return "", keyAbsent
	}
	i := 0
	for i < len(rest) && rest[i] == ' ' {
		i++
	}
	if i == 0 || !isKey(rest[i:]) {
		return "", keyInvalid
	}
	return rest[i:], keyValid
}

// isKey reports whether s is a b64token of at most maxKeyLen bytes.
func isKey(s string) bool {
	if len(s) == 0 || len(s) > maxKeyLen {
		return false
	}
	i := 0
	for i < len(s) && isKeyChar(s[i]) {
		i++
	}
	if i == 0 {
		return false
	}
	for i < len(s) && s[i] == '=' {
		i++
	}
	return i == len(s)
}

func isKeyChar(b byte) bool {
	switch {
	case 'a' <= b && b <= 'z', 'A' <= b && b <= 'Z', '0' <= b && b <= '9':
		return true
	}
	switch b {
	case '-', '.', '_', '~', '+', '/':
		return true
	}
	return false
}
