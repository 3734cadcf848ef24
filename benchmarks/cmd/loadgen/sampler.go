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
	err error
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

func (s *sampler) take() {
	smp := sample{t: time.Since(s.start).Round(time.Second), answered: answered.Load()}
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
	s.take()
}

// report prints the series' summary; with check, it returns false unless
// the live heap after the reference sample (the first at or after
// flatAfter) stayed within tol of it and the goroutines of the last sample
// are within slack of the first.
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
	var maxRSS, maxHeap uint64
	var maxG uint64
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
	var ref *sample
	for i := range ok {
		if ok[i].t >= flatAfter {
			ref = &ok[i]
			break
		}
	}
	pass := true
	if ref == nil {
		fmt.Printf("FAIL flat: no sample at or after %v\n", flatAfter)
		return false
	}
	var after, afterRSS uint64
	for _, x := range ok {
		if x.t > ref.t {
			after = max(after, x.stats.HeapLive)
			afterRSS = max(afterRSS, x.stats.RSS)
		}
	}
	growth := float64(after)/float64(ref.stats.HeapLive) - 1
	rssGrowth := float64(afterRSS)/float64(ref.stats.RSS) - 1
	verdict := "flat"
	if growth > tol {
		verdict, pass = "FAIL: grew", false
	}
	fmt.Printf("heap live at t=%v (reference) %.1f MiB, largest after it %.1f MiB (%+.1f%%, tolerance %.0f%%): %s; rss %.1f -> largest %.1f MiB (%+.1f%%)\n",
		ref.t, mib(ref.stats.HeapLive), mib(after), 100*growth, 100*tol, verdict, mib(ref.stats.RSS), mib(afterRSS), 100*rssGrowth)
	verdict = "back to baseline"
	if last.stats.Goroutines > first.stats.Goroutines+uint64(slack) {
		verdict, pass = "FAIL: grew", false
	}
	fmt.Printf("goroutines before the load %d, after it %d (slack %d): %s\n", first.stats.Goroutines, last.stats.Goroutines, slack, verdict)
	return pass
}

func mib(b uint64) float64 { return float64(b) / (1 << 20) }
