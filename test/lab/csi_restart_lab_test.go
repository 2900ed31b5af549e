//go:build lab

package lab

import (
	"bytes"
	"crypto/sha256"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/nvmeof/nvmeof/shared/nvme/kernel"
	"github.com/nvmeof/nvmeof/test/lab/labtarget"
)

// The plugin killed mid-stage, and the target gone mid-write.

// 3. SIGKILL while NodeStage runs mkfs; a new plugin on the same socket
// and state dir converges on the retried call and unstages cleanly.
func TestCSIKilledMidStage(t *testing.T) {
	nqn := labtarget.SubsystemTwo
	disconnectAtEnd(t, nqn)
	wipeNamespace(t, nqn, 1)
	socket, state := pluginDirs(t)
	p := startPlugin(t, socket, state)
	v := newCSIVolume(t, "lab-killed", mountCapability("ext4"), volumeContext(nqn, 1, labtarget.TwoNS1UUID))

	inFlight := make(chan error, 1)
	go func() {
		_, err := p.node.NodeStageVolume(t.Context(), v.stageRequest())
		inFlight <- err
	}()
	waitFor(t, "mkfs.ext4 running under the plugin", 60*time.Second, func() bool { return p.childNamed("mkfs.ext4") != 0 })
	p.kill()
	if err := <-inFlight; status.Code(err) != codes.Unavailable {
		t.Errorf("the stage in flight when the plugin died = %v, want Unavailable", err)
	}
	t.Logf("killed mid-mkfs; controllers of %s: %d, mounts under the volume: %d",
		nqn, len(usableControllers(t, nqn)), len(mountsUnder(t, filepath.Dir(v.staging))))

	p = startPlugin(t, socket, state)
	p.unstageAtEnd(t, v)
	p.stage(t, v)
	p.stage(t, v)
	if ctrls := usableControllers(t, nqn); len(ctrls) != 1 {
		t.Errorf("controllers of %s after the retried stage: %+v, want one", nqn, ctrls)
	}
	if mi := mountAt(t, v.staging); mi.FsType != "ext4" {
		t.Errorf("staged as %s, want ext4", mi.FsType)
	}
	if n := len(mountsUnder(t, filepath.Dir(v.staging))); n != 1 {
		t.Errorf("%d mounts under the volume's dirs, want 1", n)
	}
	p.publish(t, v)
	sum := writeRandomFile(t, filepath.Join(v.target, "data"), 1<<20)
	dropCaches(t)
	if got := fileSum(t, filepath.Join(v.target, "data")); got != sum {
		t.Errorf("read back: sha256 %x, want %x", got, sum)
	}
	p.unpublish(t, v)
	p.unstage(t, v)
	assertNothingLeft(t, nqn, filepath.Dir(v.staging))
}

// 4. A 15 s outage under a published volume with ctrl_loss_tmo=-1: the
// writer sees no error, only a pause; the data is intact and the
// controller is live again.
func TestCSIOutageDuringWrites(t *testing.T) {
	forEachBackend(t, func(t *testing.T, backend string) {
		nqn := labtarget.SubsystemOne
		disconnectAtEnd(t, nqn)
		wipeNamespace(t, nqn, 1)
		socket, state := pluginDirs(t)
		p := startPluginWith(t, socket, state, pluginOptions{connector: backend})
		v := newCSIVolume(t, "lab-outage", mountCapability("ext4"), volumeContext(nqn, 1, labtarget.OneNS1UUID))
		p.unstageAtEnd(t, v)
		p.stage(t, v)
		p.publish(t, v)
		ctrls := usableControllers(t, nqn)
		if len(ctrls) != 1 || ctrlSysfs(t, ctrls[0], "ctrl_loss_tmo") != "off" {
			t.Fatalf("controllers of %s: %+v, want one with ctrl_loss_tmo off", nqn, ctrls)
		}
		writeAcrossOutage(t, v, ctrls[0])
		p.unpublish(t, v)
		p.unstage(t, v)
		assertNothingLeft(t, nqn, filepath.Dir(v.staging))
	})
}

// writeAcrossOutage writes and fsyncs files into the published volume v
// while the target is down for 15 s, then checks that no
// write failed, that one waited the outage out, that every file reads
// back, and that ctrl is live again.
func writeAcrossOutage(t *testing.T, v csiVolume, ctrl kernel.Controller) {
	t.Helper()

	// The writer writes and fsyncs one file after another until told to
	// stop, keeping each file's sum.
	type written struct {
		name string
		sum  [32]byte
		took time.Duration
	}
	stop := make(chan struct{})
	results := make(chan []written, 1)
	failed := make(chan error, 1)
	go func() {
		var done []written
		defer func() { results <- done }()
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			data := bytes.Repeat([]byte{byte(i)}, 256<<10)
			copy(data, fmt.Sprintf("file %d at %s", i, time.Now()))
			name := fmt.Sprintf("f%04d", i)
			start := time.Now()
			if err := writeAndSync(filepath.Join(v.target, name), data); err != nil {
				failed <- fmt.Errorf("write %s: %w", name, err)
				return
			}
			done = append(done, written{name, sha256.Sum256(data), time.Since(start)})
			time.Sleep(100 * time.Millisecond)
		}
	}()

	time.Sleep(time.Second)
	up := targetDown(t)
	outage := time.Now()
	waitFor(t, "controller connecting", 10*time.Second, func() bool { return ctrlSysfs(t, ctrl, "state") == kernel.StateConnecting })
	time.Sleep(15*time.Second - time.Since(outage))
	up()
	restored := time.Now()
	waitFor(t, "controller live again", 30*time.Second, func() bool { return ctrlSysfs(t, ctrl, "state") == kernel.StateLive })
	t.Logf("live %s after the restore", time.Since(restored).Round(time.Millisecond))
	time.Sleep(2 * time.Second) // a few writes after the restore
	close(stop)
	files := <-results
	select {
	case err := <-failed:
		t.Fatalf("the writer failed across the outage: %v", err)
	default:
	}

	var longest time.Duration
	for _, f := range files {
		longest = max(longest, f.took)
	}
	t.Logf("%d files written across a %s outage; the longest write+fsync took %s",
		len(files), restored.Sub(outage).Round(time.Millisecond), longest.Round(time.Millisecond))
	if longest < 10*time.Second {
		t.Errorf("no write waited out the outage (longest %s): did the outage reach the writer?", longest)
	}
	dropCaches(t)
	for _, f := range files {
		if got := fileSum(t, filepath.Join(v.target, f.name)); got != f.sum {
			t.Errorf("%s: sha256 %x, want %x", f.name, got, f.sum)
		}
	}
	if got := ctrlSysfs(t, ctrl, "state"); got != kernel.StateLive {
		t.Errorf("controller %s is %s at the end, want live", ctrl.Name, got)
	}
}
