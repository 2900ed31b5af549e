package driver_test

import (
	"context"
	"errors"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"google.golang.org/grpc/codes"

	"github.com/nvmeof/nvmeof/csi/internal/disktest"
)

func wantCode(t *testing.T, err error, want codes.Code) {
	t.Helper()
	if got := codeOf(err); got != want {
		t.Fatalf("code %s, want %s (error: %v)", got, want, err)
	}
}

func TestNodeStageVolumeErrors(t *testing.T) {
	e := newEnv(t)
	e.fake.SetDown(testNQN2, true)
	tests := []struct {
		name    string
		mutate  func(*csi.NodeStageVolumeRequest)
		want    codes.Code
		message string
	}{
		{"no volume id", func(r *csi.NodeStageVolumeRequest) { r.VolumeId = "" }, codes.InvalidArgument, "volume_id"},
		{"no staging path", func(r *csi.NodeStageVolumeRequest) { r.StagingTargetPath = "" }, codes.InvalidArgument, "staging_target_path"},
		{"no capability", func(r *csi.NodeStageVolumeRequest) { r.VolumeCapability = nil }, codes.InvalidArgument, "volume_capability"},
		{"unsupported fs", func(r *csi.NodeStageVolumeRequest) { r.VolumeCapability = mountCap("zfs", rwo) }, codes.InvalidArgument, "zfs"},
		{"file system for many writers", func(r *csi.NodeStageVolumeRequest) {
			r.VolumeCapability = mountCap("", csi.VolumeCapability_AccessMode_MULTI_NODE_MULTI_WRITER)
		}, codes.InvalidArgument, "block"},
		{"typo in context", func(r *csi.NodeStageVolumeRequest) { r.VolumeContext["ctrl_los_tmo"] = "5" }, codes.InvalidArgument, `did you mean "ctrl_loss_tmo"`},
		{"no namespace", func(r *csi.NodeStageVolumeRequest) { delete(r.VolumeContext, "nsid") }, codes.InvalidArgument, "nsid"},
		{"bad secret", func(r *csi.NodeStageVolumeRequest) { r.Secrets = map[string]string{"dhchap_secret": "hunter2"} }, codes.InvalidArgument, "dhchap_secret"},
		{"namespace absent", func(r *csi.NodeStageVolumeRequest) { r.VolumeContext["nsid"] = "9" }, codes.NotFound, "nsid:9"},
		{"namespace identity differs", func(r *csi.NodeStageVolumeRequest) { r.VolumeContext["uuid"] = uuid2 }, codes.FailedPrecondition, "identity mismatch"},
		{"target unreachable", func(r *csi.NodeStageVolumeRequest) { r.VolumeContext["nqn"] = testNQN2 }, codes.Unavailable, "connection refused"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := e.stageReq("vol", testNQN, "1", mountCap("", rwo))
			tt.mutate(req)
			_, err := e.drv.NodeStageVolume(context.Background(), req)
			wantCode(t, err, tt.want)
			if !strings.Contains(err.Error(), tt.message) {
				t.Errorf("error %q does not mention %q", err, tt.message)
			}
			if strings.Contains(err.Error(), "hunter2") {
				t.Errorf("error reveals the secret: %v", err)
			}
		})
	}
}

func TestNodeStageFormatsOnlyBlankDevices(t *testing.T) {
	for _, fsType := range []string{"", "ext4", "xfs"} {
		t.Run("fs="+fsType, func(t *testing.T) {
			e := newEnv(t)
			mkfs := "mkfs." + map[string]string{"": "ext4", "ext4": "ext4", "xfs": "xfs"}[fsType]
			e.stage("vol", testNQN, "1", mountCap(fsType, rwo))
			e.stage("vol", testNQN, "1", mountCap(fsType, rwo)) // idempotent
			devs := e.mountedAt(e.path("staging", "vol"))
			if len(devs) != 1 {
				t.Fatalf("staging path mounts %v, want one", devs)
			}
			got, err := disktest.FSType(devs[0])
			if err != nil || got != strings.TrimPrefix(mkfs, "mkfs.") {
				t.Fatalf("device holds %q (%v), want %s", got, err, mkfs)
			}
			e.unstage("vol")
			e.stage("vol", testNQN, "1", mountCap(fsType, rwo)) // a new controller, same data
			if n := e.exec.Ran(mkfs); n != 1 {
				t.Errorf("%s ran %d times, want 1: a formatted device must never be formatted again", mkfs, n)
			}
		})
	}
}

func TestNodeStageCancelled(t *testing.T) {
	e := newEnv(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := e.drv.NodeStageVolume(ctx, e.stageReq("vol", testNQN, "1", mountCap("", rwo)))
	wantCode(t, err, codes.Canceled)
}

func TestNodeStageBlock(t *testing.T) {
	e := newEnv(t)
	e.stage("vol", testNQN, "2", blockCap())
	e.stage("vol", testNQN, "2", blockCap())
	devs := e.mountedAt(e.path("staging", "vol", "block"))
	if len(devs) != 1 || !strings.HasSuffix(devs[0], "n2") {
		t.Fatalf("block staging file mounts %v, want the nsid 2 device once", devs)
	}
	if n := len(e.exec.Calls()); n != 0 {
		t.Errorf("block stage ran %d tools; it must not touch the data", n)
	}
	_, err := e.drv.NodeStageVolume(context.Background(), e.stageReq("vol", testNQN, "1", blockCap()))
	wantCode(t, err, codes.AlreadyExists)
}

func TestNodePublishUnpublish(t *testing.T) {
	e := newEnv(t)
	e.stage("fs", testNQN, "1", mountCap("", rwo))
	e.stage("blk", testNQN, "2", blockCap())
	pub := func(id string, vc *csi.VolumeCapability, ro bool) (*csi.NodePublishVolumeResponse, error) {
		return e.drv.NodePublishVolume(context.Background(), &csi.NodePublishVolumeRequest{
			VolumeId: id, StagingTargetPath: e.path("staging", id), TargetPath: e.path("target", id), VolumeCapability: vc, Readonly: ro,
		})
	}
	tests := []struct {
		name  string
		id    string
		vc    *csi.VolumeCapability
		ro    bool
		isDir bool
	}{
		{"file system read-only", "fs", mountCap("", rwo), true, true},
		{"block", "blk", blockCap(), false, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for range 2 { // idempotent
				if _, err := pub(tt.id, tt.vc, tt.ro); err != nil {
					t.Fatal(err)
				}
			}
			info, err := os.Stat(e.path("target", tt.id))
			if err != nil || info.IsDir() != tt.isDir {
				t.Fatalf("target: %v, dir %v, want dir %v", err, info != nil && info.IsDir(), tt.isDir)
			}
			mps, _ := e.mounter.List()
			for _, mp := range mps {
				if mp.Path == e.path("target", tt.id) && slices.Contains(mp.Opts, "ro") != tt.ro {
					t.Errorf("target options %v, read-only %v wanted", mp.Opts, tt.ro)
				}
			}
			for range 2 { // idempotent, also once the target is gone
				if _, err := e.drv.NodeUnpublishVolume(context.Background(), &csi.NodeUnpublishVolumeRequest{VolumeId: tt.id, TargetPath: e.path("target", tt.id)}); err != nil {
					t.Fatal(err)
				}
			}
			if _, err := os.Stat(e.path("target", tt.id)); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("target still there after unpublish: %v", err)
			}
			if devs := e.mountedAt(e.path("target", tt.id)); len(devs) != 0 {
				t.Errorf("target still mounted: %v", devs)
			}
		})
	}
	t.Run("not staged", func(t *testing.T) {
		_, err := pub("other", mountCap("", rwo), false)
		wantCode(t, err, codes.FailedPrecondition)
	})
	t.Run("argument errors", func(t *testing.T) {
		_, err := e.drv.NodePublishVolume(context.Background(), &csi.NodePublishVolumeRequest{VolumeId: "fs", TargetPath: "/x", VolumeCapability: blockCap()})
		wantCode(t, err, codes.InvalidArgument)
		_, err = e.drv.NodeUnpublishVolume(context.Background(), &csi.NodeUnpublishVolumeRequest{VolumeId: "fs"})
		wantCode(t, err, codes.InvalidArgument)
	})
}

func TestNodeUnstageKeepsSharedControllers(t *testing.T) {
	e := newEnv(t)
	e.stage("a", testNQN, "1", mountCap("", rwo))
	e.stage("b", testNQN, "2", blockCap())
	if n := e.controllers(); n != 1 {
		t.Fatalf("%d controllers for one subsystem, want 1", n)
	}
	e.unstage("a")
	if n := e.controllers(); n != 1 {
		t.Fatalf("unstaging a disconnected the controller b still uses")
	}
	if devs := e.mountedAt(e.path("staging", "b", "block")); len(devs) != 1 {
		t.Fatalf("b lost its mount: %v", devs)
	}
	e.unstage("b")
	e.unstage("b") // idempotent
	if n := e.controllers(); n != 0 {
		t.Fatalf("%d controllers left after the last unstage", n)
	}
}

func TestNodeUnstageVanishedDevice(t *testing.T) {
	e := newEnv(t)
	e.stage("a", testNQN, "1", mountCap("", rwo))
	cs, _ := e.fake.Controllers()
	if err := e.fake.Disconnect(context.Background(), cs[0]); err != nil { // the kernel gave up
		t.Fatal(err)
	}
	e.unstage("a")
	if devs := e.mountedAt(e.path("staging", "a")); len(devs) != 0 {
		t.Fatalf("stale mount left: %v", devs)
	}
}

func TestNodeUnstageLeavesAdoptedControllers(t *testing.T) {
	e := newEnv(t)
	// Someone else (the Terraform provider) connected the subsystem first.
	if _, err := e.fake.Connect(context.Background(), connection(t, testNQN)); err != nil {
		t.Fatal(err)
	}
	e.stage("a", testNQN, "1", mountCap("", rwo))
	e.unstage("a")
	if n := e.controllers(); n != 1 {
		t.Fatalf("%d controllers, want the adopted one left connected", n)
	}
}

func TestNodeUnstageErrors(t *testing.T) {
	e := newEnv(t)
	_, err := e.drv.NodeUnstageVolume(context.Background(), &csi.NodeUnstageVolumeRequest{StagingTargetPath: "/x"})
	wantCode(t, err, codes.InvalidArgument)
	_, err = e.drv.NodeUnstageVolume(context.Background(), &csi.NodeUnstageVolumeRequest{VolumeId: "x"})
	wantCode(t, err, codes.InvalidArgument)
	// Never staged: nothing to do.
	_, err = e.drv.NodeUnstageVolume(context.Background(), &csi.NodeUnstageVolumeRequest{VolumeId: "x", StagingTargetPath: e.path("staging", "x")})
	wantCode(t, err, codes.OK)
}
