package driver

import (
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"slices"
	"strings"

	"golang.org/x/sys/unix"
	mount "k8s.io/mount-utils"

	"github.com/nvmeof/nvmeof/shared/nvme/kernel"
)

// MountEntry is one mount: where, of which device, how.
type MountEntry struct {
	Path string
	// Device is a /dev path for block devices (a device node bound onto a
	// file shows as its node's path); whatever the kernel shows otherwise.
	Device string
	// Dev is the device number, "major:minor", when the table knows it:
	// the identity of a block device whatever path it was mounted by.
	Dev string
	// FSType is the file system; "" or "devtmpfs" for a device node bound
	// onto a file (a block volume).
	FSType   string
	ReadOnly bool
	// Root is the directory of the file system that is mounted there: "/"
	// for the whole of it, another path for a bind of a subdirectory; ""
	// when the table does not say (take it as the whole).
	Root string
}

// fileSystem reports whether the entry is a file system rather than a
// device node bound onto a file.
func (e MountEntry) fileSystem() bool {
	return e.FSType != "" && e.FSType != "devtmpfs"
}

// MountTable lists the host's mounts. It is the plugin's memory of what is
// staged and published: read fresh for every decision.
type MountTable interface {
	Mounts() ([]MountEntry, error)
}

// mounterTable reads a mount.Interface's list (mount-utils' fake mounter
// in tests). A bind mount of a mounted file system takes that file
// system's type, as the kernel shows it.
type mounterTable struct{ m mount.Interface }

func (t mounterTable) Mounts() ([]MountEntry, error) {
	mps, err := t.m.List()
	if err != nil {
		return nil, fmt.Errorf("list mounts: %w", err)
	}
	fsOf := map[string]string{}
	for _, mp := range mps {
		if mp.Type != "" {
			fsOf[mp.Device] = mp.Type
		}
	}
	out := make([]MountEntry, 0, len(mps))
	for _, mp := range mps {
		typ := mp.Type
		if typ == "" {
			typ = fsOf[mp.Device]
		}
		out = append(out, MountEntry{Path: filepath.Clean(mp.Path), Device: mp.Device, FSType: typ, ReadOnly: slices.Contains(mp.Opts, "ro")})
	}
	return out, nil
}

// ProcMountTable reads a mountinfo file (/proc/self/mountinfo). A device
// node bind-mounted onto a file (block volumes) shows there as a devtmpfs
// mount whose root is the node's name; it is reported as that /dev path
// with the node's device number, which /proc/mounts could not tell.
type ProcMountTable struct {
	Path   string // /proc/self/mountinfo
	DevDir string // /dev
}

func (t ProcMountTable) Mounts() ([]MountEntry, error) {
	infos, err := mount.ParseMountInfo(t.Path)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", t.Path, err)
	}
	out := make([]MountEntry, 0, len(infos))
	for _, mi := range infos {
		mi.MountPoint, mi.Source, mi.Root = kernel.UnescapeMountInfo(mi.MountPoint), kernel.UnescapeMountInfo(mi.Source), kernel.UnescapeMountInfo(mi.Root)
		e := MountEntry{
			Path:     filepath.Clean(mi.MountPoint),
			Device:   mi.Source,
			Dev:      fmt.Sprintf("%d:%d", mi.Major, mi.Minor),
			FSType:   mi.FsType,
			ReadOnly: slices.Contains(mi.MountOptions, "ro"),
			Root:     mi.Root,
		}
		if mi.FsType == "devtmpfs" {
			// devtmpfs's own number says nothing about a device: a bind of
			// a device node is known by the node it binds, anything else
			// there by its path only.
			e.Dev = ""
			if node, ok := deviceNodeOf(mi, t.DevDir); ok {
				e.Device, e.Dev = node, deviceNumber(e.Path, node)
			}
		}
		out = append(out, e)
	}
	return out, nil
}

// deviceNodeOf returns the /dev path of a device node bind-mounted onto a
// file: a devtmpfs mount whose root is one name, with "//deleted" after it
// once the kernel removed the node (its controller deleted).
func deviceNodeOf(mi mount.MountInfo, devDir string) (string, bool) {
	name := strings.TrimPrefix(strings.TrimSuffix(mi.Root, "//deleted"), "/")
	if name == "" || strings.Contains(name, "/") {
		return "", false
	}
	return filepath.Join(devDir, name), true
}

// deviceNumber is the "major:minor" of the device node bound at
// mountPoint: the inode the bind holds, even when /dev no longer has it or
// has since given its name to another device. Failing that, node's; ""
// when neither is a block device (then the path is all there is).
func deviceNumber(mountPoint, node string) string {
	for _, p := range []string{mountPoint, node} {
		var st unix.Stat_t
		if err := unix.Stat(p, &st); err == nil && st.Mode&unix.S_IFMT == unix.S_IFBLK {
			return fmt.Sprintf("%d:%d", unix.Major(st.Rdev), unix.Minor(st.Rdev))
		}
	}
	return ""
}

// mountsAt returns the mounts at path (stacked mounts give more).
func mountsAt(entries []MountEntry, path string) []MountEntry {
	path = filepath.Clean(path)
	var out []MountEntry
	for _, e := range entries {
		if e.Path == path {
			out = append(out, e)
		}
	}
	return out
}

// sameDevice reports whether e is a mount of ns: by device number where
// both are known, else by device path.
func sameDevice(e MountEntry, ns kernel.Namespace) bool {
	if e.Dev != "" && ns.Dev != "" {
		return e.Dev == ns.Dev
	}
	return filepath.Clean(e.Device) == filepath.Clean(ns.DevicePath)
}

// onPartition reports whether e is a mount of a partition of ns.
func onPartition(e MountEntry, ns kernel.Namespace) bool {
	for _, p := range ns.Partitions {
		if e.Dev != "" && p.Dev != "" {
			if e.Dev == p.Dev {
				return true
			}
			continue
		}
		if filepath.Clean(e.Device) == filepath.Join(filepath.Dir(ns.DevicePath), p.Name) {
			return true
		}
	}
	return false
}

// usersOf returns the mounts of any of nss, or of a partition of one.
func usersOf(entries []MountEntry, nss ...kernel.Namespace) []MountEntry {
	var out []MountEntry
	for _, e := range entries {
		for _, ns := range nss {
			if sameDevice(e, ns) || onPartition(e, ns) {
				out = append(out, e)
				break
			}
		}
	}
	return out
}

// paths lists the entries' mount paths.
func paths(entries []MountEntry) []string {
	out := make([]string, 0, len(entries))
	for _, e := range entries {
		out = append(out, e.Path)
	}
	return out
}

// isNotExist reports whether err says a path is gone.
func isNotExist(err error) bool { return errors.Is(err, fs.ErrNotExist) }

// isNVMeDevice reports whether dev names an NVMe namespace block device.
func isNVMeDevice(dev string) bool {
	return strings.HasPrefix(filepath.Base(dev), "nvme")
}
