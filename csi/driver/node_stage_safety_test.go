package driver_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"google.golang.org/grpc/codes"
)

// A traddr that is a host name must key the controller as sysfs will show
// it (the resolved address): otherwise unstage cannot find the record that
// says the plugin created it, and the controller leaks.
func TestNodeStageResolvesHostNames(t *testing.T) {
	e := newEnv(t)
	e.fake.SetHostAddr("array.example", "127.0.0.1")
	byName := e.stageReq("by-name", testNQN, "1", mountCap("", rwo))
	byName.VolumeContext["traddr"] = "array.example"
	if _, err := e.drv.NodeStageVolume(context.Background(), byName); err != nil {
		t.Fatal(err)
	}
	e.stage("by-address", testNQN, "2", mountCap("", rwo))
	if n := e.controllers(); n != 1 {
		t.Fatalf("%d controllers for one subsystem reached by name and by address, want 1", n)
	}
	e.unstage("by-name")
	if n := e.controllers(); n != 1 {
		t.Fatalf("unstaging one volume left %d controllers, want the shared one", n)
	}
	e.unstage("by-address")
	if n := e.controllers(); n != 0 {
		t.Fatalf("%d controllers left after the last unstage: the one created by name leaked", n)
	}

	unknown := e.stageReq("nowhere", testNQN, "1", mountCap("", rwo))
	unknown.VolumeContext["traddr"] = "nowhere.example"
	_, err := e.drv.NodeStageVolume(context.Background(), unknown)
	wantCode(t, err, codes.FailedPrecondition)
}

// blkid says "nothing found" when it cannot read the device, so the blank
// check must never run on a device that cannot be read right now.
func TestNodeStageNeverFormatsAnUnreadableDevice(t *testing.T) {
	t.Run("controller reconnecting", func(t *testing.T) {
		e := newEnv(t)
		e.stage("other", testNQN, "2", mountCap("", rwo)) // the controller exists
		formats := e.exec.Ran("mkfs.ext4")
		e.fake.SetDown(testNQN, true)
		_, err := e.drv.NodeStageVolume(context.Background(), e.stageReq("vol", testNQN, "1", mountCap("", rwo)))
		// It waits for the controller, up to the plugin's bound, and says so.
		wantCode(t, err, codes.DeadlineExceeded)
		if !strings.Contains(err.Error(), "waited for it to be live") {
			t.Errorf("error %q does not say what it waited for", err)
		}
		if n := e.exec.Ran("mkfs.ext4"); n != formats {
			t.Fatalf("mkfs ran while the controller was reconnecting")
		}
		if devs := e.mountedAt(e.path("staging", "vol")); len(devs) != 0 {
			t.Fatalf("mounted %v while the controller was reconnecting", devs)
		}
	})
	t.Run("device read fails", func(t *testing.T) {
		e := newEnv(t)
		e.stage("other", testNQN, "2", mountCap("", rwo)) // creates both device nodes
		devs := e.mountedAt(e.path("staging", "other"))
		if len(devs) != 1 || !strings.HasSuffix(devs[0], "n2") {
			t.Fatalf("staged device %v, want one ending in n2", devs)
		}
		// Make namespace 1's node fail every read (EISDIR), as a device
		// failing I/O does.
		dev := strings.TrimSuffix(devs[0], "2") + "1"
		if err := os.Remove(dev); err != nil {
			t.Fatal(err)
		}
		if err := os.Mkdir(dev, 0o700); err != nil {
			t.Fatal(err)
		}
		formats := e.exec.Ran("mkfs.ext4")
		_, err := e.drv.NodeStageVolume(context.Background(), e.stageReq("vol", testNQN, "1", mountCap("", rwo)))
		wantCode(t, err, codes.Unavailable)
		if n := e.exec.Ran("mkfs.ext4"); n != formats {
			t.Fatalf("mkfs ran on a device that could not be read")
		}
	})
}

// Unstage removes the block staging file it created, but never a file that
// happens to be called "block" on a file system still mounted there.
func TestNodeUnstageKeepsUserFilesCalledBlock(t *testing.T) {
	e := newEnv(t)
	real := e.path("real-staging")
	if err := os.MkdirAll(real, 0o750); err != nil {
		t.Fatal(err)
	}
	userFile := filepath.Join(real, "block")
	if err := os.WriteFile(userFile, []byte("a user's data"), 0o600); err != nil {
		t.Fatal(err)
	}
	// The file system is mounted at the real path; the CO names the
	// staging path through a symlink, which the mount table does not show.
	if err := e.mounter.Mount("/dev/nvme0n1", real, "ext4", nil); err != nil {
		t.Fatal(err)
	}
	staging := e.path("staging-link")
	if err := os.Symlink(real, staging); err != nil {
		t.Fatal(err)
	}
	_, _ = e.drv.NodeUnstageVolume(context.Background(), &csi.NodeUnstageVolumeRequest{VolumeId: "vol", StagingTargetPath: staging})
	if _, err := os.Stat(userFile); err != nil {
		t.Fatalf("unstage removed a file called block on a mounted file system: %v", err)
	}
}

// Namespaces of one subsystem share a controller and its reconnection
// parameters: a stage asking for others must not change them under the
// volumes already staged.
func TestNodeStageRefusesConflictingSharedConfig(t *testing.T) {
	e := newEnv(t)
	e.stage("first", testNQN, "1", mountCap("", rwo))
	second := e.stageReq("second", testNQN, "2", mountCap("", rwo))
	second.VolumeContext["ctrl_loss_tmo"] = "30"
	_, err := e.drv.NodeStageVolume(context.Background(), second)
	wantCode(t, err, codes.FailedPrecondition)
	if msg := err.Error(); !strings.Contains(msg, "ctrl_loss_tmo -1 -> 30") || !strings.Contains(msg, "first") {
		t.Errorf("message does not say which volume and setting conflict: %s", msg)
	}
	cs, err := e.fake.Controllers()
	if err != nil || len(cs) != 1 || cs[0].CtrlLossTmo != -1 {
		t.Fatalf("controllers after the refused stage: %+v (%v); want one, still ctrl_loss_tmo -1", cs, err)
	}
	// The same values are fine, and once the first volume is gone the
	// second may bring its own.
	e.stage("same", testNQN, "2", mountCap("", rwo))
	e.unstage("same")
	e.unstage("first")
	if _, err := e.drv.NodeStageVolume(context.Background(), second); err != nil {
		t.Fatalf("stage alone on the subsystem: %v", err)
	}
}

// The plugin disconnects only the controller it created. When the kernel
// has deleted that one (ctrl_loss_tmo) and someone else connected the
// subsystem again, the new controller is theirs.
func TestNodeUnstageLeavesAControllerSomeoneElseRecreated(t *testing.T) {
	e := newEnv(t)
	e.stage("vol", testNQN, "1", mountCap("", rwo))
	cs, err := e.fake.Controllers()
	if err != nil || len(cs) != 1 {
		t.Fatalf("controllers after stage: %v, %v", cs, err)
	}
	ctx := context.Background()
	if err := e.fake.Disconnect(ctx, cs[0]); err != nil { // the kernel gave up on it
		t.Fatal(err)
	}
	if _, err := e.fake.Connect(ctx, connection(t, testNQN)); err != nil { // an admin's nvme connect
		t.Fatal(err)
	}
	e.unstage("vol")
	if n := e.controllers(); n != 1 {
		t.Fatalf("unstage left %d controllers; the admin's must stay connected", n)
	}
}
