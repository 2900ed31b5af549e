package labtarget

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
)

// HostIdentityFiles writes hostnqn and hostid into dir (/etc/nvme in the VM),
// where libnvme-style tools and the connector look for the host identity.
func HostIdentityFiles(dir, hostNQN, hostID string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil { //nolint:gosec // /etc/nvme is public, as on any host
		return fmt.Errorf("host identity: %w", err)
	}
	for name, value := range map[string]string{"hostnqn": hostNQN, "hostid": hostID} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(value+"\n"), 0o644); err != nil { //nolint:gosec // read by unprivileged tools
			return fmt.Errorf("host identity: %w", err)
		}
	}
	return nil
}

// AttachLoop creates a sparse file of size bytes and binds it to the loop
// device with losetup. nvmet cannot use a tmpfs file directly (it opens
// with O_DIRECT unless buffered_io is set); a loop device over it works.
func AttachLoop(ctx context.Context, file string, size int64, device string) error {
	f, err := os.Create(file)
	if err != nil {
		return fmt.Errorf("backing file: %w", err)
	}
	if err := f.Truncate(size); err != nil {
		return fmt.Errorf("backing file %s: %w", file, errors.Join(err, f.Close()))
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("backing file %s: %w", file, err)
	}
	var stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, "losetup", device, file)
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("losetup %s %s: %w: %s", device, file, err, bytes.TrimSpace(stderr.Bytes()))
	}
	return nil
}
