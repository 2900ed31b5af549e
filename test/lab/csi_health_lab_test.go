//go:build lab

package lab

import (
	"context"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/container-storage-interface/spec/lib/go/csi"

	"github.com/nvmeof/nvmeof/test/lab/labtarget"
)

// TestCSIHealthProbesNeverFailADetach runs write probes of a staged file
// system without pause while the volume is detached and attached again,
// round after round: the background monitor every 5 ms, and two clients
// asking NodeGetVolumeHealth (staging and publish path) back to back. A
// probe holds a file open in the mount it probes; were it still open when
// the mount comes off, umount(2) would fail with EBUSY and the unpublish
// or unstage with it (what the issue saw with a 15 s monitor and one
// unlucky tick). Every unpublish and unstage must succeed, and probes must
// have answered during the detaches, or the test proved nothing.
func TestCSIHealthProbesNeverFailADetach(t *testing.T) {
	const rounds = 12
	nqn := labtarget.SubsystemTwo
	disconnectAtEnd(t, nqn)
	socket, state := pluginDirs(t)
	p := startPluginWith(t, socket, state, pluginOptions{healthInterval: "5ms"})
	v := newCSIVolume(t, "lab-health-probes", mountCapability("ext4"), volumeContext(nqn, 1, labtarget.TwoNS1UUID))
	p.unstageAtEnd(t, v)

	ctx, stop := context.WithCancel(t.Context())
	var detaching atomic.Bool
	var answered, duringDetach, writes atomic.Int64
	var wg sync.WaitGroup
	for range 2 {
		wg.Go(func() {
			for ctx.Err() == nil {
				resp, err := p.node.NodeGetVolumeHealth(ctx, &csi.NodeGetVolumeHealthRequest{
					VolumeId: v.id, StagingTargetPath: v.staging, VolumePublishPath: v.target,
				})
				if err != nil {
					continue // not staged between two rounds: NotFound
				}
				answered.Add(1)
				if detaching.Load() {
					duringDetach.Add(1)
				}
				if len(resp.GetVolumeHealth().GetHealthStatuses()) == 0 {
					writes.Add(1) // healthy: the probe wrote (or the path was not mounted any more)
				}
			}
		})
	}
	for i := range rounds {
		p.stage(t, v)
		p.publish(t, v)
		if err := os.WriteFile(filepath.Join(v.target, "app"), []byte("round"), 0o600); err != nil {
			t.Fatalf("round %d: the application's write: %v", i, err)
		}
		detaching.Store(true)
		p.unpublish(t, v) // each fails the test on any error
		p.unstage(t, v)
		detaching.Store(false)
	}
	stop()
	wg.Wait()
	t.Logf("LAB-HEALTH rounds=%d health_answers=%d during_detach=%d healthy=%d", rounds, answered.Load(), duringDetach.Load(), writes.Load())
	if duringDetach.Load() == 0 {
		t.Fatal("no health answer came while a detach ran: the probes never raced an unmount")
	}
}
