package driver_test

// Tests of the node service's data safety: each one is a way the plugin
// could format, disconnect, mount or report the wrong thing (issue 9).

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"google.golang.org/grpc/codes"
)

// stageAt stages volume id from nsid of nqn at staging.
func (e *env) stageAt(id, nqn, nsid, staging string, vc *csi.VolumeCapability, ctx map[string]string) error {
	req := e.stageReq(id, nqn, nsid, vc)
	req.StagingTargetPath = staging
	for k, v := range ctx {
		req.VolumeContext[k] = v
	}
	_, err := e.drv.NodeStageVolume(context.Background(), req)
	return err
}

func (e *env) publish(id, staging, target string, vc *csi.VolumeCapability, ro bool) error {
	_, err := e.drv.NodePublishVolume(context.Background(), &csi.NodePublishVolumeRequest{
		VolumeId: id, StagingTargetPath: staging, TargetPath: target, VolumeCapability: vc, Readonly: ro,
	})
	return err
}

func (e *env) unpublish(id, target string) error {
	_, err := e.drv.NodeUnpublishVolume(context.Background(), &csi.NodeUnpublishVolumeRequest{VolumeId: id, TargetPath: target})
	return err
}

func (e *env) unstageAt(id, staging string) error {
	_, err := e.drv.NodeUnstageVolume(context.Background(), &csi.NodeUnstageVolumeRequest{VolumeId: id, StagingTargetPath: staging})
	return err
}

// writeRaw writes data at the start of the device bound at a block
// volume's staging path, as an application using the raw device does.
func writeRaw(t *testing.T, e *env, staging string, data []byte) string {
	t.Helper()
	devs := e.mountedAt(filepath.Join(staging, "block"))
	if len(devs) != 1 {
		t.Fatalf("block staging holds %v", devs)
	}
	f, err := os.OpenFile(devs[0], os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = f.Close() }()
	if _, err := f.WriteAt(data, 0); err != nil {
		t.Fatal(err)
	}
	return devs[0]
}

func readHead(t *testing.T, dev string, n int) []byte {
	t.Helper()
	f, err := os.Open(dev)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = f.Close() }()
	b := make([]byte, n)
	if _, err := f.ReadAt(b, 0); err != nil {
		t.Fatal(err)
	}
	return b
}

var rawData = []byte("a database's pages, written straight to the block device")

// 1. A namespace a block volume uses is never formatted by a file-system
// stage: not while the block stage is there, and not later, when raw data
// with no signature is all that is left of it.
func TestNodeStageNeverFormatsABlockUsersDevice(t *testing.T) {
	e := newEnv(t)
	blockStaging, fsStaging := e.path("staging", "vol", "rw-block"), e.path("staging", "vol", "rw-fs")
	if err := e.stageAt("vol", testNQN, "1", blockStaging, blockCap(), nil); err != nil {
		t.Fatal(err)
	}
	writeRaw(t, e, blockStaging, rawData)

	err := e.stageAt("vol", testNQN, "1", fsStaging, mountCap("ext4", rwo), nil)
	wantCode(t, err, codes.FailedPrecondition)
	if !strings.Contains(err.Error(), "in use as a raw block device") {
		t.Errorf("error does not say the device is in block use: %v", err)
	}
	// Re-staged as a file system at the block volume's own path: the
	// repeat is incompatible.
	err = e.stageAt("vol", testNQN, "1", blockStaging, mountCap("ext4", rwo), nil)
	wantCode(t, err, codes.AlreadyExists)
	if n := e.exec.Ran("mkfs.ext4"); n != 0 {
		t.Fatalf("mkfs ran %d times on a device in block use", n)
	}

	// The block stage goes; the raw data stays, with no signature.
	if err := e.unstageAt("vol", blockStaging); err != nil {
		t.Fatal(err)
	}
	err = e.stageAt("vol", testNQN, "1", fsStaging, mountCap("ext4", rwo), nil)
	wantCode(t, err, codes.FailedPrecondition)
	for _, want := range []string{"holds data but no file system", `format_policy = "if-no-filesystem"`, "Stage it as a block device"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error does not say %q: %v", want, err)
		}
	}
	if n := e.exec.Ran("mkfs.ext4"); n != 0 {
		t.Fatalf("mkfs ran on raw data")
	}
	if n := e.controllers(); n != 0 {
		t.Errorf("%d controllers left by the refused stage", n)
	}
	// The data is there: read it through a new block stage.
	if err := e.stageAt("vol", testNQN, "1", blockStaging, blockCap(), nil); err != nil {
		t.Fatal(err)
	}
	dev := e.mountedAt(filepath.Join(blockStaging, "block"))[0]
	if got := readHead(t, dev, len(rawData)); !bytes.Equal(got, rawData) {
		t.Fatalf("raw data changed: %q", got)
	}
	if err := e.unstageAt("vol", blockStaging); err != nil {
		t.Fatal(err)
	}

	// The volume context may say to format such a device, and then it is.
	if err := e.stageAt("vol", testNQN, "1", fsStaging, mountCap("ext4", rwo), map[string]string{"format_policy": "if-no-filesystem"}); err != nil {
		t.Fatal(err)
	}
	if n := e.exec.Ran("mkfs.ext4"); n != 1 {
		t.Errorf("mkfs ran %d times with format_policy if-no-filesystem, want 1", n)
	}
}

// 1. The other way round: raw block access beside a mounted file system.
func TestNodeStageRefusesBlockBesideAFileSystem(t *testing.T) {
	e := newEnv(t)
	fsStaging := e.path("staging", "vol", "rw-fs")
	if err := e.stageAt("vol", testNQN, "1", fsStaging, mountCap("ext4", rwo), nil); err != nil {
		t.Fatal(err)
	}
	err := e.stageAt("vol", testNQN, "1", e.path("staging", "vol", "rw-block"), blockCap(), nil)
	wantCode(t, err, codes.FailedPrecondition)
	if !strings.Contains(err.Error(), "holds a file system in use") {
		t.Errorf("error: %v", err)
	}
	// A second file-system usage mounts the same file system without
	// formatting or checking it (fsck on a mounted file system breaks it).
	roStaging := e.path("staging", "vol", "ro-fs")
	if err := e.stageAt("vol", testNQN, "1", roStaging, mountCap("ext4", csi.VolumeCapability_AccessMode_SINGLE_NODE_READER_ONLY), nil); err != nil {
		t.Fatal(err)
	}
	if got, want := e.mountedAt(roStaging), e.mountedAt(fsStaging); len(got) != 1 || got[0] != want[0] {
		t.Errorf("read-only usage mounted %v, want %v", got, want)
	}
	if n, f := e.exec.Ran("mkfs.ext4"), e.exec.Ran("fsck"); n != 1 || f != 0 {
		t.Errorf("mkfs ran %d times, fsck %d; want 1 and 0", n, f)
	}
}

// 1. format_policy never: a blank device is not formatted either.
func TestFormatPolicyNever(t *testing.T) {
	e := newEnv(t)
	err := e.stageAt("vol", testNQN, "1", e.path("staging", "vol"), mountCap("ext4", rwo), map[string]string{"format_policy": "never"})
	wantCode(t, err, codes.FailedPrecondition)
	if !strings.Contains(err.Error(), `format_policy is "never"`) || e.exec.Ran("mkfs.ext4") != 0 {
		t.Errorf("error %v after %d mkfs runs", err, e.exec.Ran("mkfs.ext4"))
	}
}

// 4. A refused re-stage changes nothing: the volume staged before stays
// staged and healthy, and survives a restart's reconciliation.
func TestRefusedRestageKeepsTheRecord(t *testing.T) {
	e := newEnv(t)
	staging := e.path("staging", "vol")
	if err := e.stageAt("vol", testNQN, "1", staging, mountCap("ext4", rwo), nil); err != nil {
		t.Fatal(err)
	}
	err := e.stageAt("vol", testNQN, "1", staging, blockCap(), nil)
	wantCode(t, err, codes.AlreadyExists)
	health, err := e.drv.NodeGetVolumeHealth(context.Background(), &csi.NodeGetVolumeHealthRequest{VolumeId: "vol", StagingTargetPath: staging})
	if err != nil || len(health.GetVolumeHealth().GetHealthStatuses()) != 0 {
		t.Fatalf("health after a refused re-stage: %v, %v", health, err)
	}
	e.drv = e.newDriver()
	if err := e.drv.Reconcile(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := e.unstageAt("vol", staging); err != nil {
		t.Fatalf("unstage after reconcile: %v", err)
	}
	if n := e.controllers(); n != 0 {
		t.Errorf("%d controllers left", n)
	}
}

// 4. A failed stage leaves no record that counts as a sibling.
func TestFailedStageLeavesNoRecord(t *testing.T) {
	e := newEnv(t)
	wrong := e.stageReq("wrong", testNQN, "1", mountCap("", rwo))
	wrong.VolumeContext["uuid"] = uuid2
	_, err := e.drv.NodeStageVolume(context.Background(), wrong)
	wantCode(t, err, codes.FailedPrecondition)
	entries, err := os.ReadDir(e.path("state", "volumes"))
	if err != nil || len(entries) != 0 {
		t.Fatalf("state after a failed stage: %v, %v", entries, err)
	}
	// Another volume of the subsystem may bring its own settings: the failed
	// one staged nothing.
	if err := e.stageAt("other", testNQN, "2", e.path("staging", "other"), mountCap("", rwo), map[string]string{"ctrl_loss_tmo": "60"}); err != nil {
		t.Fatal(err)
	}
}

// 5. Incompatible repeats are AlreadyExists, never OK with the old mount.
func TestIncompatibleRepeats(t *testing.T) {
	ro := csi.VolumeCapability_AccessMode_SINGLE_NODE_READER_ONLY
	tests := []struct {
		name        string
		first, next *csi.VolumeCapability
		nextContext map[string]string
	}{
		{"another fs_type", mountCap("ext4", rwo), mountCap("xfs", rwo), nil},
		{"read-only over read-write", mountCap("ext4", rwo), mountCap("ext4", ro), nil},
		{"block over mount", mountCap("ext4", rwo), blockCap(), nil},
		{"mount over block", blockCap(), mountCap("ext4", rwo), nil},
		{"other mount flags", mountCap("ext4", rwo), &csi.VolumeCapability{
			AccessType: &csi.VolumeCapability_Mount{Mount: &csi.VolumeCapability_MountVolume{FsType: "ext4", MountFlags: []string{"noatime"}}},
			AccessMode: &csi.VolumeCapability_AccessMode{Mode: rwo},
		}, nil},
		{"other reconnection settings", mountCap("ext4", rwo), mountCap("ext4", rwo), map[string]string{"ctrl_loss_tmo": "60"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			staging := e.path("staging", "vol")
			if err := e.stageAt("vol", testNQN, "1", staging, tt.first, nil); err != nil {
				t.Fatal(err)
			}
			before := e.mountedAt(staging)
			err := e.stageAt("vol", testNQN, "1", staging, tt.next, tt.nextContext)
			wantCode(t, err, codes.AlreadyExists)
			if after := e.mountedAt(staging); len(after) != len(before) {
				t.Errorf("mounts changed: %v -> %v", before, after)
			}
			// The same request again is fine.
			if err := e.stageAt("vol", testNQN, "1", staging, tt.first, nil); err != nil {
				t.Errorf("identical repeat: %v", err)
			}
		})
	}
	t.Run("publish read-only over read-write", func(t *testing.T) {
		e := newEnv(t)
		staging, target := e.path("staging", "vol"), e.path("target", "vol")
		if err := e.stageAt("vol", testNQN, "1", staging, mountCap("ext4", rwo), nil); err != nil {
			t.Fatal(err)
		}
		if err := e.publish("vol", staging, target, mountCap("ext4", rwo), false); err != nil {
			t.Fatal(err)
		}
		err := e.publish("vol", staging, target, mountCap("ext4", rwo), true)
		wantCode(t, err, codes.AlreadyExists)
		if err := e.publish("vol", staging, target, mountCap("ext4", rwo), false); err != nil {
			t.Errorf("identical repeat: %v", err)
		}
	})
}

// 6. A repeated stage during an outage is answered from the mount table,
// without waiting for the controller.
func TestRestageDuringOutage(t *testing.T) {
	e := newEnv(t)
	staging := e.path("staging", "vol")
	if err := e.stageAt("vol", testNQN, "1", staging, mountCap("ext4", rwo), nil); err != nil {
		t.Fatal(err)
	}
	e.fake.SetDown(testNQN, true)
	if err := e.stageAt("vol", testNQN, "1", staging, mountCap("ext4", rwo), nil); err != nil {
		t.Fatalf("re-stage while the controller reconnects: %v", err)
	}
}

// 8. Settings fixed at connect time are refused on a controller that was
// connected without them, never silently ignored.
func TestAdoptingAControllerWithOtherFixedSettings(t *testing.T) {
	for _, key := range []string{"keep_alive_tmo", "nr_io_queues", "queue_size", "tos", "hdr_digest", "data_digest"} {
		t.Run(key, func(t *testing.T) {
			e := newEnv(t)
			if _, err := e.fake.Connect(context.Background(), connection(t, testNQN)); err != nil { // an admin's nvme connect
				t.Fatal(err)
			}
			value := map[string]string{"keep_alive_tmo": "11", "nr_io_queues": "2", "queue_size": "64", "tos": "8", "hdr_digest": "true", "data_digest": "true"}[key]
			err := e.stageAt("vol", testNQN, "1", e.path("staging", "vol"), mountCap("", rwo), map[string]string{key: value})
			wantCode(t, err, codes.FailedPrecondition)
			if !strings.Contains(err.Error(), key) {
				t.Errorf("error does not name %s: %v", key, err)
			}
		})
	}
	t.Run("the plugin's own controller", func(t *testing.T) {
		e := newEnv(t)
		if err := e.stageAt("a", testNQN, "1", e.path("staging", "a"), mountCap("", rwo), map[string]string{"keep_alive_tmo": "11"}); err != nil {
			t.Fatal(err)
		}
		// The same settings adopt it; others are refused, naming both.
		if err := e.stageAt("b", testNQN, "2", e.path("staging", "b"), mountCap("", rwo), map[string]string{"keep_alive_tmo": "11"}); err != nil {
			t.Fatal(err)
		}
		err := e.stageAt("c", testNQN, "2", e.path("staging", "c"), mountCap("", rwo), nil)
		wantCode(t, err, codes.FailedPrecondition)
		if !strings.Contains(err.Error(), "keep_alive_tmo 11 -> kernel default") {
			t.Errorf("error: %v", err)
		}
	})
}

// 9. One corrupt record is set aside, not a reason to refuse every stage.
func TestCorruptRecordIsSetAside(t *testing.T) {
	e := newEnv(t)
	staging := e.path("staging", "vol")
	if err := e.stageAt("vol", testNQN, "1", staging, mountCap("", rwo), nil); err != nil {
		t.Fatal(err)
	}
	bad := e.path("state", "volumes", "0123456789abcdef01234567.json")
	if err := os.WriteFile(bad, []byte(`{"VolumeID": "half a rec`), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := e.stageAt("other", testNQN, "2", e.path("staging", "other"), mountCap("", rwo), nil); err != nil {
		t.Fatalf("stage beside a corrupt record: %v", err)
	}
	if err := e.drv.Reconcile(context.Background()); err != nil {
		t.Fatalf("reconcile beside a corrupt record: %v", err)
	}
	if _, err := os.Stat(bad); !os.IsNotExist(err) {
		t.Errorf("corrupt record still in place: %v", err)
	}
	aside, _ := filepath.Glob(bad + ".corrupt-*")
	if len(aside) != 1 {
		t.Errorf("corrupt record not set aside: %v", aside)
	}
	if !strings.Contains(e.log.String(), "corrupt state record set aside") || !strings.Contains(e.log.String(), bad) {
		t.Errorf("log does not name the corrupt record")
	}
	if err := e.unstageAt("vol", staging); err != nil {
		t.Fatal(err)
	}
}

// 10. Nomad's early NodeUnstage (issue 25813) while the volume is still
// published is refused, naming the target; the target keeps its mount, and
// once it is unpublished the unstage goes through and disconnects.
func TestEarlyUnstageIsRefused(t *testing.T) {
	for _, block := range []bool{false, true} {
		t.Run(map[bool]string{false: "file system", true: "block"}[block], func(t *testing.T) {
			e := newEnv(t)
			vc := mountCap("ext4", rwo)
			if block {
				vc = blockCap()
			}
			staging, target := e.path("staging", "vol"), e.path("per-alloc", "a1", "vol")
			if err := e.stageAt("vol", testNQN, "1", staging, vc, nil); err != nil {
				t.Fatal(err)
			}
			if err := os.MkdirAll(filepath.Dir(target), 0o700); err != nil {
				t.Fatal(err)
			}
			if err := e.publish("vol", staging, target, vc, false); err != nil {
				t.Fatal(err)
			}
			for range 2 { // Nomad retries
				err := e.unstageAt("vol", staging)
				wantCode(t, err, codes.FailedPrecondition)
				if !strings.Contains(err.Error(), target) {
					t.Errorf("error does not name the target: %v", err)
				}
			}
			if len(e.mountedAt(target)) != 1 || e.controllers() != 1 {
				t.Fatalf("the refused unstage touched the published volume: target %v, %d controllers", e.mountedAt(target), e.controllers())
			}
			if err := e.unpublish("vol", target); err != nil {
				t.Fatal(err)
			}
			if err := e.unstageAt("vol", staging); err != nil {
				t.Fatal(err)
			}
			if n := e.controllers(); n != 0 {
				t.Errorf("%d controllers after the last unstage", n)
			}
		})
	}
}

// 11. A publish or unstage naming another volume's staging path is
// refused: it would bind (or take away) that volume's device.
func TestOtherVolumesStagingPath(t *testing.T) {
	e := newEnv(t)
	staging := e.path("staging", "mine")
	if err := e.stageAt("mine", testNQN, "1", staging, mountCap("", rwo), nil); err != nil {
		t.Fatal(err)
	}
	err := e.publish("theirs", staging, e.path("target", "theirs"), mountCap("", rwo), false)
	wantCode(t, err, codes.FailedPrecondition)
	if len(e.mountedAt(e.path("target", "theirs"))) != 0 {
		t.Fatal("another volume's device was published")
	}
	err = e.unstageAt("theirs", staging)
	wantCode(t, err, codes.FailedPrecondition)
	if len(e.mountedAt(staging)) != 1 {
		t.Fatal("another volume's staging mount was taken away")
	}
}

// 3. Two stages of one subsystem that arrive together with different
// settings: one wins, the other is refused, whichever order the connects
// end in; no volume's settings are rewritten.
func TestConcurrentStagesWithDifferentSettings(t *testing.T) {
	e := newEnv(t)
	entered, release := e.fake.HoldConnects(testNQN)
	var wg sync.WaitGroup
	errs := make([]error, 2)
	for i, tmo := range []string{"-1", "30"} {
		wg.Go(func() {
			id := []string{"a", "b"}[i]
			errs[i] = e.stageAt(id, testNQN, []string{"1", "2"}[i], e.path("staging", id), mountCap("", rwo), map[string]string{"ctrl_loss_tmo": tmo})
		})
	}
	<-entered
	release()
	wg.Wait()
	ok, refused := 0, 0
	for _, err := range errs {
		switch codeOf(err) {
		case codes.OK:
			ok++
		case codes.FailedPrecondition:
			refused++
		default:
			t.Errorf("unexpected: %v", err)
		}
	}
	if ok != 1 || refused != 1 {
		t.Fatalf("%d staged, %d refused; want one each (errors %v)", ok, refused, errs)
	}
	cs, err := e.fake.Controllers()
	if err != nil || len(cs) != 1 {
		t.Fatalf("controllers: %v, %v", cs, err)
	}
	want := map[bool]int{true: -1, false: 30}[errs[0] == nil]
	if cs[0].CtrlLossTmo != want {
		t.Errorf("controller has ctrl_loss_tmo %d, the staged volume asked for %d", cs[0].CtrlLossTmo, want)
	}
}

// 2. A connect that fails leaves no record claiming a controller: one an
// admin connects later is adopted as theirs and never disconnected.
func TestFailedConnectClaimsNothing(t *testing.T) {
	e := newEnv(t)
	e.fake.SetDown(testNQN, true)
	err := e.stageAt("vol", testNQN, "1", e.path("staging", "vol"), mountCap("", rwo), nil)
	if err == nil {
		t.Fatal("staged from a target that is down")
	}
	e.fake.SetDown(testNQN, false)
	if _, err := e.fake.Connect(context.Background(), connection(t, testNQN)); err != nil { // an admin's nvme connect
		t.Fatal(err)
	}
	if err := e.stageAt("vol", testNQN, "1", e.path("staging", "vol"), mountCap("", rwo), nil); err != nil {
		t.Fatal(err)
	}
	if err := e.unstageAt("vol", e.path("staging", "vol")); err != nil {
		t.Fatal(err)
	}
	if n := e.controllers(); n != 1 {
		t.Fatalf("the admin's controller was disconnected (%d left)", n)
	}
	// Nor at start-up.
	e.drv = e.newDriver()
	if err := e.drv.Reconcile(context.Background()); err != nil {
		t.Fatal(err)
	}
	if n := e.controllers(); n != 1 {
		t.Fatalf("reconciliation disconnected the admin's controller (%d left)", n)
	}
}

// 1. A mkfs cut short (killed with the plugin, or failed) leaves neither a
// signature nor a blank head. The plugin recorded that it started the
// format, so the retried stage finishes it rather than calling it someone
// else's raw data. Once the namespace has been a raw block device since,
// that record no longer speaks for what is on it.
func TestBlockStageEndsAnInterruptedFormat(t *testing.T) {
	e := newEnv(t)
	staging := e.path("staging", "vol")
	e.exec.FailTool("mkfs.ext4", 1)
	if err := e.stageAt("vol", testNQN, "1", staging, mountCap("ext4", rwo), nil); err == nil {
		t.Fatal("staged with a failing mkfs")
	}
	e.exec.FailTool("mkfs.ext4", 0)
	blk := e.path("staging", "blk")
	if err := e.stageAt("vol", testNQN, "1", blk, blockCap(), nil); err != nil {
		t.Fatal(err)
	}
	writeRaw(t, e, blk, rawData)
	if err := e.unstageAt("vol", blk); err != nil {
		t.Fatal(err)
	}
	err := e.stageAt("vol", testNQN, "1", staging, mountCap("ext4", rwo), nil)
	wantCode(t, err, codes.FailedPrecondition)
	if n := e.exec.Ran("mkfs.ext4"); n != 1 {
		t.Errorf("mkfs ran %d times, want only the failed one", n)
	}
}

func TestInterruptedFormatIsFinishedAfterAKill(t *testing.T) {
	e := newEnv(t)
	staging := e.path("staging", "vol")
	e.exec.FailTool("mkfs.ext4", 137) // SIGKILL'd mkfs
	if err := e.stageAt("vol", testNQN, "1", staging, mountCap("ext4", rwo), nil); err == nil {
		t.Fatal("staged with a killed mkfs")
	}
	// What a half-done mkfs leaves: block groups written, no superblock.
	backing, ok := e.fake.BackingFile(testNQN, 1)
	if !ok {
		t.Fatal("no backing file")
	}
	f, err := os.OpenFile(backing, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt([]byte("half a block group"), 8192); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	e.exec.FailTool("mkfs.ext4", 0)
	e.drv = e.newDriver() // the plugin restarts
	if err := e.drv.Reconcile(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := e.stageAt("vol", testNQN, "1", staging, mountCap("ext4", rwo), nil); err != nil {
		t.Fatalf("the retried stage did not finish its own format: %v", err)
	}
	if n := e.exec.Ran("mkfs.ext4"); n != 2 {
		t.Errorf("mkfs ran %d times, want 2", n)
	}
}

// 4. A stage that fails after its record was written (mkfs fails) takes
// the record back: nothing counts it as staged afterwards.
func TestFailedMkfsLeavesNoRecord(t *testing.T) {
	e := newEnv(t)
	e.exec.FailTool("mkfs.ext4", 1)
	if err := e.stageAt("vol", testNQN, "1", e.path("staging", "vol"), mountCap("ext4", rwo), nil); err == nil {
		t.Fatal("staged with a failing mkfs")
	}
	entries, err := os.ReadDir(e.path("state", "volumes"))
	if err != nil || len(entries) != 0 {
		t.Fatalf("stage records after a failed mkfs: %v, %v", entries, err)
	}
	if n := e.controllers(); n != 0 {
		t.Errorf("%d controllers after a failed stage", n)
	}
	// A sibling with other settings may stage: the failed one uses nothing.
	e.exec.FailTool("mkfs.ext4", 0)
	if err := e.stageAt("other", testNQN, "2", e.path("staging", "other"), mountCap("ext4", rwo), map[string]string{"ctrl_loss_tmo": "60"}); err != nil {
		t.Fatal(err)
	}
}

// 2. A connect the kernel is still doing when the stage's caller gives
// up (the write cannot be interrupted) is settled in the background,
// holding the controller's lock: the controller the write makes is
// recorded as the plugin's and, with no stage to use it, disconnected.
// The next stage of the subsystem waits for that, then connects anew.
func TestConnectOutlivingItsStageIsSettled(t *testing.T) {
	e := newEnv(t)
	entered, release := e.fake.HoldConnects(testNQN)
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	done := make(chan error, 1)
	go func() {
		_, err := e.drv.NodeStageVolume(ctx, e.stageReq("vol", testNQN, "1", mountCap("", rwo)))
		done <- err
	}()
	<-entered
	err := <-done // the caller's deadline ends while the kernel holds the write
	wantCode(t, err, codes.DeadlineExceeded)
	if !strings.Contains(err.Error(), "still connecting") {
		t.Errorf("error does not say the kernel is still connecting: %v", err)
	}
	release()
	e.stage("vol", testNQN, "1", mountCap("", rwo))
	if c, d := e.fake.Counts(); c != 2 || d != 1 {
		t.Fatalf("%d controllers created, %d deleted; want the abandoned one created and released, then a new one", c, d)
	}
	e.unstage("vol")
	if c, d := e.fake.Counts(); c != 2 || d != 2 || e.controllers() != 0 {
		t.Fatalf("%d created, %d deleted, %d left after the unstage", c, d, e.controllers())
	}
}
