package kernel

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"testing/synctest"
	"time"

	"github.com/nvmeof/nvmeof/shared/nvme/kernel/kerneltest"
)

func TestHealth(t *testing.T) {
	tests := []struct {
		name        string
		state       string // "" removes the controller
		errorsCount int    // < 0: no ext4 directory (xfs, or not mounted)
		mount       bool
		wantState   string
		wantErrors  int
		wantHealthy bool
		wantText    []string
	}{
		{name: "live and clean", state: StateLive, errorsCount: 0, mount: true, wantState: StateLive, wantHealthy: true},
		{name: "live, block volume", state: StateLive, errorsCount: -1, wantState: StateLive, wantHealthy: true},
		{name: "reconnecting", state: StateConnecting, errorsCount: 0, mount: true, wantState: StateConnecting,
			wantText: []string{"is connecting", "I/O waits", "ctrl_loss_tmo off"}},
		{name: "gone with ext4 errors", errorsCount: 3, mount: true, wantErrors: 3,
			wantText: []string{"is gone", "recorded 3 error(s)", "fsck"}},
		{name: "gone, no file system", errorsCount: -1, wantText: []string{"is gone"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := kerneltest.New(t)
			h.AddTarget("127.0.0.1", "4420", nqnOne, nsOne)
			name := adminConnect(t, h, adminOptions(nqnOne, "ctrl_loss_tmo=-1"))
			disk := "nvme0n1"
			switch tt.state {
			case "":
				if err := h.RemoveController(name); err != nil {
					t.Fatal(err)
				}
			case StateConnecting:
				h.SetDown(nqnOne, true)
			}
			if tt.errorsCount >= 0 {
				h.SetFSErrors(disk, tt.errorsCount)
			}
			mnt := ""
			if tt.mount {
				mnt = t.TempDir()
			}
			k := newTestConnector(t, h)

			hl, err := k.Health(Controller{Name: name, Subsystem: nqnOne}, Namespace{Name: disk}, mnt)
			if err != nil {
				t.Fatal(err)
			}
			if hl.ControllerState != tt.wantState || hl.FSErrors != tt.wantErrors || hl.Healthy() != tt.wantHealthy || hl.ReadOnly {
				t.Errorf("Health = %+v", hl)
			}
			for _, s := range tt.wantText {
				if !strings.Contains(hl.Message, s) {
					t.Errorf("message %q does not say %q", hl.Message, s)
				}
			}
			if mnt != "" {
				if left, _ := filepath.Glob(filepath.Join(mnt, ".nvmeof-health-*")); len(left) != 0 {
					t.Errorf("the write probe left %v behind", left)
				}
			}
		})
	}
}

func TestMountedReadOnly(t *testing.T) {
	const info = "testdata/mountinfo"
	tests := []struct {
		name string
		dir  string
		want bool
	}{
		{name: "staged read-write", dir: "/var/nomad/client/csi/staging/nvmeof/vol-rw", want: false},
		{name: "staged read-only", dir: "/var/nomad/client/csi/staging/nvmeof/vol-ro/", want: true},
		{name: "published read-only bind of a read-write stage", dir: "/var/nomad/client/csi/per-alloc/a1/vol-rw/rw-file-system-single-node-reader-only", want: true},
		{name: "ext4 turned read-only after errors is still probed", dir: "/var/nomad/client/csi/staging/nvmeof/vol-err", want: false},
		{name: "escaped mount point", dir: "/var/nomad/client/csi/staging/nvmeof/with space", want: true},
		{name: "topmost of stacked mounts", dir: "/mnt/stacked", want: false},
		{name: "not a mount point", dir: "/var/nomad/client/csi/staging/nvmeof", want: false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := mountedReadOnly(info, tt.dir)
			if err != nil || got != tt.want {
				t.Errorf("mountedReadOnly(%q) = %v, %v; want %v", tt.dir, got, err, tt.want)
			}
		})
	}
	if _, err := mountedReadOnly(filepath.Join(t.TempDir(), "missing"), "/"); err == nil {
		t.Error("an unreadable mountinfo gave no error")
	}
}

func TestWriteProberCheck(t *testing.T) {
	const info = "testdata/mountinfo"
	missing := filepath.Join(t.TempDir(), "not-mounted")
	tests := []struct {
		name       string
		dir        string
		write      func(string) error
		wantProbes int
		wantRO     bool
		wantText   string // "" means healthy
	}{
		{name: "writable", dir: t.TempDir(), write: writeProbe, wantProbes: 1},
		{name: "turned read-only", dir: "/var/nomad/client/csi/staging/nvmeof/vol-err", wantProbes: 1, wantRO: true,
			write:    func(string) error { return fmt.Errorf("create probe file: %w", syscall.EROFS) },
			wantText: "is read-only (EROFS)"},
		{name: "shut down (6.12: EIO after the device went)", dir: "/var/nomad/client/csi/staging/nvmeof/vol-err", wantProbes: 1, wantRO: true,
			write:    func(string) error { return fmt.Errorf("create probe file: %w", syscall.EIO) },
			wantText: "refuses writes (EIO)"},
		{name: "fails", dir: missing, write: writeProbe, wantProbes: 1, wantText: "write probe at " + missing + " failed"},
		{name: "staged read-only is not probed", dir: "/var/nomad/client/csi/staging/nvmeof/vol-ro",
			write: func(string) error { return fmt.Errorf("create probe file: %w", syscall.EROFS) }},
		{name: "published read-only is not probed", dir: "/var/nomad/client/csi/per-alloc/a1/vol-rw/rw-file-system-single-node-reader-only",
			write: func(string) error { return fmt.Errorf("create probe file: %w", syscall.EROFS) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var probes atomic.Int32
			p := newWriteProber(info, func(dir string) error {
				probes.Add(1)
				return tt.write(dir)
			})
			ro, msg, err := p.check(tt.dir)
			if err != nil {
				t.Fatal(err)
			}
			if int(probes.Load()) != tt.wantProbes || ro != tt.wantRO || (msg == "") != (tt.wantText == "") || !strings.Contains(msg, tt.wantText) {
				t.Errorf("check = %v, %q after %d probe(s); want %v, %q after %d", ro, msg, probes.Load(), tt.wantRO, tt.wantText, tt.wantProbes)
			}
			if left, _ := filepath.Glob(filepath.Join(tt.dir, ".nvmeof-health-*")); len(left) != 0 {
				t.Errorf("the write probe left %v behind", left)
			}
		})
	}
}

// A write stuck in the kernel (ctrl_loss_tmo off, target down) must hold
// one goroutine per path, not one per monitor tick and health call.
func TestWriteProberOneProbeInFlight(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		dir := t.TempDir()
		release := make(chan struct{})
		unblock := sync.OnceFunc(func() { close(release) })
		defer unblock() // a failed check must not leave the bubble stuck
		var probes atomic.Int32
		p := newWriteProber("testdata/mountinfo", func(string) error {
			probes.Add(1)
			<-release
			return nil
		})
		started := time.Now()

		_, msg, err := p.check(dir)
		if err != nil || !strings.Contains(msg, "did not finish within 2s") {
			t.Fatalf("first check = %q, %v; want a timeout", msg, err)
		}
		for range 3 {
			before := time.Now()
			_, msg, err = p.check(dir)
			want := "write probe at " + dir + " still pending since " + started.Format(time.RFC3339)
			if err != nil || !strings.HasPrefix(msg, want) {
				t.Fatalf("check while stuck = %q, %v; want %q", msg, err, want)
			}
			if waited := time.Since(before); waited != 0 {
				t.Errorf("check while stuck waited %s, want an answer at once", waited)
			}
		}
		if n := probes.Load(); n != 1 {
			t.Fatalf("%d probes started while one was stuck, want 1", n)
		}

		unblock()
		synctest.Wait()
		if _, msg, err = p.check(dir); err != nil || msg != "" {
			t.Errorf("check after the device answered = %q, %v; want healthy", msg, err)
		}
		if n := probes.Load(); n != 2 {
			t.Errorf("%d probes in all, want a new one once the stuck one ended", n)
		}
	})
}

// Callers that arrive while a healthy probe is running share its result
// instead of being told it is pending.
func TestWriteProberJoinsRunningProbe(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		dir := t.TempDir()
		entered, release := make(chan struct{}), make(chan struct{})
		var probes atomic.Int32
		p := newWriteProber("testdata/mountinfo", func(string) error {
			if probes.Add(1) == 1 {
				close(entered)
			}
			<-release
			return nil
		})
		msgs := make(chan string, 2)
		call := func() {
			_, msg, err := p.check(dir)
			if err != nil {
				msg = err.Error()
			}
			msgs <- msg
		}
		go call()
		<-entered
		go call() // arrives while the first caller's probe runs
		synctest.Wait()
		close(release)
		for range 2 {
			if msg := <-msgs; msg != "" {
				t.Errorf("caller got %q, want healthy", msg)
			}
		}
		if n := probes.Load(); n != 1 {
			t.Errorf("%d probes for two concurrent callers, want 1", n)
		}
	})
}

func TestCheckFabricsSupport(t *testing.T) {
	tests := []struct {
		name    string
		device  string // "char", "file" or "" (missing)
		module  bool
		wantErr string
	}{
		{name: "ready", device: "char", module: true},
		{name: "no device", module: true, wantErr: "modprobe nvme-tcp"},
		{name: "not a device", device: "file", module: true, wantErr: "not a character device"},
		{name: "no tcp transport", device: "char", wantErr: "NVMe/TCP transport is not loaded"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sys, dev := t.TempDir(), t.TempDir()
			switch tt.device {
			case "char":
				// Any character device stands in for /dev/nvme-fabrics.
				if err := os.Symlink("/dev/null", filepath.Join(dev, "nvme-fabrics")); err != nil {
					t.Fatal(err)
				}
			case "file":
				if err := os.WriteFile(filepath.Join(dev, "nvme-fabrics"), nil, 0o600); err != nil {
					t.Fatal(err)
				}
			}
			if tt.module {
				if err := os.MkdirAll(filepath.Join(sys, "module", "nvme_tcp"), 0o755); err != nil {
					t.Fatal(err)
				}
			}
			err := CheckFabricsSupport(sys, dev)
			if tt.wantErr == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) || !errors.Is(err, ErrFabricsUnavailable) {
				t.Errorf("error = %v, want ErrFabricsUnavailable saying %q", err, tt.wantErr)
			}
		})
	}
}

// The simulated host passes the same check with the modules loaded and
// fails it without.
func TestCheckFabricsSupportOnSimulatedHost(t *testing.T) {
	loaded := kerneltest.New(t)
	if err := CheckFabricsSupport(loaded.SysfsRoot(), loaded.DevRoot()); err != nil {
		t.Errorf("loaded: %v", err)
	}
	h := kerneltest.New(t, kerneltest.WithoutFabrics())
	if err := CheckFabricsSupport(h.SysfsRoot(), h.DevRoot()); !errors.Is(err, ErrFabricsUnavailable) {
		t.Errorf("not loaded: %v, want ErrFabricsUnavailable", err)
	}
	k := newTestConnector(t, h)
	h.AddTarget("127.0.0.1", "4420", nqnOne, nsOne)
	if _, err := k.Connect(t.Context(), valid(t, connectionTo(nqnOne))); !errors.Is(err, ErrFabricsUnavailable) {
		t.Errorf("Connect without the modules: %v, want ErrFabricsUnavailable", err)
	}
}

func TestNewConnectorRejectsUnknownBackend(t *testing.T) {
	if _, err := NewConnector(ConnectorConfig{Backend: "iscsi"}); err == nil || !strings.Contains(err.Error(), "fabrics, nvme-cli") {
		t.Errorf("error = %v, want one listing the backends", err)
	}
}

func TestUnescapeMountInfo(t *testing.T) {
	tests := []struct{ in, want string }{
		{`/plain/path`, "/plain/path"},
		{`/with\040space`, "/with space"},
		{`/tab\011and\012newline`, "/tab\tand\nnewline"},
		{`/back\134slash`, `/back\slash`},
		{`/not\08octal`, `/not\08octal`},
		{`/short\04`, `/short\04`},
	}
	for _, tt := range tests {
		if got := UnescapeMountInfo(tt.in); got != tt.want {
			t.Errorf("UnescapeMountInfo(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}
