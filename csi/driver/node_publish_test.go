package driver_test

import (
	"context"
	"errors"
	"os"
	"strings"
	"testing"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"google.golang.org/grpc/codes"
)

// A read-only bind mount does not make a device node read-only, so a
// read-only block publish must be refused rather than half-honoured.
func TestNodePublishRefusesReadOnlyBlock(t *testing.T) {
	e := newEnv(t)
	e.stage("blk", testNQN, "2", blockCap())
	readerOnly := func(mode csi.VolumeCapability_AccessMode_Mode) *csi.VolumeCapability {
		vc := blockCap()
		vc.AccessMode.Mode = mode
		return vc
	}
	tests := []struct {
		name     string
		vc       *csi.VolumeCapability
		readonly bool
	}{
		{"readonly flag", blockCap(), true},
		{"single node reader only", readerOnly(csi.VolumeCapability_AccessMode_SINGLE_NODE_READER_ONLY), false},
		{"multi node reader only", readerOnly(csi.VolumeCapability_AccessMode_MULTI_NODE_READER_ONLY), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			target := e.path("target", "blk")
			_, err := e.drv.NodePublishVolume(context.Background(), &csi.NodePublishVolumeRequest{
				VolumeId: "blk", StagingTargetPath: e.path("staging", "blk"), TargetPath: target, VolumeCapability: tt.vc, Readonly: tt.readonly,
			})
			wantCode(t, err, codes.InvalidArgument)
			if !strings.Contains(err.Error(), "a read-only bind mount does not stop writes to a device node") {
				t.Errorf("error %q does not say why", err)
			}
			if devs := e.mountedAt(target); len(devs) != 0 {
				t.Errorf("target mounts %v after a refused publish", devs)
			}
			if _, err := os.Stat(target); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("refused publish created the target: %v", err)
			}
		})
	}
}
