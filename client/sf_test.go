package client

import (
	"reflect"
	"testing"
)

func TestParseSFList(t *testing.T) {
	str := func(s string, params ...sfParam) sfMember {
		return sfMember{bare: sfBare{kind: sfString, s: s}, params: params}
	}
	integer := func(k string, v int64) sfParam { return sfParam{key: k, val: sfBare{kind: sfInteger, i: v}} }
	tests := []struct {
		name string
		in   string
		want []sfMember
		ok   bool
	}{
		{"empty", "", nil, true},
		{"ietf policies", `"minute";q=60;w=60, "second";q=2;w=1`,
			[]sfMember{str("minute", integer("q", 60), integer("w", 60)), str("second", integer("q", 2), integer("w", 1))}, true},
		{"tabs and no spaces around commas", "\"a\";r=1,\t\"b\";r=2", []sfMember{str("a", integer("r", 1)), str("b", integer("r", 2))}, true},
		{"escaped string", `"a\"b\\c"`, []sfMember{str(`a"b\c`)}, true},
		{"token, decimal, bool, bytes, date params", `tok;d=-1.5;b;f=?0;pk=:cGs=:;at=@1700000000`, []sfMember{{
			bare: sfBare{kind: sfToken, s: "tok"},
			params: []sfParam{
				{key: "d", val: sfBare{kind: sfDecimal, i: -1500}},
				{key: "b", val: sfBare{kind: sfBoolean, i: 1}},
				{key: "f", val: sfBare{kind: sfBoolean, i: 0}},
				{key: "pk", val: sfBare{kind: sfBytes, s: "cGs="}},
				{key: "at", val: sfBare{kind: sfDate, i: 1700000000}},
			},
		}}, true},
		{"repeated parameter: the last wins", `"a";r=1;r=2`, []sfMember{str("a", integer("r", 2))}, true},
		{"inner list", `("a" "b");x=1, "c"`, []sfMember{{inner: true, params: []sfParam{integer("x", 1)}}, str("c")}, true},
		{"trailing comma", `"a",`, nil, false},
		{"unterminated string", `"a`, nil, false},
		{"bad escape", `"a\n"`, nil, false},
		{"control in string", "\"a\x01\"", nil, false},
		{"uppercase key", `"a";R=1`, nil, false},
		{"empty parameter value", `"a";r=`, nil, false},
		{"16-digit integer", `"a";r=1234567890123456`, nil, false},
		{"decimal with 4 fraction digits", `"a";r=1.2345`, nil, false},
		{"bad base64", `:a$b:`, nil, false},
		{"junk after item", `"a" "b"`, nil, false},
		{"display string (not supported)", `%"a"`, nil, false},
		{"unterminated inner list", `("a"`, nil, false},
		{"bad boolean", `?2`, nil, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := parseSFList(tc.in)
			if ok != tc.ok || !reflect.DeepEqual(got, tc.want) {
				t.Errorf("parseSFList(%q) = %+v, %v; want %+v, %v", tc.in, got, ok, tc.want, tc.ok)
			}
		})
	}
}

func TestParseSFDict(t *testing.T) {
	integer := func(k string, v int64) sfMember { return sfMember{key: k, bare: sfBare{kind: sfInteger, i: v}} }
	tests := []struct {
		name string
		in   string
		want []sfMember
		ok   bool
	}{
		{"draft-07", "limit=100, remaining=25, reset=5", []sfMember{integer("limit", 100), integer("remaining", 25), integer("reset", 5)}, true},
		{"boolean member with params", "a;x=1", []sfMember{{key: "a", bare: sfBare{kind: sfBoolean, i: 1}, params: []sfParam{{key: "x", val: sfBare{kind: sfInteger, i: 1}}}}}, true},
		{"repeated key: the last wins, in place", "a=1, b=2, a=3", []sfMember{integer("a", 3), integer("b", 2)}, true},
		{"string is not a key", `"a"=1`, nil, false},
		{"missing value", "a=", nil, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := parseSFDict(tc.in)
			if ok != tc.ok || !reflect.DeepEqual(got, tc.want) {
				t.Errorf("parseSFDict(%q) = %+v, %v; want %+v, %v", tc.in, got, ok, tc.want, tc.ok)
			}
		})
	}
}
