package config

import (
	"os"
	"testing"
)

// BenchmarkParse measures Parse of the reference file (every field set),
// the throwaway limiter of its last check included.
func BenchmarkParse(b *testing.B) {
	b.Setenv("RATEKIT_HASH_KEY", testHashKey)
	data, err := os.ReadFile("testdata/reference.yaml")
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Parse("reference.yaml", data); err != nil {
			b.Fatal(err)
		}
	}
}
