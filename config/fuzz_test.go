package config

import (
	"log/slog"
	"strings"
	"testing"

	"github.com/ratekit/ratekit/middleware"
)

// FuzzParse feeds Parse arbitrary bytes (seeds in testdata/fuzz/FuzzParse:
// the testdata files, an alias bomb, deep nesting, binary, duplicate keys,
// syntax errors). It must never panic, never take long, and:
//   - every problem it reports is a line "config: fuzz.yaml..." that does
//     not come from the backstop (a core error without a position), since
//     every check of middleware.New is repeated with positions;
//   - a file it accepts builds, and middleware.New accepts the result.
func FuzzParse(f *testing.F) {
	f.Fuzz(func(t *testing.T, data []byte) {
		file, err := Parse("fuzz.yaml", data)
		if err != nil {
			for _, line := range strings.Split(err.Error(), "\n") {
				if !strings.HasPrefix(line, "config: fuzz.yaml") {
					t.Fatalf("Parse(%q): a line of its error is not a config problem of fuzz.yaml: %q", data, line)
				}
			}
			if strings.Contains(err.Error(), "middleware: invalid config") {
				t.Fatalf("Parse(%q): the backstop caught what the decoder let through: %v", data, err)
			}
			return
		}
		cfg, closer, err := file.Build()
		if err != nil {
			t.Fatalf("Parse(%q) succeeded but Build failed: %v", data, err)
		}
		defer closer.Close()
		cfg.Logger = slog.New(slog.DiscardHandler)
		lim, err := middleware.New(cfg)
		if err != nil {
			t.Fatalf("Parse(%q) succeeded but middleware.New failed: %v", data, err)
		}
		lim.Close()
	})
}
