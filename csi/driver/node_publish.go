package driver

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	mount "k8s.io/mount-utils"
)

// NodePublishVolume bind-mounts the staged volume at the target path: the
// staging directory for a file system, the device node onto a file for
// block. The target is created here, as Nomad expects.
func (d *Driver) NodePublishVolume(ctx context.Context, req *csi.NodePublishVolumeRequest) (*csi.NodePublishVolumeResponse, error) {
	id, staging, target := req.GetVolumeId(), req.GetStagingTargetPath(), req.GetTargetPath()
	switch {
	case id == "":
		return nil, status.Error(codes.InvalidArgument, "volume_id is required")
	case staging == "":
		return nil, status.Error(codes.InvalidArgument, "staging_target_path is required: the plugin stages volumes")
	case target == "":
		return nil, status.Error(codes.InvalidArgument, "target_path is required")
	}
	mode, err := parseCapability(req.GetVolumeCapability())
	if err != nil {
		return nil, status.Error(codes.InvalidArgument, err.Error())
	}
	if mode.block && (req.GetReadonly() || mode.readOnly) {
		// The kernel enforces a read-only mount on files and directories
		// reached through it, never on a device node: writes to the node
		// go straight to the block device.
		return nil, status.Error(codes.InvalidArgument, "a read-only bind mount does not stop writes to a device node; read-only block volumes are not supported")
	}
	if err := d.volumes.acquire(id); err != nil {
		return nil, err
	}
	defer d.volumes.release(id)
	if err := ctxStatus(ctx); err != nil {
		return nil, err
	}

	entries, err := d.mounts.Mounts()
	if err != nil {
		return nil, status.Error(codes.Internal, err.Error())
	}
	source := filepath.Clean(staging)
	if mode.block {
		source = blockStagingFile(staging)
	}
	staged := mountsAt(entries, source)
	if len(staged) == 0 {
		return nil, status.Errorf(codes.FailedPrecondition, "volume %s is not staged at %s: call NodeStageVolume first", id, staging)
	}
	device := staged[0]
	if published := mountsAt(entries, target); len(published) > 0 {
		if published[0] != device {
			return nil, status.Errorf(codes.AlreadyExists, "target path %s already holds %s, not volume %s", target, published[0], id)
		}
		return &csi.NodePublishVolumeResponse{}, nil
	}

	opts := []string{"bind"}
	if req.GetReadonly() || mode.readOnly {
		opts = append(opts, "ro") // a file system only: read-only block is refused above
	}
	if mode.block {
		if err := os.MkdirAll(filepath.Dir(target), 0o750); err != nil {
			return nil, status.Errorf(codes.Internal, "create target parent: %v", err)
		}
		if err := createFile(target); err != nil {
			return nil, status.Errorf(codes.Internal, "create target file: %v", err)
		}
		source = device
	} else {
		opts = append(opts, mode.mountFlags...)
		if err := os.MkdirAll(target, 0o750); err != nil {
			return nil, status.Errorf(codes.Internal, "create target path: %v", err)
		}
	}
	if err := d.cfg.Mounter.Mount(source, target, "", opts); err != nil {
		return nil, status.Errorf(codes.Internal, "bind %s at %s: %v", source, target, err)
	}
	d.log.Info("published", "volume_id", id, "target", target, "read_only", req.GetReadonly() || mode.readOnly)
	return &csi.NodePublishVolumeResponse{}, nil
}

// NodeUnpublishVolume unmounts the target and removes it: Nomad unstages
// only after the target is gone. A target already gone is success.
func (d *Driver) NodeUnpublishVolume(ctx context.Context, req *csi.NodeUnpublishVolumeRequest) (*csi.NodeUnpublishVolumeResponse, error) {
	id, target := req.GetVolumeId(), req.GetTargetPath()
	if err := requireArgs("volume_id", id, "target_path", target); err != nil {
		return nil, err
	}
	if err := d.volumes.acquire(id); err != nil {
		return nil, err
	}
	defer d.volumes.release(id)
	if err := ctxStatus(ctx); err != nil {
		return nil, err
	}
	entries, err := d.mounts.Mounts()
	if err != nil {
		return nil, status.Error(codes.Internal, err.Error())
	}
	for range mountsAt(entries, target) {
		if err := d.cfg.Mounter.Unmount(target); err != nil {
			return nil, status.Errorf(codes.Internal, "unmount %s: %v", target, err)
		}
	}
	if err := os.Remove(target); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, status.Errorf(codes.Internal, "remove target %s: %v", target, err)
	}
	d.log.Info("unpublished", "volume_id", id, "target", target)
	return &csi.NodeUnpublishVolumeResponse{}, nil
}

// pathExists tells a missing path (false, nil) from one we cannot look at.
func pathExists(path string) (bool, error) {
	ok, err := mount.PathExists(path)
	if err != nil && mount.IsCorruptedMnt(err) {
		// A mount whose device vanished: the path is there, broken.
		return true, nil
	}
	if err != nil {
		return false, err //nolint:wrapcheck // mount-utils' error names the path
	}
	return ok, nil
}
