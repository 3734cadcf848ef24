package benchmarks_test

import (
	"encoding/csv"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/ratekit/ratekit/benchmarks"
)

// accuracyLimit is the only window of the accuracy run: 10 per second.
const accuracyLimit = 10

// accuracySchedule is when the one client sends, relative to t0: 1 request at
// t0, 10 at t0+950ms, 10 at t0+1050ms, then 20 per second, evenly, for 2 s.
// Any limiter that forgets the request at t0 too early, or resets on a
// boundary between 950ms and 1050ms, admits more than 10 in some second.
func accuracySchedule() []time.Duration {
	s := []time.Duration{0}
	for range 10 {
		s = append(s, 950*time.Millisecond)
	}
	for range 10 {
		s = append(s, 1050*time.Millisecond)
	}
	for k := 1; k <= 40; k++ {
		s = append(s, 1050*time.Millisecond+time.Duration(k)*50*time.Millisecond)
	}
	return s
}

// fakeClock is a settable clock for the peers that accept one.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) set(t time.Time) {
	c.mu.Lock()
	c.t = t
	c.mu.Unlock()
}

// accuracyRow is one line of the accuracy table.
type accuracyRow struct {
	peer     string
	clock    string // "fake" or "wall"
	sent     int
	admitted int
	maxIn1s  int           // most admissions in any interval [t, t+1s)
	maxAt    time.Duration // start of the first such interval, from t0
}

// TestAccuracy sends accuracySchedule from one client through every peer
// limited to 10/s and reports the most requests each admitted in any one
// second, sliding, from the admission instants. Peers that accept a clock run
// on a fake one set to each instant (exact timestamps); the others run in real
// time, with t0 on a whole wall-clock second (where httprate's windows begin)
// and instants read from the wall clock, so their figures carry scheduling
// jitter of a millisecond or so. The table is logged and written to
// results/accuracy.csv. ratekit (exact sliding log) must admit exactly 10.
func TestAccuracy(t *testing.T) {
	if testing.Short() {
		t.Skip("real time: about four seconds per peer without a clock hook")
	}
	peers := benchmarks.Memory()
	if client, err := redisClient(); err != nil {
		t.Logf("Redis peers left out: no server at %s: %v", redisAddr(), err)
	} else {
		t.Cleanup(func() { client.Close() })
		peers = append(peers, benchmarks.Redis(client, uniquePrefix())...)
		// Three application instances, each with its own client, sharing
		// the one Redis; requests alternate between them.
		var clients []*goredis.Client
		for range 3 {
			c, err := redisClient()
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { c.Close() })
			clients = append(clients, c)
		}
		peers = append(peers, benchmarks.RedisInstances(clients, uniquePrefix()))
	}
	schedule := accuracySchedule()
	var rows []accuracyRow
	for _, p := range peers {
		t.Run(p.Name, func(t *testing.T) {
			admitted := runSchedule(t, p, schedule)
			row := accuracyRow{peer: p.Name, clock: "wall", sent: len(schedule), admitted: len(admitted)}
			if p.Clock {
				row.clock = "fake"
			}
			row.maxIn1s, row.maxAt = maxInWindow(admitted, time.Second)
			rows = append(rows, row)
			if strings.HasPrefix(p.Name, "ratekit") && row.maxIn1s != accuracyLimit {
				t.Errorf("%s admitted %d in the second from t0+%v, want exactly %d", p.Name, row.maxIn1s, row.maxAt, accuracyLimit)
			}
		})
	}
	var b strings.Builder
	fmt.Fprintf(&b, "\n%-16s %-5s %5s %9s %12s %16s\n", "peer", "clock", "sent", "admitted", "max in 1s", "from t0+")
	for _, r := range rows {
		fmt.Fprintf(&b, "%-16s %-5s %5d %9d %12d %16v\n", r.peer, r.clock, r.sent, r.admitted, r.maxIn1s, r.maxAt)
	}
	t.Log(b.String())
	writeAccuracyCSV(t, rows)
}

// runSchedule sends the schedule through p's middleware and returns the
// instants (from t0) at which requests were admitted, in order.
func runSchedule(t *testing.T, p benchmarks.Peer, schedule []time.Duration) []time.Duration {
	t.Helper()
	l := benchmarks.Limits{PerSecond: accuracyLimit}
	var clk *fakeClock
	t0 := time.Now().Truncate(time.Second).Add(time.Second)
	if p.Clock {
		t0 = time.UnixMilli(1_700_000_000_000)
		clk = &fakeClock{t: t0}
		l.Now = clk.Now
	}
	mw, closeFn, err := p.New(l)
	if err != nil {
		t.Fatalf("%s: New(%+v): %v", p.Name, l, err)
	}
	t.Cleanup(closeFn)
	h := mw(noop)
	r := httptest.NewRequest("GET", "/v1/people", nil)
	r.RemoteAddr = "192.0.2.7:40000"
	w := &discardWriter{h: http.Header{}}
	var admitted []time.Duration
	for _, at := range schedule {
		var now time.Duration
		if clk != nil {
			clk.set(t0.Add(at))
			now = at
		} else {
			time.Sleep(time.Until(t0.Add(at)))
			now = time.Since(t0)
		}
		h.ServeHTTP(w, r)
		if w.code != 0 && w.code != http.StatusOK && w.code != http.StatusTooManyRequests {
			t.Fatalf("%s answered %d at t0+%v", p.Name, w.code, at)
		}
		if w.h.Get("X-RateLimit-Degraded") != "" {
			// ratekit's store failed and the failure policy answered: that
			// is not a decision, so it must not count as one.
			t.Errorf("%s answered degraded (store failure) at t0+%v", p.Name, at)
		}
		if !w.rejected() {
			admitted = append(admitted, now)
		}
	}
	return admitted
}

// maxInWindow returns the most instants of ts (sorted) that fall in one
// interval [t, t+length), and the first t at which that many do. It is enough
// to try intervals that start at an instant.
func maxInWindow(ts []time.Duration, length time.Duration) (int, time.Duration) {
	best, at := 0, time.Duration(0)
	for i, start := range ts {
		end, _ := slices.BinarySearch(ts, start+length)
		if n := end - i; n > best {
			best, at = n, start
		}
	}
	return best, at
}

// writeAccuracyCSV writes the table to results/accuracy.csv.
func writeAccuracyCSV(t *testing.T, rows []accuracyRow) {
	t.Helper()
	if err := os.MkdirAll("results", 0o755); err != nil {
		t.Fatal(err)
	}
	f, err := os.Create(filepath.Join("results", "accuracy.csv"))
	if err != nil {
		t.Fatal(err)
	}
	cw := csv.NewWriter(f)
	cw.Write([]string{"peer", "clock", "limit_per_s", "sent", "admitted", "max_admitted_in_any_1s", "interval_start_ms"})
	for _, r := range rows {
		cw.Write([]string{r.peer, r.clock, strconv.Itoa(accuracyLimit), strconv.Itoa(r.sent), strconv.Itoa(r.admitted),
			strconv.Itoa(r.maxIn1s), strconv.FormatFloat(float64(r.maxAt)/1e6, 'f', 1, 64)})
	}
	cw.Flush()
	if err := cw.Error(); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
}
