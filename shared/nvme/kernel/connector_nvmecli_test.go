package kernel

import (
	"bytes"
	"context"
	"errors"
	"slices"
	"strings"
	"syscall"
	"testing"

	"github.com/nvmeof/nvmeof/shared/nvme"
	"github.com/nvmeof/nvmeof/shared/nvme/nvmetest"
)

// fakeNVMeCLI stands in for the nvme binary: it records each argument
// vector and runs act, which may change the fixture as the kernel would.
type fakeNVMeCLI struct {
	calls [][]string
	act   func(call int) (stderr string, err error)
}

func (f *fakeNVMeCLI) Run(_ context.Context, path string, args []string) ([]byte, []byte, error) {
	f.calls = append(f.calls, append([]string{path}, args...))
	stderr, err := f.act(len(f.calls))
	return []byte("human output nobody parses\n"), []byte(stderr), err
}

var errExit1 = errors.New("exit status 1")

func TestNVMeCLIBackend(t *testing.T) {
	secret := nvme.Secret(nvmetest.DHCHAPKey(bytes.Repeat([]byte{7}, 32)))
	tests := []struct {
		name      string
		act       func(fx *sysfsFixture) func(call int) (string, error)
		auth      nvme.Auth
		wantCalls int
		wantName  string
		wantText  string
	}{
		{name: "connects and finds the controller in sysfs", wantCalls: 1, wantName: "nvme3",
			act: func(fx *sysfsFixture) func(int) (string, error) {
				return func(int) (string, error) {
					fx.addSubsystem(0, nqnOne)
					fx.addController(fixtureCtrl{Instance: 3, NQN: nqnOne})
					return "", nil
				}
			}},
		{name: "a failed run that left a controller adopts it", wantCalls: 1, wantName: "nvme4",
			act: func(fx *sysfsFixture) func(int) (string, error) {
				return func(int) (string, error) {
					fx.addSubsystem(0, nqnOne)
					fx.addController(fixtureCtrl{Instance: 4, NQN: nqnOne})
					return "already connected", errExit1
				}
			}},
		{name: "refused is retried, secrets stay out of the error", auth: nvme.Auth{HostSecret: secret}, wantCalls: 4,
			wantText: "Failed to write to /dev/nvme-fabrics: nvme.Connection refused",
			act: func(*sysfsFixture) func(int) (string, error) {
				return func(int) (string, error) {
					return "Failed to write to /dev/nvme-fabrics: nvme.Connection refused\n", errExit1
				}
			}},
		{name: "invalid argument is not retried", wantCalls: 1, wantText: "Invalid argument",
			act: func(*sysfsFixture) func(int) (string, error) {
				return func(int) (string, error) {
					return "Failed to write to /dev/nvme-fabrics: Invalid argument\n", errExit1
				}
			}},
		{name: "success without a controller is an error", wantCalls: 1, wantText: "no matching controller",
			act: func(*sysfsFixture) func(int) (string, error) { return func(int) (string, error) { return "", nil } }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fx := newSysfsFixture(t)
			cli := &fakeNVMeCLI{act: tt.act(fx)}
			c, err := NewConnector(ConnectorConfig{SysfsRoot: fx.root, DevRoot: fx.dev, Backend: BackendNVMeCLI,
				NVMeCLIPath: "/usr/sbin/nvme", Exec: cli, Backoff: fastBackoff})
			if err != nil {
				t.Fatal(err)
			}
			conn := connectionTo(nqnOne)
			conn.Auth = tt.auth
			ctrl, err := c.Connect(t.Context(), valid(t, conn))
			if len(cli.calls) != tt.wantCalls {
				t.Errorf("nvme ran %d times, want %d", len(cli.calls), tt.wantCalls)
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
			want, err := conn.BuildConnectArgs()
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(cli.calls[0], append([]string{"/usr/sbin/nvme"}, want...)) {
				t.Errorf("ran %q, want nvme %q", cli.calls[0], want)
			}
		})
	}
}

func TestNVMeCLIBackendRefusesZeroTimeouts(t *testing.T) {
	fx := newSysfsFixture(t)
	cli := &fakeNVMeCLI{act: func(int) (string, error) { return "", nil }}
	c, err := NewConnector(ConnectorConfig{SysfsRoot: fx.root, DevRoot: fx.dev, Backend: BackendNVMeCLI, Exec: cli, Backoff: fastBackoff})
	if err != nil {
		t.Fatal(err)
	}
	conn := connectionTo(nqnOne)
	conn.Config.CtrlLossTmo = 0
	if _, err := c.Connect(t.Context(), valid(t, conn)); !errors.Is(err, nvme.ErrInvalid) || len(cli.calls) != 0 {
		t.Errorf("error = %v after %d runs, want nvme.ErrInvalid before running nvme", err, len(cli.calls))
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
