// Command loadgen is an open-loop, constant-rate HTTP load generator for
// examples/basic, written for ratekit's load and soak tests
// (benchmarks/load). Unlike wrk, it sends on a schedule that does not wait
// for the server: request i is due at start + i/rate, whatever happened to
// request i-1. A request is timed from its due time when its connection was
// still busy with an earlier answer at that moment, so a stalled server is
// charged for the requests it kept waiting (no coordinated omission); when
// the connection was idle it is timed from when it was written, so the
// generator's own timer slop (Go's sleeps wake up to a millisecond late on
// an idle machine) is not charged to the server.
//
// Clients are made distinct either with X-Forwarded-For (10.0.0.1, 10.0.0.2,
// …; the server must trust the generator's address as a proxy) or by
// connecting from distinct loopback source addresses (127.1.0.1, 127.1.0.2,
// …; Linux routes all of 127.0.0.0/8 to lo), one client per connection.
//
//	loadgen -target on=http://127.0.0.1:18181/v1/people -target off=http://127.0.0.1:18182/v1/people \
//		-rate 20000 -duration 15s -rounds 3
//	loadgen -target on=http://127.0.0.1:18183/v1/people -identity source -clients 100000 \
//		-per-conn 3 -rate 6000 -duration 5m -sample-url http://127.0.0.1:18184/debug/runtime?gc=1 -check-flat
//
// Several targets are run in turn, round after round, starting each round
// with the target the previous round ended with (on off, off on, on off, …)
// so that drift in a noisy machine falls on both alike. Latencies are pooled
// per target across rounds. When targets named "on" and "off" are given, it
// prints what "on" adds at p50, p99 and p99.9. It exits 1 if more than
// -max-errors of the requests failed or, with -check-flat, if the sampled
// live heap trended up with the requests served or goroutines did not
// return to their baseline.
package main

import (
	"flag"
	"fmt"
	"log"
	"math"
	"net/netip"
	"net/url"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// target is one server under test.
type target struct {
	name, addr, host, path string
}

type targetsFlag []target

func (t *targetsFlag) String() string { return fmt.Sprint(*t) }
func (t *targetsFlag) Set(s string) error {
	name, raw, ok := strings.Cut(s, "=")
	if !ok {
		name, raw = fmt.Sprintf("t%d", len(*t)+1), s
	}
	u, err := url.Parse(raw)
	if err != nil || u.Scheme != "http" || u.Host == "" {
		return fmt.Errorf("target %q: want name=http://host:port/path", s)
	}
	addr := u.Host
	if u.Port() == "" {
		addr += ":80"
	}
	path := u.RequestURI()
	*t = append(*t, target{name: name, addr: addr, host: u.Host, path: path})
	return nil
}

// config is one run's schedule and client identities.
type config struct {
	rate             float64
	warmup, duration time.Duration
	conns            int
	clients, offset  int
	identity         string // "xff" or "source"
	perConn          int    // requests per connection before a new client connects; 0 keeps it
	timeout          time.Duration
}

// result is what one run (one target, one round) measured. Only requests
// due after the warm-up are counted.
type result struct {
	target   string
	round    int
	lat      []time.Duration
	codes    map[int]int
	errors   int
	firstErr error
	maxLag   time.Duration // latest send on an idle connection: the generator's timer slop
	cpu      time.Duration // the server's CPU time while the measured requests ran, if its pid is known
	elapsed  time.Duration // from the first measured due time to the last answer
	due      int           // requests due in the measured period
}

var answered atomic.Int64 // every answer of every run, for the sampler's log

func main() {
	var targets targetsFlag
	flag.Var(&targets, "target", "name=http://host:port/path; repeat for several (on and off are compared)")
	pids := pidsFlag{}
	flag.Var(pids, "pid", "name=pid of a target's server, to report its CPU time per request (Linux /proc)")
	var cfg config
	flag.Float64Var(&cfg.rate, "rate", 1000, "requests per second, constant, open loop")
	flag.DurationVar(&cfg.duration, "duration", 10*time.Second, "measured time per run")
	flag.DurationVar(&cfg.warmup, "warmup", 2*time.Second, "time per run sent at the same rate before measuring")
	flag.IntVar(&cfg.conns, "conns", 64, "concurrent connections; each sends every conns/rate seconds")
	flag.IntVar(&cfg.clients, "clients", 100000, "distinct clients, visited round robin")
	flag.IntVar(&cfg.offset, "client-offset", 0, "number of the first client")
	flag.StringVar(&cfg.identity, "identity", "xff", "how clients differ: xff (X-Forwarded-For 10.x.y.z) or source (connect from 127.x.y.z)")
	flag.IntVar(&cfg.perConn, "per-conn", 0, "requests per connection before it closes and the next client connects (0: keep it; -identity source needs > 0 to rotate)")
	flag.DurationVar(&cfg.timeout, "timeout", 5*time.Second, "per-request timeout")
	rounds := flag.Int("rounds", 1, "rounds; each runs every target once")
	maxErrors := flag.Float64("max-errors", 0.001, "fraction of failed requests above which the exit status is 1")
	targetP99 := flag.Duration("target-added-p99", 50*time.Microsecond, "p99 latency 'on' may add to 'off' (reported, not enforced)")
	sampleURL := flag.String("sample-url", "", "a /debug/runtime URL of the server to sample (heap, RSS, goroutines)")
	sampleEvery := flag.Duration("sample-every", 15*time.Second, "interval between samples")
	checkFlat := flag.Bool("check-flat", false, "fail unless the heap stays flat after -flat-after and goroutines return to the baseline")
	flatAfter := flag.Duration("flat-after", 0, "the sample at or after this time since the start is the reference for -check-flat (0: 30% of the whole load)")
	heapTol := flag.Float64("heap-tolerance", 0.10, "-check-flat: how much the fitted live-heap trend after -flat-after may rise, as a fraction of the heap then")
	goSlack := flag.Int("goroutine-slack", 5, "-check-flat: goroutines after the load may exceed the baseline by this many")
	flag.Parse()
	if len(targets) == 0 || cfg.rate <= 0 || cfg.conns <= 0 || cfg.clients <= 0 || cfg.clients+cfg.offset > 1<<24-1<<16 {
		flag.Usage()
		os.Exit(2)
	}
	if cfg.identity != "xff" && cfg.identity != "source" {
		log.Fatalf("-identity %q: want xff or source", cfg.identity)
	}

	if *flatAfter == 0 {
		total := time.Duration(*rounds*len(targets)) * (cfg.warmup + cfg.duration)
		*flatAfter = total * 3 / 10
	}
	var smp *sampler
	if *sampleURL != "" {
		smp = startSampler(*sampleURL, *sampleEvery)
	}
	fmt.Printf("loadgen: rate %.0f/s, %d conns, %v warm-up + %v measured per run, %d rounds, %d clients by %s, %d per connection\n",
		cfg.rate, cfg.conns, cfg.warmup, cfg.duration, *rounds, cfg.clients, cfg.identity, cfg.perConn)

	var all []result
	order := slices.Clone(targets)
	for r := 1; r <= *rounds; r++ {
		for _, t := range order {
			res := run(t, cfg, pids[t.name])
			res.round = r
			fmt.Println(res.line())
			all = append(all, res)
		}
		slices.Reverse(order)
	}

	failed := false
	fmt.Println()
	pooled := map[string]result{}
	for _, t := range targets {
		p := result{target: t.name, codes: map[int]int{}}
		for _, r := range all {
			if r.target != t.name {
				continue
			}
			p.lat = append(p.lat, r.lat...)
			for c, n := range r.codes {
				p.codes[c] += n
			}
			p.errors += r.errors
			p.due += r.due
			p.elapsed += r.elapsed
			p.maxLag = max(p.maxLag, r.maxLag)
			p.cpu += r.cpu
			if p.firstErr == nil {
				p.firstErr = r.firstErr
			}
		}
		slices.Sort(p.lat)
		pooled[t.name] = p
		fmt.Println(p.line())
		if p.due == 0 || float64(p.errors) > *maxErrors*float64(p.due) {
			fmt.Printf("FAIL %s: %d of %d requests failed (first: %v)\n", t.name, p.errors, p.due, p.firstErr)
			failed = true
		}
		if p.codes[200] == 0 {
			fmt.Printf("FAIL %s: no request admitted\n", t.name)
			failed = true
		}
	}
	if on, off := pooled["on"], pooled["off"]; len(on.lat) > 0 && len(off.lat) > 0 {
		compare(all, on, off, *targetP99)
	}
	if smp != nil {
		smp.stop()
		if !smp.report(*checkFlat, *flatAfter, *heapTol, *goSlack) {
			failed = true
		}
	}
	if failed {
		os.Exit(1)
	}
}

// compare prints what "on" adds to "off": pooled percentiles, the p99
// added in each round (the two runs of a round are next to each other in
// time, so a paired difference cancels the slow drift of a shared
// machine) and their median, and the server CPU per request. The target is
// met when every round's paired difference is within it and not met when
// every round's exceeds it; when the rounds disagree the noise is larger
// than the difference, and the verdict is inconclusive.
func compare(all []result, on, off result, target time.Duration) {
	fmt.Printf("added by on, pooled: p50 %s  p99 %s  p99.9 %s",
		us(pct(on.lat, 0.5)-pct(off.lat, 0.5)), us(pct(on.lat, 0.99)-pct(off.lat, 0.99)), us(pct(on.lat, 0.999)-pct(off.lat, 0.999)))
	if on.cpu > 0 && off.cpu > 0 {
		fmt.Printf("  server cpu %s/req", us(on.cpu/time.Duration(len(on.lat))-off.cpu/time.Duration(len(off.lat))))
	}
	fmt.Println()
	p99 := map[string]map[int]time.Duration{"on": {}, "off": {}}
	for _, r := range all {
		if m := p99[r.target]; m != nil && len(r.lat) > 0 {
			m[r.round] = pct(r.lat, 0.99)
		}
	}
	var diffs []time.Duration
	var parts []string
	for r := 1; ; r++ {
		a, okA := p99["on"][r]
		b, okB := p99["off"][r]
		if !okA || !okB {
			break
		}
		diffs = append(diffs, a-b)
		parts = append(parts, us(a-b))
	}
	if len(diffs) == 0 {
		return
	}
	slices.Sort(diffs)
	med := diffs[len(diffs)/2]
	if len(diffs)%2 == 0 {
		med = (diffs[len(diffs)/2-1] + diffs[len(diffs)/2]) / 2
	}
	verdict := "inconclusive: the rounds disagree, the noise is larger than the difference"
	switch {
	case diffs[len(diffs)-1] <= target:
		verdict = "met in every round"
	case diffs[0] > target:
		verdict = "NOT met in any round"
	}
	if len(diffs) == 1 {
		verdict += " (one round: its noise unknown)"
	}
	fmt.Printf("added p99 by round: %s; median %s (target <= %s: %s)\n", strings.Join(parts, ", "), us(med), us(target), verdict)
}

// run sends to t at cfg.rate for cfg.warmup+cfg.duration; pid, when not
// zero, is the server's, whose CPU time is read when the measured period
// starts and when its last answer is in.
func run(t target, cfg config, pid int) result {
	interval := float64(time.Second) / cfg.rate
	start := time.Now().Add(20 * time.Millisecond)
	measureFrom := start.Add(cfg.warmup)
	end := measureFrom.Add(cfg.duration)
	var visits atomic.Int64
	parts := make([]result, cfg.conns)
	var lastAnswer atomic.Int64
	var wg sync.WaitGroup
	cpuStart := make(chan time.Duration, 1)
	if pid != 0 {
		go func() {
			time.Sleep(time.Until(measureFrom))
			c, err := cpuTime(pid)
			if err != nil {
				log.Printf("server cpu: %v", err)
			}
			cpuStart <- c
		}()
	}
	for w := range cfg.conns {
		wg.Go(func() {
			res := &parts[w]
			res.codes = map[int]int{}
			var (
				c       *conn
				used    int
				prevEnd time.Time
				buf     []byte
			)
			defer func() {
				if c != nil {
					c.close()
				}
			}()
			for k := 0; ; k++ {
				i := w + k*cfg.conns
				due := start.Add(time.Duration(float64(i) * interval))
				if !due.Before(end) {
					return
				}
				measured := !due.Before(measureFrom)
				now := time.Now()
				if now.Before(due) {
					time.Sleep(due.Sub(now))
					now = time.Now()
				}
				ref := due
				if !prevEnd.After(due) { // idle at its due time: time from the send
					ref = now
					if measured {
						res.maxLag = max(res.maxLag, now.Sub(due))
					}
				}
				if measured {
					res.due++
				}
				fail := func(err error) {
					if measured {
						res.errors++
						if res.firstErr == nil {
							res.firstErr = err
						}
					}
					if c != nil {
						c.close()
						c, used = nil, 0
					}
					prevEnd = time.Now()
				}
				if c == nil {
					var local netip.Addr
					if cfg.identity == "source" {
						n := int(visits.Add(1)-1) % cfg.clients
						local = clientAddr(netip.AddrFrom4([4]byte{127}), cfg.offset+n)
					}
					var err error
					if c, err = dial(t.addr, local, cfg.timeout); err != nil {
						fail(err)
						continue
					}
				}
				var xff netip.Addr
				if cfg.identity == "xff" {
					xff = clientAddr(netip.AddrFrom4([4]byte{10}), cfg.offset+i%cfg.clients)
				}
				buf = request(buf, t.host, t.path, xff)
				status, err := c.do(buf, now.Add(cfg.timeout))
				if err != nil {
					fail(err)
					continue
				}
				prevEnd = time.Now()
				answered.Add(1)
				used++
				if c.closed || (cfg.perConn > 0 && used >= cfg.perConn) {
					c.close()
					c, used = nil, 0
				}
				if measured {
					res.lat = append(res.lat, prevEnd.Sub(ref))
					res.codes[status]++
					if e := prevEnd.UnixNano(); e > lastAnswer.Load() {
						lastAnswer.Store(e) // approximate max is enough for a rate
					}
				}
			}
		})
	}
	wg.Wait()
	out := result{target: t.name, codes: map[int]int{}}
	if pid != 0 {
		if c, err := cpuTime(pid); err == nil {
			if c0 := <-cpuStart; c0 > 0 {
				out.cpu = c - c0
			}
		}
	}
	for _, p := range parts {
		out.lat = append(out.lat, p.lat...)
		for c, n := range p.codes {
			out.codes[c] += n
		}
		out.errors += p.errors
		out.due += p.due
		out.maxLag = max(out.maxLag, p.maxLag)
		if out.firstErr == nil {
			out.firstErr = p.firstErr
		}
	}
	if l := lastAnswer.Load(); l > 0 {
		out.elapsed = time.Unix(0, l).Sub(measureFrom)
	}
	slices.Sort(out.lat)
	return out
}

// line formats a result: answered rate, admitted and rejected shares,
// latency percentiles.
func (r result) line() string {
	n := len(r.lat)
	var b strings.Builder
	if r.round > 0 {
		fmt.Fprintf(&b, "round %d %-4s", r.round, r.target)
	} else {
		fmt.Fprintf(&b, "pooled  %-4s", r.target)
	}
	rate := 0.0
	if r.elapsed > 0 {
		rate = float64(n) / r.elapsed.Seconds()
	}
	other := n - r.codes[200] - r.codes[429]
	fmt.Fprintf(&b, " answered %d of %d due (%.0f/s)  200 %s  429 %s  other %d  errors %d",
		n, r.due, rate, share(r.codes[200], n), share(r.codes[429], n), other, r.errors)
	if n > 0 {
		fmt.Fprintf(&b, "  p50 %s  p90 %s  p99 %s  p99.9 %s  max %s  (send lag max %s)",
			us(pct(r.lat, 0.5)), us(pct(r.lat, 0.9)), us(pct(r.lat, 0.99)), us(pct(r.lat, 0.999)), us(r.lat[n-1]), us(r.maxLag))
		if r.cpu > 0 {
			fmt.Fprintf(&b, "  server cpu %s/req", us(r.cpu/time.Duration(n)))
		}
	}
	return b.String()
}

func share(k, n int) string {
	if n == 0 {
		return "0"
	}
	return fmt.Sprintf("%d (%.2f%%)", k, 100*float64(k)/float64(n))
}

// pct is the q-quantile of sorted (nearest rank).
func pct(sorted []time.Duration, q float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(math.Ceil(q*float64(len(sorted)))) - 1
	return sorted[min(max(i, 0), len(sorted)-1)]
}

// us formats d in microseconds with one decimal.
func us(d time.Duration) string {
	return fmt.Sprintf("%.1fµs", float64(d)/float64(time.Microsecond))
}
