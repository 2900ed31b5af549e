package kernel

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"
)

// healthProbeTimeout bounds the write probe. A probe that does not finish
// in time means the device is not answering (a controller reconnecting with
// I/O queued): that is reported, and the probe's goroutine ends when the
// file system lets it go; until then no other probe of that path starts.
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
		ro, msg, err := mountProbes.check(mountPath)
		if err != nil {
			return Health{}, err
		}
		h.ReadOnly = ro
		if msg != "" {
			problems = append(problems, msg)
		}
	}
	h.Message = strings.Join(problems, "; ")
	return h, nil
}

// QuiesceHealth stops write probes of mountPath and waits for one in
// flight; see Connector.
func (k *kernelConnector) QuiesceHealth(ctx context.Context, mountPath string) (func(), error) {
	return mountProbes.quiesce(ctx, mountPath)
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

// writeProber runs the write probe of mounted file systems, at most one
// per path at a time: during an outage with ctrl_loss_tmo off the probe's
// write blocks in the kernel for as long as the outage lasts, and a new
// goroutine per monitor tick and per health call would pile up behind it.
type writeProber struct {
	mountInfo string // /proc/self/mountinfo: which mounts are read-only
	write     func(dir string) error

	mu      sync.Mutex
	running map[string]*probeCall
	// quiet counts the callers that are about to unmount a path: no probe
	// starts there meanwhile, or its open file would make the unmount
	// fail with EBUSY.
	quiet map[string]int
}

// probeCall is one probe in flight; err is set before done is closed.
type probeCall struct {
	started time.Time
	done    chan struct{}
	err     error
}

// mountProbes is shared by every connector: a stuck probe is stuck for the
// whole process.
var mountProbes = newWriteProber("/proc/self/mountinfo", writeProbe)

func newWriteProber(mountInfo string, write func(string) error) *writeProber {
	return &writeProber{mountInfo: mountInfo, write: write, running: map[string]*probeCall{}, quiet: map[string]int{}}
}

// quiesce stops new probes of dir and waits, until ctx ends, for the one
// in flight. Call the result to let probes run there again.
func (p *writeProber) quiesce(ctx context.Context, dir string) (func(), error) {
	dir = filepath.Clean(dir)
	p.mu.Lock()
	p.quiet[dir]++
	c := p.running[dir]
	p.mu.Unlock()
	resume := func() {
		p.mu.Lock()
		defer p.mu.Unlock()
		if p.quiet[dir]--; p.quiet[dir] <= 0 {
			delete(p.quiet, dir)
		}
	}
	if c == nil {
		return resume, nil
	}
	select {
	case <-c.done:
		return resume, nil
	case <-ctx.Done():
		resume()
		return nil, fmt.Errorf("a health probe of %s started %s ago is still writing (the device is not answering I/O): %w",
			dir, time.Since(c.started).Round(time.Millisecond), ctx.Err())
	}
}

// check creates and removes a file in dir. It returns whether the file
// system refused the write as read-only, and a message for anything that
// is not a clean success. A mount that is read-only by request (staged or
// published ro) is not probed: its EROFS says nothing about its health.
func (p *writeProber) check(dir string) (bool, string, error) {
	ro, err := mountedReadOnly(p.mountInfo, dir)
	if err != nil {
		return false, "", err
	}
	if ro {
		return false, "", nil
	}
	c, joined, ok := p.start(dir)
	if !ok {
		return false, "", nil // being unmounted: nothing to probe
	}
	// A caller joining a probe waits only for what is left of its time.
	timer := time.NewTimer(time.Until(c.started.Add(healthProbeTimeout)))
	defer timer.Stop()
	select {
	case <-c.done:
		switch {
		case c.err == nil:
			return false, "", nil
		case errors.Is(c.err, syscall.EROFS):
			return true, fmt.Sprintf("the file system at %s is read-only (EROFS): it switched after an I/O error; unmount, fsck and mount again", dir), nil
		case errors.Is(c.err, syscall.EIO):
			// Measured on 6.12: when its controller is deleted, ext4 shuts
			// down (every write EIO) instead of turning read-only as on 6.1.
			return true, fmt.Sprintf("the file system at %s refuses writes (EIO): its device failed and it shut down, or I/O fails fast (fast_io_fail_tmo); "+
				"once the controller is back, unmount, fsck and mount again", dir), nil
		default:
			return false, fmt.Sprintf("write probe at %s failed: %v", dir, c.err), nil
		}
	case <-timer.C:
		if joined {
			return false, fmt.Sprintf("write probe at %s still pending since %s: the device is not answering I/O", dir, c.started.Format(time.RFC3339)), nil
		}
		return false, fmt.Sprintf("write probe at %s did not finish within %s: the device is not answering I/O", dir, healthProbeTimeout), nil
	}
}

// start returns the probe in flight at dir, or starts one. joined tells
// that the probe was already running; ok is false when dir is quiesced.
func (p *writeProber) start(dir string) (c *probeCall, joined, ok bool) {
	dir = filepath.Clean(dir)
	p.mu.Lock()
	defer p.mu.Unlock()
	if c, ok := p.running[dir]; ok {
		return c, true, true
	}
	if p.quiet[dir] > 0 {
		return nil, false, false
	}
	c = &probeCall{started: time.Now(), done: make(chan struct{})}
	p.running[dir] = c
	go func() {
		c.err = p.write(dir)
		p.mu.Lock()
		delete(p.running, dir)
		p.mu.Unlock()
		close(c.done)
	}()
	return c, false, true
}

// mountedReadOnly reports whether the topmost mount at dir is read-only by
// its own options in a mountinfo file. The per-mount options are what
// mount -o ro and a read-only bind set; the super block's options (after
// the " - ") also turn ro when ext4 gives up after errors, which is
// exactly what the probe is there to report. A dir that is no mount point
// is not read-only.
func mountedReadOnly(mountInfo, dir string) (bool, error) {
	data, err := os.ReadFile(mountInfo)
	if err != nil {
		return false, fmt.Errorf("read mount options of %s: %w", dir, err)
	}
	dir = filepath.Clean(dir)
	ro := false
	for line := range strings.Lines(string(data)) {
		// id parent major:minor root mount-point mount-options ...
		fields := strings.Fields(line)
		if len(fields) < 6 || UnescapeMountInfo(fields[4]) != dir {
			continue
		}
		ro = slices.Contains(strings.Split(fields[5], ","), "ro")
	}
	return ro, nil
}

// UnescapeMountInfo undoes the kernel's octal escapes of space, tab,
// newline and backslash (\040, \011, \012, \134) in a mountinfo field;
// mount-utils leaves them in place, so a path with a space would never
// match without it.
func UnescapeMountInfo(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) && isOctalDigit(s[i+1]) && isOctalDigit(s[i+2]) && isOctalDigit(s[i+3]) {
			b.WriteByte((s[i+1]-'0')<<6 | (s[i+2]-'0')<<3 | (s[i+3] - '0'))
			i += 3
			continue
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

func isOctalDigit(c byte) bool { return c >= '0' && c <= '7' }

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
