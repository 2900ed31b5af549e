package driver_test

// Tests of volumes with several portals (issue 12): one controller per
// path, one namespace head, stage with at least one live path, healing,
// refcounted release over the subsystem's paths, health and reconciliation
// of partial path sets.

import (
	"context"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"google.golang.org/grpc/codes"

	"github.com/nvmeof/nvmeof/csi/driver"
	"github.com/nvmeof/nvmeof/shared/nvme"
	"github.com/nvmeof/nvmeof/shared/nvme/kernel"
	"github.com/nvmeof/nvmeof/shared/nvme/kernel/kerneltest"
)

// clock is a settable time for the healer and the metrics.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// newMultipathEnv exports testNQN on a second port, 4421, and builds the
// driver with a settable clock and no jitter.
func newMultipathEnv(t *testing.T, opts ...kerneltest.Option) (*env, *clock) {
	t.Helper()
	e := newEnvIn(t, t.TempDir(), opts...)
	e.fake.AddTarget("127.0.0.1", "4421", testNQN)
	clk := &clock{now: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	e.drv = e.driverWith(func(c *driver.Config) {
		c.Connector = e.fake
		c.Now = clk.Now
		c.HealInterval = 10 * time.Second
		c.HealJitter = 0
	})
	return e, clk
}

// twoPortalReq stages nsid of testNQN through 127.0.0.1:4420 and :4421.
func (e *env) twoPortalReq(id, nsid string, vc *csi.VolumeCapability) *csi.NodeStageVolumeRequest {
	req := e.stageReq(id, testNQN, nsid, vc)
	req.VolumeContext["trsvcid"] = "4420"
	req.VolumeContext["traddr_2"] = "127.0.0.1"
	req.VolumeContext["trsvcid_2"] = "4421"
	return req
}

func (e *env) stageTwoPortals(id, nsid string) {
	e.t.Helper()
	if _, err := e.drv.NodeStageVolume(context.Background(), e.twoPortalReq(id, nsid, mountCap("", rwo))); err != nil {
		e.t.Fatalf("stage %s: %v", id, err)
	}
}

// ports lists the live controllers of testNQN by port, sorted.
func (e *env) ports(state string) []string {
	e.t.Helper()
	cs, err := e.fake.Controllers()
	if err != nil {
		e.t.Fatal(err)
	}
	var out []string
	for _, c := range cs {
		if c.Subsystem == testNQN && (state == "" || c.State == state) {
			out = append(out, c.TrSvcID)
		}
	}
	slices.Sort(out)
	return out
}

func (e *env) health(id string) []*csi.VolumeHealth_VolumeHealthEntry {
	e.t.Helper()
	resp, err := e.drv.NodeGetVolumeHealth(context.Background(), &csi.NodeGetVolumeHealthRequest{VolumeId: id})
	if err != nil {
		e.t.Fatal(err)
	}
	return resp.GetVolumeHealth().GetHealthStatuses()
}

func TestStageTwoPortals(t *testing.T) {
	e, _ := newMultipathEnv(t)
	e.stageTwoPortals("vol", "1")
	if got := e.ports(kernel.StateLive); !slices.Equal(got, []string{"4420", "4421"}) {
		t.Fatalf("live controllers on ports %v, want one per portal", got)
	}
	devs := e.mountedAt(e.path("staging", "vol"))
	if len(devs) != 1 || !strings.HasSuffix(devs[0], "/nvme0n1") {
		t.Fatalf("staged %v, want the namespace's one head disk", devs)
	}
	for _, want := range []string{"paths_up=", "portal 1 (127.0.0.1:4420, nvme0) live", "portal 2 (127.0.0.1:4421, nvme1) live", "paths_down=[]"} {
		if !strings.Contains(e.log.String(), want) {
			t.Errorf("stage log lacks %q:\n%s", want, e.log)
		}
	}
	if st := e.health("vol"); len(st) != 0 {
		t.Errorf("health of a volume with both paths live: %v", st)
	}
	// The repeat is OK, another portal list is another volume.
	if _, err := e.drv.NodeStageVolume(context.Background(), e.twoPortalReq("vol", "1", mountCap("", rwo))); err != nil {
		t.Fatalf("repeat: %v", err)
	}
	other := e.stageReq("vol", testNQN, "1", mountCap("", rwo))
	_, err := e.drv.NodeStageVolume(context.Background(), other)
	wantCode(t, err, codes.AlreadyExists)
	if !strings.Contains(err.Error(), "further portals 127.0.0.1:4421 -> none") {
		t.Errorf("the refusal does not name the portals: %v", err)
	}
	e.unstage("vol")
	if got := e.ports(""); len(got) != 0 {
		t.Fatalf("unstage left controllers on ports %v", got)
	}
}

func TestStageWithOnePortalDown(t *testing.T) {
	e, clk := newMultipathEnv(t)
	e.fake.SetPortDown("127.0.0.1", "4421", true)
	e.stageTwoPortals("vol", "1")
	if got := e.ports(""); !slices.Equal(got, []string{"4420"}) {
		t.Fatalf("controllers on ports %v, want the live portal's only", got)
	}
	if !strings.Contains(e.log.String(), "path did not connect; the healer retries it in the background") {
		t.Errorf("the failed path is not logged:\n%s", e.log)
	}
	st := e.health("vol")
	if len(st) != 1 || st[0].GetStatus() != csi.VolumeHealthErrorType_DEGRADED || st[0].GetReason() != "PathsDegraded" ||
		!strings.Contains(st[0].GetMessage(), "1 of 2 paths") || !strings.Contains(st[0].GetMessage(), "portal 2 (127.0.0.1:4421) missing") {
		t.Fatalf("health %v, want degraded naming portal 2", st)
	}
	e.drv.Observe()
	if body := scrape(t, e); !strings.Contains(body, "nvmeof_csi_volumes_degraded 1") {
		t.Errorf("metrics do not count the degraded volume:\n%s", body)
	}

	// The healer tries at once, fails, and waits its backoff.
	if n, err := e.drv.HealPaths(context.Background()); n != 0 || err == nil {
		t.Fatalf("HealPaths while the port is down = %d, %v", n, err)
	}
	e.fake.SetPortDown("127.0.0.1", "4421", false)
	if n, err := e.drv.HealPaths(context.Background()); n != 0 || err != nil {
		t.Fatalf("HealPaths within the backoff = %d, %v; want no attempt", n, err)
	}
	clk.advance(10 * time.Second)
	if n, err := e.drv.HealPaths(context.Background()); n != 1 || err != nil {
		t.Fatalf("HealPaths after the backoff = %d, %v", n, err)
	}
	if got := e.ports(kernel.StateLive); !slices.Equal(got, []string{"4420", "4421"}) {
		t.Fatalf("after healing, live controllers on ports %v", got)
	}
	if st := e.health("vol"); len(st) != 0 {
		t.Errorf("health after healing: %v", st)
	}
	e.unstage("vol")
	if got := e.ports(""); len(got) != 0 {
		t.Fatalf("unstage left controllers on ports %v: the healed path leaked", got)
	}
}

func TestStageWithNoPortalUp(t *testing.T) {
	e, _ := newMultipathEnv(t)
	e.fake.SetDown(testNQN, true)
	_, err := e.drv.NodeStageVolume(context.Background(), e.twoPortalReq("vol", "1", mountCap("", rwo)))
	wantCode(t, err, codes.Unavailable)
	for _, want := range []string{"no portal of " + testNQN + " connected", "127.0.0.1:4420", "127.0.0.1:4421"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q lacks %q", err, want)
		}
	}
	if c, _ := e.fake.Counts(); c != 0 || len(e.ports("")) != 0 {
		t.Fatalf("%d connects, controllers %v", c, e.ports(""))
	}
	if recs, _ := driver.ControllerRecordsForTest(e.drv); len(recs) != 0 {
		t.Fatalf("records left: %v", recs)
	}
}

func TestMultiPortalNeedsNativeMultipath(t *testing.T) {
	e, _ := newMultipathEnv(t, kerneltest.WithoutMultipath())
	_, err := e.drv.NodeStageVolume(context.Background(), e.twoPortalReq("vol", "1", mountCap("", rwo)))
	wantCode(t, err, codes.FailedPrecondition)
	if !strings.Contains(err.Error(), "nvme_core.multipath=N") || !strings.Contains(err.Error(), "2 portals") {
		t.Errorf("error %q does not explain", err)
	}
	if c, _ := e.fake.Counts(); c != 0 {
		t.Fatalf("%d controllers connected before the refusal", c)
	}
	// One portal is fine without native multipath.
	e.stage("one", testNQN, "1", mountCap("", rwo))
}

func TestPortalsThatAreOnePath(t *testing.T) {
	e, _ := newMultipathEnv(t)
	e.fake.SetHostAddr("array.example", "127.0.0.1")
	req := e.twoPortalReq("vol", "1", mountCap("", rwo))
	req.VolumeContext["traddr_2"] = "array.example"
	req.VolumeContext["trsvcid_2"] = "4420"
	_, err := e.drv.NodeStageVolume(context.Background(), req)
	wantCode(t, err, codes.InvalidArgument)
	if !strings.Contains(err.Error(), "are one path") {
		t.Errorf("error %q", err)
	}
	if c, _ := e.fake.Counts(); c != 0 {
		t.Fatalf("%d controllers connected", c)
	}
}

func TestIOPolicy(t *testing.T) {
	t.Run("set on the subsystem", func(t *testing.T) {
		e, _ := newMultipathEnv(t)
		req := e.twoPortalReq("vol", "1", mountCap("", rwo))
		req.VolumeContext["iopolicy"] = "round-robin"
		if _, err := e.drv.NodeStageVolume(context.Background(), req); err != nil {
			t.Fatal(err)
		}
		cs, _ := e.fake.Controllers()
		if p, err := e.fake.IOPolicy(cs[0]); err != nil || p != nvme.IOPolicyRoundRobin {
			t.Fatalf("iopolicy %q, %v", p, err)
		}
		// Another volume of the subsystem may not change it.
		other := e.twoPortalReq("other", "2", mountCap("", rwo))
		other.VolumeContext["iopolicy"] = "numa"
		_, err := e.drv.NodeStageVolume(context.Background(), other)
		wantCode(t, err, codes.FailedPrecondition)
		if !strings.Contains(err.Error(), "iopolicy round-robin -> numa") {
			t.Errorf("error %q does not name the policies", err)
		}
		// One that does not say is fine.
		e.stageTwoPortals("quiet", "2")
	})
	t.Run("one the kernel does not offer", func(t *testing.T) {
		e, _ := newMultipathEnv(t)
		req := e.twoPortalReq("vol", "1", mountCap("", rwo))
		req.VolumeContext["iopolicy"] = "queue-depth"
		_, err := e.drv.NodeStageVolume(context.Background(), req)
		wantCode(t, err, codes.FailedPrecondition)
		if !strings.Contains(err.Error(), `iopolicy "queue-depth" is not offered by this node's kernel`) {
			t.Errorf("error %q", err)
		}
		if got := e.ports(""); len(got) != 0 {
			t.Fatalf("the refused stage left controllers on ports %v", got)
		}
		if recs, _ := driver.ControllerRecordsForTest(e.drv); len(recs) != 0 {
			t.Fatalf("records left: %v", recs)
		}
	})
	t.Run("refused before any connect when the kernel's offer is known", func(t *testing.T) {
		e, _ := newMultipathEnv(t)
		e.drv = e.driverWith(func(c *driver.Config) {
			c.Connector = e.fake
			c.Capabilities = func() kernel.Capabilities {
				return kernel.Capabilities{Release: "6.1.0-test", IOPolicies: []string{"numa", "round-robin"}}
			}
		})
		req := e.twoPortalReq("vol", "1", mountCap("", rwo))
		req.VolumeContext["iopolicy"] = "queue-depth"
		_, err := e.drv.NodeStageVolume(context.Background(), req)
		wantCode(t, err, codes.FailedPrecondition)
		if !strings.Contains(err.Error(), "6.1.0-test (it offers numa, round-robin)") {
			t.Errorf("error %q", err)
		}
		if c, _ := e.fake.Counts(); c != 0 {
			t.Fatalf("%d controllers connected before the refusal", c)
		}
	})
	t.Run("queue-depth where the kernel has it", func(t *testing.T) {
		e, _ := newMultipathEnv(t, kerneltest.WithIOPolicies("numa", "round-robin", "queue-depth"))
		req := e.twoPortalReq("vol", "1", mountCap("", rwo))
		req.VolumeContext["iopolicy"] = "queue-depth"
		if _, err := e.drv.NodeStageVolume(context.Background(), req); err != nil {
			t.Fatal(err)
		}
	})
}

// The connection settings are the subsystem's, whatever portal a volume
// reaches it by: every controller serves every namespace of it.
func TestSharedSettingsAcrossPortals(t *testing.T) {
	e, _ := newMultipathEnv(t)
	e.stage("a", testNQN, "1", mountCap("", rwo)) // port 4420 only
	req := e.stageReq("b", testNQN, "2", mountCap("", rwo))
	req.VolumeContext["trsvcid"] = "4421"
	req.VolumeContext["ctrl_loss_tmo"] = "60"
	_, err := e.drv.NodeStageVolume(context.Background(), req)
	wantCode(t, err, codes.FailedPrecondition)
	if !strings.Contains(err.Error(), "ctrl_loss_tmo -1 -> 60") {
		t.Errorf("error %q", err)
	}
	if got := e.ports(""); !slices.Equal(got, []string{"4420"}) {
		t.Fatalf("controllers on ports %v", got)
	}
}

func TestUnstageOneOfTwoVolumesKeepsEveryPath(t *testing.T) {
	e, _ := newMultipathEnv(t)
	e.stageTwoPortals("a", "1")
	e.stageTwoPortals("b", "2")
	before, _ := e.fake.Controllers()
	if len(before) != 2 {
		t.Fatalf("%d controllers for two volumes over the same two portals", len(before))
	}
	e.unstage("a")
	after, _ := e.fake.Controllers()
	if len(after) != 2 || after[0].ID != before[0].ID || after[1].ID != before[1].ID || after[0].State != kernel.StateLive || after[1].State != kernel.StateLive {
		t.Fatalf("unstaging a changed b's paths: %+v -> %+v", before, after)
	}
	if st := e.health("b"); len(st) != 0 {
		t.Fatalf("health of b after a's unstage: %v", st)
	}
	e.unstage("b")
	if got := e.ports(""); len(got) != 0 {
		t.Fatalf("controllers left on ports %v", got)
	}
}

// A path one volume connected serves every namespace of the subsystem:
// unstaging that volume while another is staged keeps it, and the last
// unstage takes it down with the others.
func TestPathOfAnUnstagedVolumeGoesWithTheLast(t *testing.T) {
	e, _ := newMultipathEnv(t)
	e.stage("a", testNQN, "1", mountCap("", rwo)) // 4420
	req := e.stageReq("b", testNQN, "2", mountCap("", rwo))
	req.VolumeContext["trsvcid"] = "4421"
	if _, err := e.drv.NodeStageVolume(context.Background(), req); err != nil {
		t.Fatal(err)
	}
	if err := e.unstageAt("b", e.path("staging", "b")); err != nil {
		t.Fatal(err)
	}
	if got := e.ports(kernel.StateLive); !slices.Equal(got, []string{"4420", "4421"}) {
		t.Fatalf("b's unstage took a path of a's namespace: %v", got)
	}
	e.unstage("a")
	if got := e.ports(""); len(got) != 0 {
		t.Fatalf("controllers left on ports %v: b's path leaked", got)
	}
}

func TestHealReconnectsADeletedPath(t *testing.T) {
	e, _ := newMultipathEnv(t)
	e.stageTwoPortals("vol", "1")
	cs, _ := e.fake.Controllers()
	if err := e.fake.RemoveController(cs[1].Name); err != nil {
		t.Fatal(err)
	}
	if st := e.health("vol"); len(st) != 1 || st[0].GetReason() != "PathsDegraded" || !strings.Contains(st[0].GetMessage(), "portal 2 (127.0.0.1:4421) missing") {
		t.Fatalf("health with a deleted path: %v", st)
	}
	if n, err := e.drv.HealPaths(context.Background()); n != 1 || err != nil {
		t.Fatalf("HealPaths = %d, %v", n, err)
	}
	if got := e.ports(kernel.StateLive); !slices.Equal(got, []string{"4420", "4421"}) {
		t.Fatalf("after healing: %v", got)
	}
	recs, _ := driver.ControllerRecordsForTest(e.drv)
	slices.Sort(recs)
	if !slices.Equal(recs, []string{"127.0.0.1:4420 created", "127.0.0.1:4421 created"}) {
		t.Fatalf("records %v", recs)
	}
	e.drv.Observe()
	if body := scrape(t, e); !strings.Contains(body, `nvmeof_csi_path_heals_total{address="127.0.0.1",host_iface="",host_traddr="",port="4421",result="reconnected",subsystem="`+testNQN+`"} 1`) {
		t.Errorf("heal not counted:\n%s", body)
	}
	e.unstage("vol")
	if got := e.ports(""); len(got) != 0 {
		t.Fatalf("controllers left: %v", got)
	}
}

// A path that comes back by someone else's connect is adopted: tuned to
// the volume's settings, and left connected at unstage.
func TestHealAdoptsAPathThatCameBack(t *testing.T) {
	e, _ := newMultipathEnv(t)
	e.stageTwoPortals("vol", "1")
	cs, _ := e.fake.Controllers()
	if err := e.fake.RemoveController(cs[1].Name); err != nil {
		t.Fatal(err)
	}
	name, err := e.fake.AdminConnect("nqn=" + testNQN + ",transport=tcp,traddr=127.0.0.1,trsvcid=4421,hostnqn=" + testHost.NQN + ",hostid=" + testHost.ID + ",reconnect_delay=10,ctrl_loss_tmo=600")
	if err != nil {
		t.Fatal(err)
	}
	if n, err := e.drv.HealPaths(context.Background()); n != 1 || err != nil {
		t.Fatalf("HealPaths = %d, %v", n, err)
	}
	cs, _ = e.fake.Controllers()
	for _, c := range cs {
		if c.Name == name && (c.CtrlLossTmo != -1 || c.ReconnectDelay != 5) {
			t.Errorf("adopted path keeps ctrl_loss_tmo %d reconnect_delay %d", c.CtrlLossTmo, c.ReconnectDelay)
		}
	}
	if c, _ := e.fake.Counts(); c != 2 {
		t.Errorf("%d controllers created by the plugin, want 2 (the adopted one is the admin's)", c)
	}
	e.unstage("vol")
	if got := e.ports(""); !slices.Equal(got, []string{"4421"}) {
		t.Fatalf("after unstage, controllers on ports %v; want the admin's left", got)
	}
}

func TestHealLeavesVolumesAlone(t *testing.T) {
	e, _ := newMultipathEnv(t)
	e.stageTwoPortals("vol", "1")
	cs, _ := e.fake.Controllers()
	if err := e.fake.RemoveController(cs[1].Name); err != nil {
		t.Fatal(err)
	}
	// Unstaged meanwhile: nothing to heal, nothing connected for it.
	e.unstage("vol")
	if n, err := e.drv.HealPaths(context.Background()); n != 0 || err != nil {
		t.Fatalf("HealPaths after the unstage = %d, %v", n, err)
	}
	if got := e.ports(""); len(got) != 0 {
		t.Fatalf("controllers %v", got)
	}
}

func TestVolumeHealthOverPaths(t *testing.T) {
	tests := []struct {
		name       string
		act        func(e *env, cs []kernel.Controller)
		wantStatus csi.VolumeHealthErrorType
		wantReason string
		wantText   []string
	}{
		{name: "one port down", act: func(e *env, _ []kernel.Controller) { e.fake.SetPortDown("127.0.0.1", "4420", true) },
			wantStatus: csi.VolumeHealthErrorType_DEGRADED, wantReason: "PathsDegraded",
			wantText: []string{"1 of 2 paths of volume vol are live", "portal 1 (127.0.0.1:4420, nvme0) connecting"}},
		{name: "both down", act: func(e *env, _ []kernel.Controller) { e.fake.SetDown(testNQN, true) },
			wantStatus: csi.VolumeHealthErrorType_INACCESSIBLE, wantReason: "ControllerNotLive",
			wantText: []string{"no path to nvme0n1 is live", "I/O waits"}},
		{name: "one inaccessible (ANA)", act: func(e *env, cs []kernel.Controller) {
			if err := e.fake.SetANAState(cs[0].Name, kernel.ANAInaccessible); err != nil {
				t.Fatal(err)
			}
		}, wantStatus: csi.VolumeHealthErrorType_DEGRADED, wantReason: "PathsDegraded", wantText: []string{"live, ANA inaccessible"}},
		{name: "every path inaccessible (ANA)", act: func(e *env, cs []kernel.Controller) {
			for _, c := range cs {
				if err := e.fake.SetANAState(c.Name, kernel.ANAPersistentLoss); err != nil {
					t.Fatal(err)
				}
			}
		}, wantStatus: csi.VolumeHealthErrorType_INACCESSIBLE, wantReason: "PathsInaccessible", wantText: []string{"inaccessible (ANA) on every live path"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e, _ := newMultipathEnv(t)
			e.stageTwoPortals("vol", "1")
			cs, _ := e.fake.Controllers()
			tt.act(e, cs)
			st := e.health("vol")
			if len(st) != 1 || st[0].GetStatus() != tt.wantStatus || st[0].GetReason() != tt.wantReason {
				t.Fatalf("health %v", st)
			}
			for _, s := range tt.wantText {
				if !strings.Contains(st[0].GetMessage(), s) {
					t.Errorf("message %q lacks %q", st[0].GetMessage(), s)
				}
			}
		})
	}
}

func TestPathMetrics(t *testing.T) {
	e, clk := newMultipathEnv(t)
	e.stageTwoPortals("vol", "1")
	cs, _ := e.fake.Controllers()
	e.drv.Observe()
	sub := `subsystem="` + testNQN + `"`
	body := scrape(t, e)
	for _, want := range []string{
		`nvmeof_csi_path_state{address="127.0.0.1",controller="nvme0",host_iface="",host_traddr="",port="4420",state="live",` + sub + `} 1`,
		`nvmeof_csi_path_state{address="127.0.0.1",controller="nvme1",host_iface="",host_traddr="",port="4421",state="connecting",` + sub + `} 0`,
		`nvmeof_csi_path_ana_state{address="127.0.0.1",controller="nvme1",host_iface="",host_traddr="",nsid="1",port="4421",state="optimized",` + sub + `} 1`,
		`nvmeof_csi_volume_paths{` + sub + `,volume_id="vol"} 2`,
		`nvmeof_csi_volume_live_paths{` + sub + `,volume_id="vol"} 2`,
		`nvmeof_csi_volumes_degraded 0`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("metrics lack %s", want)
		}
	}

	// Port 4421 goes down for 30 s, then the controller of 4420 is
	// deleted and stays missing for 20 s.
	e.fake.SetPortDown("127.0.0.1", "4421", true)
	if err := e.fake.SetANAState(cs[0].Name, kernel.ANANonOptimized); err != nil {
		t.Fatal(err)
	}
	e.drv.Observe()
	clk.advance(30 * time.Second)
	e.fake.SetPortDown("127.0.0.1", "4421", false)
	if err := e.fake.RemoveController(cs[0].Name); err != nil {
		t.Fatal(err)
	}
	e.drv.Observe()
	clk.advance(20 * time.Second)
	e.drv.Observe()
	body = scrape(t, e)
	for _, want := range []string{
		`nvmeof_csi_path_state{address="127.0.0.1",controller="",host_iface="",host_traddr="",port="4420",state="missing",` + sub + `} 1`,
		`nvmeof_csi_path_state{address="127.0.0.1",controller="nvme1",host_iface="",host_traddr="",port="4421",state="live",` + sub + `} 1`,
		`nvmeof_csi_path_not_live_seconds_total{address="127.0.0.1",host_iface="",host_traddr="",port="4421",` + sub + `} 30`,
		`nvmeof_csi_path_not_live_seconds_total{address="127.0.0.1",host_iface="",host_traddr="",port="4420",` + sub + `} 20`,
		`nvmeof_csi_path_reconnects_total{address="127.0.0.1",host_iface="",host_traddr="",port="4421",` + sub + `} 1`,
		`nvmeof_csi_volume_live_paths{` + sub + `,volume_id="vol"} 1`,
		`nvmeof_csi_volumes_degraded 1`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("metrics lack %s", want)
		}
	}
	if strings.Contains(body, `controller="nvme0"`) {
		t.Errorf("the deleted controller's series stayed:\n%s", body)
	}
	e.unstage("vol")
	e.drv.Observe()
	if body := scrape(t, e); strings.Contains(body, "nvmeof_csi_volume_paths{") || strings.Contains(body, `state="missing"`) {
		t.Errorf("series of the unstaged volume stayed:\n%s", body)
	}
}

// A plugin killed mid-stage of a two-portal volume left the first path
// connected and recorded, and the second one's creation pending while the
// kernel finished it. Start-up takes both down; the retried stage connects
// both again, and nothing leaks.
func TestReconcileAPartialPathSet(t *testing.T) {
	for _, secondMade := range []bool{true, false} {
		name := "second path made"
		if !secondMade {
			name = "second path never made"
		}
		t.Run(name, func(t *testing.T) {
			e, _ := newMultipathEnv(t)
			cfg := nvme.DefaultConnectionConfig()
			for i, svc := range []string{"4420", "4421"} {
				target := nvme.Target{Transport: "tcp", TrAddr: "127.0.0.1", TrSvcID: svc, NQN: testNQN}
				var ctrl kernel.Controller
				if i == 0 || secondMade {
					c, err := nvme.Connection{Host: testHost, Target: target, Config: cfg}.Valid()
					if err != nil {
						t.Fatal(err)
					}
					if ctrl, err = e.fake.Create(context.Background(), c); err != nil {
						t.Fatal(err)
					}
				}
				rec := ctrl
				if i == 1 {
					rec = kernel.Controller{} // pending: the kill came before the kernel's answer was read
				}
				if err := driver.PutControllerRecordForTest(e.drv, testHost, target, cfg, rec); err != nil {
					t.Fatal(err)
				}
			}
			restarted := e.driverWith(func(c *driver.Config) { c.Connector = e.fake })
			if err := restarted.Reconcile(context.Background()); err != nil {
				t.Fatal(err)
			}
			if got := e.ports(""); len(got) != 0 {
				t.Fatalf("after reconcile, controllers on ports %v", got)
			}
			if recs, _ := driver.ControllerRecordsForTest(restarted); len(recs) != 0 {
				t.Fatalf("records left: %v", recs)
			}
			e.drv = restarted
			e.stageTwoPortals("vol", "1")
			if got := e.ports(kernel.StateLive); !slices.Equal(got, []string{"4420", "4421"}) {
				t.Fatalf("retried stage: %v", got)
			}
			e.unstage("vol")
			if got := e.ports(""); len(got) != 0 {
				t.Fatalf("controllers left: %v", got)
			}
		})
	}
}

// A path of a staged volume deleted while the plugin was down: start-up
// keeps the other path, and the healer brings the missing one back.
func TestReconcileAStagedVolumeMissingAPath(t *testing.T) {
	e, _ := newMultipathEnv(t)
	e.stageTwoPortals("vol", "1")
	cs, _ := e.fake.Controllers()
	if err := e.fake.RemoveController(cs[0].Name); err != nil {
		t.Fatal(err)
	}
	restarted := e.driverWith(func(c *driver.Config) { c.Connector = e.fake })
	if err := restarted.Reconcile(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := e.ports(kernel.StateLive); !slices.Equal(got, []string{"4421"}) {
		t.Fatalf("after reconcile: %v", got)
	}
	if !strings.Contains(e.log.String(), "the healer reconnects it") {
		t.Errorf("the missing path is not logged:\n%s", e.log)
	}
	if n, err := restarted.HealPaths(context.Background()); n != 1 || err != nil {
		t.Fatalf("HealPaths = %d, %v", n, err)
	}
	e.drv = restarted
	e.unstage("vol")
	if got := e.ports(""); len(got) != 0 {
		t.Fatalf("controllers left: %v", got)
	}
}

// Two volumes of one subsystem staged at once over the same two portals:
// with the same settings both stage over one pair of controllers; with
// other settings exactly one does, whichever comes first.
func TestConcurrentStagesOverTwoPortals(t *testing.T) {
	for _, conflicting := range []bool{false, true} {
		t.Run(map[bool]string{false: "same settings", true: "other settings"}[conflicting], func(t *testing.T) {
			e, _ := newMultipathEnv(t)
			reqs := []*csi.NodeStageVolumeRequest{e.twoPortalReq("a", "1", mountCap("", rwo)), e.twoPortalReq("b", "2", mountCap("", rwo))}
			if conflicting {
				reqs[1].VolumeContext["reconnect_delay"] = "2"
			}
			errs := make([]error, len(reqs))
			var wg sync.WaitGroup
			for i, r := range reqs {
				wg.Go(func() { _, errs[i] = e.drv.NodeStageVolume(context.Background(), r) })
			}
			// The healer runs meanwhile, as it does on a node.
			wg.Go(func() { _, _ = e.drv.HealPaths(context.Background()) })
			wg.Wait()
			ok := 0
			for _, err := range errs {
				if err == nil {
					ok++
				} else if codeOf(err) != codes.FailedPrecondition {
					t.Errorf("stage: %v", err)
				}
			}
			if want := map[bool]int{false: 2, true: 1}[conflicting]; ok != want {
				t.Fatalf("%d stages succeeded, want %d: %v", ok, want, errs)
			}
			if got := e.ports(kernel.StateLive); !slices.Equal(got, []string{"4420", "4421"}) {
				t.Fatalf("controllers on ports %v, want one per portal", got)
			}
			for i, r := range reqs {
				if errs[i] == nil {
					e.unstage(r.GetVolumeId())
				}
			}
			if got := e.ports(""); len(got) != 0 {
				t.Fatalf("controllers left: %v", got)
			}
		})
	}
}
