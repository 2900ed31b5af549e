package driver_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/nvmeof/nvmeof/csi/driver"
)

func TestKernelCheck(t *testing.T) {
	tests := []struct {
		name            string
		fabrics, tcpMod bool
		want, dontWant  []string
	}{
		{"ready", true, true, nil, nil},
		{"no nvme-fabrics", false, true, []string{"nvme-fabrics is missing", "modprobe nvme-fabrics"}, []string{"nvme_tcp"}},
		{"no nvme_tcp", true, false, []string{"nvme_tcp is not loaded", "modprobe nvme-tcp"}, []string{"nvme-fabrics is missing"}},
		{"neither", false, false, []string{"modprobe nvme-fabrics", "modprobe nvme-tcp"}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dev, sys := t.TempDir(), t.TempDir()
			if tt.fabrics {
				if err := os.WriteFile(filepath.Join(dev, "nvme-fabrics"), nil, 0o600); err != nil {
					t.Fatal(err)
				}
			}
			if tt.tcpMod {
				if err := os.MkdirAll(filepath.Join(sys, "module", "nvme_tcp"), 0o750); err != nil {
					t.Fatal(err)
				}
			}
			err := driver.KernelCheck(dev, sys)()
			if len(tt.want) == 0 {
				if err != nil {
					t.Fatalf("KernelCheck = %v, want ready", err)
				}
				return
			}
			if err == nil {
				t.Fatal("KernelCheck = nil, want a reason")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("reason %q lacks %q", err, w)
				}
			}
			for _, w := range tt.dontWant {
				if strings.Contains(err.Error(), w) {
					t.Errorf("reason %q blames %q, which is there", err, w)
				}
			}
		})
	}
}

// A sysfs that cannot be read is reported as such, not as a missing module.
func TestKernelCheckUnreadableSysfs(t *testing.T) {
	dev, sys := t.TempDir(), t.TempDir()
	if err := os.WriteFile(filepath.Join(dev, "nvme-fabrics"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	// "module" is a file, so looking below it fails with ENOTDIR.
	if err := os.WriteFile(filepath.Join(sys, "module"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	err := driver.KernelCheck(dev, sys)()
	if err == nil || !strings.Contains(err.Error(), "look for nvme_tcp") {
		t.Errorf("KernelCheck = %v, want a lookup error", err)
	}
}
