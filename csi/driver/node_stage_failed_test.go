package driver_test

import (
	"context"
	"testing"

	"google.golang.org/grpc/codes"
)

// A stage that fails after its connect releases the controller it
// created, unless another staged volume uses it: no unstage will come for
// a stage that never succeeded.
func TestNodeStageFailureReleasesController(t *testing.T) {
	tests := []struct {
		name        string
		otherStaged bool
		want        int // controllers after the failed stage
	}{
		{"alone: disconnected", false, 0},
		{"another volume staged: kept", true, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			if tt.otherStaged {
				e.stage("other", testNQN, "2", blockCap())
			}
			req := e.stageReq("wrong", testNQN, "1", mountCap("", rwo))
			req.VolumeContext["uuid"] = uuid2 // nsid 1 has uuid1
			_, err := e.drv.NodeStageVolume(context.Background(), req)
			wantCode(t, err, codes.FailedPrecondition)
			if n := e.controllers(); n != tt.want {
				t.Errorf("%d controllers after the failed stage, want %d", n, tt.want)
			}
			if devs := e.mountedAt(e.path("staging", "wrong")); len(devs) != 0 {
				t.Errorf("the failed stage mounted %v", devs)
			}
		})
	}
}
