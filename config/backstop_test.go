package config

import (
	"testing"

	"github.com/ratekit/ratekit/middleware"
	"github.com/ratekit/ratekit/window"
)

// TestBackstop: a File the decoder's own checks let through but that
// Build or middleware.New would refuse (here built by hand, since every
// such file found so far is caught with a position) is refused by Parse's
// last step, with the core's own message.
func TestBackstop(t *testing.T) {
	for _, tc := range []struct {
		name string
		f    File
		want string
	}{
		{"a policy middleware refuses",
			File{Limits: middleware.Limits{Policy: window.Policy{Windows: []window.Window{{Length: 0, Limit: 1}}}}},
			"config: t.yaml: middleware: invalid config: policy: window 0: length 0s below 1ms: window: invalid policy"},
		{"memory options memory.New refuses",
			File{Store: Store{Memory: &MemoryStore{Shards: 3}}},
			"config: t.yaml: store.memory: Shards 3 not a power of two: store/memory: invalid config"},
		{"a header style Build does not know",
			File{Headers: []string{"fancy"}},
			`config: t.yaml: headers: unknown header style "fancy"; want lindris, scalekit, kinde or ietf`},
		{"an envelope Build does not know",
			File{Envelope: Envelope{Name: "xml"}},
			`config: t.yaml: envelope: unknown envelope "xml"; want lindris, authmatech or problem`},
		{"a valid file", File{}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := &decoder{file: "t.yaml"}
			tc.f.Name = "t.yaml"
			d.backstop(&tc.f)
			got := ""
			if err := joinSorted(d.errs); err != nil {
				got = err.Error()
			}
			if got != tc.want {
				t.Errorf("backstop(%+v) = %q, want %q", tc.f, got, tc.want)
			}
		})
	}
}
