//go:build lab

package lab

import (
	"bytes"
	"crypto/rand"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/nvmeof/nvmeof/shared/nvme/kernel"
	"github.com/nvmeof/nvmeof/test/lab/labtarget"
)

// The node service's data-safety rules on the real kernel: a raw block
// user's data is never formatted, a repeated stage is answered during an
// outage, a controller whose namespace is mounted by another path is never
// disconnected, and Nomad's early unstage leaves a published volume alone.

func wantCSICode(t *testing.T, err error, want codes.Code, says string) {
	t.Helper()
	if got := status.Code(err); got != want || !strings.Contains(err.Error(), says) {
		t.Fatalf("error %v (%s), want %s saying %q", err, got, want, says)
	}
}

// readWriteDevice writes data at offset 0 of a block device (when data is
// not nil), syncs it, drops the page cache and reads n bytes back from the
// device.
func readWriteDevice(t *testing.T, path string, data []byte, n int) []byte {
	t.Helper()
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = f.Close() }()
	if data != nil {
		if _, err := f.WriteAt(data, 0); err != nil {
			t.Fatalf("write %s: %v", path, err)
		}
		if err := f.Sync(); err != nil {
			t.Fatal(err)
		}
	}
	dropCaches(t)
	buf := make([]byte, n)
	if _, err := f.ReadAt(buf, 0); err != nil {
		t.Fatalf("read %s: %v", path, err)
	}
	return buf
}

// 1. Raw data written through a block stage survives a file-system stage
// of the same namespace: refused while the block stage is there, and
// refused after it, when the data carries no signature; the bytes are the
// same afterwards.
func TestCSIRawBlockDataIsNeverFormatted(t *testing.T) {
	nqn := labtarget.SubsystemTwo
	disconnectAtEnd(t, nqn)
	wipeNamespace(t, nqn, 1)
	socket, state := pluginDirs(t)
	p := startPlugin(t, socket, state)
	vc := volumeContext(nqn, 1, labtarget.TwoNS1UUID)
	blk := newCSIVolume(t, "lab-raw", blockCapability(), vc)
	fs := newCSIVolume(t, "lab-raw", mountCapability("ext4"), vc)
	p.unstageAtEnd(t, fs)
	p.unstageAtEnd(t, blk)

	p.stage(t, blk)
	data := make([]byte, 1<<20)
	if _, err := rand.Read(data[4096:]); err != nil { // the first page stays zero: no signature anywhere blkid looks first
		t.Fatal(err)
	}
	file := filepath.Join(blk.staging, "block")
	if got := readWriteDevice(t, file, data, len(data)); !bytes.Equal(got, data) {
		t.Fatal("raw write did not read back")
	}

	_, err := p.node.NodeStageVolume(rpcContext(t), fs.stageRequest())
	wantCSICode(t, err, codes.FailedPrecondition, "in use as a raw block device")
	p.unstage(t, blk)
	assertNothingLeft(t, nqn, filepath.Dir(blk.staging))

	_, err = p.node.NodeStageVolume(rpcContext(t), fs.stageRequest())
	wantCSICode(t, err, codes.FailedPrecondition, "holds data but no file system")
	if ctrls := usableControllers(t, nqn); len(ctrls) != 0 {
		t.Errorf("the refused stage left controllers: %+v", ctrls)
	}

	p.stage(t, blk)
	if got := readWriteDevice(t, file, nil, len(data)); !bytes.Equal(got, data) {
		t.Fatal("the raw data changed")
	}
	p.unstage(t, blk)
	t.Logf("1 MiB of raw data (no signature) intact after two refused file-system stages")
}

// 6. A repeated NodeStage of a staged volume while its controller
// reconnects is answered OK at once, from the mount table.
func TestCSIRestageDuringOutage(t *testing.T) {
	nqn := labtarget.SubsystemOne
	disconnectAtEnd(t, nqn)
	wipeNamespace(t, nqn, 1)
	socket, state := pluginDirs(t)
	p := startPlugin(t, socket, state)
	v := newCSIVolume(t, "lab-restage", mountCapability("ext4"), volumeContext(nqn, 1, labtarget.OneNS1UUID))
	p.unstageAtEnd(t, v)
	p.stage(t, v)
	ctrls := usableControllers(t, nqn)
	if len(ctrls) != 1 {
		t.Fatalf("controllers: %+v", ctrls)
	}
	up := targetDown(t)
	waitFor(t, "controller connecting", 10*time.Second, func() bool { return ctrlSysfs(t, ctrls[0], "state") == kernel.StateConnecting })
	start := time.Now()
	p.stage(t, v)
	took := time.Since(start)
	if state := ctrlSysfs(t, ctrls[0], "state"); state != kernel.StateConnecting {
		t.Fatalf("controller %s, want it still connecting when the repeat was answered", state)
	}
	t.Logf("repeated NodeStage answered OK in %s while %s was connecting", took.Round(time.Millisecond), ctrls[0].Name)
	up()
	waitFor(t, "controller live", 30*time.Second, func() bool { return ctrlSysfs(t, ctrls[0], "state") == kernel.StateLive })
	p.unstage(t, v)
	assertNothingLeft(t, nqn, filepath.Dir(v.staging))
}

// 7. A namespace mounted through a device node of another name (mknod, a
// container's /dev) still uses its controller: unstaging a sibling volume
// and a restart's reconciliation both keep the controller, and the other
// mount keeps working.
func TestCSIControllerKeptForAMountByAnotherPath(t *testing.T) {
	nqn := labtarget.SubsystemOne
	disconnectAtEnd(t, nqn)
	wipeNamespace(t, nqn, 1)
	wipeNamespace(t, nqn, 2)
	socket, state := pluginDirs(t)
	p := startPlugin(t, socket, state)
	a := newCSIVolume(t, "lab-a", mountCapability("ext4"), volumeContext(nqn, 1, labtarget.OneNS1UUID))
	b := newCSIVolume(t, "lab-b", mountCapability("ext4"), volumeContext(nqn, 2, labtarget.OneNS2UUID))
	// The plugin restarts below, so the clean-up does not go through it.
	t.Cleanup(func() { _ = syscall.Unmount(a.staging, 0); _ = syscall.Unmount(b.staging, 0) })
	p.stage(t, a)
	p.stage(t, b) // formats namespace 2
	devB := mountAt(t, b.staging).Source
	p.unstage(t, b)

	// Someone mounts namespace 2 through a node of their own.
	var st syscall.Stat_t
	if err := syscall.Stat(devB, &st); err != nil {
		t.Fatal(err)
	}
	alias := filepath.Join(t.TempDir(), "their-disk")
	if err := syscall.Mknod(alias, syscall.S_IFBLK|0o600, int(st.Rdev)); err != nil {
		t.Fatal(err)
	}
	theirs := t.TempDir()
	if err := syscall.Mount(alias, theirs, "ext4", 0, ""); err != nil {
		t.Fatalf("mount %s (%s) at %s: %v", alias, devB, theirs, err)
	}
	t.Cleanup(func() { _ = syscall.Unmount(theirs, 0) })

	p.unstage(t, a)
	if ctrls := usableControllers(t, nqn); len(ctrls) != 1 {
		t.Fatalf("controllers after unstaging a: %+v, want the one their mount uses", ctrls)
	}
	p.kill()
	startPlugin(t, socket, state) // reconciles at start-up
	if ctrls := usableControllers(t, nqn); len(ctrls) != 1 {
		t.Fatalf("controllers after a restart: %+v, want the one their mount uses", ctrls)
	}
	if err := writeAndSync(filepath.Join(theirs, "still-here"), []byte("written after the unstage and the restart")); err != nil {
		t.Fatalf("their mount broke: %v", err)
	}
	t.Logf("namespace 2 mounted as %s at %s kept %s connected through an unstage and a restart", alias, theirs, devB)
	if err := syscall.Unmount(theirs, 0); err != nil {
		t.Fatal(err)
	}
}

// 10. Nomad's early NodeUnstage (issue 25813): refused while the volume
// is published from the staging path, naming the target; the target keeps
// serving I/O; after the unpublish the unstage goes through.
func TestCSIEarlyUnstageRefused(t *testing.T) {
	nqn := labtarget.SubsystemTwo
	disconnectAtEnd(t, nqn)
	wipeNamespace(t, nqn, 1)
	socket, state := pluginDirs(t)
	p := startPlugin(t, socket, state)
	v := newCSIVolume(t, "lab-early", mountCapability("ext4"), volumeContext(nqn, 1, labtarget.TwoNS1UUID))
	p.unstageAtEnd(t, v)
	p.stage(t, v)
	p.publish(t, v)
	for i := range 3 { // Nomad retries the unstage with backoff
		_, err := p.node.NodeUnstageVolume(rpcContext(t), &csi.NodeUnstageVolumeRequest{VolumeId: v.id, StagingTargetPath: v.staging})
		wantCSICode(t, err, codes.FailedPrecondition, v.target)
		name := filepath.Join(v.target, fmt.Sprintf("after-refusal-%d", i))
		if err := writeAndSync(name, bytes.Repeat([]byte{byte(i)}, 64<<10)); err != nil {
			t.Fatalf("the published target stopped serving after a refused unstage: %v", err)
		}
	}
	mountAt(t, v.staging)
	p.unpublish(t, v)
	p.unstage(t, v)
	assertNothingLeft(t, nqn, filepath.Dir(v.staging))
}
