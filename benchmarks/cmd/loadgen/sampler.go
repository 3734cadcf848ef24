package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"sync"
	"time"
)

// sample is one reading of the server's /debug/runtime (examples/basic
// -debug-addr) at t since the sampler started.
type sample struct {
	t        time.Duration
	answered int64
	stats    struct {
		RSS        uint64 `json:"rss_bytes"`
		HeapLive   uint64 `json:"heap_live_bytes"`
		GoTotal    uint64 `json:"go_total_bytes"`
		Goroutines uint64 `json:"goroutines"`
		GCCycles   uint64 `json:"gc_cycles"`
	}
	err   error
	after bool // taken after the load ended
}

// sampler reads the server's runtime figures before the load, every
// interval during it and once after it (stop).
type sampler struct {
	url     string
	start   time.Time
	done    chan struct{}
	wg      sync.WaitGroup
	mu      sync.Mutex
	samples []sample
}

func startSampler(url string, every time.Duration) *sampler {
	s := &sampler{url: url, start: time.Now(), done: make(chan struct{})}
	s.take() // the baseline, before any load
	s.wg.Go(func() {
		tick := time.NewTicker(every)
		defer tick.Stop()
		for {
			select {
			case <-s.done:
				return
			case <-tick.C:
				s.take()
			}
		}
	})
	return s
}

func (s *sampler) take() { s.takeAfter(false) }

func (s *sampler) takeAfter(after bool) {
	smp := sample{t: time.Since(s.start).Round(time.Second), answered: answered.Load(), after: after}
	client := http.Client{Timeout: 10 * time.Second}
	resp, err := client.Get(s.url)
	if err == nil {
		err = json.NewDecoder(resp.Body).Decode(&smp.stats)
		resp.Body.Close()
	}
	smp.err = err
	s.mu.Lock()
	defer s.mu.Unlock()
	s.samples = append(s.samples, smp)
	if err != nil {
		fmt.Printf("sample t=%-5v error: %v\n", smp.t, err)
		return
	}
	fmt.Printf("sample t=%-5v answered %9d  rss %6.1f MiB  heap live %6.1f MiB  go total %6.1f MiB  goroutines %4d  gc %d\n",
		smp.t, smp.answered, mib(smp.stats.RSS), mib(smp.stats.HeapLive), mib(smp.stats.GoTotal), smp.stats.Goroutines, smp.stats.GCCycles)
}

// stop ends the periodic samples and takes the last one after the server
// has had a moment to close the connections of the load.
func (s *sampler) stop() {
	close(s.done)
	s.wg.Wait()
	time.Sleep(2 * time.Second)
	s.takeAfter(true)
}

// report prints the series' summary. With check, it returns false unless
// the live heap stayed flat and the goroutines of the last sample (after the
// load) are within slack of the first (before it).
//
// Flat means: over the samples taken during the load at or after flatAfter
// (by then the store should hold its steady set of clients), a
// least-squares line of live heap against requests answered rises by at
// most tol of the live heap of the first of them. A line rather than the
// largest sample, because a sample also holds whatever connections and
// requests are in flight at that instant (a megabyte or so when a
// generator that fell behind catches up), and a leak is a trend with the
// requests served, not one high reading.
func (s *sampler) report(check bool, flatAfter time.Duration, tol float64, slack int) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	var ok []sample
	for _, x := range s.samples {
		if x.err == nil {
			ok = append(ok, x)
		}
	}
	if len(ok) < 2 {
		fmt.Printf("FAIL sampler: %d usable samples of %d\n", len(ok), len(s.samples))
		return false
	}
	first, last := ok[0], ok[len(ok)-1]
	var maxRSS, maxHeap, maxG uint64
	for _, x := range ok {
		maxRSS = max(maxRSS, x.stats.RSS)
		maxHeap = max(maxHeap, x.stats.HeapLive)
		maxG = max(maxG, x.stats.Goroutines)
	}
	fmt.Printf("series: rss start %.1f end %.1f max %.1f MiB; heap live start %.1f end %.1f max %.1f MiB; goroutines start %d end %d max %d\n",
		mib(first.stats.RSS), mib(last.stats.RSS), mib(maxRSS), mib(first.stats.HeapLive), mib(last.stats.HeapLive), mib(maxHeap),
		first.stats.Goroutines, last.stats.Goroutines, maxG)
	if !check {
		return true
	}
	var steady []sample
	for _, x := range ok {
		if x.t >= flatAfter && !x.after {
			steady = append(steady, x)
		}
	}
	if len(steady) < 3 {
		fmt.Printf("FAIL flat: %d samples during the load at or after %v, want 3 or more\n", len(steady), flatAfter)
		return false
	}
	pass := true
	ref, end := steady[0], steady[len(steady)-1]
	slope := fit(steady) // bytes per request
	reqs := float64(end.answered - ref.answered)
	growth := slope * reqs / float64(ref.stats.HeapLive)
	var hi, rssHi uint64
	for _, x := range steady {
		hi = max(hi, x.stats.HeapLive)
		rssHi = max(rssHi, x.stats.RSS)
	}
	verdict := "flat"
	if growth > tol {
		verdict, pass = "FAIL: grew", false
	}
	fmt.Printf("heap live from t=%v to t=%v (%d samples, %.0f requests): %.1f to %.1f MiB, largest %.1f MiB; fitted trend %+.2f bytes per request, %+.1f%% over the span (tolerance %.0f%%): %s\n",
		ref.t, end.t, len(steady), reqs, mib(ref.stats.HeapLive), mib(end.stats.HeapLive), mib(hi), slope, 100*growth, 100*tol, verdict)
	fmt.Printf("rss over the same span: %.1f to %.1f MiB, largest %.1f MiB\n", mib(ref.stats.RSS), mib(end.stats.RSS), mib(rssHi))
	verdict = "back to baseline"
	if last.stats.Goroutines > first.stats.Goroutines+uint64(slack) {
		verdict, pass = "FAIL: grew", false
	}
	fmt.Printf("goroutines before the load %d, after it %d (slack %d): %s\n", first.stats.Goroutines, last.stats.Goroutines, slack, verdict)
	return pass
}

// fit is the least-squares slope of live heap bytes against requests
// answered.
func fit(xs []sample) float64 {
	var sx, sy, sxx, sxy float64
	n := float64(len(xs))
	for _, x := range xs {
		a, h := float64(x.answered), float64(x.stats.HeapLive)
		sx += a
		sy += h
		sxx += a * a
		sxy += a * h
	}
	d := n*sxx - sx*sx
	if d == 0 {
		return 0
	}
	return (n*sxy - sx*sy) / d
}

func mib(b uint64) float64 { return float64(b) / (1 << 20) }
