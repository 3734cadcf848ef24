package ratekitotel_test

import "github.com/prometheus/client_golang/prometheus"

// fakeKeys stands for a memory store's key count and evictions.
type fakeKeys struct {
	n       int
	evicted uint64
}

func (k *fakeKeys) Len() int          { return k.n }
func (k *fakeKeys) Evictions() uint64 { return k.evicted }

// zero returns 0 at run time, so that 1/zero() is +Inf without a constant
// division the compiler refuses.
func zero() float64 { return 0 }

// sample is one Prometheus series: its labels in order and its value (a
// histogram's count).
type sample struct {
	labels [][2]string
	value  float64
}

// gather collects c on a registry of its own, by metric name.
func gather(c prometheus.Collector) (map[string][]sample, error) {
	reg := prometheus.NewRegistry()
	if err := reg.Register(c); err != nil {
		return nil, err
	}
	fams, err := reg.Gather()
	if err != nil {
		return nil, err
	}
	out := map[string][]sample{}
	for _, f := range fams {
		for _, m := range f.GetMetric() {
			var s sample
			for _, l := range m.GetLabel() {
				s.labels = append(s.labels, [2]string{l.GetName(), l.GetValue()})
			}
			s.value = m.GetCounter().GetValue() + m.GetGauge().GetValue() + float64(m.GetHistogram().GetSampleCount())
			out[f.GetName()] = append(out[f.GetName()], s)
		}
	}
	return out, nil
}
