package kernel

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// A sysfs that cannot be read is reported as such, not as a missing module.
func TestCheckFabricsSupportUnreadableSysfs(t *testing.T) {
	sys, dev := t.TempDir(), t.TempDir()
	if err := os.Symlink("/dev/null", filepath.Join(dev, "nvme-fabrics")); err != nil {
		t.Fatal(err)
	}
	// "module" is a file, so looking below it fails with ENOTDIR.
	if err := os.WriteFile(filepath.Join(sys, "module"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	err := CheckFabricsSupport(sys, dev)
	if err == nil || !strings.Contains(err.Error(), "look for nvme_tcp") || strings.Contains(err.Error(), "not loaded") || !errors.Is(err, ErrFabricsUnavailable) {
		t.Errorf("CheckFabricsSupport = %v, want a lookup error", err)
	}
}
