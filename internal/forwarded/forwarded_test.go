package forwarded

import (
	"net/netip"
	"strings"
	"testing"
)

func TestParseNode(t *testing.T) {
	tests := []struct {
		in   string
		want string // "" for not a node
	}{
		{"203.0.113.9", "203.0.113.9"},
		{"203.0.113.9:80", "203.0.113.9"},
		{"2001:db8::1", "2001:db8::1"},
		{"[2001:db8::1]", "2001:db8::1"},
		{"[2001:db8::1]:80", "2001:db8::1"},
		{"[fe80::1%eth0]:80", "fe80::1"},
		{"::ffff:203.0.113.9", "203.0.113.9"},
		{"[::ffff:203.0.113.9]:80", "203.0.113.9"},
		{"", ""},
		{"[]", ""},
		{"[1.2.3.4]", ""},
		{"[1.2.3.4]:80", ""},
		{"1.2.3.4:65536", ""},
		{"1.2.3.4:-1", ""},
		{"1.2.3.4:_obf", ""},
		{"2001:db8::1:", ""},
		{"unknown", ""},
		{" 1.2.3.4", ""},
		{"1.2.3.4%eth0", ""},
		{"fe80::1%" + strings.Repeat("z", 200), ""},
	}
	for _, tc := range tests {
		t.Run(tc.in, func(t *testing.T) {
			got, ok := ParseNode(tc.in)
			if tc.want == "" {
				if ok || got.IsValid() {
					t.Errorf("ParseNode(%q) = %v, %t, want invalid, false", tc.in, got, ok)
				}
				return
			}
			if want := netip.MustParseAddr(tc.want); !ok || got != want {
				t.Errorf("ParseNode(%q) = %v, %t, want %v, true", tc.in, got, ok, want)
			}
		})
	}
}

// parseIPv4PortSeeds are the edges of the IPv4 fast path: everything around
// leading zeros, field and port bounds, and forms it must leave to netip.
var parseIPv4PortSeeds = []string{
	"1.2.3.4", "1.2.3.4:80", "0.0.0.0:0", "255.255.255.255:65535", "10.0.0.1:40000",
	"256.1.1.1", "1.2.3.256:1", "01.2.3.4", "1.2.3.04:80", "1.2.3.0:080", "1.2.3.4:00080", "1.2.3.4:000080",
	"1.2.3.4:65536", "1.2.3.4:99999", "1.2.3.4:", "1.2.3.4:+1", "1.2.3.4:-1", "1.2.3.4: 80", "1.2.3.4:8 0",
	"1.2.3", "1.2.3.4.5", "1.2.3.4.", ".1.2.3.4", "1..2.3", "1234.1.1.1", "1.2.3.4:80:81", "1.2.3.4%eth0",
	"[1.2.3.4]:80", "::ffff:1.2.3.4", "[::ffff:1.2.3.4]:80", "1.2.3.4/32", "1.2.3.4 ", " 1.2.3.4", "",
	"\x31.2.3.4", "1.2.3.4\x00", "١.2.3.4",
}

// TestParseIPv4Port checks the fast path against netip on its edges.
func TestParseIPv4Port(t *testing.T) {
	for _, s := range parseIPv4PortSeeds {
		checkParseIPv4Port(t, s)
	}
}

// FuzzParseIPv4Port checks that the IPv4 fast path of parseNode accepts
// nothing netip rejects and always finds netip's address.
func FuzzParseIPv4Port(f *testing.F) {
	for _, s := range parseIPv4PortSeeds {
		f.Add(s)
	}
	f.Fuzz(checkParseIPv4Port)
}

func checkParseIPv4Port(t *testing.T, s string) {
	a, ok := parseIPv4Port(s)
	if !ok {
		return
	}
	if len(s) == 0 || len(s) > maxNodeLen {
		t.Fatalf("parseIPv4Port(%q) accepted a node parseNode bounds out", s)
	}
	want, wantOK := parseNodeGeneral(s)
	if !wantOK || a != want {
		t.Fatalf("parseIPv4Port(%q) = %v, true; netip says %v, %v", s, a, want, wantOK)
	}
	if got, _ := ParseNode(s); got != a {
		t.Fatalf("ParseNode(%q) = %v, want %v", s, got, a)
	}
}
