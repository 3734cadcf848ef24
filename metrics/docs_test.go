package metrics_test

import (
	"encoding/json"
	"fmt"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/ratekit/ratekit/metrics"
)

// The docs that name metrics, relative to this package.
const (
	rulesFile     = "../docs/alerts.rules.yml"
	dashboardFile = "../docs/grafana-dashboard.json"
	metricsDoc    = "../docs/metrics.md"
)

var metricRef = regexp.MustCompile(`ratekit_[a-z_]+`)

// exportedMetrics returns the names the Collector describes (with every
// optional metric enabled), each with its type from a gather.
func exportedMetrics(t *testing.T) map[string]dto.MetricType {
	t.Helper()
	col := metrics.New(metrics.Config{Store: "memory", Keys: &fakeKeys{}})
	descs := make(chan *prometheus.Desc)
	go func() { col.Describe(descs); close(descs) }()
	fqName := regexp.MustCompile(`fqName: "([^"]+)"`)
	out := map[string]dto.MetricType{}
	for d := range descs {
		m := fqName.FindStringSubmatch(d.String())
		if m == nil {
			t.Fatalf("Describe sent %v, cannot read its name", d)
		}
		out[m[1]] = -1
	}
	// Types come from a gather, after every vector has one series.
	col.ObserveRequest(ctx, "/a", "GET", "limited", "minute")
	col.ObserveStoreError(ctx, "timeout")
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(col)
	for name, mf := range gather(t, reg) {
		if _, ok := out[name]; !ok {
			t.Fatalf("gathered %s, which Describe did not send", name)
		}
		out[name] = mf.GetType()
	}
	for name, typ := range out {
		if typ == -1 {
			t.Fatalf("Describe sent %s, which a gather did not return", name)
		}
	}
	return out
}

// checkRefs returns an error naming every metric referenced in exprs that
// the Collector does not export. A histogram may be referenced with its
// _bucket, _sum or _count series; nothing else may carry those suffixes.
func checkRefs(exported map[string]dto.MetricType, source string, exprs []string) error {
	var unknown []string
	for _, e := range exprs {
		for _, name := range metricRef.FindAllString(e, -1) {
			if _, ok := exported[name]; ok {
				continue
			}
			found := false
			for _, suffix := range []string{"_bucket", "_sum", "_count"} {
				if base, ok := strings.CutSuffix(name, suffix); ok && exported[base] == dto.MetricType_HISTOGRAM {
					found = true
				}
			}
			if !found && !slices.Contains(unknown, name) {
				unknown = append(unknown, name)
			}
		}
	}
	if len(unknown) > 0 {
		return fmt.Errorf("%s references metrics the collector does not export: %s", source, strings.Join(unknown, ", "))
	}
	return nil
}

// ruleExprs returns the expr of every rule in a Prometheus rules file, read
// line by line: an inline expr, or a block scalar (| or >) made of the
// following lines indented deeper than the expr key. It also checks the
// shape a rules file needs: a top-level groups key, and one expr per alert
// or record.
func ruleExprs(text string) ([]string, error) {
	lines := strings.Split(text, "\n")
	var exprs []string
	groups, rules := false, 0
	for i := 0; i < len(lines); i++ {
		line := lines[i]
		trimmed := strings.TrimSpace(line)
		switch {
		case strings.HasPrefix(line, "groups:"):
			groups = true
		case strings.HasPrefix(trimmed, "- alert:"), strings.HasPrefix(trimmed, "- record:"):
			rules++
		}
		rest, ok := strings.CutPrefix(trimmed, "expr:")
		if !ok {
			continue
		}
		rest = strings.TrimSpace(rest)
		if rest == "" || !strings.ContainsAny(rest[:1], "|>") {
			if rest == "" {
				return nil, fmt.Errorf("line %d: empty expr", i+1)
			}
			exprs = append(exprs, rest)
			continue
		}
		indent := len(line) - len(strings.TrimLeft(line, " "))
		var block []string
		for i+1 < len(lines) {
			next := lines[i+1]
			if strings.TrimSpace(next) != "" && len(next)-len(strings.TrimLeft(next, " ")) <= indent {
				break
			}
			block = append(block, strings.TrimSpace(next))
			i++
		}
		e := strings.TrimSpace(strings.Join(block, "\n"))
		if e == "" {
			return nil, fmt.Errorf("line %d: empty expr block", i+1)
		}
		exprs = append(exprs, e)
	}
	if !groups {
		return nil, fmt.Errorf("no top-level groups key")
	}
	if rules == 0 || rules != len(exprs) {
		return nil, fmt.Errorf("%d rules but %d exprs", rules, len(exprs))
	}
	return exprs, nil
}

// dashboard is the part of a Grafana dashboard the test reads.
type dashboard struct {
	SchemaVersion int     `json:"schemaVersion"`
	Title         string  `json:"title"`
	UID           string  `json:"uid"`
	Panels        []panel `json:"panels"`
	Templating    struct {
		List []struct {
			Name       string          `json:"name"`
			Type       string          `json:"type"`
			Query      json.RawMessage `json:"query"`
			Definition string          `json:"definition"`
			Datasource *datasource     `json:"datasource"`
		} `json:"list"`
	} `json:"templating"`
}

type panel struct {
	Title      string      `json:"title"`
	Type       string      `json:"type"`
	Datasource *datasource `json:"datasource"`
	Targets    []struct {
		Expr       string      `json:"expr"`
		Datasource *datasource `json:"datasource"`
	} `json:"targets"`
	Panels []panel `json:"panels"` // inside a collapsed row
}

type datasource struct {
	Type string `json:"type"`
	UID  string `json:"uid"`
}

// dashboardExprs returns every PromQL expression in a Grafana dashboard:
// panel targets and query-variable definitions. It checks that the
// dashboard has a Prometheus data-source variable and that every panel and
// query uses it, so the dashboard imports into any Grafana.
func dashboardExprs(data []byte) ([]string, error) {
	var d dashboard
	if err := json.Unmarshal(data, &d); err != nil {
		return nil, err
	}
	var errs []string
	if d.SchemaVersion < 36 {
		errs = append(errs, fmt.Sprintf("schemaVersion %d, want ≥ 36", d.SchemaVersion))
	}
	if d.Title == "" || d.UID == "" {
		errs = append(errs, "missing title or uid")
	}
	dsVar := ""
	var exprs []string
	for _, v := range d.Templating.List {
		switch v.Type {
		case "datasource":
			if string(v.Query) == `"prometheus"` {
				dsVar = "${" + v.Name + "}"
			}
		case "query":
			exprs = append(exprs, v.Definition)
			var q struct {
				Query string `json:"query"`
			}
			if json.Unmarshal(v.Query, &q) == nil {
				exprs = append(exprs, q.Query)
			}
		}
	}
	if dsVar == "" {
		errs = append(errs, "no datasource variable with query prometheus")
	}
	usesVar := func(ds *datasource) bool { return ds != nil && ds.Type == "prometheus" && ds.UID == dsVar }
	for _, v := range d.Templating.List {
		if v.Type == "query" && !usesVar(v.Datasource) {
			errs = append(errs, fmt.Sprintf("variable %q does not use %s", v.Name, dsVar))
		}
	}
	var walk func([]panel)
	walk = func(ps []panel) {
		for _, p := range ps {
			walk(p.Panels)
			if p.Type == "row" {
				continue
			}
			if !usesVar(p.Datasource) {
				errs = append(errs, fmt.Sprintf("panel %q does not use %s", p.Title, dsVar))
			}
			if len(p.Targets) == 0 {
				errs = append(errs, fmt.Sprintf("panel %q has no targets", p.Title))
			}
			for _, tg := range p.Targets {
				if strings.TrimSpace(tg.Expr) == "" || !usesVar(tg.Datasource) {
					errs = append(errs, fmt.Sprintf("panel %q: a target has no expr or does not use %s", p.Title, dsVar))
				}
				exprs = append(exprs, tg.Expr)
			}
		}
	}
	walk(d.Panels)
	if len(errs) > 0 {
		return nil, fmt.Errorf("%s", strings.Join(errs, "; "))
	}
	return exprs, nil
}

func readDoc(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("read %s: %v", path, err)
	}
	return string(b)
}

// TestDocsReferenceExportedMetrics fails if the alert rules, the dashboard
// or docs/metrics.md name a metric the collector does not export, and if
// any exported metric is missing from docs/metrics.md or the dashboard.
func TestDocsReferenceExportedMetrics(t *testing.T) {
	exported := exportedMetrics(t)

	rules, err := ruleExprs(readDoc(t, rulesFile))
	if err != nil {
		t.Fatalf("%s: %v", rulesFile, err)
	}
	dash, err := dashboardExprs([]byte(readDoc(t, dashboardFile)))
	if err != nil {
		t.Fatalf("%s: %v", dashboardFile, err)
	}
	doc := readDoc(t, metricsDoc)

	for _, tc := range []struct {
		source string
		exprs  []string
	}{
		{rulesFile, rules},
		{dashboardFile, dash},
		{metricsDoc, []string{doc}},
	} {
		if err := checkRefs(exported, tc.source, tc.exprs); err != nil {
			t.Error(err)
		}
		for _, e := range tc.exprs {
			if !metricRef.MatchString(e) {
				t.Errorf("%s: expression %q names no ratekit metric", tc.source, e)
			}
		}
	}

	// Every exported metric is documented and on the dashboard.
	dashText := strings.Join(dash, "\n")
	for name := range exported {
		if !strings.Contains(doc, "`"+name+"`") {
			t.Errorf("%s does not document %s", metricsDoc, name)
		}
		if !regexp.MustCompile(`\b` + name + `(_bucket|_sum|_count)?\b`).MatchString(dashText) {
			t.Errorf("%s has no panel for %s", dashboardFile, name)
		}
	}

	// The rules file alerts on the three store conditions.
	all := strings.Join(rules, "\n")
	for _, name := range []string{"ratekit_store_errors_total", "ratekit_circuit_state", "ratekit_store_fallback_active"} {
		if !strings.Contains(all, name) {
			t.Errorf("%s has no rule on %s", rulesFile, name)
		}
	}
}

// TestDocCheckersCatchMistakes shows the checks above can fail.
func TestDocCheckersCatchMistakes(t *testing.T) {
	exported := exportedMetrics(t)
	for _, tc := range []struct {
		name string
		expr string
		ok   bool
	}{
		{"known counter", `rate(ratekit_requests_total[5m])`, true},
		{"histogram bucket", `rate(ratekit_decision_duration_seconds_bucket[5m])`, true},
		{"histogram count", `rate(ratekit_decision_duration_seconds_count[5m])`, true},
		{"unknown metric", `rate(ratekit_bogus_total[5m])`, false},
		{"typo", `rate(ratekit_request_total[5m])`, false},
		{"bucket of a counter", `rate(ratekit_requests_total_bucket[5m])`, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := checkRefs(exported, "test", []string{tc.expr})
			if (err == nil) != tc.ok {
				t.Errorf("checkRefs(%q) = %v, want ok %v", tc.expr, err, tc.ok)
			}
		})
	}

	rules := "groups:\n  - name: x\n    rules:\n      - alert: A\n        expr: |\n          sum(\n            ratekit_bogus_total\n          ) > 0\n        for: 1m\n      - alert: B\n        expr: ratekit_circuit_state == 2\n"
	exprs, err := ruleExprs(rules)
	if err != nil {
		t.Fatalf("ruleExprs: %v", err)
	}
	want := []string{"sum(\nratekit_bogus_total\n) > 0", "ratekit_circuit_state == 2"}
	if !slices.Equal(exprs, want) {
		t.Errorf("ruleExprs = %q, want %q", exprs, want)
	}
	if err := checkRefs(exported, "rules", exprs); err == nil || !strings.Contains(err.Error(), "ratekit_bogus_total") {
		t.Errorf("checkRefs(block expr with ratekit_bogus_total) = %v, want an error naming it", err)
	}
	if _, err := ruleExprs("rules:\n  - alert: A\n    expr: up\n"); err == nil {
		t.Errorf("ruleExprs(no groups) = nil error, want one")
	}

	if _, err := dashboardExprs([]byte(`{"schemaVersion": 39, "title": "x", "uid": "x", "panels": [{"title": "p", "type": "timeseries", "targets": [{"expr": "ratekit_circuit_state"}]}]}`)); err == nil {
		t.Errorf("dashboardExprs(no datasource variable) = nil error, want one")
	}
}
