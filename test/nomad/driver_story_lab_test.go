//go:build lab

package nomade2e

import (
	"context"
	"embed"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/nomad/api"
	"google.golang.org/grpc/status"

	"github.com/nvmeof/nvmeof/csi/nomadvolume"
	"github.com/nvmeof/nvmeof/test/lab/labtarget"
	"github.com/nvmeof/nvmeof/test/nomad/jobspec"
	"github.com/nvmeof/nvmeof/test/nomad/nomadclient"
)

//go:embed testdata/*.nomad.hcl
var testJobs embed.FS

const pluginID = "nvmeof"

// storyTimings are Nomad's, with the waits that only pace a run made
// shorter: the first probes, the fingerprint and health passes, the
// unmount retries. Nothing that changes what the plugin sees is changed:
// mount RPCs still have no deadline and no retry.
func storyTimings() nomadclient.Timings {
	t := nomadclient.NomadTimings()
	t.ProbeInterval, t.SocketRetry = time.Second, 250*time.Millisecond
	t.FingerprintInterval, t.HealthProbeInterval = 2*time.Second, 5*time.Second
	t.UnmountBackoff, t.UnmountBackoffMax = 500*time.Millisecond, 2*time.Second
	return t
}

// driverStory is the client, its server and the record of the run.
type driverStory struct {
	t      *testing.T
	s      *story
	c      *nomadclient.Client
	server *nomadclient.Server
	// readers run from one step to the next (client restart).
	readers []*nomadclient.Alloc
}

// TestNomadStory is the Nomad story with the project's Nomad-faithful
// driver in Nomad's place, against the real plugin binary on the real
// kernel. Each step builds on the last.
func TestNomadStory(t *testing.T) {
	d := newDriverStory(t)
	s := d.s

	s.step("target up")
	if states, err := controllerStates(labtarget.SubsystemTwo); err != nil || len(states) != 0 {
		t.Fatalf("controllers of %s before the test: %v, %v", labtarget.SubsystemTwo, states, err)
	}
	s.done("nvmet serves %d subsystems on %s:%s", len(labtarget.Subsystems()), labtarget.TrAddr, labtarget.TrSvcID)

	d.pluginHealthy()
	d.volumeRegistered()
	d.badContextsRefused()

	s.step("app writing")
	app := d.runApp()
	first := waitAppLines(t, app.ID, 3)
	s.done("alloc %.8s: NodeStage (connect, mkfs, mount) and NodePublish; wrote %d lines to /data/log", app.ID, first)

	s.step("job stopped, volume released")
	mark := d.c.Calls.Len()
	d.stopAndReleased(appJob, volumeID)
	d.expectCalls(mark, "NodeUnpublishVolume OK", "NodeUnstageVolume OK")
	s.done("NodeUnpublish + NodeUnstage; the client removed the target; controller disconnected; no mount left")

	s.step("server-driven detach repeats the unmount (NOMAD-CLIENT §3.3)")
	mark = d.c.Calls.Len()
	if err := d.server.ClaimGC(t.Context()); err != nil {
		t.Fatalf("claim GC: %v", err)
	}
	d.expectCalls(mark, "NodeUnpublishVolume OK", "NodeUnstageVolume OK")
	d.assertReleased(volumeID, labtarget.SubsystemTwo)
	s.done("claim GC sent NodeDetachVolume: NodeUnpublish and NodeUnstage again, both OK, nothing reconnected")

	s.step("job run again finds its data")
	app = d.runApp()
	found := waitAppFound(t, app.ID)
	if found < first {
		t.Fatalf("the second run found %d lines, the first wrote at least %d", found, first)
	}
	s.done("alloc %.8s found %d lines and keeps appending", app.ID, found)

	d.pluginKilled(app)
	d.outage(app)

	s.step("data verified")
	lines := verifyData(t)
	s.done("/data/log holds lines 1..%d in order across two runs, a plugin kill and the outage", lines)

	s.step("app stopped")
	d.stopAndReleased(appJob, volumeID)
	s.done("volume released")

	d.twoReaders()
	d.clientRestart()
	d.mountOptionsTracker()
	d.perAllocBlock()

	s.step("cleanup")
	for _, id := range []string{volumeID, "scratch[0]", "scratch[1]"} {
		if err := d.server.Deregister("default", id); err != nil {
			s.errorf("deregister %s: %v", id, err)
		}
	}
	mark = d.c.Events.Len()
	if err := d.c.StopJob(t.Context(), "nvmeof-csi"); err != nil {
		t.Fatal(err)
	}
	if _, err := d.c.Events.Wait(t.Context(), mark, func(e nomadclient.Event) bool {
		return e.Subsystem == "CSI" && strings.Contains(e.Message, "healthy false")
	}); err != nil {
		s.errorf("the plugin's last fingerprint: %v", err)
	}
	s.done("volumes deregistered; plugin stopped, deregistered, its last fingerprint unhealthy")
}

func newDriverStory(t *testing.T) *driverStory {
	t.Helper()
	for _, dir := range []string{nomadDataDir, pluginState} {
		if err := os.MkdirAll(dir, 0o750); err != nil {
			t.Fatal(err)
		}
	}
	logFile, err := os.Create("/tmp/nomadclient.log")
	if err != nil {
		t.Fatal(err)
	}
	server := nomadclient.NewServer()
	c, err := nomadclient.New(nomadclient.Config{
		DataDir: nomadDataDir, NodeID: "lab-node", Mounts: nomadclient.HostMounts{}, Timings: storyTimings(),
		Drivers: map[string]nomadclient.TaskDriver{"raw_exec": rawExec{}, "exec": nsExec{}},
		Logger:  hclog.New(&hclog.LoggerOptions{Name: "nomadclient", Level: hclog.Debug, Output: logFile}),
	}, server)
	if err != nil {
		t.Fatal(err)
	}
	d := &driverStory{t: t, c: c, server: server}
	// Registered first, so it runs last: the story's own steps clean up
	// what they can; this stops what a failure left running.
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		if err := c.Shutdown(ctx); err != nil {
			t.Errorf("client shutdown: %v", err)
		}
		_ = logFile.Close()
		for _, nqn := range []string{labtarget.SubsystemOne, labtarget.SubsystemTwo} {
			disconnectAll(t, nqn)
		}
	})
	d.s = newStory(t)
	t.Cleanup(func() {
		if t.Failed() {
			d.diagnostics()
		}
	})
	return d
}

func (d *driverStory) diagnostics() {
	if b, err := os.ReadFile("/tmp/nomadclient.log"); err == nil {
		d.t.Logf("client log (tail):\n%s", tail(string(b), 60))
	}
	for _, a := range d.c.Allocs("nvmeof-csi") {
		if out, err := taskOutput(a.ID, "plugin", "stderr"); err == nil {
			d.t.Logf("plugin log (tail):\n%s", tail(out, 60))
		}
	}
	var calls []string
	for _, c := range d.c.Calls.Since(0) {
		if c.Method != "Probe" && c.Method != "NodeGetCapabilities" {
			calls = append(calls, c.String())
		}
	}
	d.t.Logf("mount RPCs: %s", strings.Join(calls, ", "))
}

// job parses a job file as Nomad would, with -var values, and applies
// Nomad's job validation.
func (d *driverStory) job(path string, vars map[string]string) *api.Job {
	d.t.Helper()
	var (
		job *api.Job
		err error
	)
	if strings.HasPrefix(path, "testdata/") {
		src, rerr := testJobs.ReadFile(path)
		if rerr != nil {
			d.t.Fatal(rerr)
		}
		job, err = jobspec.Parse(src, path, vars)
	} else {
		job, err = jobspec.ParseFile(path, vars)
	}
	if err != nil {
		d.t.Fatal(err)
	}
	if err := jobspec.Validate(job); err != nil {
		d.t.Fatalf("Nomad would refuse %s: %v", path, err)
	}
	return job
}

func (d *driverStory) run(job *api.Job) []*nomadclient.Alloc {
	d.t.Helper()
	ctx, cancel := context.WithTimeout(d.t.Context(), 3*time.Minute)
	defer cancel()
	allocs, err := d.c.RunJob(ctx, job)
	if err != nil {
		d.t.Fatal(err)
	}
	for _, a := range allocs {
		if err := a.WaitRunning(ctx); err != nil {
			d.t.Fatal(err)
		}
	}
	return allocs
}

// expectCalls checks the mount RPCs since mark, as "Method OK" or
// "Method Code", in order.
func (d *driverStory) expectCalls(mark int, want ...string) {
	d.t.Helper()
	var got []string
	for _, c := range nomadclient.Methods(d.c.Calls.Since(mark), "NodeStageVolume", "NodePublishVolume", "NodeUnpublishVolume", "NodeUnstageVolume") {
		got = append(got, c.Method+" "+codeOf(c.Err))
	}
	if strings.Join(got, ", ") != strings.Join(want, ", ") {
		d.t.Fatalf("mount RPCs %v, want %v", got, want)
	}
}

func codeOf(err error) string {
	if err == nil {
		return "OK"
	}
	return status.Code(err).String()
}

func (d *driverStory) pluginHealthy() {
	t, s := d.t, d.s
	s.step("plugin healthy")
	job := d.job(share+"/examples/plugin-raw-exec.nomad.hcl", map[string]string{
		"plugin_path": pluginBin, "nomad_data_dir": nomadDataDir, "state_dir": pluginState, "metrics_addr": pluginMetrics,
	})
	d.run(job)
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	if err := d.c.WaitPluginHealthy(ctx, pluginID); err != nil {
		t.Fatal(err)
	}
	h, _ := d.c.PluginHealth(pluginID)
	if h.NodeInfo == nil || !h.NodeInfo.RequiresNodeStageVolume || h.RequiresControllerPlugin {
		t.Fatalf("fingerprint %+v", h)
	}
	probes := len(nomadclient.Methods(d.c.Calls.Since(0), "Probe"))
	s.done("raw_exec task from plugin-raw-exec.nomad.hcl; %d probes until ready, GetPluginInfo, fingerprint: node %s, STAGE_UNSTAGE_VOLUME, no controller",
		probes, h.NodeInfo.ID)
}

func (d *driverStory) volumeRegistered() {
	t, s := d.t, d.s
	s.step("volume registered")
	path, vctx := renderVolume(t)
	spec, err := nomadvolume.ParseFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if problems := nomadvolume.Check(spec); len(problems) > 0 || len(spec.Dropped) > 0 {
		t.Fatalf("nvmeof-csi validate would refuse the rendered volume.hcl: %v (dropped %v)", problems, spec.Dropped)
	}
	if err := d.server.Register(spec.Volume); err != nil {
		t.Fatal(err)
	}
	s.done("%s read from volume.hcl as nomad volume register reads it (no key dropped; nvmeof-csi validate: no problem), context from terraform's nvme_connection: traddr=%s nqn=%s ctrl_loss_tmo=%s reconnect_delay=%s",
		volumeID, vctx["traddr"], vctx["nqn"], vctx["ctrl_loss_tmo"], vctx["reconnect_delay"])
}

// badContextsRefused registers volumes whose contexts the core refuses:
// the claim fails with the core's words, and the client's teardown sends
// NodeUnpublish and NodeUnstage for a volume never published (§3.2).
func (d *driverStory) badContextsRefused() {
	t, s := d.t, d.s
	s.step("bad contexts refused")
	cases := []struct {
		id, key, value string
		want           []string
	}{
		{id: "bad-key", key: "ctrl_los_tmo", value: "0", want: []string{"ctrl_los_tmo", "is not a known volume context key", `did you mean "ctrl_loss_tmo"`}},
		{id: "bad-range", key: "ctrl_loss_tmo", value: "-5", want: []string{`invalid ctrl_loss_tmo "-5"`, "must be -1 (reconnect forever)"}},
	}
	for _, c := range cases {
		src := fmt.Sprintf("id = %q\ntype = \"csi\"\nplugin_id = %q\nexternal_id = %q\ncapability {\n  access_mode = \"single-node-writer\"\n  attachment_mode = \"file-system\"\n}\n"+
			"context {\n  traddr = %q\n  nqn = %q\n  nsid = \"1\"\n  %s = %q\n}\n", c.id, pluginID, c.id, labtarget.TrAddr, labtarget.SubsystemOne, c.key, c.value)
		spec, err := nomadvolume.Parse([]byte(src), c.id+".hcl")
		if err != nil {
			t.Fatal(err)
		}
		if err := d.server.Register(spec.Volume); err != nil {
			t.Fatal(err)
		}
		mark := d.c.Calls.Len()
		ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
		allocs, err := d.c.RunJob(ctx, d.job("testdata/claim.nomad.hcl", map[string]string{"volume_id": c.id}))
		if err != nil {
			cancel()
			t.Fatal(err)
		}
		runErr := allocs[0].WaitRunning(ctx)
		if err := allocs[0].WaitDone(ctx); err != nil {
			cancel()
			t.Fatal(err)
		}
		cancel()
		if runErr == nil {
			t.Fatalf("the claim of %s ran", c.id)
		}
		for _, w := range c.want {
			if !strings.Contains(runErr.Error(), w) {
				s.errorf("the failed claim of %s does not say %q: %v", c.id, w, runErr)
			}
		}
		d.expectCalls(mark, "NodeStageVolume InvalidArgument", "NodeUnpublishVolume OK", "NodeUnstageVolume OK")
		if err := d.server.Deregister("default", c.id); err != nil {
			t.Fatal(err)
		}
	}
	if states, err := controllerStates(labtarget.SubsystemOne); err != nil || len(states) != 0 {
		t.Fatalf("controllers of %s after refused claims: %v, %v", labtarget.SubsystemOne, states, err)
	}
	s.done("an unknown key and an out-of-range ctrl_loss_tmo fail the claim with the core's message; the client's teardown (NodeUnpublish, NodeUnstage of a volume never published) is answered OK")
}

func (d *driverStory) runApp() *nomadclient.Alloc {
	return d.run(d.job(share+"/examples/app.nomad.hcl", map[string]string{"volume_id": volumeID}))[0]
}

// stopAndReleased stops a job and checks the volume is free on the
// server and on the node.
func (d *driverStory) stopAndReleased(job, volume string) {
	d.t.Helper()
	ctx, cancel := context.WithTimeout(d.t.Context(), 2*time.Minute)
	defer cancel()
	if err := d.c.StopJob(ctx, job); err != nil {
		d.t.Fatal(err)
	}
	d.assertReleased(volume, labtarget.SubsystemTwo)
}

func (d *driverStory) assertReleased(volume, nqn string) {
	d.t.Helper()
	if claims := d.server.Claims("default", volume); len(claims) != 0 {
		d.t.Fatalf("claims left on %s: %v", volume, claims)
	}
	states, err := controllerStates(nqn)
	if err != nil || len(states) != 0 {
		d.t.Fatalf("controllers of %s left: %v, %v", nqn, states, err)
	}
	mounts, err := nvmeMounts()
	if err != nil || len(mounts) != 0 {
		d.t.Fatalf("NVMe mounts left: %v, %v", mounts, err)
	}
}

// pluginKilled: SIGKILL, then the restart policy restarts the task in
// place: not registered again, nothing re-staged, the app writes on (§4).
func (d *driverStory) pluginKilled(app *nomadclient.Alloc) {
	t, s := d.t, d.s
	s.step("plugin killed (SIGKILL)")
	plugin := d.c.Allocs("nvmeof-csi")[0]
	h, _, err := plugin.Task("plugin")
	if err != nil {
		t.Fatal(err)
	}
	pid := h.(interface{ PID() int }).PID() //nolint:forcetypeassert // the lab's drivers return procHandle
	mark, events := d.c.Calls.Len(), d.c.Events.Len()
	before := waitAppLines(t, app.ID, 0)
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	for _, want := range []string{"Terminated", "Restarting", "Started"} {
		if _, err := d.c.Events.Wait(ctx, events, func(e nomadclient.Event) bool { return e.Task == "plugin" && e.Type == want }); err != nil {
			t.Fatalf("plugin task %s: %v", want, err)
		}
	}
	// Healthy again at a fingerprint pass after the restart.
	if _, err := d.c.Calls.Wait(ctx, d.c.Calls.Len(), func(c nomadclient.Call) bool { return c.Method == "NodeGetCapabilities" && c.Err == nil }); err != nil {
		t.Fatal(err)
	}
	if err := d.c.WaitPluginHealthy(ctx, pluginID); err != nil {
		t.Fatal(err)
	}
	after := waitAppLines(t, app.ID, before+3)
	assertAppRunning(t, app)
	if again := nomadclient.Methods(d.c.Calls.Since(mark), "GetPluginInfo", "NodeStageVolume", "NodePublishVolume"); len(again) != 0 {
		t.Fatalf("after a restart in place the client called %v", again)
	}
	_, st, _ := plugin.Task("plugin")
	s.done("restart policy restarted it in place (restart %d); no re-registration, no NodeStage or NodePublish; the app kept writing (%d -> %d lines)",
		st.Restarts, before, after)
}

// outage cuts the target's port for 15 s under the writing app.
func (d *driverStory) outage(app *nomadclient.Alloc) {
	t, s := d.t, d.s
	s.step("outage started")
	ctrl := nvmeController(t)
	if err := labtarget.Unlink(labtarget.SubsystemTwo); err != nil {
		t.Fatal(err)
	}
	relinked := false
	t.Cleanup(func() {
		if !relinked {
			_ = labtarget.Link(labtarget.SubsystemTwo)
		}
	})
	cut := time.Now()
	waitState(t, ctrl, "connecting", 30*time.Second)
	s.done("port link removed; controller %s connecting after %d ms", ctrl, time.Since(cut).Milliseconds())

	s.step("outage held")
	during := waitAppLines(t, app.ID, 0)
	time.Sleep(outage - time.Since(cut))
	assertAppRunning(t, app)
	held := waitAppLines(t, app.ID, 0)
	if held > during+1 {
		t.Fatalf("the app logged lines %d..%d while the target was gone: its writes did not wait", during, held)
	}
	s.done("%v without the target; the app is blocked in a write at line %d, not failing", outage, held)

	s.step("target back")
	if err := labtarget.Link(labtarget.SubsystemTwo); err != nil {
		t.Fatal(err)
	}
	relinked = true
	back := time.Now()
	waitState(t, ctrl, "live", time.Minute)
	s.done("controller %s live again after %.2fs", ctrl, time.Since(back).Seconds())

	s.step("app still writing")
	resumed := waitAppLines(t, app.ID, during+3)
	assertAppRunning(t, app)
	s.done("%d lines, no write error, no task restart", resumed)
}

// waitAppLines waits until the app has logged at least atLeast lines and
// returns the number of the last one.
func waitAppLines(t *testing.T, allocID string, atLeast int) int {
	t.Helper()
	var last int
	eventually(t, 2*time.Minute, fmt.Sprintf("app log at line %d", atLeast), func() (bool, error) {
		l, err := lastMatch(allocID, appTask, "line ")
		if err != nil {
			return false, err
		}
		n, _, _ := strings.Cut(l, " ")
		last, err = strconv.Atoi(n)
		return err == nil && last >= atLeast && last > 0, fmt.Errorf("at line %q (%w)", l, err)
	})
	return last
}

func waitAppFound(t *testing.T, allocID string) int {
	t.Helper()
	var found int
	eventually(t, time.Minute, "app reports what it found", func() (bool, error) {
		l, err := lastMatch(allocID, appTask, "found ")
		if err != nil {
			return false, err
		}
		found, err = strconv.Atoi(strings.TrimSuffix(l, " lines"))
		return err == nil, fmt.Errorf("found line %q: %w", l, err)
	})
	return found
}

func assertAppRunning(t *testing.T, app *nomadclient.Alloc) {
	t.Helper()
	st, err := app.Status()
	_, ts, terr := app.Task(appTask)
	if st != nomadclient.StatusRunning || terr != nil || ts.State != "running" || ts.Restarts != 0 || ts.Failed {
		t.Fatalf("app allocation %.8s: %s (%v), task %+v (%v)", app.ID, st, err, ts, terr)
	}
}

// disconnectAll disconnects whatever controllers of nqn a failed run left.
func disconnectAll(t *testing.T, nqn string) {
	t.Helper()
	states, err := controllerStates(nqn)
	if err != nil {
		t.Error(err)
		return
	}
	for name := range states {
		if err := os.WriteFile(filepath.Join("/sys/class/nvme", name, "delete_controller"), []byte("1"), 0o200); err != nil {
			t.Errorf("cleanup: delete %s: %v", name, err)
		}
	}
}
