package driver

import (
	"fmt"
	"slices"

	mount "k8s.io/mount-utils"

	"github.com/nvmeof/nvmeof/csi/internal/sysmount"
)

// Mounts makes and takes off the plugin's own mounts: a staged file system,
// the binds of a staging path or a device node, and their unmounts.
// mount-utils stays for what needs a tool (blkid, mkfs, fsck, resize) and
// for reading mount points.
type Mounts interface {
	// Mount mounts the file system of type fsType on device at target,
	// with mount(8)-style options.
	Mount(device, target, fsType string, options []string) error
	// Bind binds source at target; options are per-mount flags (ro,
	// nosuid, ...) the bind gets on top of what it inherits.
	Bind(source, target string, options []string) error
	// Unmount takes off the topmost mount at target.
	Unmount(target string) error
}

// SyscallMounts are the kernel's mount(2) and umount2(2), with no process
// started: what the binary uses.
type SyscallMounts struct{}

var _ Mounts = SyscallMounts{}

func (SyscallMounts) Mount(device, target, fsType string, options []string) error {
	return sysmount.Mount(device, target, fsType, options) //nolint:wrapcheck // sysmount names the mount
}

func (SyscallMounts) Bind(source, target string, options []string) error {
	return sysmount.Bind(source, target, options) //nolint:wrapcheck // sysmount names the bind
}

func (SyscallMounts) Unmount(target string) error {
	return sysmount.Unmount(target) //nolint:wrapcheck // sysmount names the path
}

// mounterMounts does the plugin's mounts through a mount-utils mounter:
// mount-utils' fake mounter in tests, which records them in the list the
// mount table reads.
type mounterMounts struct{ m mount.Interface }

func (a mounterMounts) Mount(device, target, fsType string, options []string) error {
	return a.m.Mount(device, target, fsType, options) //nolint:wrapcheck // callers say what was mounted
}

func (a mounterMounts) Bind(source, target string, options []string) error {
	return a.m.Mount(source, target, "", append([]string{"bind"}, options...)) //nolint:wrapcheck // callers say what was bound
}

func (a mounterMounts) Unmount(target string) error {
	return a.m.Unmount(target) //nolint:wrapcheck // callers say what was unmounted
}

// formatMounter is the mount.Interface mount-utils' SafeFormatAndMount
// is given: its blkid, mkfs and fsck run as tools, and its final mount is
// the plugin's own.
type formatMounter struct {
	mount.Interface
	own Mounts
}

func (f formatMounter) Mount(source, target, fsType string, options []string) error {
	return f.own.Mount(source, target, fsType, options) //nolint:wrapcheck // mount-utils wraps it
}

func (f formatMounter) MountSensitive(source, target, fsType string, options, sensitive []string) error {
	if len(sensitive) > 0 {
		// The plugin passes none; mount-utils would only hide them from
		// its logs.
		return fmt.Errorf("mount %s: sensitive mount options are not supported", source)
	}
	return f.own.Mount(source, target, fsType, slices.Clone(options)) //nolint:wrapcheck // mount-utils wraps it
}

func (f formatMounter) MountSensitiveWithoutSystemd(source, target, fsType string, options, sensitive []string) error {
	return f.MountSensitive(source, target, fsType, options, sensitive)
}

func (f formatMounter) MountSensitiveWithoutSystemdWithMountFlags(source, target, fsType string, options, sensitive, _ []string) error {
	return f.MountSensitive(source, target, fsType, options, sensitive)
}
