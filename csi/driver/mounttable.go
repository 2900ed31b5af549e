package driver

import (
	"fmt"
	"path/filepath"
	"strings"

	mount "k8s.io/mount-utils"

	"github.com/nvmeof/nvmeof/shared/nvme/kernel"
)

// MountEntry is one mount: where, and which device (a /dev path for block
// devices; whatever the kernel shows for anything else).
type MountEntry struct {
	Path   string
	Device string
}

// MountTable lists the host's mounts. It is the plugin's memory of what is
// staged and published: read fresh for every decision.
type MountTable interface {
	Mounts() ([]MountEntry, error)
}

// mounterTable reads a mount.Interface's list.
type mounterTable struct{ m mount.Interface }

func (t mounterTable) Mounts() ([]MountEntry, error) {
	mps, err := t.m.List()
	if err != nil {
		return nil, fmt.Errorf("list mounts: %w", err)
	}
	out := make([]MountEntry, 0, len(mps))
	for _, mp := range mps {
		out = append(out, MountEntry{Path: filepath.Clean(mp.Path), Device: mp.Device})
	}
	return out, nil
}

// ProcMountTable reads a mountinfo file (/proc/self/mountinfo). A device
// node bind-mounted onto a file (block volumes) shows there as a devtmpfs
// mount whose root is the node's name; it is reported as that /dev path,
// which /proc/mounts could not tell.
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
		out = append(out, MountEntry{Path: filepath.Clean(mi.MountPoint), Device: deviceOfMountInfo(mi, t.DevDir)})
	}
	return out, nil
}

func deviceOfMountInfo(mi mount.MountInfo, devDir string) string {
	if mi.FsType == "devtmpfs" && mi.Root != "/" && !strings.Contains(strings.TrimPrefix(mi.Root, "/"), "/") {
		return filepath.Join(devDir, strings.TrimPrefix(mi.Root, "/"))
	}
	return mi.Source
}

// mountsAt returns the devices mounted at path (stacked mounts give more).
func mountsAt(entries []MountEntry, path string) []string {
	path = filepath.Clean(path)
	var devs []string
	for _, e := range entries {
		if e.Path == path {
			devs = append(devs, e.Device)
		}
	}
	return devs
}

// isNVMeDevice reports whether dev names an NVMe namespace block device.
func isNVMeDevice(dev string) bool {
	return strings.HasPrefix(filepath.Base(dev), "nvme")
}
