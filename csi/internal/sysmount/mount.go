package sysmount

import (
	"errors"
	"fmt"

	"golang.org/x/sys/unix"
)

// perMountFlags are the flags a bind's remount sets on the mount itself
// (not its file system), each with the statfs(2) bit that reports it.
var perMountFlags = []struct{ ms, st uintptr }{
	{unix.MS_RDONLY, unix.ST_RDONLY},
	{unix.MS_NOSUID, unix.ST_NOSUID},
	{unix.MS_NODEV, unix.ST_NODEV},
	{unix.MS_NOEXEC, unix.ST_NOEXEC},
	{unix.MS_NOATIME, unix.ST_NOATIME},
	{unix.MS_NODIRATIME, unix.ST_NODIRATIME},
	{unix.MS_RELATIME, unix.ST_RELATIME},
	{unix.MS_NOSYMFOLLOW, stNoSymFollow},
}

// stNoSymFollow is ST_NOSYMFOLLOW of linux/statfs.h (5.10), which
// x/sys/unix does not name.
const stNoSymFollow = 0x2000

const perMountMask = unix.MS_RDONLY | unix.MS_NOSUID | unix.MS_NODEV | unix.MS_NOEXEC | unix.MS_NOATIME |
	unix.MS_NODIRATIME | unix.MS_RELATIME | unix.MS_STRICTATIME | unix.MS_NOSYMFOLLOW

// Mount mounts the file system of type fsType on source at target with
// mount(8)-style options.
func Mount(source, target, fsType string, opts []string) error {
	if fsType == "" {
		return fmt.Errorf("mount %s at %s: no file system type", source, target)
	}
	o, err := ParseOptions(opts)
	if err != nil {
		return fmt.Errorf("mount %s at %s: %w", source, target, err)
	}
	if err := unix.Mount(source, target, fsType, o.Set, o.Data); err != nil {
		return fmt.Errorf("mount %s (%s) at %s: %w", source, fsType, target, err)
	}
	return nil
}

// Bind binds source (a directory, a file, a device node) at target. The
// per-mount flags among opts (ro, nosuid, noatime, ...) are applied by a
// remount of the bind, as mount(8) does; flags the bind inherited from its
// source and opts do not turn off are kept (mount(8) would drop them, and a
// publish must never lose the staging mount's nosuid). File-system options
// mean nothing to a bind and are ignored, as mount(8) ignores them. When
// the remount fails, the bind is taken off again.
func Bind(source, target string, opts []string) error {
	o, err := ParseOptions(opts)
	if err != nil {
		return fmt.Errorf("bind %s at %s: %w", source, target, err)
	}
	if err := unix.Mount(source, target, "", unix.MS_BIND, ""); err != nil {
		return fmt.Errorf("bind %s at %s: %w", source, target, err)
	}
	if o.Set&perMountMask == 0 && o.Clear&perMountMask == 0 {
		return nil
	}
	var st unix.Statfs_t
	err = unix.Statfs(target, &st)
	if err == nil {
		flags := (inherited(st.Flags)&^o.Clear | o.Set) & perMountMask
		if flags&(unix.MS_NOATIME|unix.MS_STRICTATIME) != 0 {
			flags &^= unix.MS_RELATIME // statfs shows relatime for the default; an explicit choice wins
		}
		err = unix.Mount("", target, "", unix.MS_REMOUNT|unix.MS_BIND|flags, "")
	}
	if err != nil {
		if uerr := unix.Unmount(target, unix.UMOUNT_NOFOLLOW); uerr != nil {
			return fmt.Errorf("bind %s at %s: set its flags: %w; and the bind stays: %w", source, target, err, uerr)
		}
		return fmt.Errorf("bind %s at %s: set its flags: %w", source, target, err)
	}
	return nil
}

// inherited turns statfs(2) flags into the MS_* flags of a remount.
func inherited(st int64) uintptr {
	var ms uintptr
	for _, f := range perMountFlags {
		if uintptr(st)&f.st != 0 {
			ms |= f.ms
		}
	}
	return ms
}

// Unmount takes off the topmost mount at target. A symbolic link as the
// last element of target is not followed: what is unmounted is the mount
// at the path the mount table shows. Nothing mounted there is
// ErrNotMounted.
func Unmount(target string) error {
	err := unix.Unmount(target, unix.UMOUNT_NOFOLLOW)
	switch {
	case err == nil:
		return nil
	case errors.Is(err, unix.EINVAL):
		return fmt.Errorf("unmount %s: %w (%w)", target, ErrNotMounted, err)
	}
	return fmt.Errorf("unmount %s: %w", target, err)
}
