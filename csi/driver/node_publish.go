package driver

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/container-storage-interface/spec/lib/go/csi"
	mount "k8s.io/mount-utils"
)

// NodePublishVolume bind-mounts the staged volume at the target path: the
// staging directory for a file system, the device node onto a file for
// block. The target is created here, as Nomad expects.
func (d *Driver) NodePublishVolume(ctx context.Context, req *csi.NodePublishVolumeRequest) (*csi.NodePublishVolumeResponse, error) {
	if err := d.publishVolume(ctx, req); err != nil {
		return nil, toStatus(err, fmt.Sprintf("publish volume %s at %s", req.GetVolumeId(), req.GetTargetPath()))
	}
	return &csi.NodePublishVolumeResponse{}, nil
}

func (d *Driver) publishVolume(ctx context.Context, req *csi.NodePublishVolumeRequest) error {
	args, errs := checkPublishArgs(req)
	if len(errs) > 0 {
		return errs[0]
	}
	id, staging, target, mode, readOnly := args.id, args.staging, args.target, args.mode, args.readOnly
	o, err := d.begin(ctx, id)
	if err != nil {
		return err
	}
	defer o.end()

	rec, ok, err := d.state.stage(id, staging)
	if err != nil {
		return err
	}
	if !ok {
		return precondition("volume %s is not staged at %s: call NodeStageVolume first", id, staging)
	}
	entries, err := d.mounts.Mounts()
	if err != nil {
		return err
	}
	staged := mountsAt(entries, stagedPath(rec))
	if len(staged) == 0 {
		return precondition("volume %s is recorded as staged at %s, but nothing is mounted there: stage it again", id, staging)
	}
	if err := d.checkMountedNamespace(staged[0], rec); err != nil {
		return err
	}
	if rec.Block != mode.block {
		return precondition("volume %s is staged at %s as %s, and the publish asks for %s", id, staging, accessType(rec.Block), accessType(mode.block))
	}
	if rec.ReadOnly && !readOnly {
		return precondition("volume %s is staged read-only at %s; a writable publish cannot come from it", id, staging)
	}
	want := publishRecord{VolumeID: id, StagingPath: rec.StagingPath, TargetPath: filepath.Clean(target), Block: mode.block, ReadOnly: readOnly}
	if at := mountsAt(entries, target); len(at) > 0 {
		return d.alreadyPublished(want, at[0], staged[0])
	}
	o.step("check")

	source, opts := rec.StagingPath, []string(nil)
	if readOnly {
		opts = append(opts, "ro") // a file system only: read-only block is refused above
	}
	if mode.block {
		// The staging file, not the /dev path: it is the device node the
		// stage bound, whatever name /dev gives the namespace now.
		source = blockStagingFile(rec.StagingPath)
		if err := os.MkdirAll(filepath.Dir(target), 0o750); err != nil {
			return fmt.Errorf("create target parent: %w", err)
		}
		if err := createFile(target); err != nil {
			return fmt.Errorf("create target file: %w", err)
		}
	} else {
		opts = append(opts, mode.mountFlags...)
		if err := os.MkdirAll(target, 0o750); err != nil {
			return fmt.Errorf("create target path: %w", err)
		}
	}
	if err := d.state.putPublish(want); err != nil {
		return err
	}
	o.step("record")
	return o.finish("binding "+source+" at "+target, releaseTimeout, func(context.Context) error {
		if err := d.ownMounts.Bind(source, target, opts); err != nil {
			if derr := d.state.deletePublish(target); derr != nil {
				d.log.Error("could not remove the record of a failed publish", "volume_id", id, "target", target, "error", derr)
			}
			return fmt.Errorf("bind %s at %s: %w", source, target, err)
		}
		o.step("bind")
		d.log.Info("published", "volume_id", id, "target", target, "read_only", readOnly)
		return nil
	})
}

// alreadyPublished answers a publish whose target is mounted already: OK
// when it is this volume's, from this stage, the same way; AlreadyExists
// otherwise.
func (d *Driver) alreadyPublished(want publishRecord, at, staged MountEntry) error {
	rec, ok, err := d.state.publish(want.TargetPath)
	if err != nil {
		return err
	}
	switch {
	case !sameMount(at, staged):
		return conflict("target path %s already holds %s, not volume %s", want.TargetPath, at.Device, want.VolumeID)
	case !ok:
		return conflict("target path %s already holds the device of volume %s, but this plugin did not publish it there", want.TargetPath, want.VolumeID)
	case rec.VolumeID != want.VolumeID || rec.StagingPath != want.StagingPath:
		return conflict("target path %s is volume %s's, published from %s", want.TargetPath, rec.VolumeID, rec.StagingPath)
	case rec.Block != want.Block:
		return conflict("volume %s is published at %s as %s, not %s", want.VolumeID, want.TargetPath, accessType(rec.Block), accessType(want.Block))
	case rec.ReadOnly != want.ReadOnly || at.ReadOnly != want.ReadOnly && at.fileSystem():
		return conflict("volume %s is published at %s %s; the request asks for it %s", want.VolumeID, want.TargetPath, rw(rec.ReadOnly), rw(want.ReadOnly))
	}
	return nil
}

func accessType(block bool) string {
	if block {
		return "a block device"
	}
	return "a file system"
}

func rw(readOnly bool) string {
	if readOnly {
		return "read-only"
	}
	return "read-write"
}

// NodeUnpublishVolume unmounts the target and removes it: Nomad unstages
// only after the target is gone. A target already gone is success.
func (d *Driver) NodeUnpublishVolume(ctx context.Context, req *csi.NodeUnpublishVolumeRequest) (*csi.NodeUnpublishVolumeResponse, error) {
	if err := d.unpublishVolume(ctx, req); err != nil {
		return nil, toStatus(err, fmt.Sprintf("unpublish volume %s at %s", req.GetVolumeId(), req.GetTargetPath()))
	}
	return &csi.NodeUnpublishVolumeResponse{}, nil
}

func (d *Driver) unpublishVolume(ctx context.Context, req *csi.NodeUnpublishVolumeRequest) error {
	id, target := req.GetVolumeId(), req.GetTargetPath()
	if err := requireArgs("volume_id", id, "target_path", target); err != nil {
		return err
	}
	o, err := d.begin(ctx, id)
	if err != nil {
		return err
	}
	defer o.end()
	rec, ok, err := d.state.publish(target)
	if err != nil {
		return err
	}
	if ok && rec.VolumeID != id {
		return precondition("target path %s is volume %s's, not %s: not unmounting it", target, rec.VolumeID, id)
	}
	entries, err := d.mounts.Mounts()
	if err != nil {
		return err
	}
	at := mountsAt(entries, target)
	o.step("check")
	resume, err := d.cfg.Connector.QuiesceHealth(o.ctx, target)
	if err != nil {
		return err
	}
	o.step("quiesce")
	return o.finish("unmounting "+target, releaseTimeout, func(context.Context) error {
		defer resume()
		for range at {
			if err := d.ownMounts.Unmount(target); err != nil {
				return fmt.Errorf("unmount %s: %w", target, err)
			}
		}
		o.step("unmount")
		if err := os.Remove(target); err != nil && !isNotExist(err) {
			return fmt.Errorf("remove target %s: %w", target, err)
		}
		if err := d.state.deletePublish(target); err != nil {
			return err
		}
		o.step("record")
		d.log.Info("unpublished", "volume_id", id, "target", target)
		return nil
	})
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
