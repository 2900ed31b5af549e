package driver

import (
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

// The Prometheus alerts shipped in examples/prometheus are about these
// metrics: a renamed metric or label must not leave an alert that never
// fires. promtool tests the rules' logic (make test-alerts); this test ties
// their names to the plugin.
func TestAlertsUseThePluginsMetrics(t *testing.T) {
	rules, err := os.ReadFile("../../examples/prometheus/nvmeof-csi-alerts.yml")
	if err != nil {
		t.Fatal(err)
	}
	m := NewMetrics()
	descs := make(chan *prometheus.Desc, 64)
	go func() {
		for _, c := range []prometheus.Collector{m.rpcs, m.rpcSeconds, m.controllers, m.reconnects, m.fsErrors,
			m.pathState, m.pathANA, m.pathReconnects, m.pathNotLive, m.pathHeals, m.volumePaths, m.volumeLivePaths, m.volumesDegraded} {
			c.Describe(descs)
		}
		close(descs)
	}()
	labels := map[string][]string{}
	fqName := regexp.MustCompile(`fqName: "([^"]+)"`)
	varLabels := regexp.MustCompile(`variableLabels: \{([^}]*)\}`)
	for d := range descs {
		name := fqName.FindStringSubmatch(d.String())[1]
		var ls []string
		if v := varLabels.FindStringSubmatch(d.String()); v != nil && v[1] != "" {
			ls = strings.Split(v[1], ",")
		}
		labels[name] = ls
	}
	used := regexp.MustCompile(`(nvmeof_csi_[a-z_]+)(\{[^}]*\})?`).FindAllStringSubmatch(string(rules), -1)
	if len(used) == 0 {
		t.Fatal("the rules name no nvmeof_csi metric")
	}
	for _, u := range used {
		have, ok := labels[u[1]]
		if !ok {
			t.Errorf("the rules use %s, which the plugin does not export", u[1])
			continue
		}
		for _, sel := range regexp.MustCompile(`([a-z_]+)\s*(=~|!=|=)`).FindAllStringSubmatch(u[2], -1) {
			if !slices.Contains(have, sel[1]) {
				t.Errorf("the rules select %s on %s, which has labels %v", sel[1], u[1], have)
			}
		}
	}
	// An aggregation groups by labels its metric has, and one over a
	// per-path metric keeps every label naming a path: without the source
	// two NICs to one target port would be one alert.
	aggs := regexp.MustCompile(`by \(([^)]*)\)\s*\((nvmeof_csi_[a-z_]+)`).FindAllStringSubmatch(string(rules), -1)
	if len(aggs) == 0 {
		t.Fatal("the rules aggregate no nvmeof_csi metric")
	}
	for _, a := range aggs {
		var by []string
		for _, l := range strings.Split(a[1], ",") {
			by = append(by, strings.TrimSpace(l))
		}
		for _, l := range by {
			if l != "instance" && l != "job" && !slices.Contains(labels[a[2]], l) {
				t.Errorf("the rules group %s by %s, which has labels %v", a[2], l, labels[a[2]])
			}
		}
		if !strings.HasPrefix(a[2], "nvmeof_csi_path_") {
			continue
		}
		for _, l := range portalLabels {
			if !slices.Contains(by, l) {
				t.Errorf("the rules group %s by (%s) without %s: paths that differ only in it become one", a[2], a[1], l)
			}
		}
	}
	// The labels the rules group by and print must exist on some metric.
	for _, l := range regexp.MustCompile(`\$labels\.([a-z_]+)`).FindAllStringSubmatch(string(rules), -1) {
		found := l[1] == "instance" || l[1] == "job"
		for _, ls := range labels {
			found = found || slices.Contains(ls, l[1])
		}
		if !found {
			t.Errorf("the rules print label %s, which no metric of the plugin has", l[1])
		}
	}
}
