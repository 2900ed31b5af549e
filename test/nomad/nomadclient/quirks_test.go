package nomadclient

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/nomad/api"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

func readers(source string) *api.VolumeRequest {
	return &api.VolumeRequest{Source: source, AccessMode: "multi-node-reader-only", AttachmentMode: "file-system", ReadOnly: true}
}

// earlyUnstage checks Nomad issue 25813's effect: stopping the first of
// two allocations sends NodeUnstage while the second is still published;
// the plugin refuses (issue 9's rule, played by the fake), the client
// retries in the background, and the unstage succeeds once the second
// allocation is gone.
func earlyUnstage(t *testing.T, n *node, allocs []*Alloc) {
	t.Helper()
	mark := n.c.Calls.Len()
	n.stop(allocs[0])
	calls := Methods(n.c.Calls.Since(mark), "NodeUnpublishVolume", "NodeUnstageVolume")
	if len(calls) != 2 || calls[0].Method != "NodeUnpublishVolume" || calls[1].Method != "NodeUnstageVolume" ||
		status.Code(calls[1].Err) != codes.FailedPrecondition {
		t.Fatalf("first allocation stopped: %v", calls)
	}
	_, second, _ := allocs[1].HostTarget("data")
	if !strings.Contains(calls[1].Err.Error(), filepath.Base(filepath.Dir(filepath.Dir(second)))) {
		t.Errorf("the refusal does not name the target still published (%s): %v", second, calls[1].Err)
	}
	if mounted, _ := n.mounts.IsMountPoint(second); !mounted {
		t.Fatal("the second allocation lost its mount")
	}
	// The retries keep being refused while the second allocation runs.
	if _, err := n.c.Calls.Wait(n.ctx(), n.c.Calls.Len(), func(c Call) bool {
		return c.Method == "NodeUnstageVolume" && status.Code(c.Err) == codes.FailedPrecondition
	}); err != nil {
		t.Fatal(err)
	}
	n.stop(allocs[1])
	if err := allocs[0].WaitUnmountRetries(n.ctx()); err != nil {
		t.Fatal(err)
	}
	if left := n.mounts.under(n.dir); len(left) != 0 {
		t.Errorf("mounts left: %v", left)
	}
	if claims := n.server.Claims("default", "v1"); len(claims) != 0 {
		t.Errorf("claims left: %v", claims)
	}
}

// TestEarlyUnstageFromMountOptions: the tracker keys on a mount options
// pointer, and every allocation has its own copy of the job, so two
// allocations whose group sets mount_options are two users that do not
// see each other (§3.4).
func TestEarlyUnstageFromMountOptions(t *testing.T) {
	n := newNode(t)
	n.plugin.set(func(p *fakePlugin) { p.refuseEarlyUnstage = true })
	n.startPlugin()
	n.register("v1", "ext-v1")
	req := readers("v1")
	req.MountOptions = &api.CSIMountOptions{MountFlags: []string{"noatime"}}
	allocs := n.run(consumer("readers", 2, req))
	earlyUnstage(t, n, allocs)

	// Without mount_options the tracker counts both: no early unstage.
	allocs = n.run(consumer("readers2", 2, readers("v1")))
	mark := n.c.Calls.Len()
	n.stop(allocs[0])
	if got := n.callsSince(mark); !slices.Equal(got, []string{"NodeUnpublishVolume ext-v1"}) {
		t.Errorf("without mount_options: %v", got)
	}
}

// TestClientRestartForgetsTheTracker: a restarted client makes no RPC for
// volumes still mounted, and its new, empty tracker lets the first stop
// unstage early (#25813).
func TestClientRestartForgetsTheTracker(t *testing.T) {
	n := newNode(t)
	n.plugin.set(func(p *fakePlugin) { p.refuseEarlyUnstage = true })
	n.startPlugin()
	n.register("v1", "ext-v1")
	allocs := n.run(consumer("readers", 2, readers("v1")))
	mark := n.c.Calls.Len()
	if err := n.c.Restart(n.ctx()); err != nil {
		t.Fatal(err)
	}
	if err := n.c.WaitPluginHealthy(n.ctx(), "nvmeof"); err != nil {
		t.Fatal(err)
	}
	if got := n.callsSince(mark); len(got) != 0 {
		t.Errorf("the restored client made mount RPCs: %v", got)
	}
	if m := Methods(n.c.Calls.Since(mark), "GetPluginCapabilities"); len(m) == 0 {
		t.Error("the restored client did not fingerprint anew")
	}
	if n.raw.startsOf("plugin") != 1 || n.exec.startsOf("app") != 2 {
		t.Errorf("tasks restarted: plugin %d, app %d starts", n.raw.startsOf("plugin"), n.exec.startsOf("app"))
	}
	earlyUnstage(t, n, allocs)
}

// TestRestoreRemountsALostTarget: a restored allocation whose target is
// no longer mounted goes through claim, stage and publish again.
func TestRestoreRemountsALostTarget(t *testing.T) {
	n := newNode(t)
	n.startPlugin()
	n.register("v1", "ext-v1")
	a := n.run(consumer("app", 1, writer("v1")))[0]
	_, target, _ := a.HostTarget("data")
	n.mounts.set(target, false)
	n.mounts.set(filepath.Join(n.plugin.hostRoot, "staging", "default", "v1", "rw-file-system-single-node-writer"), false)
	mark := n.c.Calls.Len()
	if err := n.c.Restart(n.ctx()); err != nil {
		t.Fatal(err)
	}
	if got := n.callsSince(mark); !slices.Equal(got, []string{"NodeStageVolume ext-v1", "NodePublishVolume ext-v1"}) {
		t.Errorf("restore of a lost mount: %v", got)
	}
}

// TestServerDetachRepeats: after the client's own unmount, the claim GC
// and `nomad volume detach` send NodeDetachVolume, which repeats
// NodeUnpublish and NodeUnstage with the same paths; the usage carries no
// mount options (§3.3).
func TestServerDetachRepeats(t *testing.T) {
	n := newNode(t)
	n.startPlugin()
	n.register("v1", "ext-v1")
	req := writer("v1")
	req.MountOptions = &api.CSIMountOptions{MountFlags: []string{"noatime"}}
	a := n.run(consumer("app", 1, req))[0]
	mark := n.c.Calls.Len()
	n.stop(a)
	own := Methods(n.c.Calls.Since(mark), "NodeUnpublishVolume", "NodeUnstageVolume")
	mark = n.c.Calls.Len()
	if err := n.server.ClaimGC(n.ctx()); err != nil {
		t.Fatal(err)
	}
	again := Methods(n.c.Calls.Since(mark), "NodeUnpublishVolume", "NodeUnstageVolume")
	if len(own) != 2 || len(again) != 2 {
		t.Fatalf("own %v, repeated %v", own, again)
	}
	for i := range own {
		if own[i].Method != again[i].Method || own[i].Target != again[i].Target || own[i].StagingPath != again[i].StagingPath || again[i].Err != nil {
			t.Errorf("repeat %d: %+v, first %+v", i, again[i], own[i])
		}
	}
	// Sent once: the past claim is gone; detach finds nothing more.
	mark = n.c.Calls.Len()
	if err := n.server.Detach(n.ctx(), "default", "v1"); err != nil {
		t.Fatal(err)
	}
	if got := n.callsSince(mark); len(got) != 0 {
		t.Errorf("a second detach: %v", got)
	}
}

// TestDetachFirst: `nomad volume detach` of a stopped allocation's claim
// before the claim GC repeats the unmount as well.
func TestDetachFirst(t *testing.T) {
	n := newNode(t)
	n.startPlugin()
	n.register("v1", "ext-v1")
	n.stop(n.run(consumer("app", 1, writer("v1")))[0])
	mark := n.c.Calls.Len()
	if err := n.server.Detach(n.ctx(), "default", "v1"); err != nil {
		t.Fatal(err)
	}
	if got := n.callsSince(mark); !slices.Equal(got, []string{"NodeUnpublishVolume ext-v1", "NodeUnstageVolume ext-v1"}) {
		t.Errorf("detach: %v", got)
	}
}

// TestUnstageFallsBackToTheLegacyPath: with only the namespace-less
// staging dir on the host, unstage names that one (#18741).
func TestUnstageFallsBackToTheLegacyPath(t *testing.T) {
	n := newNode(t)
	n.startPlugin()
	n.register("v1", "ext-v1")
	a := n.run(consumer("app", 1, writer("v1")))[0]
	usage := "rw-file-system-single-node-writer"
	host := n.plugin.hostRoot
	if err := os.Remove(filepath.Join(host, "staging", "default", "v1", usage)); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(host, "staging", "v1", usage), 0o700); err != nil {
		t.Fatal(err)
	}
	mark := n.c.Calls.Len()
	n.stop(a)
	unstage := Methods(n.c.Calls.Since(mark), "NodeUnstageVolume")
	if len(unstage) != 1 || unstage[0].StagingPath != filepath.Join(pluginRoot, "staging", "v1", usage) {
		t.Errorf("unstage %+v", unstage)
	}
}

// TestStopWithoutThePlugin: a consumer that stops while no plugin is
// registered fails to unmount ("plugin not found") and retries in the
// background; the plugin's new allocation registers a new instance, with
// a new tracker, and the retry then goes through (§4, #8080).
func TestStopWithoutThePlugin(t *testing.T) {
	n := newNode(t)
	plugin := n.startPlugin()
	n.register("v1", "ext-v1")
	a := n.run(consumer("app", 1, writer("v1")))[0]
	n.stop(plugin)
	if _, ok := n.c.PluginHealth("nvmeof"); !ok {
		t.Fatal("no fingerprint left for the stopped plugin")
	}
	if h, _ := n.c.PluginHealth("nvmeof"); h.Healthy {
		t.Error("the stopped plugin's last fingerprint is healthy")
	}
	mark := n.c.Calls.Len()
	n.stop(a)
	if _, err := n.c.Events.Wait(n.ctx(), 0, func(e Event) bool {
		return e.Type == "Unmount failed" && strings.Contains(e.Message, "plugin not found")
	}); err != nil {
		t.Fatal(err)
	}
	if got := n.callsSince(mark); len(got) != 0 {
		t.Fatalf("mount RPCs without a plugin: %v", got)
	}
	if claims := n.server.Claims("default", "v1"); len(claims) != 1 {
		t.Fatalf("claims %v: the claim must stay until the node let go", claims)
	}
	n.startPlugin()
	if err := a.WaitUnmountRetries(n.ctx()); err != nil {
		t.Fatal(err)
	}
	if got := n.callsSince(mark); !slices.Equal(got, []string{"NodeUnpublishVolume ext-v1", "NodeUnstageVolume ext-v1"}) {
		t.Errorf("after the plugin came back: %v", got)
	}
	if claims := n.server.Claims("default", "v1"); len(claims) != 0 {
		t.Errorf("claims left: %v", claims)
	}
}

// TestRequiredTopologyWithoutNodeTopology: a volume registered with
// required topologies is placed on no node whose plugin reports none
// (§1.3); nvmeof-csi reports none.
func TestRequiredTopologyWithoutNodeTopology(t *testing.T) {
	n := newNode(t)
	n.startPlugin()
	n.register("v1", "ext-v1", func(v *api.CSIVolume) {
		v.RequestedTopologies = &api.CSITopologyRequest{Required: []*api.CSITopology{{Segments: map[string]string{"rack": "r1"}}}}
	})
	ctx, cancel := context.WithTimeout(n.ctx(), 30*time.Millisecond)
	defer cancel()
	if _, err := n.c.RunJob(ctx, consumer("app", 1, writer("v1"))); err == nil || !strings.Contains(err.Error(), "topologies") {
		t.Fatalf("placement: %v", err)
	}
}
