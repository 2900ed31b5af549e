package nvme

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestHealth(t *testing.T) {
	tests := []struct {
		name        string
		state       string // "" removes the controller
		errorsCount string // "" means no ext4 directory (xfs, or not mounted)
		mount       bool
		wantState   string
		wantErrors  int
		wantHealthy bool
		wantText    []string
	}{
		{name: "live and clean", state: StateLive, errorsCount: "0", mount: true, wantState: StateLive, wantHealthy: true},
		{name: "live, block volume", state: StateLive, wantState: StateLive, wantHealthy: true},
		{name: "reconnecting", state: StateConnecting, errorsCount: "0", mount: true, wantState: StateConnecting,
			wantText: []string{"is connecting", "I/O waits", "ctrl_loss_tmo off"}},
		{name: "gone with ext4 errors", errorsCount: "3", mount: true, wantErrors: 3,
			wantText: []string{"is gone", "recorded 3 error(s)", "fsck"}},
		{name: "gone, no file system", wantText: []string{"is gone"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fx := newSysfsFixture(t)
			fx.addSubsystem(0, nqnOne)
			fx.addController(fixtureCtrl{Instance: 2, NQN: nqnOne, State: tt.state})
			disk := fx.addHeadNamespace(0, 1, nsOne, 2)
			if tt.state == "" {
				fx.removeController(2, 0)
			}
			if tt.errorsCount != "" {
				fx.writeAttrs(filepath.Join(fx.root, "fs", "ext4", disk), map[string]string{"errors_count": tt.errorsCount})
			}
			mnt := ""
			if tt.mount {
				mnt = t.TempDir()
			}
			k := newTestConnector(t, fx, newFakeFabrics(fx))

			h, err := k.Health(Controller{Name: "nvme2", Subsystem: nqnOne}, Namespace{Name: disk}, mnt)
			if err != nil {
				t.Fatal(err)
			}
			if h.ControllerState != tt.wantState || h.FSErrors != tt.wantErrors || h.Healthy() != tt.wantHealthy || h.ReadOnly {
				t.Errorf("Health = %+v", h)
			}
			for _, s := range tt.wantText {
				if !strings.Contains(h.Message, s) {
					t.Errorf("message %q does not say %q", h.Message, s)
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

func TestProbeWritableReportsFailure(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "not-mounted")
	ro, msg := probeWritable(missing)
	if ro || !strings.Contains(msg, "write probe at "+missing+" failed") {
		t.Errorf("probeWritable(missing dir) = %v, %q", ro, msg)
	}
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

func TestNewConnectorRejectsUnknownBackend(t *testing.T) {
	if _, err := NewConnector(ConnectorConfig{Backend: "iscsi"}); err == nil || !strings.Contains(err.Error(), "fabrics, nvme-cli") {
		t.Errorf("error = %v, want one listing the backends", err)
	}
}
