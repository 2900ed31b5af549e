//go:build lab

package lab

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/nvmeof/nvmeof/shared/nvme"
	"github.com/nvmeof/nvmeof/shared/nvme/kernel"
	"github.com/nvmeof/nvmeof/test/lab/labtarget"
)

// Outages of the lab target with the connector's controllers in place, and
// the file system on top of them.

// 6a. A 15 s outage with ctrl_loss_tmo=-1: the pending fsync'd write waits
// and completes, ext4 stays writable, earlier data is intact.
func TestConnectorOutageReconnectsForever(t *testing.T) {
	forEachBackend(t, func(t *testing.T, backend string) {
		c, _ := newLabConnectorWith(t, backend)
		conn := labConnection(labtarget.SubsystemOne)
		conn.Config.ReconnectDelay = 2
		ctrl := connectForTest(t, c, conn)
		ns := resolveForTest(t, c, ctrl, nvme.NamespaceSelector{NSID: 1, UUID: labtarget.OneNS1UUID})
		mnt := mountExt4(t, ns.DevicePath)

		before := writeRandomFile(t, filepath.Join(mnt, "before"), 1<<20)
		up := targetDown(t)
		outageStart := time.Now()
		waitFor(t, "controller connecting", 10*time.Second, func() bool { return ctrlSysfs(t, ctrl, "state") == kernel.StateConnecting })
		t.Logf("state connecting %s after the unlink", time.Since(outageStart).Round(time.Millisecond))

		pending := make(chan error, 1)
		go func() { pending <- writeAndSync(filepath.Join(mnt, "during"), bytes.Repeat([]byte("x"), 64<<10)) }()
		time.Sleep(15*time.Second - time.Since(outageStart))
		select {
		case err := <-pending:
			t.Fatalf("the fsync'd write returned during the outage: %v", err)
		default:
		}
		h, err := c.Health(ctrl, ns, "")
		if err != nil || h.Healthy() || h.ControllerState != kernel.StateConnecting {
			t.Errorf("Health during the outage = %+v, %v; want connecting and not healthy", h, err)
		}
		up()
		restored := time.Now()
		select {
		case err := <-pending:
			if err != nil {
				t.Fatalf("the write pending over the outage failed: %v", err)
			}
		case <-time.After(30 * time.Second):
			t.Fatal("the pending write did not complete within 30 s of the restore")
		}
		t.Logf("pending write completed %s after the restore", time.Since(restored).Round(time.Millisecond))
		waitFor(t, "controller live again", 30*time.Second, func() bool { return ctrlSysfs(t, ctrl, "state") == kernel.StateLive })

		writeRandomFile(t, filepath.Join(mnt, "after"), 64<<10)
		h, err = c.Health(ctrl, ns, mnt)
		if err != nil || !h.Healthy() || h.ReadOnly || h.FSErrors != 0 {
			t.Errorf("Health after the outage = %+v, %v; want healthy", h, err)
		}
		dropCaches(t)
		if got := fileSum(t, filepath.Join(mnt, "before")); got != before {
			t.Errorf("data written before the outage changed: sha256 %x, want %x", got, before)
		}
	})
}

// 6b. With ctrl_loss_tmo=5 the kernel deletes the controller during an
// outage; Health reports the file system's error state although
// /proc/mounts still says rw.
func TestConnectorOutageControllerLoss(t *testing.T) {
	c, _ := newLabConnector(t)
	conn := labConnection(labtarget.SubsystemTwo)
	conn.Config.CtrlLossTmo, conn.Config.ReconnectDelay = 5, 1
	ctrl := connectForTest(t, c, conn)
	if got := ctrlSysfs(t, ctrl, "ctrl_loss_tmo"); got != "5" {
		t.Fatalf("ctrl_loss_tmo = %q, want 5", got)
	}
	ns := resolveForTest(t, c, ctrl, nvme.NamespaceSelector{NSID: 1})
	mnt := mountExt4(t, ns.DevicePath)
	writeRandomFile(t, filepath.Join(mnt, "before"), 64<<10)

	targetDown(t)
	start := time.Now()
	pending := make(chan error, 1)
	go func() { pending <- writeAndSync(filepath.Join(mnt, "during"), bytes.Repeat([]byte("y"), 64<<10)) }()
	waitFor(t, "controller removed", 30*time.Second, func() bool {
		_, err := os.Stat(filepath.Join("/sys/class/nvme", ctrl.Name))
		return errors.Is(err, os.ErrNotExist)
	})
	t.Logf("controller removed %s after the unlink", time.Since(start).Round(time.Millisecond))
	select {
	case err := <-pending:
		if err == nil {
			t.Error("the write pending when the controller was removed succeeded")
		}
	case <-time.After(30 * time.Second):
		t.Error("the write pending when the controller was removed never returned")
	}

	var h kernel.Health
	waitFor(t, "Health reports the file system error", 30*time.Second, func() bool {
		var err error
		if h, err = c.Health(ctrl, ns, mnt); err != nil {
			t.Fatalf("Health: %v", err)
		}
		return h.ReadOnly || h.FSErrors > 0
	})
	t.Logf("Health: %+v", h)
	if h.ControllerState != "" || h.Healthy() || !strings.Contains(h.Message, "gone") {
		t.Errorf("Health = %+v, want the controller gone and an explanation", h)
	}
	if mountOptions(t, mnt) == "ro" {
		t.Log("/proc/mounts shows the read-only switch on this kernel")
	}
}

func mountExt4(t *testing.T, dev string) string {
	t.Helper()
	if out, err := exec.CommandContext(t.Context(), "mkfs.ext4", "-q", "-F", dev).CombinedOutput(); err != nil {
		t.Fatalf("mkfs.ext4 %s: %v: %s", dev, err, out)
	}
	mnt := t.TempDir()
	if err := syscall.Mount(dev, mnt, "ext4", 0, ""); err != nil {
		t.Fatalf("mount %s: %v", dev, err)
	}
	t.Cleanup(func() {
		if err := syscall.Unmount(mnt, syscall.MNT_DETACH); err != nil {
			t.Errorf("unmount %s: %v", mnt, err)
		}
	})
	return mnt
}

func writeAndSync(path string, data []byte) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	_, err = f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	return errors.Join(err, f.Close())
}

// writeRandomFile writes size random bytes, fsyncs, and returns their sum.
func writeRandomFile(t *testing.T, path string, size int) [32]byte {
	t.Helper()
	data := make([]byte, size)
	if _, err := rand.Read(data); err != nil {
		t.Fatal(err)
	}
	if err := writeAndSync(path, data); err != nil {
		t.Fatalf("write %s: %v", path, err)
	}
	return sha256.Sum256(data)
}

func fileSum(t *testing.T, path string) [32]byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("read %s: %v", path, err)
	}
	return sha256.Sum256(b)
}

// dropCaches makes the next reads come from the device, not memory.
func dropCaches(t *testing.T) {
	t.Helper()
	syscall.Sync()
	if err := os.WriteFile("/proc/sys/vm/drop_caches", []byte("3"), 0o200); err != nil {
		t.Fatalf("drop caches: %v", err)
	}
}

// mountOptions returns the first mount option /proc/mounts shows for mnt.
func mountOptions(t *testing.T, mnt string) string {
	t.Helper()
	b, err := os.ReadFile("/proc/mounts")
	if err != nil {
		t.Fatal(err)
	}
	for line := range strings.Lines(string(b)) {
		f := strings.Fields(line)
		if len(f) >= 4 && f[1] == mnt {
			opts, _, _ := strings.Cut(f[3], ",")
			return opts
		}
	}
	t.Fatalf("%s not in /proc/mounts", mnt)
	return ""
}
