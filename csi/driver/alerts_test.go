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
