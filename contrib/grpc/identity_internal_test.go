package ratekitgrpc

import (
	"strings"
	"testing"
)

func TestBearerCredentials(t *testing.T) {
	for _, tc := range []struct {
		in, key string
		ours    bool
	}{
		{"Bearer k1", "k1", true},
		{"bearer   k1", "k1", true},
		{"BEARER k1", "k1", true},
		{"Bearer", "", true},
		{"Bearer ", "", true},
		{"Bearerk1", "", false},
		{"Basic azE6", "", false},
		{"Bear", "", false},
		{"", "", false},
		{"Bearer k1 k2", "k1 k2", true}, // the limiter's key grammar refuses it
	} {
		key, ours := bearerCredentials(tc.in)
		if key != tc.key || ours != tc.ours {
			t.Errorf("bearerCredentials(%q) = %q, %v; want %q, %v", tc.in, key, ours, tc.key, tc.ours)
		}
	}
}

// FuzzBearerCredentials checks bearerCredentials against its definition:
// the value is "bearer" in any case, then nothing or spaces and the rest.
func FuzzBearerCredentials(f *testing.F) {
	for _, s := range []string{"Bearer k1", "bearer  x", "Bearer", "Basic a", "BeArEr\x00", "Bearerx"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, v string) {
		key, ours := bearerCredentials(v)
		wantOurs := len(v) >= 6 && strings.EqualFold(v[:6], "bearer") && (len(v) == 6 || v[6] == ' ')
		if ours != wantOurs {
			t.Fatalf("bearerCredentials(%q) ours = %v, want %v", v, ours, wantOurs)
		}
		if !ours {
			if key != "" {
				t.Fatalf("bearerCredentials(%q) = %q for another scheme", v, key)
			}
			return
		}
		if want := strings.TrimLeft(v[6:], " "); key != want {
			t.Fatalf("bearerCredentials(%q) = %q, want %q", v, key, want)
		}
	})
}
