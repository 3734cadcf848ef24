package config

import (
	"cmp"
	"errors"
	"regexp"
	"slices"
	"strconv"
	"strings"
)

// Error is one problem in a configuration file: which file, where in it,
// which field, and what is wrong. [Parse] and [Load] return every problem
// of a file at once, joined with [errors.Join] and sorted by position;
// errors.As finds the first, and a type switch over the joined error's
// Unwrap() []error finds them all.
//
// Its text is one line:
//
//	config: ratekit.yaml:12:5: rules[1]: unknown field "route"; did you mean "routes"?
//
// The message never contains a secret the file names by reference (the
// value of hash_key_env or of a Redis url_env).
type Error struct {
	// File is the name the file was parsed under: Load's path, or Parse's
	// name.
	File string
	// Line and Column are 1-based. Line is 0 for a problem of the whole file
	// (empty, too large); Column is 0 when only the line is known (a YAML
	// syntax error).
	Line, Column int
	// Field is the path of the field, as written in the file:
	// "rules[1].policy.windows[0].limit". Empty for a problem that is not
	// one field's (a syntax error, an empty file).
	Field string
	// Err says what is wrong.
	Err error
}

// Error returns "config: FILE:LINE:COLUMN: FIELD: MESSAGE", leaving out the
// parts that are not known.
func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString("config: ")
	b.WriteString(e.File)
	if e.Line > 0 {
		b.WriteByte(':')
		b.WriteString(strconv.Itoa(e.Line))
		if e.Column > 0 {
			b.WriteByte(':')
			b.WriteString(strconv.Itoa(e.Column))
		}
	}
	b.WriteString(": ")
	if e.Field != "" {
		b.WriteString(e.Field)
		b.WriteString(": ")
	}
	b.WriteString(e.Err.Error())
	return b.String()
}

// Unwrap returns e.Err.
func (e *Error) Unwrap() error { return e.Err }

// joinSorted joins errs, ordered by position (problems without a line
// first, then by line and column), keeping the order they were found in
// for equal positions. Nil for none.
func joinSorted(errs []*Error) error {
	if len(errs) == 0 {
		return nil
	}
	slices.SortStableFunc(errs, func(a, b *Error) int {
		return cmp.Or(cmp.Compare(a.Line, b.Line), cmp.Compare(a.Column, b.Column))
	})
	out := make([]error, len(errs))
	for i, e := range errs {
		out[i] = e
	}
	return errors.Join(out...)
}

// yamlLine matches the position the YAML library puts in its syntax
// errors.
var yamlLine = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)

// parserProblems are the syntax errors the YAML library's parser (as
// opposed to its scanner) reports. Their line is the 0-based line of the
// construct being parsed (the flow sequence left open), which the library
// leaves out when it is 0; scanner errors carry the 1-based line where the
// problem is.
var parserProblems = []string{
	"did not find expected <stream-start>",
	"did not find expected <document start>",
	"did not find expected node content",
	"did not find expected key",
	"did not find expected '-' indicator",
	"did not find expected ',' or ']'",
	"did not find expected ',' or '}'",
	"found duplicate %YAML directive",
	"found duplicate %TAG directive",
	"found incompatible YAML document",
	"found undefined tag handle",
}

// unplaced are the prefixes of the YAML library's errors that come from
// building the document rather than reading its syntax, and so carry no
// line. Every other error without one is on the first line, which the
// library does not number.
var unplaced = []string{"unknown anchor", "attempted to go past", "cannot decode", "document contains"}

// syntaxError turns an error of the YAML library into an *Error with the
// 1-based line of the problem when the library's text says it.
func syntaxError(file string, err error) *Error {
	msg := strings.TrimPrefix(err.Error(), "yaml: ")
	line := 0
	if m := yamlLine.FindStringSubmatch(err.Error()); m != nil {
		line, _ = strconv.Atoi(m[1])
		msg = m[2]
		if slices.Contains(parserProblems, msg) {
			line++
		}
	} else if !slices.ContainsFunc(unplaced, func(p string) bool { return strings.HasPrefix(msg, p) }) {
		line = 1
	}
	return &Error{File: file, Line: line, Err: errors.New("yaml syntax: " + msg)}
}
