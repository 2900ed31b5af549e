package nvme

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// healthProbeTimeout bounds the write probe. A probe that does not finish
// in time means the device is not answering (a controller reconnecting with
// I/O queued): that is reported, and the probe's goroutine ends when the
// file system lets it go.
const healthProbeTimeout = 2 * time.Second

// Health reads the controller's state and the file system's error state.
// /proc/mounts does not show ext4's switch to read-only after an aborted
// journal (measured on 6.1), so the error counter in sysfs and a write
// probe of the mount are what tell.
func (k *kernelConnector) Health(ctrl Controller, ns Namespace, mountPath string) (Health, error) {
	var h Health
	var problems []string
	cur, err := k.currentController(ctrl)
	switch {
	case errors.Is(err, ErrControllerGone):
		problems = append(problems, fmt.Sprintf("controller %s of subsystem %q is gone: reconnect the volume (and check the file system) to recover", ctrl.Name, ctrl.Subsystem))
	case err != nil:
		return Health{}, err
	default:
		h.ControllerState = cur.State
		if cur.State != StateLive {
			problems = append(problems, fmt.Sprintf("controller %s is %s: the target is unreachable, I/O waits%s", ctrl.Name, cur.State, lossHint(cur)))
		}
	}
	if ns.Name != "" && mountPath != "" {
		n, fsType, err := k.fsErrors(ns.Name)
		if err != nil {
			return Health{}, err
		}
		h.FSErrors = n
		if n > 0 {
			problems = append(problems, fmt.Sprintf("%s on %s recorded %d error(s) and may have turned read-only: unmount, fsck and mount again", fsType, ns.Name, n))
		}
	}
	if mountPath != "" {
		ro, msg := probeWritable(mountPath)
		h.ReadOnly = ro
		if msg != "" {
			problems = append(problems, msg)
		}
	}
	h.Message = strings.Join(problems, "; ")
	return h, nil
}

// lossHint says what happens next to a controller that is not live.
func lossHint(c Controller) string {
	if c.CtrlLossTmo < 0 {
		return " until it comes back (ctrl_loss_tmo off)"
	}
	return fmt.Sprintf("; the kernel deletes the controller after ctrl_loss_tmo %d s", c.CtrlLossTmo)
}

// fsErrors reads the error count the file system on disk keeps in sysfs:
// ext4's errors_count. It does not catch everything: in the lab (6.1) the
// count stayed 0 after the controller was deleted and ext4 aborted its
// journal, because the superblock write that carries it failed too. XFS
// keeps no such counter. The write probe covers both.
func (k *kernelConnector) fsErrors(disk string) (int, string, error) {
	dir := filepath.Join(k.sys.root, "fs", "ext4", disk)
	v, err := readAttr(dir, "errors_count")
	if errors.Is(err, fs.ErrNotExist) {
		return 0, "", nil
	}
	if err != nil {
		return 0, "", fmt.Errorf("ext4 error count of %s: %w", disk, err)
	}
	n, err := parseSysfsInt(v)
	if err != nil {
		return 0, "", fmt.Errorf("ext4 error count of %s %q: %w", disk, v, err)
	}
	return n, "ext4", nil
}

// probeWritable creates and removes a file in dir. It returns whether the
// file system refused the write as read-only, and a message for anything
// that is not a clean success.
func probeWritable(dir string) (bool, string) {
	type result struct{ err error }
	done := make(chan result, 1)
	go func() { done <- result{writeProbe(dir)} }()
	timer := time.NewTimer(healthProbeTimeout)
	defer timer.Stop()
	select {
	case r := <-done:
		switch {
		case r.err == nil:
			return false, ""
		case errors.Is(r.err, syscall.EROFS):
			return true, fmt.Sprintf("the file system at %s is read-only (EROFS): it switched after an I/O error; unmount, fsck and mount again", dir)
		default:
			return false, fmt.Sprintf("write probe at %s failed: %v", dir, r.err)
		}
	case <-timer.C:
		return false, fmt.Sprintf("write probe at %s did not finish within %s: the device is not answering I/O", dir, healthProbeTimeout)
	}
}

// writeProbe creates, writes and removes a small hidden file. It does not
// fsync: that would wait for a reconnecting controller for as long as it
// takes, and a file system that has turned read-only refuses the create.
func writeProbe(dir string) error {
	f, err := os.CreateTemp(dir, ".nvmeof-health-*")
	if err != nil {
		return fmt.Errorf("create probe file: %w", err)
	}
	name := f.Name()
	_, werr := f.WriteString("ok\n")
	cerr := f.Close()
	rerr := os.Remove(name)
	if err := errors.Join(werr, cerr, rerr); err != nil {
		return fmt.Errorf("probe file %s: %w", name, err)
	}
	return nil
}
