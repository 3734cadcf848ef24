package config

import (
	"bytes"
	"cmp"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/netip"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"go.yaml.in/yaml/v3"

	"github.com/ratekit/ratekit/internal/forwarded"
	"github.com/ratekit/ratekit/middleware"
	"github.com/ratekit/ratekit/window"
)

// decoder walks a YAML node tree into a File, collecting every problem
// with its position. It never stops at the first problem: a field that is
// wrong is reported and left at its zero value, and the walk goes on.
type decoder struct {
	file string
	errs []*Error

	// Where things are, for the checks that span fields (crossCheck).
	rules      []ruleAt
	plans      map[string]*yaml.Node
	clients    map[string]*yaml.Node
	policyNode *yaml.Node // the default policy; nil when the file has none
	policyOK   bool
	hashKey    *yaml.Node
	redis      *yaml.Node
}

// ruleAt is where a rule and its fields are.
type ruleAt struct {
	node, name, cost *yaml.Node
	ok               bool // the rule decoded without problems
}

// errorf records a problem at n (nil for the whole file) in the field at
// path.
func (d *decoder) errorf(n *yaml.Node, path, format string, args ...any) {
	e := &Error{File: d.file, Field: path, Err: fmt.Errorf(format, args...)}
	if n != nil {
		e.Line, e.Column = n.Line, n.Column
	}
	d.errs = append(d.errs, e)
}

// read checks data as text and parses it into one YAML document. It
// returns nil, with the problems recorded, when there is nothing to walk.
func (d *decoder) read(data []byte) *yaml.Node {
	if len(data) > MaxSize {
		d.errorf(nil, "", "larger than %d bytes (1 MiB); a configuration file is much smaller", MaxSize)
		return nil
	}
	text := bytes.TrimPrefix(data, []byte("\ufeff"))
	if bad := firstBadByte(text); bad >= 0 {
		line, col := position(text, bad)
		e := &Error{File: d.file, Line: line, Column: col}
		if r, _ := utf8.DecodeRune(text[bad:]); r == utf8.RuneError {
			e.Err = fmt.Errorf("byte 0x%02x is not UTF-8 text; is this a binary file?", text[bad])
		} else {
			e.Err = fmt.Errorf("control character %U; is this a binary file?", r)
		}
		d.errs = append(d.errs, e)
		return nil
	}
	if len(bytes.TrimSpace(text)) == 0 {
		d.errorf(nil, "", "empty file; write {} for a configuration of defaults")
		return nil
	}
	dec := yaml.NewDecoder(bytes.NewReader(text))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if err == io.EOF {
			d.errorf(nil, "", "no configuration, only comments; write {} for a configuration of defaults")
		} else {
			d.errs = append(d.errs, syntaxError(d.file, err))
		}
		return nil
	}
	var next yaml.Node
	switch err := dec.Decode(&next); {
	case err == nil:
		d.errorf(&next, "", "a second YAML document; a configuration is one document")
		return nil
	case err != io.EOF:
		d.errs = append(d.errs, syntaxError(d.file, err))
		return nil
	}
	root := doc.Content[0] // a document that decoded has one node
	d.screen(root)
	return root
}

// firstBadByte returns the offset of the first byte of text that is not
// UTF-8 or is a control character other than tab, line feed and carriage
// return, or -1.
func firstBadByte(text []byte) int {
	for i := 0; i < len(text); {
		r, size := utf8.DecodeRune(text[i:])
		switch {
		case r == utf8.RuneError && size <= 1,
			r < 0x20 && r != '\t' && r != '\n' && r != '\r',
			r == 0x7f, r >= 0x80 && r < 0xa0:
			return i
		}
		i += size
	}
	return -1
}

// position returns the 1-based line and column (in characters) of offset
// off in text.
func position(text []byte, off int) (line, col int) {
	before := text[:off]
	line = bytes.Count(before, []byte("\n")) + 1
	start := bytes.LastIndexByte(before, '\n') + 1
	return line, utf8.RuneCount(before[start:]) + 1
}

// screen reports, anywhere in the tree, what a configuration never needs
// and an attacker might: anchors and aliases (a few lines of them expand
// to gigabytes in a naive decoder), explicit tags, and nesting deeper than
// MaxDepth (reported once; nothing below it is looked at). The walk is
// iterative, so the tree's depth cannot exhaust the stack.
func (d *decoder) screen(root *yaml.Node) {
	type item struct {
		n     *yaml.Node
		depth int
	}
	stack := []item{{root, 0}}
	deep := false
	for len(stack) > 0 {
		it := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		n := it.n
		switch {
		case n.Kind == yaml.AliasNode:
			d.errorf(n, "", "alias *%s: anchors and aliases are not allowed", n.Value)
			continue
		case n.Anchor != "":
			d.errorf(n, "", "anchor &%s: anchors and aliases are not allowed", n.Anchor)
		}
		if n.Style&yaml.TaggedStyle != 0 {
			d.errorf(n, "", "explicit tag %s is not allowed; quote a value to make it a string", n.Tag)
		}
		if len(n.Content) == 0 {
			continue
		}
		if it.depth >= MaxDepth {
			if !deep {
				d.errorf(n, "", "nested deeper than %d levels", MaxDepth)
				deep = true
			}
			continue
		}
		for i := len(n.Content) - 1; i >= 0; i-- {
			stack = append(stack, item{n.Content[i], it.depth + 1})
		}
	}
}

// fieldSet maps each field a mapping may have to what decodes its value.
type fieldSet map[string]func(v *yaml.Node, path string)

// join returns the path of field key inside path.
func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

// index returns the path of item i of the list at path.
func index(path string, i int) string { return path + "[" + strconv.Itoa(i) + "]" }

// plainName matches keys that need no quoting in a path.
var plainName = regexp.MustCompile(`^[A-Za-z0-9_-]+$`)

// entry returns the path of the entry key of the mapping at path.
func entry(path, key string) string {
	if plainName.MatchString(key) {
		return join(path, key)
	}
	return path + "[" + strconv.Quote(key) + "]"
}

// isNull reports whether n is YAML null: "~", "null", or nothing at all.
func isNull(n *yaml.Node) bool {
	return n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null"
}

// screened reports whether screen has already reported n (an alias, an
// explicit tag), so that it is not reported again as a wrong type.
func screened(n *yaml.Node) bool {
	return n.Kind == yaml.AliasNode || n.Style&yaml.TaggedStyle != 0
}

// what describes n for a message: "the integer 60", "a list".
func what(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.AliasNode:
		return "an alias"
	case yaml.ScalarNode:
		v := n.Value
		if len(v) > 40 {
			v = v[:40] + "…"
		}
		switch n.ShortTag() {
		case "!!str":
			return "the string " + strconv.Quote(v)
		case "!!int":
			return "the integer " + v
		case "!!float":
			return "the number " + v
		case "!!bool":
			return v
		case "!!null":
			return "nothing"
		}
	}
	return "a value"
}

// fields decodes the mapping n: the handler of each field is called in the
// order the file gives them. A field not in fs, a field given twice, a key
// that is not a string, or n not being a mapping are problems. Null (the
// field written with nothing after it) is an empty mapping: fields returns
// false and reports nothing.
func (d *decoder) fields(n *yaml.Node, path string, fs fieldSet) bool {
	if isNull(n) {
		return false
	}
	if n.Kind != yaml.MappingNode {
		if !screened(n) {
			d.errorf(n, path, "want a mapping with the fields %s, got %s", strings.Join(sortedKeys(fs), ", "), what(n))
		}
		return false
	}
	seen := map[string]*yaml.Node{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		key, ok := d.key(k, path)
		if !ok {
			continue
		}
		if prev, dup := seen[key]; dup {
			d.errorf(k, join(path, key), "given twice (first on line %d)", prev.Line)
			continue
		}
		seen[key] = k
		h, known := fs[key]
		if !known {
			d.errorf(k, path, "unknown field %q; %s", key, suggest(key, sortedKeys(fs)))
			continue
		}
		h(v, join(path, key))
	}
	return true
}

// entries decodes the mapping n whose keys are names the file chooses
// (plans, client IDs), calling each for every entry in order. Keys must be
// non-empty strings, each given once.
func (d *decoder) entries(n *yaml.Node, path, desc string, each func(key string, v *yaml.Node, path string)) {
	if isNull(n) {
		return
	}
	if n.Kind != yaml.MappingNode {
		if !screened(n) {
			d.errorf(n, path, "want a mapping of %s, got %s", desc, what(n))
		}
		return
	}
	seen := map[string]*yaml.Node{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		key, ok := d.key(k, path)
		if !ok {
			continue
		}
		if key == "" {
			d.errorf(k, path, "an empty name")
			continue
		}
		if prev, dup := seen[key]; dup {
			d.errorf(k, entry(path, key), "given twice (first on line %d)", prev.Line)
			continue
		}
		seen[key] = k
		each(key, v, entry(path, key))
	}
}

// key returns the text of the mapping key k, which must be a string.
func (d *decoder) key(k *yaml.Node, path string) (string, bool) {
	if k.Kind == yaml.ScalarNode && k.ShortTag() == "!!str" {
		return k.Value, true
	}
	if !screened(k) {
		d.errorf(k, path, "a key must be a string, got %s; quote it", what(k))
	}
	return "", false
}

func sortedKeys(fs fieldSet) []string {
	keys := make([]string, 0, len(fs))
	for k := range fs {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// suggest names the known field closest to key, or lists them all.
func suggest(key string, known []string) string {
	norm := func(s string) string {
		return strings.NewReplacer("_", "", "-", "").Replace(strings.ToLower(s))
	}
	best, bestDist := "", 3
	for _, k := range known {
		if norm(k) == norm(key) {
			return fmt.Sprintf("did you mean %q?", k)
		}
		if dist := editDistance(key, k); dist < bestDist {
			best, bestDist = k, dist
		}
	}
	if best != "" {
		return fmt.Sprintf("did you mean %q?", best)
	}
	return "want one of " + strings.Join(known, ", ")
}

// editDistance is the Levenshtein distance between a and b, in bytes.
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// list returns the items of the list n; null is an empty list.
func (d *decoder) list(n *yaml.Node, path, want string) []*yaml.Node {
	if isNull(n) {
		return nil
	}
	if n.Kind != yaml.SequenceNode {
		if !screened(n) {
			d.errorf(n, path, "want %s, got %s", want, what(n))
		}
		return nil
	}
	return n.Content
}

// nonEmptyList is list for the lists whose empty form would silently mean
// something else (routes: [] is every route): empty is a problem.
func (d *decoder) nonEmptyList(n *yaml.Node, path, want, leaveOut string) []*yaml.Node {
	items := d.list(n, path, want)
	if n.Kind == yaml.SequenceNode && len(items) == 0 || isNull(n) {
		d.errorf(n, path, "an empty list; %s", leaveOut)
	}
	return items
}

// scalarOf returns n's text when it is a scalar with tag (such as
// "!!str"); otherwise it reports that it wanted want.
func (d *decoder) scalarOf(n *yaml.Node, path, tag, want string) (string, bool) {
	if n.Kind == yaml.ScalarNode && n.ShortTag() == tag {
		return n.Value, true
	}
	if !screened(n) {
		d.errorf(n, path, "want %s, got %s", want, what(n))
	}
	return "", false
}

func (d *decoder) str(n *yaml.Node, path string) string {
	s, _ := d.scalarOf(n, path, "!!str", "a string")
	return s
}

var decimal = regexp.MustCompile(`^[-+]?[0-9]+$`)

// integer returns the decimal integer at n.
func (d *decoder) integer(n *yaml.Node, path string) (int, bool) {
	s, ok := d.scalarOf(n, path, "!!int", "a whole number")
	if !ok {
		return 0, false
	}
	if !decimal.MatchString(s) {
		d.errorf(n, path, "want a whole number in decimal, got %s", s)
		return 0, false
	}
	v, err := strconv.ParseInt(s, 10, 64)
	if err != nil || int64(int(v)) != v {
		d.errorf(n, path, "%s is out of range", s)
		return 0, false
	}
	return int(v), true
}

// count returns a whole number that must not be negative.
func (d *decoder) count(n *yaml.Node, path string) int {
	v, ok := d.integer(n, path)
	if ok && v < 0 {
		d.errorf(n, path, "%d is negative", v)
		return 0
	}
	return v
}

// boolean returns true or false.
func (d *decoder) boolean(n *yaml.Node, path string) bool {
	s, _ := d.scalarOf(n, path, "!!bool", "true or false")
	return strings.EqualFold(s, "true")
}

// duration returns a Go duration ("1m", "500ms").
func (d *decoder) duration(n *yaml.Node, path string) (time.Duration, bool) {
	s, ok := d.scalarOf(n, path, "!!str", "a duration such as 1m or 500ms")
	if !ok {
		return 0, false
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		d.errorf(n, path, "want a duration such as 1m or 500ms, got %q", s)
		return 0, false
	}
	return v, true
}

// ttl returns a duration that must not be negative.
func (d *decoder) ttl(n *yaml.Node, path string) time.Duration {
	v, ok := d.duration(n, path)
	if ok && v < 0 {
		d.errorf(n, path, "%v is negative", v)
		return 0
	}
	return v
}

// headerName returns an HTTP header name.
func (d *decoder) headerName(n *yaml.Node, path string) (string, bool) {
	s, ok := d.scalarOf(n, path, "!!str", "a header name")
	if ok && !forwarded.IsToken(s) {
		d.errorf(n, path, "%q is not a header name", s)
		return "", false
	}
	return s, ok
}

// envName matches the names hash_key_env and url_env may give.
var envName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// env reads the environment variable named at n. It returns the name and
// the value; the value is never put in a message.
func (d *decoder) env(n *yaml.Node, path string) (name, value string, ok bool) {
	name, ok = d.scalarOf(n, path, "!!str", "the name of an environment variable")
	if !ok {
		return "", "", false
	}
	if !envName.MatchString(name) {
		d.errorf(n, path, "%q is not the name of an environment variable", name)
		return name, "", false
	}
	value, set := os.LookupEnv(name)
	switch {
	case !set:
		d.errorf(n, path, "environment variable %s is not set", name)
		return name, "", false
	case value == "":
		d.errorf(n, path, "environment variable %s is empty", name)
		return name, "", false
	}
	return name, value, true
}

// prefixes returns a list of networks: prefixes (10.0.0.0/8) or single
// addresses (203.0.113.7, meaning /32 or /128).
func (d *decoder) prefixes(n *yaml.Node, path string) []netip.Prefix {
	var out []netip.Prefix
	for i, item := range d.list(n, path, "a list of networks such as [10.0.0.0/8]") {
		p := index(path, i)
		s, ok := d.scalarOf(item, p, "!!str", "a network such as 10.0.0.0/8 or an address")
		if !ok {
			continue
		}
		if pre, ok := d.prefix(item, p, s); ok {
			out = append(out, pre)
		}
	}
	return out
}

// prefix parses one network, reporting what middleware.New would refuse
// and host bits set beyond the prefix length (10.1.2.3/8, almost always a
// typo for /32 or 10.0.0.0/8).
func (d *decoder) prefix(n *yaml.Node, path, s string) (netip.Prefix, bool) {
	var p netip.Prefix
	if strings.Contains(s, "/") {
		var err error
		if p, err = netip.ParsePrefix(s); err != nil {
			d.errorf(n, path, "%q is not a network prefix such as 10.0.0.0/8", s)
			return p, false
		}
	} else {
		a, err := netip.ParseAddr(s)
		if err != nil || a.Zone() != "" {
			d.errorf(n, path, "%q is not a network prefix such as 10.0.0.0/8 or an address", s)
			return p, false
		}
		p = netip.PrefixFrom(a, a.BitLen())
	}
	switch {
	case p.Addr().Is4In6():
		d.errorf(n, path, "%s is IPv4-mapped; write it as an IPv4 prefix", s)
		return p, false
	case p != p.Masked():
		d.errorf(n, path, "%s has bits set after the first %d; did you mean %s?", s, p.Bits(), p.Masked())
		return p, false
	}
	return p, true
}

// top decodes the whole file.
func (d *decoder) top(n *yaml.Node) *File {
	f := &File{Name: d.file}
	d.plans, d.clients = map[string]*yaml.Node{}, map[string]*yaml.Node{}
	ok := d.fields(n, "", fieldSet{
		"policy": func(v *yaml.Node, p string) {
			d.policyNode = v
			f.Limits.Policy, d.policyOK = d.policy(v, p)
		},
		"rules": func(v *yaml.Node, p string) { f.Limits.Rules = d.rulesOf(v, p) },
		"plans": func(v *yaml.Node, p string) { f.Limits.Plans = d.policies(v, p, "plan names to policies", d.plans) },
		"client_policies": func(v *yaml.Node, p string) {
			f.Limits.ClientPolicies = d.policies(v, p, "client IDs to policies", d.clients)
		},
		"identity":  func(v *yaml.Node, p string) { d.identity(v, p, &f.Identity) },
		"client_ip": func(v *yaml.Node, p string) { d.clientIP(v, p, &f.ClientIP) },
		"exempt_ips": func(v *yaml.Node, p string) {
			f.ExemptIPs = d.prefixes(v, p)
		},
		"hash_key_env": func(v *yaml.Node, p string) {
			d.hashKey = v
			name, key, ok := d.env(v, p)
			f.HashKeyEnv = name
			if ok && len(key) < 16 {
				d.errorf(v, p, "environment variable %s holds %d bytes; a hash key needs at least 16", name, len(key))
			} else if ok {
				f.hashKey = []byte(key)
			}
		},
		"store": func(v *yaml.Node, p string) { d.store(v, p, &f.Store) },
		"on_store_error": func(v *yaml.Node, p string) {
			s, ok := d.scalarOf(v, p, "!!str", "open, closed or local-fallback")
			if ok && f.OnStoreError.UnmarshalText([]byte(s)) != nil {
				d.errorf(v, p, "unknown failure policy %q; want open, closed or local-fallback", s)
			}
		},
		"fallback_instances": func(v *yaml.Node, p string) { f.FallbackInstances = d.count(v, p) },
		"breaker": func(v *yaml.Node, p string) {
			d.fields(v, p, fieldSet{
				"failures": func(v *yaml.Node, p string) { f.Breaker.Failures = d.count(v, p) },
				"cooldown": func(v *yaml.Node, p string) { f.Breaker.Cooldown = d.ttl(v, p) },
				"disabled": func(v *yaml.Node, p string) { f.Breaker.Disabled = d.boolean(v, p) },
			})
		},
		"deny_cache": func(v *yaml.Node, p string) {
			d.fields(v, p, fieldSet{
				"size":     func(v *yaml.Node, p string) { f.DenyCache.Size = d.count(v, p) },
				"ttl":      func(v *yaml.Node, p string) { f.DenyCache.TTL = d.ttl(v, p) },
				"disabled": func(v *yaml.Node, p string) { f.DenyCache.Disabled = d.boolean(v, p) },
			})
		},
		"concurrency": func(v *yaml.Node, p string) {
			d.fields(v, p, fieldSet{
				"limit": func(v *yaml.Node, p string) { f.Concurrency.Limit = d.count(v, p) },
				"ttl":   func(v *yaml.Node, p string) { f.Concurrency.TTL = d.ttl(v, p) },
			})
		},
		"headers":       func(v *yaml.Node, p string) { f.Headers = d.headerStyles(v, p) },
		"envelope":      func(v *yaml.Node, p string) { d.envelope(v, p, &f.Envelope) },
		"partition_key": func(v *yaml.Node, p string) { f.PartitionKey = d.boolean(v, p) },
	})
	if !ok && isNull(n) {
		d.errorf(n, "", "empty document; write {} for a configuration of defaults")
	}
	if d.policyNode == nil || isNull(d.policyNode) {
		d.policyOK = true // the default policy
	}
	return f
}

// policy decodes a policy: {algorithm: exact|counter, windows: [...]}.
// Null is no policy (the zero Policy: the default); ok is false when
// anything in it is wrong.
func (d *decoder) policy(n *yaml.Node, path string) (p window.Policy, ok bool) {
	before := len(d.errs)
	var windows *yaml.Node
	present := d.fields(n, path, fieldSet{
		"algorithm": func(v *yaml.Node, path string) {
			s, ok := d.scalarOf(v, path, "!!str", "exact or counter")
			switch {
			case !ok:
			case s == "exact":
				p.Algorithm = window.SlidingLog
			case s == "counter":
				p.Algorithm = window.SlidingCounter
			default:
				d.errorf(v, path, "unknown algorithm %q; want exact or counter", s)
			}
		},
		"windows": func(v *yaml.Node, path string) {
			windows = v
			items := d.list(v, path, "a list of windows such as [{length: 1m, limit: 60}]")
			if len(items) > window.MaxWindows {
				d.errorf(v, path, "%d windows, at most %d", len(items), window.MaxWindows)
			}
			names := map[string]int{}
			for i, item := range items {
				w, ok := d.window(item, index(path, i))
				if !ok {
					continue
				}
				if j, dup := names[w.Label()]; dup {
					d.errorf(item, index(path, i), "name %q already used by windows[%d]; name one of them", w.Label(), j)
				}
				names[w.Label()] = i
				p.Windows = append(p.Windows, w)
			}
		},
	})
	if !present {
		if !isNull(n) {
			return window.Policy{}, false
		}
		return window.Policy{}, true
	}
	if windows == nil || len(windows.Content) == 0 {
		at := n
		if windows != nil {
			at = windows
		}
		d.errorf(at, join(path, "windows"), "no windows; a policy needs at least one, such as {length: 1m, limit: 60}")
	}
	if len(d.errs) > before {
		return window.Policy{}, false
	}
	return p, true
}

// window decodes one window: {name, length, limit}.
func (d *decoder) window(n *yaml.Node, path string) (w window.Window, ok bool) {
	before := len(d.errs)
	var length, limit *yaml.Node
	if isNull(n) {
		d.errorf(n, path, "an empty window; write {length: 1m, limit: 60}")
		return w, false
	}
	d.fields(n, path, fieldSet{
		"name": func(v *yaml.Node, p string) { w.Name = d.str(v, p) },
		"length": func(v *yaml.Node, p string) {
			length = v
			l, ok := d.duration(v, p)
			switch {
			case !ok:
			case l < time.Millisecond:
				d.errorf(v, p, "%v is below 1ms", l)
			case l > window.MaxLength:
				d.errorf(v, p, "%v is above %v (30 days)", l, window.MaxLength)
			case l%time.Millisecond != 0:
				d.errorf(v, p, "%v is not a whole number of milliseconds", l)
			default:
				w.Length = l
			}
		},
		"limit": func(v *yaml.Node, p string) {
			limit = v
			if l, ok := d.integer(v, p); ok && (l < 1 || l > window.MaxLimit) {
				d.errorf(v, p, "%d is outside 1 to %d", l, window.MaxLimit)
			} else {
				w.Limit = l
			}
		},
	})
	if n.Kind == yaml.MappingNode {
		if length == nil {
			d.errorf(n, path, "no length; a window needs one, such as length: 1m")
		}
		if limit == nil {
			d.errorf(n, path, "no limit; a window needs one, such as limit: 60")
		}
	}
	return w, len(d.errs) == before
}

// methodNames are the methods a rule may name (middleware's standard
// methods).
var methodNames = []string{"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "CONNECT", "TRACE"}

// rulesOf decodes the list of rules.
func (d *decoder) rulesOf(n *yaml.Node, path string) []middleware.Rule {
	var out []middleware.Rule
	for i, item := range d.list(n, path, "a list of rules") {
		p := index(path, i)
		before := len(d.errs)
		at := ruleAt{node: item}
		var r middleware.Rule
		if isNull(item) {
			d.errorf(item, p, "an empty rule")
		}
		d.fields(item, p, fieldSet{
			"name": func(v *yaml.Node, p string) {
				at.name = v
				r.Name = d.str(v, p)
			},
			"routes": func(v *yaml.Node, p string) {
				for j, rv := range d.nonEmptyList(v, p, "a list of routes such as [/v1/people]", "leave routes out to match every route") {
					rt, ok := d.scalarOf(rv, index(p, j), "!!str", "a route such as /v1/people/{id}")
					switch {
					case !ok:
					case !strings.HasPrefix(rt, "/"):
						hint := ""
						if _, path, found := strings.Cut(rt, " "); found && strings.HasPrefix(path, "/") {
							hint = "; a route is a pattern's path, the method goes in methods"
						}
						d.errorf(rv, index(p, j), "route %q does not start with /%s", rt, hint)
					default:
						r.Routes = append(r.Routes, rt)
					}
				}
			},
			"methods": func(v *yaml.Node, p string) {
				for j, mv := range d.nonEmptyList(v, p, "a list of methods such as [GET, HEAD]", "leave methods out to match every method") {
					m, ok := d.scalarOf(mv, index(p, j), "!!str", "a method such as GET")
					switch {
					case !ok:
					case slices.Contains(methodNames, m):
						r.Methods = append(r.Methods, m)
					case slices.Contains(methodNames, strings.ToUpper(m)):
						d.errorf(mv, index(p, j), "method %q is not a standard method; did you mean %q?", m, strings.ToUpper(m))
					default:
						d.errorf(mv, index(p, j), "method %q is not a standard method; want one of %s", m, strings.Join(methodNames, ", "))
					}
				}
			},
			"policy": func(v *yaml.Node, p string) { r.Policy, _ = d.policy(v, p) },
			"cost": func(v *yaml.Node, p string) {
				at.cost = v
				r.Cost = d.count(v, p)
			},
			"cost_from_context": func(v *yaml.Node, p string) {
				if d.boolean(v, p) {
					r.CostFunc = middleware.CostFromContext
				}
			},
			"exempt": func(v *yaml.Node, p string) { r.Exempt = d.boolean(v, p) },
			"shadow": func(v *yaml.Node, p string) { r.Shadow = d.boolean(v, p) },
		})
		at.ok = len(d.errs) == before
		d.rules = append(d.rules, at)
		out = append(out, r)
	}
	return out
}

// policies decodes a mapping of names to policies, recording where each
// is in at.
func (d *decoder) policies(n *yaml.Node, path, desc string, at map[string]*yaml.Node) map[string]window.Policy {
	var out map[string]window.Policy
	d.entries(n, path, desc, func(key string, v *yaml.Node, p string) {
		if isNull(v) {
			d.errorf(v, p, "no policy; write one such as {windows: [{length: 1m, limit: 600}]}")
			return
		}
		pol, ok := d.policy(v, p)
		if !ok {
			return
		}
		if out == nil {
			out = map[string]window.Policy{}
		}
		out[key] = pol
		at[key] = v
	})
	return out
}

// identity decodes the identity section.
func (d *decoder) identity(n *yaml.Node, path string, id *Identity) {
	d.fields(n, path, fieldSet{
		"context": func(v *yaml.Node, p string) { id.Context = d.boolean(v, p) },
		"key_headers": func(v *yaml.Node, p string) {
			for i, item := range d.nonEmptyList(v, p, "a list of header names such as [X-API-Key]", "leave key_headers out for X-API-Key, then Authorization") {
				if h, ok := d.headerName(item, index(p, i)); ok {
					id.KeyHeaders = append(id.KeyHeaders, h)
				}
			}
		},
		"max_key_len": func(v *yaml.Node, p string) {
			if l, ok := d.integer(v, p); ok && (l < 0 || l > 64<<10) {
				d.errorf(v, p, "%d is outside 0 to %d", l, 64<<10)
			} else {
				id.MaxKeyLen = l
			}
		},
		"key_cache_ttl":  func(v *yaml.Node, p string) { id.KeyCacheTTL = d.ttl(v, p) },
		"key_cache_size": func(v *yaml.Node, p string) { id.KeyCacheSize = d.count(v, p) },
	})
}

// clientIP decodes the client_ip section.
func (d *decoder) clientIP(n *yaml.Node, path string, c *middleware.ClientIP) {
	var header *yaml.Node
	d.fields(n, path, fieldSet{
		"trusted_proxies": func(v *yaml.Node, p string) { c.TrustedProxies = d.prefixes(v, p) },
		"header": func(v *yaml.Node, p string) {
			header = v
			h, ok := d.headerName(v, p)
			switch canon := http.CanonicalHeaderKey(h); {
			case !ok:
			case canon == "X-Forwarded-For" || canon == "Forwarded":
				d.errorf(v, p, "%s is a list; leave header out to read it", h)
			default:
				c.Header = h
			}
		},
		"ipv6_prefix": func(v *yaml.Node, p string) {
			if b, ok := d.integer(v, p); ok && (b < 0 || b > 128) {
				d.errorf(v, p, "%d is outside 0 to 128", b)
			} else {
				c.IPv6Prefix = b
			}
		},
	})
	if c.Header != "" && len(c.TrustedProxies) == 0 {
		d.errorf(header, join(path, "header"), "set without trusted_proxies, so never honoured")
	}
}

// store decodes the store section.
func (d *decoder) store(n *yaml.Node, path string, s *Store) {
	var first *yaml.Node
	one := func(v *yaml.Node, p string) bool {
		if first != nil {
			d.errorf(v, path, "both memory and redis; choose one")
			return false
		}
		first = v
		return true
	}
	d.fields(n, path, fieldSet{
		"memory": func(v *yaml.Node, p string) {
			if !one(v, p) {
				return
			}
			m := &MemoryStore{}
			d.fields(v, p, fieldSet{
				"max_keys": func(v *yaml.Node, p string) { m.MaxKeys = d.count(v, p) },
				"shards": func(v *yaml.Node, p string) {
					if m.Shards = d.count(v, p); m.Shards&(m.Shards-1) != 0 {
						d.errorf(v, p, "%d is not a power of two", m.Shards)
					}
				},
				"sweep_interval": func(v *yaml.Node, p string) { m.SweepInterval = d.ttl(v, p) },
			})
			s.Memory = m
		},
		"redis": func(v *yaml.Node, p string) {
			if !one(v, p) {
				return
			}
			d.redis = v
			s.Redis = d.redisStore(v, p)
		},
	})
}

// redisStore decodes store.redis.
func (d *decoder) redisStore(n *yaml.Node, path string) *RedisStore {
	r := &RedisStore{}
	var urlNode, envNode *yaml.Node
	d.fields(n, path, fieldSet{
		"url": func(v *yaml.Node, p string) {
			urlNode = v
			var ok bool
			if r.URL, ok = d.scalarOf(v, p, "!!str", "a Redis URL such as redis://localhost:6379/0"); ok && r.URL == "" {
				d.errorf(v, p, "an empty URL; name the server, such as redis://localhost:6379/0")
			}
		},
		"url_env": func(v *yaml.Node, p string) {
			envNode = v
			r.URLEnv, r.url, _ = d.env(v, p)
		},
		"prefix": func(v *yaml.Node, p string) {
			r.Prefix = d.str(v, p)
			if strings.ContainsAny(r.Prefix, "{}") {
				d.errorf(v, p, "%q contains { or }, which would move keys to another Redis Cluster slot", r.Prefix)
			}
		},
		"timeout": func(v *yaml.Node, p string) { r.Timeout = d.ttl(v, p) },
	})
	switch {
	case urlNode != nil && envNode != nil:
		d.errorf(envNode, path, "both url and url_env; choose one")
	case urlNode == nil && envNode == nil:
		d.errorf(n, path, "no url or url_env; name the server, such as url: redis://localhost:6379/0")
	case urlNode != nil && r.URL != "":
		opt, err := redisOptions(r.URL)
		switch {
		case err != nil:
			d.errorf(urlNode, join(path, "url"), "%w", err)
		case opt.Password != "":
			d.errorf(urlNode, join(path, "url"), "holds a password; put the URL in the environment and name the variable with url_env")
		}
	case envNode != nil && r.url != "":
		if _, err := redisOptions(r.url); err != nil {
			d.errorf(envNode, join(path, "url_env"), "environment variable %s: %w", r.URLEnv, err)
		}
	}
	return r
}

// headerStyles decodes headers: one style name, or a list of them.
func (d *decoder) headerStyles(n *yaml.Node, path string) []string {
	items := []*yaml.Node{n}
	if n.Kind == yaml.SequenceNode {
		items = d.nonEmptyList(n, path, "", "leave headers out for lindris")
	}
	var out []string
	for i, item := range items {
		p := path
		if n.Kind == yaml.SequenceNode {
			p = index(path, i)
		}
		s, ok := d.scalarOf(item, p, "!!str", "a header style (lindris, scalekit, kinde, ietf) or a list of them")
		switch {
		case !ok:
		case styles[s] == nil:
			d.errorf(item, p, "unknown header style %q; want lindris, scalekit, kinde or ietf", s)
		case slices.Contains(out, s):
			d.errorf(item, p, "%s listed twice", s)
		default:
			out = append(out, s)
		}
	}
	return out
}

// envelope decodes envelope: a name, or a mapping with a name and
// messages.
func (d *decoder) envelope(n *yaml.Node, path string, e *Envelope) {
	known := func(v *yaml.Node, p, s string) {
		switch s {
		case "lindris", "authmatech", "problem":
			e.Name = s
		default:
			d.errorf(v, p, "unknown envelope %q; want lindris, authmatech or problem", s)
		}
	}
	if n.Kind == yaml.ScalarNode && n.ShortTag() == "!!str" {
		known(n, path, n.Value)
		return
	}
	if n.Kind != yaml.MappingNode {
		d.scalarOf(n, path, "!!str", "an envelope name (lindris, authmatech, problem) or a mapping with a name and messages")
		return
	}
	var name *yaml.Node
	type msg struct {
		key  string
		node *yaml.Node
	}
	var messages, details []msg
	text := func(dst *string, problem bool) func(v *yaml.Node, p string) {
		return func(v *yaml.Node, p string) {
			*dst = d.str(v, p)
			key := p[strings.LastIndexByte(p, '.')+1:]
			if problem {
				details = append(details, msg{key, v})
			} else {
				messages = append(messages, msg{key, v})
			}
		}
	}
	d.fields(n, path, fieldSet{
		"name": func(v *yaml.Node, p string) {
			name = v
			if s, ok := d.scalarOf(v, p, "!!str", "lindris, authmatech or problem"); ok {
				known(v, p, s)
			}
		},
		"message":             text(&e.Message, false),
		"unavailable_message": text(&e.UnavailableMessage, false),
		"too_large_message":   text(&e.TooLargeMessage, false),
		"detail":              text(&e.Message, true),
		"unavailable_detail":  text(&e.UnavailableMessage, true),
		"too_large_detail":    text(&e.TooLargeMessage, true),
	})
	if name == nil {
		d.errorf(n, path, "no name; say which envelope: lindris, authmatech or problem")
		return
	}
	wrong, right := messages, "detail"
	if e.Name != "problem" {
		wrong, right = details, "message"
	}
	for _, m := range wrong {
		d.errorf(m.node, path, "the %s envelope has no %s; its texts are %s, unavailable_%s and too_large_%s",
			cmp.Or(e.Name, "lindris"), m.key, right, right, right)
	}
}

// crossCheck reports what middleware.New would refuse that spans fields,
// at the most useful position: rule costs against their policies and the
// plans that apply to them, shared rule names, the hash key a shared
// store needs. Rules, plans and policies that had problems of their own
// are left out, so that one mistake is reported once.
func (d *decoder) crossCheck(f *File) {
	def := f.Limits.Policy
	if def.Windows == nil {
		def = window.Default()
	}
	type named struct {
		policy window.Policy
		cost   int
		at     *yaml.Node
	}
	byName := map[string]named{}
	var planned []int // the rules a plan or a client policy applies to
	for i, r := range f.Limits.Rules {
		at := d.rules[i]
		if !at.ok {
			continue
		}
		p := index("rules", i)
		pol, own := r.Policy, r.Policy.Windows != nil
		if !own {
			pol = def
		}
		cost := max(r.Cost, 1)
		if !r.Exempt && (own || d.policyOK) && cost > pol.MinLimit() {
			where, field := at.cost, join(p, "cost")
			if where == nil {
				where, field = at.node, p
			}
			of := "its policy"
			if !own {
				of = "the default policy"
			}
			d.errorf(where, field, "cost %d is above the smallest limit %d of %s; no request could pass", cost, pol.MinLimit(), of)
		}
		if !own && !r.Exempt {
			planned = append(planned, i)
		}
		name := r.Name
		if name == "" {
			name = strings.Join(r.Methods, ",") + " " + strings.Join(r.Routes, ",")
		}
		where, field := at.name, join(p, "name")
		if where == nil {
			where, field = at.node, p
		}
		if name == "default" {
			d.errorf(where, field, "the name default is reserved for requests no rule matches")
			continue
		}
		if prev, dup := byName[name]; dup {
			if (own || d.policyOK) && (prev.policy.String() != pol.String() || prev.cost != cost) {
				d.errorf(where, field, "shares its name with the rule on line %d, which has another policy or cost; rules of one name share buckets, so they need the same", prev.at.Line)
			}
			continue
		}
		byName[name] = named{pol, cost, at.node}
	}
	check := func(section string, pols map[string]window.Policy, at map[string]*yaml.Node) {
		for _, key := range slices.Sorted(maps.Keys(pols)) {
			pol := pols[key]
			for _, i := range planned {
				r := f.Limits.Rules[i]
				if cost := max(r.Cost, 1); cost > pol.MinLimit() {
					d.errorf(at[key], entry(section, key), "rules[%d] costs %d, above this policy's smallest limit %d: its clients could never pass it", i, cost, pol.MinLimit())
				}
			}
		}
	}
	check("plans", f.Limits.Plans, d.plans)
	check("client_policies", f.Limits.ClientPolicies, d.clients)
	if f.Store.Redis != nil && d.hashKey == nil {
		d.errorf(d.redis, "store.redis", "a shared store needs hash_key_env, so that every instance derives the same store keys")
	}
}
