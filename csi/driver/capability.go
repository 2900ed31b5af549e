package driver

import (
	"fmt"
	"slices"

	"github.com/container-storage-interface/spec/lib/go/csi"

	"github.com/nvmeof/nvmeof/csi/internal/sysmount"
)

// DefaultFSType is used when the capability names none.
const DefaultFSType = "ext4"

// supportedFSTypes are the file systems the plugin formats and grows.
var supportedFSTypes = []string{"ext4", "ext3", "xfs"}

// volumeMode is what a capability asks for, checked.
type volumeMode struct {
	block      bool
	fsType     string
	mountFlags []string
	readOnly   bool // the access mode allows no writer
}

// parseCapability checks a capability: access mode we can honour, block or
// a file system we support. A file system on a namespace that several
// nodes write would be corrupted, so multi-node writers get block only.
func parseCapability(c *csi.VolumeCapability) (volumeMode, error) {
	if c == nil {
		return volumeMode{}, fmt.Errorf("volume_capability is required")
	}
	var m volumeMode
	mode := c.GetAccessMode().GetMode()
	switch mode {
	case csi.VolumeCapability_AccessMode_SINGLE_NODE_WRITER,
		csi.VolumeCapability_AccessMode_SINGLE_NODE_SINGLE_WRITER,
		csi.VolumeCapability_AccessMode_SINGLE_NODE_MULTI_WRITER:
	case csi.VolumeCapability_AccessMode_SINGLE_NODE_READER_ONLY,
		csi.VolumeCapability_AccessMode_MULTI_NODE_READER_ONLY:
		m.readOnly = true
	case csi.VolumeCapability_AccessMode_MULTI_NODE_SINGLE_WRITER,
		csi.VolumeCapability_AccessMode_MULTI_NODE_MULTI_WRITER:
		if c.GetBlock() == nil {
			return volumeMode{}, fmt.Errorf("access mode %s needs block attachment: a file system written by several nodes is corrupted", mode)
		}
	default:
		return volumeMode{}, fmt.Errorf("access mode %s is not supported", mode)
	}
	switch {
	case c.GetBlock() != nil:
		m.block = true
	case c.GetMount() != nil:
		m.fsType = c.GetMount().GetFsType()
		if m.fsType == "" {
			m.fsType = DefaultFSType
		}
		if !slices.Contains(supportedFSTypes, m.fsType) {
			return volumeMode{}, fmt.Errorf("fs_type %q is not supported; use one of %v", m.fsType, supportedFSTypes)
		}
		m.mountFlags = c.GetMount().GetMountFlags()
		// Checked before anything happens: the plugin mounts with mount(2),
		// and an option mount(8) would have acted on itself (bind,
		// remount, loop, user) must not pass for a file-system option.
		if _, err := sysmount.ParseOptions(m.mountFlags); err != nil {
			return volumeMode{}, fmt.Errorf("volume_capability.mount.mount_flags: %w", err)
		}
	default:
		return volumeMode{}, fmt.Errorf("volume_capability needs an access type: block or mount")
	}
	return m, nil
}
