//go:build lab

package lab

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"syscall"
	"testing"
	"time"

	"github.com/nvmeof/nvmeof/shared/nvme"
	"github.com/nvmeof/nvmeof/test/lab/labtarget"
)

// TestCSIStageTiming times NodeStage end to end through the real binary
// and splits it into the kernel's connect (the /dev/nvme-fabrics write,
// from the connector's debug log), mkfs, the mount and the rest, which is
// ours: gRPC, state-dir writes, sysfs scans, the wait for the namespace,
// and, for a file system, mount-utils' blkid and fsck runs. Phases are
// told apart from outside: a block stage has no file system work, a
// stage of a formatted device has no mkfs; blkid, fsck and the mount
// syscall are timed on their own on the staged device. Nothing is
// asserted: the figures go to docs/PERFORMANCE.md.
func TestCSIStageTiming(t *testing.T) {
	const freshRounds, warmRounds = 3, 7
	nqn := labtarget.SubsystemTwo
	disconnectAtEnd(t, nqn)
	socket, state := pluginDirs(t)
	p := startPlugin(t, socket, state)
	vc := volumeContext(nqn, 1, labtarget.TwoNS1UUID)

	// stageTimed stages v from a disconnected subsystem and returns the
	// call's time and the kernel's write time.
	var phases = map[string][]stagePhases{}
	stageTimed := func(v csiVolume) (total, kernel time.Duration) {
		t.Helper()
		if ctrls := usableControllers(t, nqn); len(ctrls) != 0 {
			t.Fatalf("controllers of %s before a timed stage: %+v", nqn, ctrls)
		}
		mark := p.log.lines()
		start := time.Now()
		p.stage(t, v)
		total = time.Since(start)
		// The plugin's stderr reaches the log through a pipe: wait for the
		// rpc line, which the server writes before it replies.
		var entries []map[string]any
		waitFor(t, "the stage's rpc log line", 5*time.Second, func() bool {
			entries = p.log.entries(mark)
			return slices.ContainsFunc(entries, func(e map[string]any) bool {
				return e["@message"] == "rpc" && e["method"] == "NodeStageVolume"
			})
		})
		ph := parseStagePhases(t, entries)
		phases[v.id] = append(phases[v.id], ph)
		return total, ph.kernelWrite
	}

	var fresh, freshKernel []time.Duration
	for i := range freshRounds {
		wipeNamespace(t, nqn, 1)
		v := newCSIVolume(t, "lab-timing-fresh", mountCapability("ext4"), vc)
		p.unstageAtEnd(t, v)
		total, kernel := stageTimed(v)
		fresh, freshKernel = append(fresh, total), append(freshKernel, kernel)
		p.unstage(t, v)
		t.Logf("fresh round %d: stage %s (kernel write %s)", i, total, kernel)
	}

	var block, blockKernel, blockOurs, fs, fsKernel, blkid, fsck, mountSys []time.Duration
	for range warmRounds {
		b := newCSIVolume(t, "lab-timing-block", blockCapability(), vc)
		p.unstageAtEnd(t, b)
		total, kernel := stageTimed(b)
		block, blockKernel, blockOurs = append(block, total), append(blockKernel, kernel), append(blockOurs, total-kernel)
		dev := stagedDevice(t, nqn)
		blkid = append(blkid, timeCommand(t, "blkid", "-p", "-s", "TYPE", "-s", "PTTYPE", "-o", "export", dev))
		if _, err := exec.LookPath("fsck"); err == nil {
			fsck = append(fsck, timeCommand(t, "fsck", "-a", dev))
		}
		mountSys = append(mountSys, timeMount(t, dev))
		p.unstage(t, b)

		v := newCSIVolume(t, "lab-timing-fs", mountCapability("ext4"), vc)
		p.unstageAtEnd(t, v)
		total, kernel = stageTimed(v)
		fs, fsKernel = append(fs, total), append(fsKernel, kernel)
		p.unstage(t, v)
	}

	mkfs := median(fresh) - median(fs)
	fsOurs := median(fs) - median(fsKernel) - median(mountSys)
	tools := median(blkid)
	if len(fsck) > 0 {
		tools += median(fsck)
	}
	t.Logf("LAB-TIMING csi-stage-fresh-ext4 rounds=%d median_total=%s median_kernel_write=%s",
		freshRounds, median(fresh), median(freshKernel))
	t.Logf("LAB-TIMING csi-stage-formatted-ext4 rounds=%d median_total=%s median_kernel_write=%s",
		warmRounds, median(fs), median(fsKernel))
	t.Logf("LAB-TIMING csi-stage-block rounds=%d median_total=%s median_kernel_write=%s median_ours=%s (grpc, state dir, sysfs, namespace wait, bind mount)",
		warmRounds, median(block), median(blockKernel), median(blockOurs))
	t.Logf("LAB-TIMING csi-stage-split kernel_connect=%s ours_resolve_wait=%s mkfs=%s mount_syscall=%s blkid=%s fsck=%s (fsck timed: %v)",
		median(fsKernel), median(blockOurs), mkfs, median(mountSys), median(blkid), medianOrZero(fsck), len(fsck) > 0)
	for _, id := range []string{"lab-timing-fresh", "lab-timing-fs", "lab-timing-block"} {
		t.Logf("LAB-TIMING csi-stage-phases volume=%s rounds=%d %s", id, len(phases[id]), medianPhases(phases[id]))
	}
	t.Logf("LAB-TIMING csi-stage-ours fs_total_minus_kernel_minus_mount=%s of_which_blkid_fsck=%s block_ours=%s goal=30ms met_block=%v",
		fsOurs, tools, median(blockOurs), median(blockOurs) <= 30*time.Millisecond)
}

// stagedDevice is the namespace device of nqn's one controller, nsid 1.
func stagedDevice(t *testing.T, nqn string) string {
	t.Helper()
	ctrls := usableControllers(t, nqn)
	if len(ctrls) != 1 {
		t.Fatalf("controllers of %s: %+v, want one", nqn, ctrls)
	}
	c, _ := newLabConnector(t)
	return resolveForTest(t, c, ctrls[0], nvme.NamespaceSelector{NSID: 1}).DevicePath
}

func timeCommand(t *testing.T, name string, args ...string) time.Duration {
	t.Helper()
	start := time.Now()
	out, err := exec.CommandContext(t.Context(), name, args...).CombinedOutput()
	took := time.Since(start)
	// fsck's exit code says what it found; only a failure to run counts.
	if _, exited := errors.AsType[*exec.ExitError](err); err != nil && !exited {
		t.Fatalf("%s %v: %v: %s", name, args, err, out)
	}
	return took
}

// timeMount times the ext4 mount syscall of dev (the unmount is not
// counted).
func timeMount(t *testing.T, dev string) time.Duration {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "m")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if err := syscall.Mount(dev, dir, "ext4", 0, ""); err != nil {
		t.Fatalf("mount %s: %v", dev, err)
	}
	took := time.Since(start)
	if err := syscall.Unmount(dir, 0); err != nil {
		t.Fatalf("unmount %s: %v", dir, err)
	}
	return took
}

func medianOrZero(ds []time.Duration) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	return median(ds)
}

// stagePhases splits one NodeStage by the plugin's own log: the rpc line
// gives the server's start and end, the connector's debug line the kernel
// write, the node's "connected" and "staged" lines the rest.
type stagePhases struct {
	// beforeWrite: parse, state record, controller lookup, up to the write.
	beforeWrite time.Duration
	kernelWrite time.Duration
	// afterWrite: the connector from the write's return to a live controller.
	afterWrite time.Duration
	// resolve: the wait for the namespace's block device.
	resolve time.Duration
	// toStaged: state record, then blkid/mkfs/mount or the bind mount
	// (mount-utils runs the mount binary for either).
	toStaged time.Duration
	// reply: from "staged" to the rpc line.
	reply time.Duration
}

func parseStagePhases(t *testing.T, entries []map[string]any) stagePhases {
	t.Helper()
	var end, created, connected, resolved, staged time.Time
	var server time.Duration
	var ph stagePhases
	for _, e := range entries {
		ts, err := time.Parse(time.RFC3339Nano, fmt.Sprint(e["@timestamp"]))
		if err != nil {
			continue
		}
		switch {
		case e["@message"] == "kernel created controller":
			created = ts
			ms, _ := e["kernel_write_ms"].(float64)
			ph.kernelWrite = time.Duration(ms * float64(time.Millisecond))
		case e["@message"] == "connected" && e["@module"] == "nvmeof-csi.node":
			connected = ts
		case e["@message"] == "namespace resolved":
			resolved = ts
		case e["@message"] == "staged":
			staged = ts
		case e["@message"] == "rpc" && e["method"] == "NodeStageVolume":
			ns, _ := e["duration"].(float64)
			end, server = ts, time.Duration(ns)
		}
	}
	if end.IsZero() || created.IsZero() || connected.IsZero() || resolved.IsZero() || staged.IsZero() || ph.kernelWrite == 0 {
		t.Fatalf("the plugin's log lacks a phase of the stage: rpc %v, created %v, connected %v, resolved %v, staged %v", end, created, connected, resolved, staged)
	}
	start := end.Add(-server)
	ph.beforeWrite = created.Add(-ph.kernelWrite).Sub(start)
	ph.afterWrite = connected.Sub(created)
	ph.resolve = resolved.Sub(connected)
	ph.toStaged = staged.Sub(resolved)
	ph.reply = end.Sub(staged)
	return ph
}

func medianPhases(ps []stagePhases) string {
	pick := func(f func(stagePhases) time.Duration) time.Duration {
		ds := make([]time.Duration, 0, len(ps))
		for _, p := range ps {
			ds = append(ds, f(p))
		}
		return medianOrZero(ds)
	}
	return fmt.Sprintf("median_before_write=%s median_kernel_write=%s median_after_write=%s median_resolve=%s median_to_staged=%s median_reply=%s",
		pick(func(p stagePhases) time.Duration { return p.beforeWrite }),
		pick(func(p stagePhases) time.Duration { return p.kernelWrite }),
		pick(func(p stagePhases) time.Duration { return p.afterWrite }),
		pick(func(p stagePhases) time.Duration { return p.resolve }),
		pick(func(p stagePhases) time.Duration { return p.toStaged }),
		pick(func(p stagePhases) time.Duration { return p.reply }))
}
