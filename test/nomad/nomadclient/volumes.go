package nomadclient

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"
	"sync"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/nomad/api"

	"github.com/nvmeof/nvmeof/csi/nomadvolume"
)

// MountInfo is what a mounted volume gives its allocation's tasks: the
// host target path they bind-mount.
type MountInfo struct {
	Source string
}

// volumeManager is one plugin's volume manager (csimanager/volume.go).
// requiresStaging is frozen at the plugin's first good fingerprint.
type volumeManager struct {
	log                  hclog.Logger
	plugin               *pluginClient
	pluginID             string
	hostRoot, pluginRoot string
	requiresStaging      bool
	tracker              *usageTracker
	mounts               MountChecker
	event                func(Event)

	opsMu sync.Mutex
	ops   map[string]chan struct{}
}

func newVolumeManager(log hclog.Logger, plugin *pluginClient, pluginID, hostRoot, pluginRoot string, requiresStaging bool,
	mounts MountChecker, event func(Event),
) *volumeManager {
	return &volumeManager{
		log: log, plugin: plugin, pluginID: pluginID, hostRoot: hostRoot, pluginRoot: pluginRoot,
		requiresStaging: requiresStaging, tracker: newUsageTracker(), mounts: mounts, event: event,
		ops: map[string]chan struct{}{},
	}
}

// serializedOp runs fn alone among the operations on one volume of one
// namespace: stage+publish, unpublish+unstage of one volume are never
// concurrent, whichever allocations they are for; other volumes proceed
// (volume.go:515-553). Nomad's returns nil when its context ends while it
// waits; this returns the context's error.
func (m *volumeManager) serializedOp(ctx context.Context, namespace, volumeID string, fn func() error) error {
	key := namespace + "\x00" + volumeID
	for {
		m.opsMu.Lock()
		busy, ok := m.ops[key]
		if !ok {
			done := make(chan struct{})
			m.ops[key] = done
			m.opsMu.Unlock()
			defer func() {
				m.opsMu.Lock()
				delete(m.ops, key)
				m.opsMu.Unlock()
				close(done)
			}()
			return fn()
		}
		m.opsMu.Unlock()
		select {
		case <-busy:
		case <-ctx.Done():
			return fmt.Errorf("waiting for another operation on volume %s: %w", volumeID, ctx.Err())
		}
	}
}

func namespaceOf(v *api.CSIVolume) string {
	if v.Namespace == "" {
		return api.DefaultNamespace
	}
	return v.Namespace
}

// mountVolume stages (unless the plugin does not stage, or the host
// staging dir is already a mount point) and publishes vol for an
// allocation (volume.go:97-226). ctx carries no deadline: Nomad's has
// none, and it never retries.
func (m *volumeManager) mountVolume(ctx context.Context, vol *api.CSIVolume, allocID string, u UsageOptions, publishContext map[string]string) (*MountInfo, error) {
	ns := namespaceOf(vol)
	var info *MountInfo
	err := m.serializedOp(ctx, ns, vol.ID, func() error {
		// Claimed before staging (#20424, PR #20550).
		m.tracker.claim(allocID, vol.ID, ns, u)
		capability, err := nomadvolume.Capability(u.AccessMode, u.AttachmentMode, nomadvolume.MergeMountOptions(vol.MountOptions, u.MountOptions))
		if err != nil {
			return err
		}
		pluginStaging := ""
		if m.requiresStaging {
			if err := m.stageVolume(ctx, vol, u, capability, publishContext); err != nil {
				return err
			}
			pluginStaging = stagingDir(m.pluginRoot, ns, vol.ID, u)
		}
		info, err = m.publishVolume(ctx, vol, allocID, u, capability, pluginStaging, publishContext)
		return err
	})
	if err != nil {
		m.tracker.free(allocID, vol.ID, ns, u)
	}
	m.storageEvent("Mount volume", vol.ID, allocID, err)
	return info, err
}

func (m *volumeManager) stageVolume(ctx context.Context, vol *api.CSIVolume, u UsageOptions, capability *csi.VolumeCapability, publishContext map[string]string) error {
	ns := namespaceOf(vol)
	host := stagingDir(m.hostRoot, ns, vol.ID, u)
	if err := os.MkdirAll(host, 0o700); err != nil {
		return fmt.Errorf("create staging dir: %w", err)
	}
	mounted, err := m.mounts.IsMountPoint(host)
	if err != nil {
		return err
	}
	if mounted {
		m.log.Debug("staging dir is a mount point: NodeStageVolume skipped", "volume", vol.ID, "path", host)
		return nil
	}
	return m.plugin.stage(ctx, &csi.NodeStageVolumeRequest{
		VolumeId: nomadvolume.RemoteID(vol), PublishContext: publishContext,
		StagingTargetPath: stagingDir(m.pluginRoot, ns, vol.ID, u), VolumeCapability: capability,
		Secrets: vol.Secrets, VolumeContext: vol.Context,
	})
}

func (m *volumeManager) publishVolume(ctx context.Context, vol *api.CSIVolume, allocID string, u UsageOptions,
	capability *csi.VolumeCapability, pluginStaging string, publishContext map[string]string,
) (*MountInfo, error) {
	host := targetDir(m.hostRoot, allocID, vol.ID, u)
	// Only the parent: the plugin creates the target, a directory or a
	// file (#8358, PR #8505).
	if err := os.MkdirAll(allocVolumeDir(m.hostRoot, allocID, vol.ID), 0o700); err != nil {
		return nil, fmt.Errorf("create allocation volume dir: %w", err)
	}
	mounted, err := m.mounts.IsMountPoint(host)
	if err != nil {
		return nil, err
	}
	if mounted {
		m.log.Debug("target is a mount point: NodePublishVolume skipped", "volume", vol.ID, "path", host)
		return &MountInfo{Source: host}, nil
	}
	err = m.plugin.publish(ctx, &csi.NodePublishVolumeRequest{
		VolumeId: nomadvolume.RemoteID(vol), PublishContext: publishContext, StagingTargetPath: pluginStaging,
		TargetPath: targetDir(m.pluginRoot, allocID, vol.ID, u), VolumeCapability: capability,
		Readonly: u.ReadOnly, Secrets: vol.Secrets, VolumeContext: vol.Context,
	})
	if err != nil {
		return nil, err
	}
	return &MountInfo{Source: host}, nil
}

// errIgnorable marks an RPC error the unmount may go on after
// (structs.ErrCSIClientRPCIgnorable).
type errIgnorable struct{ err error }

func (e *errIgnorable) Error() string { return "ignorable: " + e.err.Error() }
func (e *errIgnorable) Unwrap() error { return e.err }

// unmountVolume unpublishes the allocation's target and, when the
// tracker says nobody else uses the volume that way, unstages it
// (volume.go:233-353).
func (m *volumeManager) unmountVolume(ctx context.Context, volumeID, remoteID, namespace, allocID string, u UsageOptions) error {
	if namespace == "" {
		namespace = api.DefaultNamespace
	}
	err := m.serializedOp(ctx, namespace, volumeID, func() error {
		err := m.unpublishVolume(ctx, volumeID, remoteID, allocID, u)
		var ignorable *errIgnorable
		if err != nil && !errors.As(err, &ignorable) {
			return err
		}
		if m.tracker.free(allocID, volumeID, namespace, u) && m.requiresStaging {
			return m.unstageVolume(ctx, volumeID, remoteID, namespace, u)
		}
		return nil
	})
	m.storageEvent("Unmount volume", volumeID, allocID, err)
	return err
}

// unpublishVolume sends NodeUnpublishVolume, then looks at the host target
// itself: absent, the RPC's error stands ("no mount point" is ignorable);
// present, the client removes it, and if that works any RPC error is
// ignorable; if it does not, both errors stand and no unstage follows.
func (m *volumeManager) unpublishVolume(ctx context.Context, volumeID, remoteID, allocID string, u UsageOptions) error {
	host := targetDir(m.hostRoot, allocID, volumeID, u)
	rpcErr := m.plugin.unpublish(ctx, remoteID, targetDir(m.pluginRoot, allocID, volumeID, u))
	if _, err := os.Stat(host); errors.Is(err, fs.ErrNotExist) {
		if rpcErr != nil && strings.Contains(rpcErr.Error(), "no mount point") {
			return &errIgnorable{rpcErr}
		}
		return rpcErr
	}
	if err := os.Remove(host); err != nil {
		return errors.Join(rpcErr, fmt.Errorf("remove target %s: %w", host, err))
	}
	if rpcErr != nil {
		return &errIgnorable{rpcErr}
	}
	return nil
}

// unstageVolume sends NodeUnstageVolume for the staging path, or for the
// namespace-less one when only that exists (#18741). The client neither
// checks nor removes the staging dir afterwards.
func (m *volumeManager) unstageVolume(ctx context.Context, volumeID, remoteID, namespace string, u UsageOptions) error {
	staging := stagingDir(m.pluginRoot, namespace, volumeID, u)
	if _, err := os.Stat(stagingDir(m.hostRoot, namespace, volumeID, u)); errors.Is(err, fs.ErrNotExist) {
		if _, err := os.Stat(legacyStagingDir(m.hostRoot, volumeID, u)); err == nil {
			staging = legacyStagingDir(m.pluginRoot, volumeID, u)
		}
	}
	return m.plugin.unstage(ctx, remoteID, staging)
}

func (m *volumeManager) storageEvent(kind, volumeID, allocID string, err error) {
	msg := fmt.Sprintf("volume %s, plugin %s, success true", volumeID, m.pluginID)
	if err != nil {
		msg = fmt.Sprintf("volume %s, plugin %s, success false: %v", volumeID, m.pluginID, err)
	}
	m.event(Event{Subsystem: "Storage", Alloc: allocID, Type: kind, Message: msg})
}
