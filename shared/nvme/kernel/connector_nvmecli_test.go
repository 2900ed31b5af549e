package kernel

import (
	"bytes"
	"errors"
	"maps"
	"slices"
	"strings"
	"syscall"
	"testing"

	"github.com/nvmeof/nvmeof/shared/nvme"
	"github.com/nvmeof/nvmeof/shared/nvme/kernel/kerneltest"
	"github.com/nvmeof/nvmeof/shared/nvme/nvmetest"
)

// newCLIConnector is an nvme-cli connector on h's simulated nvme-cli.
func newCLIConnector(t *testing.T, h *kerneltest.Host) Connector {
	t.Helper()
	c, err := NewConnector(ConnectorConfig{SysfsRoot: h.SysfsRoot(), DevRoot: h.DevRoot(), Backend: BackendNVMeCLI,
		NVMeCLIPath: "/usr/sbin/nvme", Exec: h.NVMeCLI(), ControlFiles: h, Backoff: fastBackoff, DiskEvents: simulatedDiskEvents(h)})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestNVMeCLIBackend(t *testing.T) {
	secret := nvme.Secret(nvmetest.DHCHAPKey(bytes.Repeat([]byte{7}, 32)))
	tests := []struct {
		name      string
		hostOpts  []kerneltest.Option
		setup     func(t *testing.T, h *kerneltest.Host)
		auth      nvme.Auth
		wantCalls int
		wantName  string
		wantText  string
	}{
		{name: "connects and finds the controller in sysfs", wantCalls: 1, wantName: "nvme0",
			setup: func(_ *testing.T, h *kerneltest.Host) { h.AddTarget("127.0.0.1", "4420", nqnOne, nsOne) }},
		{name: "a failed run that left a controller adopts it", wantCalls: 1, wantName: "nvme0",
			setup: func(t *testing.T, h *kerneltest.Host) {
				h.AddTarget("127.0.0.1", "4420", nqnOne, nsOne)
				// An administrator connects between the connector's look
				// and nvme-cli's: nvme-cli says "already connected".
				h.BeforeNextConnect(func() { adminConnect(t, h, adminOptions(nqnOne)) })
			}},
		{name: "refused is retried", wantCalls: 4,
			wantText: "Failed to write to /dev/nvme-fabrics: Connection refused",
			setup:    func(*testing.T, *kerneltest.Host) {}},
		// nvme-cli takes keys only in its argument vector, which every
		// local user reads in /proc: refused before it runs.
		{name: "keys never reach nvme-cli's arguments", auth: nvme.Auth{HostSecret: secret}, wantCalls: 0,
			wantText: "use the fabrics connector",
			setup:    func(_ *testing.T, h *kerneltest.Host) { h.AddTarget("127.0.0.1", "4420", nqnOne, nsOne) }},
		{name: "invalid argument is not retried", wantCalls: 1, wantText: "Invalid argument",
			hostOpts: []kerneltest.Option{kerneltest.WithStrictHostIdentity()},
			setup: func(t *testing.T, h *kerneltest.Host) {
				h.AddTarget("127.0.0.1", "4420", nqnOne, nsOne)
				h.AddTarget("127.0.0.1", "4420", nqnTwo, nsTwo)
				adminConnect(t, h, strings.Replace(adminOptions(nqnTwo), testHostID, otherHostID, 1))
			}},
		{name: "success without a controller is an error", wantCalls: 1, wantText: "no matching controller",
			setup: func(t *testing.T, h *kerneltest.Host) {
				h.AddTarget("127.0.0.1", "4420", nqnOne, nsOne)
				// The controller is gone again before the connector looks.
				h.AfterNextConnect(func(name string) {
					if err := h.RemoveController(name); err != nil {
						t.Error(err)
					}
				})
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := kerneltest.New(t, tt.hostOpts...)
			tt.setup(t, h)
			c := newCLIConnector(t, h)
			conn := connectionTo(nqnOne)
			conn.Auth = tt.auth
			ctrl, err := c.Connect(t.Context(), valid(t, conn))
			calls := h.NVMeCLI().Calls()
			if len(calls) != tt.wantCalls {
				t.Errorf("nvme ran %d times, want %d", len(calls), tt.wantCalls)
			}
			if tt.wantText != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantText) {
					t.Fatalf("error = %v, want one saying %q", err, tt.wantText)
				}
				if tt.auth.HostSecret != "" && strings.Contains(err.Error(), tt.auth.HostSecret.Reveal()) {
					t.Errorf("the error shows the secret: %v", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if ctrl.Name != tt.wantName {
				t.Errorf("controller %s, want %s", ctrl.Name, tt.wantName)
			}
			want, err := valid(t, conn).BuildConnectArgs()
			if err != nil {
				t.Fatal(err)
			}
			// --verbose: nvme-cli 2.13 names the kernel's errno only then.
			want = append(append([]string{"/usr/sbin/nvme"}, want...), "--verbose")
			if !slices.Equal(calls[0], want) {
				t.Errorf("ran %q, want %q", calls[0], want)
			}
		})
	}
}

// The nvme-cli backend and the fabrics backend put the same options in
// front of the kernel, but for fast_io_fail_tmo, which the nvme-cli
// backend writes through sysfs after the connect: bookworm's nvme-cli 2.3
// has no -F and refuses the whole command, 2.13 drops -F 0 (measured in
// the lab). The controllers end up the same.
func TestNVMeCLIBackendWritesWhatFabricsWrites(t *testing.T) {
	four := 4
	conn := connectionTo(nqnOne)
	conn.Config.FastIOFailTmo = &four
	conn.Config.HdrDigest = true
	options := func(newConnector func(*testing.T, *kerneltest.Host) Connector) (map[string]bool, Controller) {
		h := kerneltest.New(t)
		h.AddTarget("127.0.0.1", "4420", nqnOne, nsOne)
		ctrl, err := newConnector(t, h).Connect(t.Context(), valid(t, conn))
		if err != nil {
			t.Fatal(err)
		}
		w := h.Writes()
		if len(w) != 1 {
			t.Fatalf("writes %q, want 1", w)
		}
		set := map[string]bool{}
		for _, o := range strings.Split(w[0], ",") {
			set[o] = true
		}
		return set, ctrl
	}
	cli, cliCtrl := options(newCLIConnector)
	fabrics, fabricsCtrl := options(func(t *testing.T, h *kerneltest.Host) Connector { return newTestConnector(t, h) })
	delete(fabrics, "fast_io_fail_tmo=4")
	if !maps.Equal(cli, fabrics) {
		t.Errorf("nvme-cli wrote %v, the fabrics backend %v", slices.Sorted(maps.Keys(cli)), slices.Sorted(maps.Keys(fabrics)))
	}
	if cliCtrl.FastIOFailTmo != 4 || fabricsCtrl.FastIOFailTmo != 4 || cliCtrl.CtrlLossTmo != fabricsCtrl.CtrlLossTmo ||
		cliCtrl.ReconnectDelay != fabricsCtrl.ReconnectDelay {
		t.Errorf("controllers differ: nvme-cli %+v, fabrics %+v", cliCtrl, fabricsCtrl)
	}
}

// ctrl_loss_tmo 0 goes to nvme-cli as -1 (releases before 2.3 dropped
// 0) and reaches the controller through sysfs right after.
func TestNVMeCLIBackendCtrlLossTmoZero(t *testing.T) {
	h := kerneltest.New(t)
	h.AddTarget("127.0.0.1", "4420", nqnOne, nsOne)
	c := newCLIConnector(t, h)
	conn := connectionTo(nqnOne)
	conn.Config.CtrlLossTmo = 0
	ctrl, err := c.Connect(t.Context(), valid(t, conn))
	if err != nil {
		t.Fatal(err)
	}
	calls := h.NVMeCLI().Calls()
	if len(calls) != 1 {
		t.Fatalf("nvme ran %d times", len(calls))
	}
	if i := slices.Index(calls[0], "-l"); i < 0 || calls[0][i+1] != "-1" || slices.Contains(calls[0], "-F") {
		t.Errorf("nvme-cli ran with %q, want -l -1 and no -F", calls[0])
	}
	if ctrl.CtrlLossTmo != 0 || ctrlAttr(t, h, ctrl.Name, "ctrl_loss_tmo") != "0" {
		t.Errorf("ctrl_loss_tmo %d (sysfs %s), want 0", ctrl.CtrlLossTmo, ctrlAttr(t, h, ctrl.Name, "ctrl_loss_tmo"))
	}
}

func TestConnectErrorIsErrno(t *testing.T) {
	err := newConnectError(connectionTo(nqnOne), &fsPathError{syscall.ECONNREFUSED})
	if !errors.Is(err, syscall.ECONNREFUSED) || err.Permanent() {
		t.Errorf("ECONNREFUSED: %v, permanent %v", err, err.Permanent())
	}
	err = newConnectError(connectionTo(nqnOne), &fsPathError{syscall.EINVAL})
	if !errors.Is(err, syscall.EINVAL) || !err.Permanent() || !strings.Contains(err.Error(), "allowed hosts") {
		t.Errorf("EINVAL: %v, permanent %v", err, err.Permanent())
	}
}

// fsPathError wraps an errno the way os.File.Write does.
type fsPathError struct{ errno syscall.Errno }

func (e *fsPathError) Error() string { return "write /dev/nvme-fabrics: " + e.errno.Error() }
func (e *fsPathError) Unwrap() error { return e.errno }
