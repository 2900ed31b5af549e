//go:build lab

package lab

import (
	"context"
	"fmt"
	"os/exec"
	"slices"
	"testing"
	"time"

	"github.com/nvmeof/nvmeof/shared/nvme"
	"github.com/nvmeof/nvmeof/test/lab/labtarget"
)

// The plan a stage logs when its own look at the superblock settled it:
// no blkid, no fsck.
const (
	planProbed  = "mount the clean file system found"
	planChecked = "check, then mount"
	planFormat  = "format, then mount"
)

// TestCSIFormattedVolumeSkipsTheTools stages a volume the plugin formatted
// before, ext4 and xfs, and proves from the plugin's log which way it
// went: a clean file system is mounted without blkid and fsck (its plan
// says so, and no "asking blkid" line), an ext4 whose superblock says it
// must be checked (tune2fs -E force_fsck sets its error flag) goes through
// blkid and fsck as before, and is clean again for the stage after. The
// data written in the first cycle is there in the last.
func TestCSIFormattedVolumeSkipsTheTools(t *testing.T) {
	tests := []struct {
		fsType, nqn, uuid string
	}{
		{"ext4", labtarget.SubsystemTwo, labtarget.TwoNS1UUID},
		{"xfs", xfsSubsystem, xfsNS1UUID},
	}
	for _, tt := range tests {
		t.Run(tt.fsType, func(t *testing.T) {
			if tt.nqn == xfsSubsystem {
				addXFSSubsystem(t)
			}
			disconnectAtEnd(t, tt.nqn)
			wipeNamespace(t, tt.nqn, 1)
			socket, state := pluginDirs(t)
			p := startPlugin(t, socket, state)
			vc := volumeContext(tt.nqn, 1, tt.uuid)
			cycle := func(name string, wantPlan string, write bool) {
				t.Helper()
				v := newCSIVolume(t, "lab-formatted-"+tt.fsType, mountCapability(tt.fsType), vc)
				p.unstageAtEnd(t, v)
				mark := p.log.lines()
				p.stage(t, v)
				if plan := stagedPlan(t, p, mark); plan != wantPlan {
					t.Fatalf("%s: the stage's plan is %q, want %q", name, plan, wantPlan)
				}
				asked := slices.ContainsFunc(p.log.entries(mark), func(e map[string]any) bool {
					return e["@message"] == "the device's own superblock does not settle it; asking blkid"
				})
				if asked != (wantPlan != planProbed) {
					t.Errorf("%s: asked blkid: %v, with plan %q", name, asked, wantPlan)
				}
				p.publish(t, v)
				if write {
					writeRandomFile(t, v.target+"/data", 4096)
				} else {
					fileSum(t, v.target+"/data") // there, and readable
				}
				p.unpublish(t, v)
				p.unstage(t, v)
			}
			cycle("first stage", planFormat, true)
			cycle("stage of the formatted volume", planProbed, false)
			if tt.fsType != "ext4" {
				return
			}
			forceCheck(t, tt.nqn)
			cycle("stage of an ext4 marked for a check", planChecked, false)
			cycle("stage after the check", planProbed, false)
		})
	}
}

// stagedPlan is the plan of the "staged" line logged since mark.
func stagedPlan(t *testing.T, p *csiPlugin, mark int) string {
	t.Helper()
	var plan string
	waitFor(t, "the stage's staged line", 5*time.Second, func() bool {
		for _, e := range p.log.entries(mark) {
			if e["@message"] == "staged" {
				plan = fmt.Sprint(e["plan"])
				return true
			}
		}
		return false
	})
	return plan
}

// forceCheck sets the ext4 error flag on namespace 1 of nqn, as the kernel
// does when it finds an inconsistency: e2fsck -p must then check it.
func forceCheck(t *testing.T, nqn string) {
	t.Helper()
	c, _ := newLabConnector(t)
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	ctrl, err := c.Connect(ctx, valid(t, labConnection(nqn)))
	if err != nil {
		t.Fatal(err)
	}
	ns := resolveForTest(t, c, ctrl, nvme.NamespaceSelector{NSID: 1})
	out, err := exec.CommandContext(ctx, "tune2fs", "-E", "force_fsck", ns.DevicePath).CombinedOutput()
	if derr := c.Disconnect(ctx, ctrl); derr != nil {
		t.Fatal(derr)
	}
	if err != nil {
		t.Fatalf("tune2fs -E force_fsck %s: %v: %s", ns.DevicePath, err, out)
	}
}
