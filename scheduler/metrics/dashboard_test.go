package metrics

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const dashboardFile = "../../deploy/grafana/petite.json"

// promqlKeywords are the bare words of PromQL that name no series.
var promqlKeywords = []string{"by", "without", "on", "ignoring", "group_left", "group_right", "and", "or", "unless", "bool", "offset", "inf", "nan"}

var (
	reString  = regexp.MustCompile(`"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'`)
	reMatcher = regexp.MustCompile(`\{[^}]*\}`)
	reRange   = regexp.MustCompile(`\[[^\]]*\]`)
	reGroup   = regexp.MustCompile(`\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)`)
	reIdent   = regexp.MustCompile(`[A-Za-z_:][A-Za-z0-9_:]*`)
)

// seriesNames returns the metric names a PromQL expression selects: the
// bare identifiers left once strings, label matchers, ranges and grouping
// clauses are taken out, that are neither functions (followed by "(") nor
// keywords.
func seriesNames(expr string) []string {
	e := reString.ReplaceAllString(expr, `""`)
	e = reMatcher.ReplaceAllString(e, " ")
	e = reRange.ReplaceAllString(e, " ")
	e = reGroup.ReplaceAllString(e, " ")
	var out []string
	for _, loc := range reIdent.FindAllStringIndex(e, -1) {
		word := e[loc[0]:loc[1]]
		if loc[0] > 0 && (e[loc[0]-1] >= '0' && e[loc[0]-1] <= '9' || e[loc[0]-1] == '.') {
			continue // the unit of a number: 5m, 1e3
		}
		rest := strings.TrimLeft(e[loc[1]:], " \t\n")
		if strings.HasPrefix(rest, "(") || slices.Contains(promqlKeywords, strings.ToLower(word)) {
			continue
		}
		out = append(out, word)
	}
	return out
}

// exported reports whether a selected name is one petite exports: a
// family, or a histogram family's _bucket, _sum or _count series.
func exported(name string, names []string) bool {
	if slices.Contains(names, name) {
		return true
	}
	for _, suffix := range []string{"_bucket", "_sum", "_count"} {
		if base, ok := strings.CutSuffix(name, suffix); ok && slices.Contains(names, base) && strings.HasSuffix(base, "_seconds") {
			return true
		}
	}
	return false
}

// The expression reader itself, on the forms the dashboard uses.
func TestSeriesNames(t *testing.T) {
	for _, tc := range []struct {
		expr string
		want []string
	}{
		{`sum(max by (pool, model) (petite_gpus_allocated{pool=~"$pool"}))`, []string{"petite_gpus_allocated"}},
		{`histogram_quantile(0.99, sum by (le) (rate(petite_plan_commit_duration_seconds_bucket[$__rate_interval])))`, []string{"petite_plan_commit_duration_seconds_bucket"}},
		{`petite_raft_commit_index - petite_raft_applied_index`, []string{"petite_raft_commit_index", "petite_raft_applied_index"}},
		{`a / on(instance) group_left(x) b > bool 1e3`, []string{"a", "b"}},
		{`rate(up[5m]) offset 1h`, []string{"up"}},
	} {
		assert.Equal(t, tc.want, seriesNames(tc.expr), tc.expr)
	}
}

// Every series the dashboard's queries select, and every metric its
// variables read labels from, is one the server exports.
func TestDashboardUsesExportedMetrics(t *testing.T) {
	b, err := os.ReadFile(dashboardFile)
	require.NoError(t, err)
	var dash struct {
		Title  string `json:"title"`
		Panels []struct {
			Title   string `json:"title"`
			Type    string `json:"type"`
			Targets []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
		Templating struct {
			List []struct {
				Name       string `json:"name"`
				Type       string `json:"type"`
				Definition string `json:"definition"`
			} `json:"list"`
		} `json:"templating"`
	}
	require.NoError(t, json.Unmarshal(b, &dash), dashboardFile)
	names := Names()
	used := map[string]bool{}
	for _, p := range dash.Panels {
		if p.Type == "row" {
			continue
		}
		require.NotEmpty(t, p.Targets, "panel %q has no query", p.Title)
		for _, tg := range p.Targets {
			sel := seriesNames(tg.Expr)
			assert.NotEmpty(t, sel, "panel %q: %s selects no series", p.Title, tg.Expr)
			for _, n := range sel {
				assert.True(t, exported(n, names), "panel %q: %s is not a metric petite exports (%s)", p.Title, n, tg.Expr)
				used[n] = true
			}
		}
	}
	labelValues := regexp.MustCompile(`label_values\(\s*([A-Za-z_:][A-Za-z0-9_:]*)\s*,`)
	for _, v := range dash.Templating.List {
		if v.Type != "query" {
			continue
		}
		m := labelValues.FindStringSubmatch(v.Definition)
		require.NotNil(t, m, "variable %s: want label_values(METRIC, LABEL), got %q", v.Name, v.Definition)
		assert.True(t, exported(m[1], names), "variable %s: %s is not a metric petite exports", v.Name, m[1])
	}
	// The dashboard shows the headline figures.
	for _, n := range []string{"petite_stranded_gpus", "petite_queued_jobs", "petite_pending_gpus", "petite_gpus_allocated",
		"petite_placements_total", "petite_scheduling_pass_duration_seconds_bucket", "petite_raft_state"} {
		assert.True(t, used[n], "the dashboard does not show %s", n)
	}
}

// dashboardExprs returns every query of the dashboard's panels.
func dashboardExprs(t *testing.T) []string {
	t.Helper()
	b, err := os.ReadFile(dashboardFile)
	require.NoError(t, err)
	var dash struct {
		Panels []struct {
			Targets []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
	}
	require.NoError(t, json.Unmarshal(b, &dash), dashboardFile)
	var out []string
	for _, p := range dash.Panels {
		for _, tg := range p.Targets {
			out = append(out, tg.Expr)
		}
	}
	return out
}

// Every query parses as PromQL: promtool checks them as recording rules,
// Grafana's variables replaced by values (Debian package prometheus;
// skipped where it is not installed).
func TestDashboardQueriesParse(t *testing.T) {
	bin, err := exec.LookPath("promtool")
	if err != nil {
		t.Skip("promtool is not installed (Debian package prometheus): the dashboard's PromQL is not parsed here")
	}
	var rules strings.Builder
	rules.WriteString("groups:\n- name: dashboard\n  rules:\n")
	exprs := dashboardExprs(t)
	require.NotEmpty(t, exprs)
	for i, e := range exprs {
		e = strings.NewReplacer("$__rate_interval", "5m", "$pool", ".*").Replace(e)
		b, err := json.Marshal(e) // a JSON string is a YAML string
		require.NoError(t, err)
		fmt.Fprintf(&rules, "  - record: dashboard:query%d\n    expr: %s\n", i, b)
	}
	file := filepath.Join(t.TempDir(), "rules.yaml")
	require.NoError(t, os.WriteFile(file, []byte(rules.String()), 0o644))
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, bin, "check", "rules", file).CombinedOutput()
	require.NoError(t, err, "promtool check rules:\n%s\n%s", out, rules.String())
	assert.Contains(t, string(out), fmt.Sprintf("%d rules found", len(exprs)))
}

// docs/metrics.md names every metric, in its table.
func TestMetricsDocListsEveryMetric(t *testing.T) {
	b, err := os.ReadFile("../../docs/metrics.md")
	require.NoError(t, err)
	doc := string(b)
	for _, n := range Names() {
		assert.Contains(t, doc, "| `"+n+"` |", "docs/metrics.md has no row for %s", n)
	}
}
