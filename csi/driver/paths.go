package driver

import (
	"crypto/sha256"
	"encoding/hex"
	"path/filepath"
	"strings"

	"github.com/nvmeof/nvmeof/shared/nvme"
	"github.com/nvmeof/nvmeof/shared/nvme/kernel"
)

// blockStagingFile is where a block volume's device node is bind-mounted
// inside its staging directory, so the mount table shows it staged.
func blockStagingFile(stagingPath string) string {
	return filepath.Join(stagingPath, "block")
}

// stagingMountPaths are the paths a volume staged at stagingPath may be
// mounted on: the directory (file system) or the block file.
func stagingMountPaths(stagingPath string) []string {
	return []string{filepath.Clean(stagingPath), blockStagingFile(stagingPath)}
}

// connectionKey names a controller's identity: target, source and host.
func connectionKey(t nvme.Target, h nvme.Host) string {
	return strings.Join([]string{t.Transport, t.TrAddr, t.TrSvcID, t.NQN, t.HostTrAddr, t.HostIface, h.NQN, h.ID}, "|")
}

// recordName is a file name for any key: a hash, since keys hold '/'.
func recordName(parts ...string) string {
	sum := sha256.Sum256([]byte(strings.Join(parts, "\x00")))
	return hex.EncodeToString(sum[:12]) + ".json"
}

// controllerKey is connectionKey as read back from a controller.
func controllerKey(c kernel.Controller) string {
	t := nvme.Target{Transport: c.Transport, TrAddr: c.TrAddr, TrSvcID: c.TrSvcID, NQN: c.Subsystem, HostTrAddr: c.HostTrAddr, HostIface: c.HostIface}
	return connectionKey(t, nvme.Host{NQN: c.HostNQN, ID: c.HostID})
}
