package nomadclient

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"github.com/hashicorp/nomad/api"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

func writer(source string) *api.VolumeRequest {
	return &api.VolumeRequest{Source: source, AccessMode: "single-node-writer", AttachmentMode: "file-system"}
}

// TestClaimRequests: the fields of NodeStage and NodePublish exactly as
// Nomad fills them, plugin-side paths in the RPCs and host paths on disk
// (§1.4, §2, §3.1).
func TestClaimRequests(t *testing.T) {
	n := newNode(t)
	n.startPlugin()
	n.register("v1", "ext-v1")
	mark := n.c.Calls.Len()
	req := writer("v1")
	req.MountOptions = &api.CSIMountOptions{MountFlags: []string{"sync"}}
	a := n.run(consumer("app", 1, req))[0]

	calls := Methods(n.c.Calls.Since(mark), "NodeStageVolume", "NodePublishVolume")
	if len(calls) != 2 {
		t.Fatalf("calls %v", calls)
	}
	stage, pub := calls[0], calls[1]
	usage := "rw-file-system-single-node-writer"
	wantStaging := filepath.Join(pluginRoot, "staging", "default", "v1", usage)
	wantTarget := filepath.Join(pluginRoot, "per-alloc", a.ID, "v1", usage)
	wantCap := &csi.VolumeCapability{
		AccessType: &csi.VolumeCapability_Mount{Mount: &csi.VolumeCapability_MountVolume{FsType: "ext4", MountFlags: []string{"sync"}}},
		AccessMode: &csi.VolumeCapability_AccessMode{Mode: csi.VolumeCapability_AccessMode_SINGLE_NODE_WRITER},
	}
	for _, c := range calls {
		if c.VolumeID != "ext-v1" || c.PublishContext != nil || c.VolumeContext["nqn"] != "nqn.2026-01.io.example:v1" ||
			c.Secrets["dhchap_secret"] != "s3cret" || c.Capability.String() != wantCap.String() || c.HasDeadline {
			t.Errorf("%s: %+v", c.Method, c)
		}
	}
	if stage.StagingPath != wantStaging || pub.StagingPath != wantStaging || pub.Target != wantTarget || pub.Readonly {
		t.Errorf("paths: stage %s, publish %s → %s (readonly %t)", stage.StagingPath, pub.StagingPath, pub.Target, pub.Readonly)
	}
	// Host side: the client made the staging dir (0700) and the target's
	// parent; the task gets the host target.
	hostRoot := n.plugin.hostRoot
	if fi, err := os.Stat(filepath.Join(hostRoot, "staging", "default", "v1", usage)); err != nil || fi.Mode().Perm() != 0o700 {
		t.Errorf("host staging dir: %v, %v", fi, err)
	}
	_, src, ok := a.HostTarget("data")
	if !ok || src != filepath.Join(hostRoot, "per-alloc", a.ID, "v1", usage) {
		t.Errorf("task mount source %q", src)
	}
	if spec := n.exec.lastSpec(); len(spec.Mounts) != 1 || spec.Mounts[0].Source != src || spec.Mounts[0].Destination != "/data" {
		t.Errorf("task mounts %+v", spec.Mounts)
	}
	// Stop: unpublish, then unstage, with only ids and paths.
	mark = n.c.Calls.Len()
	n.stop(a)
	got := n.callsSince(mark)
	if !slices.Equal(got, []string{"NodeUnpublishVolume ext-v1", "NodeUnstageVolume ext-v1"}) {
		t.Fatalf("stop: %v", got)
	}
	if left := n.mounts.under(n.dir); len(left) != 0 {
		t.Errorf("mounts left: %v", left)
	}
	if claims := n.server.Claims("default", "v1"); len(claims) != 0 {
		t.Errorf("claims left: %v", claims)
	}
}

// TestVolumeIDFallsBackToID: without an external_id the volume_id sent is
// the Nomad volume id.
func TestVolumeIDFallsBackToID(t *testing.T) {
	n := newNode(t)
	n.startPlugin()
	n.register("v1", "")
	mark := n.c.Calls.Len()
	n.run(consumer("app", 1, writer("v1")))
	for _, c := range Methods(n.c.Calls.Since(mark), "NodeStageVolume", "NodePublishVolume") {
		if c.VolumeID != "v1" {
			t.Errorf("%s volume_id %q", c.Method, c.VolumeID)
		}
	}
}

// TestFailedMountTearsDown: a failed NodeStage or NodePublish fails the
// allocation, no task starts, and the postrun sends NodeUnpublish and
// NodeUnstage for what never succeeded (§3.2). Neither is retried.
func TestFailedMountTearsDown(t *testing.T) {
	tests := []struct {
		name string
		set  func(p *fakePlugin)
		want []string
	}{
		{"stage refused", func(p *fakePlugin) {
			p.onStage = func(context.Context, *csi.NodeStageVolumeRequest) error {
				return status.Error(codes.InvalidArgument, "volume_context: ctrl_los_tmo: unknown key")
			}
		}, []string{"NodeStageVolume ext-v1: InvalidArgument", "NodeUnpublishVolume ext-v1", "NodeUnstageVolume ext-v1"}},
		{"stage unavailable, not retried", func(p *fakePlugin) {
			p.onStage = func(context.Context, *csi.NodeStageVolumeRequest) error {
				return status.Error(codes.Unavailable, "try later")
			}
		}, []string{"NodeStageVolume ext-v1: Unavailable", "NodeUnpublishVolume ext-v1", "NodeUnstageVolume ext-v1"}},
		{"publish refused", func(p *fakePlugin) {
			p.onPublish = func(*csi.NodePublishVolumeRequest) error { return status.Error(codes.FailedPrecondition, "not staged") }
		}, []string{"NodeStageVolume ext-v1", "NodePublishVolume ext-v1: FailedPrecondition", "NodeUnpublishVolume ext-v1", "NodeUnstageVolume ext-v1"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			n := newNode(t)
			n.startPlugin()
			n.register("v1", "ext-v1")
			n.plugin.set(tc.set)
			mark := n.c.Calls.Len()
			allocs, err := n.c.RunJob(n.ctx(), consumer("app", 1, writer("v1")))
			if err != nil {
				t.Fatal(err)
			}
			if err := allocs[0].WaitRunning(n.ctx()); err == nil || !strings.Contains(err.Error(), "failed") {
				t.Fatalf("allocation: %v", err)
			}
			if err := allocs[0].WaitDone(n.ctx()); err != nil {
				t.Fatal(err)
			}
			if got := n.callsSince(mark); !slices.Equal(got, tc.want) {
				t.Errorf("calls %v, want %v", got, tc.want)
			}
			if n.exec.startsOf("app") != 0 {
				t.Error("a task started on a volume that failed to mount")
			}
			if claims := n.server.Claims("default", "v1"); len(claims) != 0 {
				t.Errorf("claims left: %v", claims)
			}
		})
	}
}

// TestNoDeadlineOnMountRPCs: a NodeStage that takes long is waited for,
// with no deadline on its context (§3.2).
func TestNoDeadlineOnMountRPCs(t *testing.T) {
	n := newNode(t)
	n.startPlugin()
	n.register("v1", "ext-v1")
	release := make(chan struct{})
	deadlines := make(chan bool, 1)
	n.plugin.set(func(p *fakePlugin) {
		p.onStage = func(ctx context.Context, _ *csi.NodeStageVolumeRequest) error {
			_, has := ctx.Deadline()
			deadlines <- has
			<-release
			return nil
		}
	})
	allocs, err := n.c.RunJob(n.ctx(), consumer("app", 1, writer("v1")))
	if err != nil {
		t.Fatal(err)
	}
	if <-deadlines {
		t.Error("NodeStageVolume arrived with a deadline")
	}
	close(release)
	if err := allocs[0].WaitRunning(n.ctx()); err != nil {
		t.Fatal(err)
	}
}

// TestOneOperationPerVolume: while a stage of v1 is in flight, a second
// allocation's mount of v1 waits; a mount of v2 goes ahead (serializedOp).
func TestOneOperationPerVolume(t *testing.T) {
	n := newNode(t)
	n.startPlugin()
	readers := func(v *api.CSIVolume) {
		v.RequestedCapabilities = []*api.CSIVolumeCapability{{AccessMode: "multi-node-reader-only", AttachmentMode: "file-system"}}
	}
	n.register("v1", "ext-v1", readers)
	n.register("v2", "ext-v2")
	release := make(chan struct{})
	var mu sync.Mutex
	inFlight, most := map[string]int{}, 0
	n.plugin.set(func(p *fakePlugin) {
		p.onStage = func(_ context.Context, r *csi.NodeStageVolumeRequest) error {
			mu.Lock()
			inFlight[r.GetVolumeId()]++
			most = max(most, inFlight[r.GetVolumeId()])
			mu.Unlock()
			if r.GetVolumeId() == "ext-v1" {
				<-release
			}
			mu.Lock()
			inFlight[r.GetVolumeId()]--
			mu.Unlock()
			return nil
		}
	})
	ro := &api.VolumeRequest{Source: "v1", AccessMode: "multi-node-reader-only", AttachmentMode: "file-system", ReadOnly: true}
	first, err := n.c.RunJob(n.ctx(), consumer("r1", 1, ro))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := n.c.Calls.Wait(n.ctx(), 0, func(c Call) bool { return c.Method == "NodeGetCapabilities" }); err != nil {
		t.Fatal(err)
	}
	ro2 := *ro
	second, err := n.c.RunJob(n.ctx(), consumer("r2", 1, &ro2))
	if err != nil {
		t.Fatal(err)
	}
	// v2 is not held up by v1.
	n.run(consumer("w", 1, writer("v2")))
	close(release)
	for _, a := range append(first, second...) {
		if err := a.WaitRunning(n.ctx()); err != nil {
			t.Fatal(err)
		}
	}
	if most != 1 {
		t.Errorf("%d stages of one volume at once", most)
	}
}

// TestTwoAllocationsOneStage: a second allocation with the same usage
// finds the staging dir mounted and skips NodeStage; NodeUnstage comes
// only with the last one (§3.4).
func TestTwoAllocationsOneStage(t *testing.T) {
	n := newNode(t)
	n.startPlugin()
	n.register("v1", "ext-v1")
	mark := n.c.Calls.Len()
	ro := &api.VolumeRequest{Source: "v1", AccessMode: "multi-node-reader-only", AttachmentMode: "file-system", ReadOnly: true}
	allocs := n.run(consumer("readers", 2, ro))
	if got := n.callsSince(mark); !slices.Equal(got, []string{"NodeStageVolume ext-v1", "NodePublishVolume ext-v1", "NodePublishVolume ext-v1"}) {
		t.Fatalf("two readers: %v", got)
	}
	mark = n.c.Calls.Len()
	n.stop(allocs[0])
	if got := n.callsSince(mark); !slices.Equal(got, []string{"NodeUnpublishVolume ext-v1"}) {
		t.Fatalf("first reader stopped: %v", got)
	}
	mark = n.c.Calls.Len()
	n.stop(allocs[1])
	if got := n.callsSince(mark); !slices.Equal(got, []string{"NodeUnpublishVolume ext-v1", "NodeUnstageVolume ext-v1"}) {
		t.Fatalf("last reader stopped: %v", got)
	}
}

// TestBlockStagedInsideTheDir: a plugin that stages block volumes on a file
// inside the staging dir (nvmeof-csi does) gets NodeStage once per
// allocation, since the dir itself is no mount point (§3.4).
func TestBlockStagedInsideTheDir(t *testing.T) {
	n := newNode(t)
	n.startPlugin()
	n.register("v1", "ext-v1")
	mark := n.c.Calls.Len()
	mw := &api.VolumeRequest{Source: "v1", AccessMode: "multi-node-multi-writer", AttachmentMode: "block-device"}
	n.run(consumer("blocks", 2, mw))
	if got := n.callsSince(mark); !slices.Equal(got, []string{"NodeStageVolume ext-v1", "NodePublishVolume ext-v1", "NodeStageVolume ext-v1", "NodePublishVolume ext-v1"}) {
		t.Fatalf("two block writers: %v", got)
	}
}

// TestTargetRemovedByTheClient: after NodeUnpublish the client removes
// the host target itself; an unpublish error is ignored when it can, and
// when it cannot remove the target it skips the unstage and retries in the
// background (§3.3).
func TestTargetRemovedByTheClient(t *testing.T) {
	n := newNode(t)
	n.startPlugin()
	n.register("v1", "ext-v1")
	n.plugin.set(func(p *fakePlugin) {
		p.keepTarget = true
		p.onUnpublish = func(*csi.NodeUnpublishVolumeRequest) error { return status.Error(codes.Internal, "device busy") }
	})
	a := n.run(consumer("app", 1, writer("v1")))[0]
	_, target, _ := a.HostTarget("data")
	mark := n.c.Calls.Len()
	n.stop(a)
	if got := n.callsSince(mark); !slices.Equal(got, []string{"NodeUnpublishVolume ext-v1: Internal", "NodeUnstageVolume ext-v1"}) {
		t.Fatalf("an ignorable unpublish error: %v", got)
	}
	if _, err := os.Stat(target); !os.IsNotExist(err) {
		t.Errorf("target %s left: %v", target, err)
	}

	// A target that cannot be removed (a file inside it) stops the unmount.
	a = n.run(consumer("app2", 1, writer("v1")))[0]
	_, target, _ = a.HostTarget("data")
	if err := os.WriteFile(filepath.Join(target, "x"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	mark = n.c.Calls.Len()
	n.stop(a)
	if got := n.callsSince(mark); !slices.Equal(got, []string{"NodeUnpublishVolume ext-v1: Internal"}) {
		t.Fatalf("a target that cannot be removed: %v", got)
	}
	if claims := n.server.Claims("default", "v1"); len(claims) != 1 {
		t.Fatalf("the claim was released before the node let go: %v", claims)
	}
	// Fixed: the background retry finishes the job and frees the claim.
	n.plugin.set(func(p *fakePlugin) { p.onUnpublish = nil })
	if err := os.Remove(filepath.Join(target, "x")); err != nil {
		t.Fatal(err)
	}
	if err := a.WaitUnmountRetries(n.ctx()); err != nil {
		t.Fatal(err)
	}
	if claims := n.server.Claims("default", "v1"); len(claims) != 0 {
		t.Errorf("claims after the retry: %v", claims)
	}
	if len(Methods(n.c.Calls.Since(mark), "NodeUnstageVolume")) != 1 {
		t.Errorf("calls after the retry: %v", n.callsSince(mark))
	}
}

// TestPerAllocVolumes: per_alloc claims source[index]; the brackets go
// into every path (§2).
func TestPerAllocVolumes(t *testing.T) {
	n := newNode(t)
	n.startPlugin()
	n.register("scratch[0]", "ext-0")
	n.register("scratch[1]", "ext-1")
	mark := n.c.Calls.Len()
	req := writer("scratch")
	req.PerAlloc = true
	allocs := n.run(consumer("app", 2, req))
	for _, a := range allocs {
		id, target, _ := a.HostTarget("data")
		want := "scratch[" + string(rune('0'+a.Index)) + "]"
		if id != want || !strings.Contains(target, "/"+want+"/") {
			t.Errorf("allocation %d: volume %s at %s", a.Index, id, target)
		}
	}
	for _, c := range Methods(n.c.Calls.Since(mark), "NodeStageVolume") {
		if !strings.Contains(c.StagingPath, "/staging/default/scratch[") {
			t.Errorf("staging path %s", c.StagingPath)
		}
	}
}

// TestNoTaskSupportsCSI: raw_exec tasks cannot consume CSI volumes.
func TestNoTaskSupportsCSI(t *testing.T) {
	n := newNode(t)
	n.startPlugin()
	n.register("v1", "ext-v1")
	job := consumer("app", 1, writer("v1"))
	job.TaskGroups[0].Tasks[0].Driver = "raw_exec"
	allocs, err := n.c.RunJob(n.ctx(), job)
	if err != nil {
		t.Fatal(err)
	}
	if err := allocs[0].WaitRunning(n.ctx()); err == nil || !strings.Contains(err.Error(), "no task supports CSI") {
		t.Fatalf("allocation: %v", err)
	}
}

// TestServerChecks: registration needs a known plugin and a capability;
// a writer claim waits for the writer before it; max_volumes_per_node
// caps the volumes on the node.
func TestServerChecks(t *testing.T) {
	n := newNode(t)
	if err := n.server.Register(&api.CSIVolume{ID: "v", PluginID: "nvmeof",
		RequestedCapabilities: []*api.CSIVolumeCapability{{AccessMode: "single-node-writer", AttachmentMode: "file-system"}}}); err == nil ||
		!strings.Contains(err.Error(), "no CSI plugin named: nvmeof") {
		t.Errorf("register before the plugin: %v", err)
	}
	n.plugin.set(func(p *fakePlugin) { p.maxVolumes = 1 })
	n.startPlugin()
	if err := n.server.Register(&api.CSIVolume{ID: "v", PluginID: "nvmeof"}); err == nil || !strings.Contains(err.Error(), "at least one capability") {
		t.Errorf("register without a capability: %v", err)
	}
	n.register("v1", "ext-v1")
	n.register("v2", "ext-v2")
	first := n.run(consumer("a", 1, writer("v1")))[0]

	short, cancel := context.WithTimeout(n.ctx(), 30*time.Millisecond)
	defer cancel()
	if _, err := n.c.RunJob(short, consumer("b", 1, writer("v1"))); err == nil || !strings.Contains(err.Error(), "exhausted its available writer claims") {
		t.Errorf("a second writer: %v", err)
	}
	short2, cancel2 := context.WithTimeout(n.ctx(), 30*time.Millisecond)
	defer cancel2()
	if _, err := n.c.RunJob(short2, consumer("c", 1, writer("v2"))); err == nil || !strings.Contains(err.Error(), "maximum number of volumes") {
		t.Errorf("a volume over max_volumes_per_node: %v", err)
	}
	n.stop(first)
	n.run(consumer("c", 1, writer("v2")))
}
