package driver_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/nvmeof/nvmeof/shared/nvme/kernel/kerneltest"
)

// Two NICs to one target port is the common two-path layout: portal 1 and
// portal 2 differ only in host_traddr (or host_iface), and the plugin
// rightly takes them for two paths. The per-path metrics must not fold
// them into one: with one of them missing for 30 s while the other is
// live, the missing one has its own series, 30 s not live, and its own
// reconnect and heal once the healer brings it back; the live one has
// none of these.
func TestPortalMetricsKeepTwoSourceAddressesApart(t *testing.T) {
	tests := []struct {
		name string
		key  string // the volume context key of the source
		a, b string // the sources of portals 1 and 2; b goes missing
	}{
		{name: "host_traddr", key: "host_traddr", a: "127.0.0.2", b: "127.0.0.3"},
		{name: "host_iface", key: "host_iface", a: "eth1", b: "eth2"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e, clk := newMultipathEnv(t, kerneltest.WithInterface("eth1", "192.0.2.1/24"), kerneltest.WithInterface("eth2", "198.51.100.1/24"))
			req := e.stageReq("vol", testNQN, "1", mountCap("", rwo))
			req.VolumeContext["trsvcid"] = "4420"
			req.VolumeContext[tt.key] = tt.a
			req.VolumeContext["traddr_2"] = "127.0.0.1"
			req.VolumeContext["trsvcid_2"] = "4420"
			req.VolumeContext[tt.key+"_2"] = tt.b
			if _, err := e.drv.NodeStageVolume(context.Background(), req); err != nil {
				t.Fatalf("stage: %v", err)
			}
			cs, _ := e.fake.Controllers()
			if len(cs) != 2 {
				t.Fatalf("controllers %v, want one per source", cs)
			}
			source := func(s string) string { return `host_iface="",host_traddr="` + s + `"` }
			if tt.key == "host_iface" {
				source = func(s string) string { return `host_iface="` + s + `",host_traddr=""` }
			}
			var stays, gone string
			for _, c := range cs {
				switch tt.b {
				case c.HostTrAddr, c.HostIface:
					gone = c.Name
				default:
					stays = c.Name
				}
			}
			if gone == "" {
				t.Fatalf("no controller from %s among %v", tt.b, cs)
			}

			e.drv.Observe()
			if err := e.fake.RemoveController(gone); err != nil {
				t.Fatal(err)
			}
			e.drv.Observe()
			clk.advance(30 * time.Second)
			e.drv.Observe()
			if st := e.health("vol"); len(st) != 1 || st[0].GetReason() != "PathsDegraded" {
				t.Fatalf("health %v: want the volume degraded", st)
			}
			const at = `{address="127.0.0.1",`
			sub := `subsystem="` + testNQN + `"`
			body := scrape(t, e)
			for _, want := range []string{
				`nvmeof_csi_path_state` + at + `controller="",` + source(tt.b) + `,port="4420",state="missing",` + sub + `} 1`,
				`nvmeof_csi_path_state` + at + `controller="` + stays + `",` + source(tt.a) + `,port="4420",state="live",` + sub + `} 1`,
				`nvmeof_csi_path_not_live_seconds_total` + at + source(tt.b) + `,port="4420",` + sub + `} 30`,
				`nvmeof_csi_volumes_degraded 1`,
			} {
				if !strings.Contains(body, want) {
					t.Errorf("metrics lack %s", want)
				}
			}
			if l := seriesOf(body, "nvmeof_csi_path_not_live_seconds_total"+at+source(tt.a)); l != nil {
				t.Errorf("the live path was counted not live: %q", l)
			}

			if n, err := e.drv.HealPaths(context.Background()); n != 1 || err != nil {
				t.Fatalf("HealPaths = %d, %v", n, err)
			}
			e.drv.Observe()
			body = scrape(t, e)
			for _, want := range []string{
				`nvmeof_csi_path_reconnects_total` + at + source(tt.b) + `,port="4420",` + sub + `} 1`,
				`nvmeof_csi_path_heals_total` + at + source(tt.b) + `,port="4420",result="reconnected",` + sub + `} 1`,
				`nvmeof_csi_volumes_degraded 0`,
			} {
				if !strings.Contains(body, want) {
					t.Errorf("metrics lack %s", want)
				}
			}
			for _, metric := range []string{"nvmeof_csi_path_reconnects_total", "nvmeof_csi_path_heals_total"} {
				if l := seriesOf(body, metric+at+source(tt.a)); l != nil {
					t.Errorf("the path that stayed live has %s: %q", metric, l)
				}
			}
			for _, l := range seriesOf(body, "nvmeof_csi_path_state"+at+`controller="",`) {
				t.Errorf("the healed path's missing series stayed: %s", l)
			}
		})
	}
}

// seriesOf lists the lines of a scrape that start with prefix.
func seriesOf(body, prefix string) []string {
	var out []string
	for _, l := range strings.Split(body, "\n") {
		if strings.HasPrefix(l, prefix) {
			out = append(out, l)
		}
	}
	return out
}
