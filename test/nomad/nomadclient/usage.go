package nomadclient

import (
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"slices"
	"sync"

	"github.com/hashicorp/nomad/api"
	"github.com/moby/sys/mountinfo"

	"github.com/nvmeof/nvmeof/csi/nomadvolume"
)

// UsageOptions is how one allocation uses a volume (interface.go:30-55).
// MountOptions is a pointer, as in Nomad: the usage tracker's key holds
// it, so two claims with equal options from two jobs are two keys (§3.4).
type UsageOptions struct {
	ReadOnly       bool
	AttachmentMode api.CSIVolumeAttachmentMode
	AccessMode     api.CSIVolumeAccessMode
	MountOptions   *api.CSIMountOptions
}

// ToFS is the usage's element in staging and target paths.
func (u UsageOptions) ToFS() string {
	return nomadvolume.Usage(u.ReadOnly, u.AttachmentMode, u.AccessMode)
}

// Paths under a root: the host root for what the client creates and
// checks, stage_publish_base_dir for what the plugin is sent (§2).
func stagingDir(root, namespace, volumeID string, u UsageOptions) string {
	return filepath.Join(root, "staging", namespace, volumeID, u.ToFS())
}

// legacyStagingDir is the layout before namespaces (#18741), which
// unstage falls back to.
func legacyStagingDir(root, volumeID string, u UsageOptions) string {
	return filepath.Join(root, "staging", volumeID, u.ToFS())
}

func allocVolumeDir(root, allocID, volumeID string) string {
	return filepath.Join(root, "per-alloc", allocID, volumeID)
}

func targetDir(root, allocID, volumeID string, u UsageOptions) string {
	return filepath.Join(allocVolumeDir(root, allocID, volumeID), u.ToFS())
}

// usageKey is volumeUsageKey (usage_tracker.go:23-27).
type usageKey struct {
	volumeID, namespace string
	usage               UsageOptions
}

// usageTracker counts the allocations using a volume the same way; it
// lives in memory, in the plugin's volume manager, and is lost with it
// (client restart, plugin re-registration).
type usageTracker struct {
	mu    sync.Mutex
	users map[usageKey][]string
}

func newUsageTracker() *usageTracker { return &usageTracker{users: map[usageKey][]string{}} }

func (t *usageTracker) claim(allocID, volumeID, namespace string, u UsageOptions) {
	t.mu.Lock()
	defer t.mu.Unlock()
	k := usageKey{volumeID, namespace, u}
	if !slices.Contains(t.users[k], allocID) {
		t.users[k] = append(t.users[k], allocID)
	}
}

// free drops the allocation and reports whether nobody is left with that
// key: the caller may then unstage.
func (t *usageTracker) free(allocID, volumeID, namespace string, u UsageOptions) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	k := usageKey{volumeID, namespace, u}
	t.users[k] = slices.DeleteFunc(t.users[k], func(a string) bool { return a == allocID })
	if len(t.users[k]) == 0 {
		delete(t.users, k)
		return true
	}
	return false
}

// MountChecker answers whether a host path is a mount point. Nomad asks
// /proc/self/mountinfo through moby's mountinfo.Mounted.
type MountChecker interface {
	IsMountPoint(path string) (bool, error)
}

// HostMounts is the host's mount table.
type HostMounts struct{}

// IsMountPoint reports whether path is a mount point; a missing path is
// none.
func (HostMounts) IsMountPoint(path string) (bool, error) {
	ok, err := mountinfo.Mounted(path)
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("is %s a mount point: %w", path, err)
	}
	return ok, nil
}
