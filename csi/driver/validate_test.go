package driver_test

import (
	"strings"
	"testing"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"google.golang.org/grpc/codes"
	grpcstatus "google.golang.org/grpc/status"

	"github.com/nvmeof/nvmeof/csi/driver"
)

// checkDriver is a driver on the package's simulated node: every request
// below fails its argument checks before the node is touched.
func checkDriver(t *testing.T) *driver.Driver {
	t.Helper()
	return newEnv(t).drv
}

// TestStageProblemsMatchNodeStage: the first problem StageProblems reports
// is exactly what NodeStageVolume answers, code and words, and a request
// the handler accepts has none.
func TestStageProblemsMatchNodeStage(t *testing.T) {
	good := func() *csi.NodeStageVolumeRequest {
		return &csi.NodeStageVolumeRequest{
			VolumeId: "v1", StagingTargetPath: "/staging/v1",
			VolumeCapability: mountCap("ext4", csi.VolumeCapability_AccessMode_SINGLE_NODE_WRITER),
			VolumeContext:    volumeContext(testNQN, "1"),
		}
	}
	tests := []struct {
		name  string
		edit  func(*csi.NodeStageVolumeRequest)
		count int // problems reported
	}{
		{"no volume id", func(r *csi.NodeStageVolumeRequest) { r.VolumeId = "" }, 1},
		{"no staging path", func(r *csi.NodeStageVolumeRequest) { r.StagingTargetPath = "" }, 1},
		{"no capability", func(r *csi.NodeStageVolumeRequest) { r.VolumeCapability = nil }, 1},
		{"unsupported fs", func(r *csi.NodeStageVolumeRequest) {
			r.VolumeCapability = mountCap("btrfs", csi.VolumeCapability_AccessMode_SINGLE_NODE_WRITER)
		}, 1},
		{"file system for several writers", func(r *csi.NodeStageVolumeRequest) {
			r.VolumeCapability = mountCap("ext4", csi.VolumeCapability_AccessMode_MULTI_NODE_MULTI_WRITER)
		}, 1},
		{"unknown context key", func(r *csi.NodeStageVolumeRequest) { r.VolumeContext["ctrl_los_tmo"] = "5" }, 1},
		{"context out of range", func(r *csi.NodeStageVolumeRequest) { r.VolumeContext["ctrl_loss_tmo"] = "-5" }, 1},
		{"unknown secret", func(r *csi.NodeStageVolumeRequest) { r.Secrets = map[string]string{"password": "hunter2"} }, 1},
		{"three at once", func(r *csi.NodeStageVolumeRequest) {
			r.VolumeCapability = mountCap("btrfs", csi.VolumeCapability_AccessMode_SINGLE_NODE_WRITER)
			r.VolumeContext["nqn"] = ""
			r.Secrets = map[string]string{"password": "hunter2"}
		}, 3},
	}
	d := checkDriver(t)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			req := good()
			tc.edit(req)
			problems := driver.StageProblems(req)
			if len(problems) != tc.count {
				t.Fatalf("%d problems, want %d: %v", len(problems), tc.count, problems)
			}
			_, rpcErr := d.NodeStageVolume(t.Context(), req)
			assertSameStatus(t, problems[0], rpcErr)
			for _, p := range problems {
				if grpcstatus.Code(p) != codes.InvalidArgument {
					t.Errorf("problem %v is %s, want InvalidArgument", p, grpcstatus.Code(p))
				}
				if req.Secrets["password"] != "" && strings.Contains(p.Error(), "hunter2") {
					t.Errorf("a secret's value reached the message: %v", p)
				}
			}
		})
	}
	if problems := driver.StageProblems(good()); len(problems) != 0 {
		t.Errorf("a good request has problems: %v", problems)
	}
}

func TestPublishProblemsMatchNodePublish(t *testing.T) {
	blockCap := func(mode csi.VolumeCapability_AccessMode_Mode) *csi.VolumeCapability {
		return &csi.VolumeCapability{
			AccessType: &csi.VolumeCapability_Block{Block: &csi.VolumeCapability_BlockVolume{}},
			AccessMode: &csi.VolumeCapability_AccessMode{Mode: mode},
		}
	}
	tests := []struct {
		name string
		req  *csi.NodePublishVolumeRequest
	}{
		{"no target", &csi.NodePublishVolumeRequest{VolumeId: "v", StagingTargetPath: "/s",
			VolumeCapability: mountCap("ext4", csi.VolumeCapability_AccessMode_SINGLE_NODE_WRITER)}},
		{"no staging path", &csi.NodePublishVolumeRequest{VolumeId: "v", TargetPath: "/t",
			VolumeCapability: mountCap("ext4", csi.VolumeCapability_AccessMode_SINGLE_NODE_WRITER)}},
		{"read-only block", &csi.NodePublishVolumeRequest{VolumeId: "v", StagingTargetPath: "/s", TargetPath: "/t", Readonly: true,
			VolumeCapability: blockCap(csi.VolumeCapability_AccessMode_SINGLE_NODE_WRITER)}},
		{"reader-only block", &csi.NodePublishVolumeRequest{VolumeId: "v", StagingTargetPath: "/s", TargetPath: "/t",
			VolumeCapability: blockCap(csi.VolumeCapability_AccessMode_MULTI_NODE_READER_ONLY)}},
		{"bad capability", &csi.NodePublishVolumeRequest{VolumeId: "v", StagingTargetPath: "/s", TargetPath: "/t",
			VolumeCapability: mountCap("zfs", csi.VolumeCapability_AccessMode_SINGLE_NODE_WRITER)}},
	}
	d := checkDriver(t)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			problems := driver.PublishProblems(tc.req)
			if len(problems) != 1 {
				t.Fatalf("%d problems, want 1: %v", len(problems), problems)
			}
			_, rpcErr := d.NodePublishVolume(t.Context(), tc.req)
			assertSameStatus(t, problems[0], rpcErr)
		})
	}
	ok := &csi.NodePublishVolumeRequest{VolumeId: "v", StagingTargetPath: "/s", TargetPath: "/t", Readonly: true,
		VolumeCapability: mountCap("ext4", csi.VolumeCapability_AccessMode_SINGLE_NODE_READER_ONLY)}
	if problems := driver.PublishProblems(ok); len(problems) != 0 {
		t.Errorf("a read-only file system publish has problems: %v", problems)
	}
}

func assertSameStatus(t *testing.T, problem, rpcErr error) {
	t.Helper()
	if rpcErr == nil {
		t.Fatalf("the handler accepted what StageProblems refused (%v)", problem)
	}
	p, r := grpcstatus.Convert(problem), grpcstatus.Convert(rpcErr)
	if p.Code() != r.Code() || p.Message() != r.Message() {
		t.Errorf("check says %s %q, the handler %s %q", p.Code(), p.Message(), r.Code(), r.Message())
	}
}
