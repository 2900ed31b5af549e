package driver

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// KernelCheck returns a check that the host can create NVMe/TCP
// controllers: /dev/nvme-fabrics exists (nvme-fabrics loaded) and the
// nvme_tcp module is loaded or built in.
func KernelCheck(devRoot, sysRoot string) func() error {
	return func() error {
		var errs []error
		if _, err := os.Stat(filepath.Join(devRoot, "nvme-fabrics")); err != nil {
			errs = append(errs, fmt.Errorf("%s is missing (modprobe nvme-fabrics): %w", filepath.Join(devRoot, "nvme-fabrics"), err))
		}
		if _, err := os.Stat(filepath.Join(sysRoot, "module", "nvme_tcp")); errors.Is(err, fs.ErrNotExist) {
			errs = append(errs, fmt.Errorf("kernel module nvme_tcp is not loaded (modprobe nvme-tcp)"))
		} else if err != nil {
			errs = append(errs, fmt.Errorf("look for nvme_tcp: %w", err))
		}
		return errors.Join(errs...)
	}
}
