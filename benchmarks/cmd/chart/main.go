// Command chart draws results/bench.txt as an SVG bar chart: one panel per
// scenario, one bar per peer, the median ns/op of the runs, each panel on its
// own linear scale. It writes the SVG itself; no plotting dependency.
//
//	go run ./cmd/chart -in results/bench.txt -out results/chart.svg
package main

import (
	"bufio"
	"flag"
	"fmt"
	"html"
	"io"
	"log"
	"os"
	"slices"
	"strconv"
	"strings"
)

// series holds the ns/op of every run of one scenario and peer.
type series struct {
	scenario, peer string
	ns             []float64
}

func main() {
	in := flag.String("in", "results/bench.txt", "go test -bench output")
	out := flag.String("out", "results/chart.svg", "SVG to write")
	prefix := flag.String("prefix", "BenchmarkPeers/", "benchmark name prefix; the rest is <scenario>/<peer>")
	flag.Parse()

	f, err := os.Open(*in)
	if err != nil {
		log.Fatal(err)
	}
	all, err := parse(f, *prefix)
	f.Close()
	if err != nil {
		log.Fatal(err)
	}
	if len(all) == 0 {
		log.Fatalf("chart: no %s lines with ns/op in %s", *prefix, *in)
	}
	w, err := os.Create(*out)
	if err != nil {
		log.Fatal(err)
	}
	draw(w, all)
	if err := w.Close(); err != nil {
		log.Fatal(err)
	}
}

// parse reads benchmark lines: name-P, iterations, then value/unit pairs.
func parse(r io.Reader, prefix string) ([]*series, error) {
	var all []*series
	byName := map[string]*series{}
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 4 || !strings.HasPrefix(fields[0], prefix) {
			continue
		}
		name := strings.TrimPrefix(fields[0], prefix)
		if i := strings.LastIndexByte(name, '-'); i > 0 {
			if _, err := strconv.Atoi(name[i+1:]); err == nil {
				name = name[:i] // the -GOMAXPROCS suffix
			}
		}
		i := strings.LastIndexByte(name, '/')
		if i < 0 {
			continue
		}
		for j := 2; j+1 < len(fields); j += 2 {
			if fields[j+1] != "ns/op" {
				continue
			}
			v, err := strconv.ParseFloat(fields[j], 64)
			if err != nil {
				return nil, fmt.Errorf("chart: %q: %v", sc.Text(), err)
			}
			s := byName[name]
			if s == nil {
				s = &series{scenario: name[:i], peer: name[i+1:]}
				byName[name] = s
				all = append(all, s)
			}
			s.ns = append(s.ns, v)
		}
	}
	return all, sc.Err()
}

func median(v []float64) float64 {
	s := slices.Clone(v)
	slices.Sort(s)
	n := len(s)
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}

const (
	width    = 760
	labelW   = 130 // peer names
	barMaxW  = 480
	barH     = 18
	barGap   = 6
	titleH   = 28
	panelGap = 18
	margin   = 16
)

// draw writes one panel per scenario in order of first appearance.
func draw(w io.Writer, all []*series) {
	var scenarios []string
	groups := map[string][]*series{}
	for _, s := range all {
		if _, ok := groups[s.scenario]; !ok {
			scenarios = append(scenarios, s.scenario)
		}
		groups[s.scenario] = append(groups[s.scenario], s)
	}
	height := margin + 30
	for _, sc := range scenarios {
		height += titleH + len(groups[sc])*(barH+barGap) + panelGap
	}
	fmt.Fprintf(w, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" font-family="sans-serif" font-size="12">`+"\n", width, height, width, height)
	fmt.Fprintf(w, `<rect width="100%%" height="100%%" fill="white"/>`+"\n")
	fmt.Fprintf(w, `<text x="%d" y="%d" font-size="15" font-weight="bold">ns/op per scenario (median of runs; shorter is faster; each panel has its own scale)</text>`+"\n", margin, margin+14)
	y := margin + 30
	for _, sc := range scenarios {
		g := groups[sc]
		fmt.Fprintf(w, `<text x="%d" y="%d" font-size="13" font-weight="bold">%s</text>`+"\n", margin, y+18, html.EscapeString(sc))
		y += titleH
		maxV := 0.0
		for _, s := range g {
			maxV = max(maxV, median(s.ns))
		}
		for _, s := range g {
			v := median(s.ns)
			bw := 1.0
			if maxV > 0 {
				bw = max(1, v/maxV*barMaxW)
			}
			fill := "#9aa5b1"
			if strings.HasPrefix(s.peer, "ratekit") {
				fill = "#2f6fdf"
			}
			fmt.Fprintf(w, `<text x="%d" y="%d" text-anchor="end">%s</text>`+"\n", margin+labelW-8, y+barH-5, html.EscapeString(s.peer))
			fmt.Fprintf(w, `<rect x="%d" y="%d" width="%.1f" height="%d" fill="%s"/>`+"\n", margin+labelW, y, bw, barH, fill)
			fmt.Fprintf(w, `<text x="%.1f" y="%d">%s ns</text>`+"\n", float64(margin+labelW)+bw+6, y+barH-5, format(v))
			y += barH + barGap
		}
		y += panelGap
	}
	fmt.Fprintln(w, `</svg>`)
}

// format prints v with three significant digits and thousands separators.
func format(v float64) string {
	s := strconv.FormatFloat(v, 'f', 0, 64)
	if v < 100 {
		s = strconv.FormatFloat(v, 'f', 1, 64)
	}
	if len(s) <= 3 || strings.Contains(s, ".") {
		return s
	}
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	return b.String()
}
