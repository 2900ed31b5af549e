package driver_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// A controller record says which controller the plugin created, by name
// and sysfs inode; after a reboot another controller may carry both (the
// kernel numbers from the start again). A record from another boot owns
// nothing: reconciliation forgets it without touching the controller there
// now, and an unstage never disconnects it.
func TestControllerRecordsFromAnotherBootOwnNothing(t *testing.T) {
	e := newEnv(t)
	e.stage("vol", testNQN, "1", mountCap("ext4", rwo))
	// The reboot, as the plugin sees it: the mounts are gone, and a
	// controller with the same name and inode is there, someone else's.
	if err := e.mounter.Unmount(e.path("staging", "vol")); err != nil {
		t.Fatal(err)
	}
	e.bootID = "boot-2"
	e.drv = e.newDriver()
	if err := e.drv.Reconcile(context.Background()); err != nil {
		t.Fatal(err)
	}
	if n := e.controllers(); n != 1 {
		t.Fatalf("%d controllers after reconciling a record from another boot, want the one there, left alone", n)
	}
	if !strings.Contains(e.log.String(), "from before a reboot") {
		t.Errorf("reconciliation did not say why it forgot the record:\n%s", e.log.String())
	}
	left, err := os.ReadDir(filepath.Join(e.root, "state", "controllers"))
	if err != nil || len(left) != 0 {
		t.Fatalf("controller records left: %v, %v", left, err)
	}
	// A stage now adopts the controller as someone else's; its unstage
	// leaves it connected.
	e.stage("vol", testNQN, "1", mountCap("ext4", rwo))
	e.unstage("vol")
	if n := e.controllers(); n != 1 {
		t.Fatalf("the unstage disconnected a controller from before the reboot (%d left)", n)
	}
}

// Without a reboot, the same sequence disconnects the plugin's own
// controller: the boot id is what made the difference above.
func TestControllerRecordsOfThisBootStillOwn(t *testing.T) {
	e := newEnv(t)
	e.stage("vol", testNQN, "1", mountCap("ext4", rwo))
	if err := e.mounter.Unmount(e.path("staging", "vol")); err != nil {
		t.Fatal(err)
	}
	e.drv = e.newDriver()
	if err := e.drv.Reconcile(context.Background()); err != nil {
		t.Fatal(err)
	}
	if n := e.controllers(); n != 0 {
		t.Fatalf("%d controllers after reconciling the plugin's own orphan, want 0", n)
	}
}
