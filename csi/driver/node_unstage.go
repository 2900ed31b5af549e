package driver

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"github.com/hashicorp/go-hclog"
	"google.golang.org/grpc/codes"
)

// NodeUnstageVolume unmounts the staging path, then disconnects the
// volume's controller unless another mount on this node uses it or the
// plugin did not create it. It refuses while the volume is still
// published from this staging path.
func (d *Driver) NodeUnstageVolume(ctx context.Context, req *csi.NodeUnstageVolumeRequest) (*csi.NodeUnstageVolumeResponse, error) {
	if err := d.unstageVolume(ctx, req); err != nil {
		return nil, toStatus(err, fmt.Sprintf("unstage volume %s at %s", req.GetVolumeId(), req.GetStagingTargetPath()))
	}
	return &csi.NodeUnstageVolumeResponse{}, nil
}

func (d *Driver) unstageVolume(ctx context.Context, req *csi.NodeUnstageVolumeRequest) error {
	id, staging := req.GetVolumeId(), req.GetStagingTargetPath()
	if err := requireArgs("volume_id", id, "staging_target_path", staging); err != nil {
		return err
	}
	o, err := d.begin(ctx, id)
	if err != nil {
		return err
	}
	defer o.end()
	log := d.log.With("volume_id", id)

	rec, haveRec, err := d.state.stage(id, staging)
	if err != nil {
		return err
	}
	entries, err := d.mounts.Mounts()
	if err != nil {
		return err
	}
	var mounted []MountEntry
	for _, p := range stagingMountPaths(staging) {
		mounted = append(mounted, mountsAt(entries, p)...)
	}
	if !haveRec {
		if len(mounted) == 0 {
			return removeBlockFile(d, staging) // nothing staged: done
		}
		aside, err := d.state.stageSetAside(id, staging)
		if err != nil {
			return err
		}
		if !aside {
			return precondition("staging path %s holds %s, which this plugin did not stage there for volume %s: not unmounting it", staging, mounted[0].Device, id)
		}
		// The record was set aside as corrupt; its name proves the stage
		// was ours. The mount table and sysfs say the rest.
		log.Warn("the stage record was set aside as corrupt; unstaging by the mount table", "staging_path", staging, "device", mounted[0].Device)
		rec = stageRecord{VolumeID: id, StagingPath: filepath.Clean(staging), Block: len(mountsAt(entries, blockStagingFile(staging))) > 0}
	}
	if len(mounted) > 0 {
		if rec.Target.NQN != "" {
			if err := d.checkMountedNamespace(mounted[0], rec); err != nil && !isPrecondition(err) {
				return err
			}
		}
		if err := d.checkUnused(rec, mounted[0], entries); err != nil {
			return err
		}
	}
	o.step("check")
	resume, err := d.cfg.Connector.QuiesceHealth(o.ctx, rec.StagingPath)
	if err != nil {
		return err
	}
	o.step("quiesce")
	return o.finish("unmounting "+staging, releaseTimeout, func(ctx context.Context) error {
		defer resume()
		for _, e := range mounted {
			if err := d.ownMounts.Unmount(e.Path); err != nil {
				return fmt.Errorf("unmount %s: %w", e.Path, err)
			}
		}
		if err := removeBlockFile(d, staging); err != nil {
			return err
		}
		o.step("unmount")
		if err := d.releaseStageController(ctx, log, rec, mounted); err != nil {
			return err
		}
		o.step("release")
		if err := d.state.deleteStage(id, staging); err != nil {
			return err
		}
		if !d.staged(id) {
			d.forgetAuth(id)
		}
		o.step("record")
		log.Info("unstaged", "devices", devices(mounted))
		return nil
	})
}

// checkUnused refuses to take a staging mount away while the volume is
// published from it, or its device is mounted somewhere the plugin cannot
// account for. Nomad sends NodeUnstage early after a client restart
// (issue 25813) and retries it when it fails; going ahead would leave the
// published target on a device whose controller nobody releases, or
// disconnect it under a running task.
func (d *Driver) checkUnused(rec stageRecord, staged MountEntry, entries []MountEntry) error {
	pubs, err := d.state.publishes()
	if err != nil {
		return err
	}
	stages, err := d.state.stages()
	if err != nil {
		return err
	}
	accounted := map[string]bool{}
	for _, s := range stages {
		for _, p := range stagingMountPaths(s.StagingPath) {
			accounted[p] = true
		}
	}
	var published []string
	for _, p := range pubs {
		if len(mountsAt(entries, p.TargetPath)) == 0 {
			continue // a publish record whose mount is gone
		}
		if p.VolumeID == rec.VolumeID && p.StagingPath == rec.StagingPath {
			published = append(published, p.TargetPath)
		}
		accounted[p.TargetPath] = true
	}
	if len(published) > 0 {
		slices.Sort(published)
		return precondition("volume %s is still published from %s at %s: unpublish it first (Nomad sends NodeUnstage early after a client restart, issue 25813, and retries it)",
			rec.VolumeID, rec.StagingPath, strings.Join(published, ", "))
	}
	var unknown []string
	for _, e := range entries {
		if e.Path == staged.Path || accounted[e.Path] || !sameMount(e, staged) {
			continue
		}
		unknown = append(unknown, e.Path)
	}
	if len(unknown) > 0 {
		return precondition("the device of volume %s (%s) is also mounted at %s, which this plugin did not mount: unmount it first",
			rec.VolumeID, staged.Device, strings.Join(unknown, ", "))
	}
	return nil
}

// sameMount reports whether a and b are mounts of one device.
func sameMount(a, b MountEntry) bool {
	if a.Dev != "" && b.Dev != "" {
		return a.Dev == b.Dev
	}
	return a.Device == b.Device && isNVMeDevice(a.Device)
}

// releaseStageController releases the controllers of the subsystem a
// stage record names (every path the plugin created, when nothing uses
// them any more); without one (a record set aside), those of the
// subsystems of the devices that were mounted.
func (d *Driver) releaseStageController(ctx context.Context, log hclog.Logger, rec stageRecord, mounted []MountEntry) error {
	nqn := rec.subsystem()
	if nqn == "" && rec.Key != "" { // a record from before stage records held their target
		crec, ok, err := d.state.controller(rec.Key)
		if err != nil || !ok {
			return err
		}
		nqn = crec.Target.NQN
	}
	if nqn != "" {
		return d.releaseSubsystem(ctx, log, nqn)
	}
	var nqns []string
	for _, e := range mounted {
		_, ctrls, err := d.cfg.Connector.NamespaceOf(e.Device)
		if err != nil {
			continue // the device went with its controllers
		}
		for _, c := range ctrls {
			if !slices.Contains(nqns, c.Subsystem) {
				nqns = append(nqns, c.Subsystem)
			}
		}
	}
	for _, n := range nqns {
		if err := d.releaseSubsystem(ctx, log, n); err != nil {
			return err
		}
	}
	return nil
}

// removeBlockFile removes the file a block stage binds the device onto,
// only from a plain directory: were a file system mounted at staging (one
// the mount table did not show, say through a symlink), "block" could be
// a user's file on the volume.
func removeBlockFile(d *Driver, staging string) error {
	if notMnt, err := d.cfg.Mounter.IsLikelyNotMountPoint(staging); err == nil && notMnt {
		if err := os.Remove(blockStagingFile(staging)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("remove block staging file: %w", err)
		}
	}
	return nil
}

func devices(entries []MountEntry) []string {
	out := make([]string, 0, len(entries))
	for _, e := range entries {
		out = append(out, e.Device)
	}
	return out
}

func isPrecondition(err error) bool {
	var f *failure
	return errors.As(err, &f) && f.code == codes.FailedPrecondition
}
