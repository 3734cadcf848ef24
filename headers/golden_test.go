package headers

import (
	"encoding/json"
	"flag"
	"fmt"
	"maps"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ratekit/ratekit/window"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/golden")

// goldenStep is one request of the scripted sequence, at an offset from
// the start.
type goldenStep struct {
	name string
	at   time.Duration
	n    int
}

// goldenScript drives the Lindris policy through both windows binding, a
// cost above every limit, and recovery. Quiet requests in between fill the
// minute window without being rendered.
func goldenScript() (steps []goldenStep, quiet []time.Duration) {
	// An entry counts until the clock reads more than a window after it
	// (see window.Window): t0 leaves the second at 1.001s, the minute at
	// 60.001s, and two requests exactly 500ms apart fill the second for the
	// third, so the quiet ones are 501ms apart.
	steps = []goldenStep{
		{"t0", 0, 1},
		{"t0plus100ms", 100 * time.Millisecond, 1},
		{"t0plus200ms second window full", 200 * time.Millisecond, 1},
		{"t0plus1100ms", 1100 * time.Millisecond, 1},
		// quiet: 56 requests from 2s, every 501ms, leave 1 in the minute.
		{"t0plus30100ms last of the minute", 30100 * time.Millisecond, 1},
		{"t0plus30600ms minute window full", 30600 * time.Millisecond, 1},
		{"t0plus30600ms cost 3 above every limit", 30600 * time.Millisecond, 3},
		{"t0plus60001ms first entry left", 60001 * time.Millisecond, 1},
		{"t0plus61500ms cost 2", 61500 * time.Millisecond, 2},
	}
	for k := range 56 {
		quiet = append(quiet, 2*time.Second+time.Duration(k)*501*time.Millisecond)
	}
	return steps, quiet
}

// goldenInputs runs the script through window.Log and returns one Input
// per rendered step.
func goldenInputs(t *testing.T) ([]goldenStep, []*Input) {
	t.Helper()
	p := window.Default()
	start := t0 // a fraction of a second past the second, for Scalekit
	steps, quiet := goldenScript()
	var l window.Log
	var ins []*Input
	q := 0
	for _, s := range steps {
		for ; q < len(quiet) && quiet[q] < s.at; q++ {
			if d := l.TakeAt(start.Add(quiet[q]), &p, 1); !d.Allowed {
				t.Fatalf("quiet request at %v refused; the script is wrong", quiet[q])
			}
		}
		d := l.TakeAt(start.Add(s.at), &p, s.n)
		ins = append(ins, &Input{Policy: &p, Decision: &d, Now: start.Add(s.at), Cost: s.n, Partition: "tenant-7f3a"})
	}
	return steps, ins
}

// TestGolden renders the scripted sequence in every style and envelope and
// compares with testdata/golden. Run with -update to rewrite the files after
// an intended change, and review the diff: these bytes are what clients see.
func TestGolden(t *testing.T) {
	steps, ins := goldenInputs(t)
	header := func(d *window.Decision) string {
		return fmt.Sprintf("allowed=%v limiting=%d retry_after=%v", d.Allowed, d.Limiting, d.RetryAfter)
	}
	styles := []struct {
		file  string
		style Style
	}{
		{"lindris.txt", Lindris{}},
		{"scalekit.txt", Scalekit{}},
		{"kinde.txt", Kinde{}},
		{"ietf.txt", IETF{}},
	}
	for _, s := range styles {
		t.Run(s.file, func(t *testing.T) {
			var b strings.Builder
			for i, in := range ins {
				fmt.Fprintf(&b, "## %s (n=%d): %s\n", steps[i].name, steps[i].n, header(in.Decision))
				h := http.Header{}
				s.style.WriteHeaders(h, in)
				for _, k := range slices.Sorted(maps.Keys(h)) {
					fmt.Fprintf(&b, "%s: %s\n", k, strings.Join(h[k], ", "))
				}
				b.WriteString("\n")
			}
			compareGolden(t, s.file, b.String())
		})
	}
	envelopes := []struct {
		file string
		env  Envelope
	}{
		{"lindris-body.txt", LindrisBody{}},
		{"authmatech-body.txt", AuthmatechBody{}},
		{"problem-body.txt", ProblemBody{}},
	}
	for _, e := range envelopes {
		t.Run(e.file, func(t *testing.T) {
			var b strings.Builder
			fmt.Fprintf(&b, "Content-Type: %s\n\n", e.env.ContentType())
			write := func(title string, in *Input) {
				body := e.env.AppendBody(nil, in)
				if !json.Valid(body) {
					t.Errorf("%s: AppendBody = %s, not valid JSON", title, body)
				}
				fmt.Fprintf(&b, "## %s\n%s\n\n", title, body)
			}
			for i, in := range ins {
				if !in.Decision.Allowed {
					write(fmt.Sprintf("%s (n=%d): %s", steps[i].name, steps[i].n, header(in.Decision)), in)
				}
			}
			write("503 store unavailable, no decision", &Input{Status: http.StatusServiceUnavailable})
			write("503 store unavailable, 5s suggested", &Input{Status: http.StatusServiceUnavailable,
				Decision: &window.Decision{RetryAfter: 5 * time.Second}})
			compareGolden(t, e.file, b.String())
		})
	}
}

func compareGolden(t *testing.T, file, got string) {
	t.Helper()
	path := filepath.Join("testdata", "golden", file)
	if *update {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -run TestGolden -update to create it)", err)
	}
	if got != string(want) {
		t.Errorf("rendering differs from %s (rerun with -update after an intended change):\n--- got\n%s\n--- want\n%s", path, got, want)
	}
}
