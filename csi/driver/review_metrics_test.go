package driver_test

import (
	"context"
	"strings"
	"testing"
	"time"
)

// Two NICs to one target port is the common two-path layout: portal 1 and
// portal 2 differ only in host_traddr (or host_iface), and the plugin
// rightly takes them for two paths. The per-portal metrics must not fold
// them into one: with one of them missing for 30 s while the other is
// live, the seconds not live are 30 somewhere, not 0.
func TestPortalMetricsKeepTwoSourceAddressesApart(t *testing.T) {
	e, clk := newMultipathEnv(t)
	req := e.stageReq("vol", testNQN, "1", mountCap("", rwo))
	req.VolumeContext["trsvcid"] = "4420"
	req.VolumeContext["host_traddr"] = "127.0.0.2"
	req.VolumeContext["traddr_2"] = "127.0.0.1"
	req.VolumeContext["trsvcid_2"] = "4420"
	req.VolumeContext["host_traddr_2"] = "127.0.0.3"
	if _, err := e.drv.NodeStageVolume(context.Background(), req); err != nil {
		t.Fatalf("stage: %v", err)
	}
	cs, _ := e.fake.Controllers()
	if len(cs) != 2 {
		t.Fatalf("controllers %v, want one per source address", cs)
	}
	e.drv.Observe()
	var gone string
	for _, c := range cs {
		if c.HostTrAddr == "127.0.0.3" {
			gone = c.Name
		}
	}
	if gone == "" {
		t.Fatalf("no controller from 127.0.0.3 among %v", cs)
	}
	if err := e.fake.RemoveController(gone); err != nil {
		t.Fatal(err)
	}
	e.drv.Observe()
	clk.advance(30 * time.Second)
	e.drv.Observe()
	if st := e.health("vol"); len(st) != 1 || st[0].GetReason() != "PathsDegraded" {
		t.Fatalf("health %v: want the volume degraded", st)
	}
	body := scrape(t, e)
	if !strings.Contains(body, `nvmeof_csi_volumes_degraded 1`) {
		t.Errorf("volume not counted degraded:\n%s", body)
	}
	var notLive []string
	for _, l := range strings.Split(body, "\n") {
		if strings.HasPrefix(l, "nvmeof_csi_path_not_live_seconds_total{") {
			notLive = append(notLive, l)
		}
	}
	found := false
	for _, l := range notLive {
		found = found || strings.HasSuffix(l, " 30")
	}
	if !found {
		t.Errorf("a path missing for 30 s is not counted as not live (its portal is folded into the live one's): %q", notLive)
	}
}
