package driver

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"github.com/hashicorp/go-hclog"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/nvmeof/nvmeof/shared/nvme"
	"github.com/nvmeof/nvmeof/shared/nvme/kernel"
)

// NodeStageVolume connects the subsystem, finds the namespace, and mounts
// it at the staging path (formatting it only when blank), or for block
// volumes bind-mounts the device node there.
func (d *Driver) NodeStageVolume(ctx context.Context, req *csi.NodeStageVolumeRequest) (*csi.NodeStageVolumeResponse, error) {
	id, staging := req.GetVolumeId(), req.GetStagingTargetPath()
	if err := requireArgs("volume_id", id, "staging_target_path", staging); err != nil {
		return nil, err
	}
	mode, err := parseCapability(req.GetVolumeCapability())
	if err != nil {
		return nil, status.Error(codes.InvalidArgument, err.Error())
	}
	vol, err := nvme.ParseVolumeContext(req.GetVolumeContext())
	if err != nil {
		return nil, status.Error(codes.InvalidArgument, "volume_context: "+err.Error())
	}
	auth, err := nvme.ParseSecrets(req.GetSecrets())
	if err != nil {
		return nil, status.Error(codes.InvalidArgument, "secrets: "+err.Error())
	}
	if err := d.volumes.acquire(id); err != nil {
		return nil, err
	}
	defer d.volumes.release(id)
	log := d.log.With("volume_id", id, "nqn", vol.Target.NQN, "namespace", vol.Namespace.String())

	// Key the target as sysfs will show it: a host name resolved, the
	// address canonical. Unstage rebuilds the key from sysfs, and the two
	// must meet, or the controller leaks and the target lock splits in two.
	target, err := d.cfg.Connector.ResolveTarget(ctx, vol.Target)
	if err != nil {
		return nil, toStatus(err, "resolve traddr "+vol.Target.TrAddr)
	}
	conn := nvme.Connection{Host: d.cfg.Host, Target: target, Config: vol.Config, Auth: auth}
	key := connectionKey(target, d.cfg.Host)
	unlock := sync.OnceFunc(d.targets.shared(key))
	defer unlock()

	if err := d.checkSharedConfig(id, key, conn.Config); err != nil {
		return nil, err
	}
	ctrl, err := d.connect(ctx, log, key, conn)
	if err != nil {
		return nil, toStatus(err, fmt.Sprintf("connect %s at %s:%s", vol.Target.NQN, vol.Target.TrAddr, vol.Target.TrSvcID))
	}
	staged := false
	defer func() {
		if !staged {
			unlock() // releaseController takes the target's lock alone
			d.releaseAfterFailedStage(ctx, log, ctrl)
		}
	}()
	ns, err := d.cfg.Connector.Resolve(ctx, ctrl, vol.Namespace)
	if err != nil {
		return nil, toStatus(err, fmt.Sprintf("find namespace %s of %s on %s", vol.Namespace, vol.Target.NQN, ctrl.Name))
	}
	log.Debug("namespace resolved", "device", ns.DevicePath, "controller", ctrl.Name)
	if err := ctxStatus(ctx); err != nil {
		return nil, err
	}
	if err := d.state.putVolume(volumeRecord{VolumeID: id, StagingPath: staging, Key: key, Block: mode.block}); err != nil {
		return nil, status.Error(codes.Internal, err.Error())
	}
	if mode.block {
		err = d.stageBlock(ns, staging)
	} else {
		err = d.ensureReadable(conn, ns)
		if err == nil {
			err = d.stageFilesystem(ns, staging, mode)
		}
	}
	if err != nil {
		return nil, err
	}
	staged = true
	log.Info("staged", "device", ns.DevicePath, "controller", ctrl.Name, "block", mode.block)
	return &csi.NodeStageVolumeResponse{}, nil
}

// releaseAfterFailedStage disconnects the controller a failed stage
// connected, unless something else uses it: a refused namespace (wrong
// uuid) must not leave a controller behind that no unstage will ever
// release. The stage's own error is what the caller needs, so a failure
// here is only logged.
func (d *Driver) releaseAfterFailedStage(ctx context.Context, log hclog.Logger, ctrl kernel.Controller) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), releaseTimeout)
	defer cancel()
	if err := d.releaseController(ctx, log, ctrl); err != nil {
		log.Warn("could not release the controller of a failed stage", "controller", ctrl.Name, "error", err)
	}
}

// checkSharedConfig refuses a stage whose reconnection parameters differ
// from those of the volumes already staged on the same controller. The
// kernel keeps one set per controller, and volumes of one subsystem share
// it: going ahead would silently change theirs (a ctrl_loss_tmo of 5 under
// a volume that asked for -1 turns its file system read-only after a
// 6-second outage).
func (d *Driver) checkSharedConfig(id, key string, want nvme.ConnectionConfig) error {
	vols, err := d.state.volumes()
	if err != nil {
		return status.Error(codes.Internal, err.Error())
	}
	var others []string
	for _, v := range vols {
		if v.Key == key && v.VolumeID != id && !slices.Contains(others, v.VolumeID) {
			others = append(others, v.VolumeID)
		}
	}
	if len(others) == 0 {
		return nil
	}
	rec, ok, err := d.state.controller(key)
	if err != nil {
		return status.Error(codes.Internal, err.Error())
	}
	if !ok {
		return nil
	}
	if diff := rec.Config.Diff(want); len(diff) > 0 {
		return status.Errorf(codes.FailedPrecondition,
			"volume %s shares its NVMe controller with staged volume(s) %s, and the kernel keeps one set of connection parameters per controller (staged -> requested): %s; give every volume of subsystem %s the same values",
			id, strings.Join(others, ", "), strings.Join(diff, ", "), rec.Target.NQN)
	}
	return nil
}

// releaseTimeout bounds the clean-up of a failed stage, which runs even
// when the caller has gone.
const releaseTimeout = 30 * time.Second

// connect returns the controller for conn, coalescing concurrent stages of
// one subsystem into a single connect. Before a connect that creates a
// controller, a record says so, so that a plugin killed right after the
// kernel made it still owns it on restart.
func (d *Driver) connect(ctx context.Context, log hclog.Logger, key string, conn nvme.Connection) (kernel.Controller, error) {
	res := d.connects.do(ctx, key, func(ctx context.Context) connectResult {
		rec, haveRec, err := d.state.controller(key)
		if err != nil {
			return connectResult{err: err}
		}
		existing, found, err := d.cfg.Connector.Find(conn)
		if err != nil {
			return connectResult{err: fmt.Errorf("look for a controller: %w", err)}
		}
		next := controllerRecord{Key: key, Target: conn.Target, Config: conn.Config}
		switch {
		case !found:
			next.Created = true // written before the connect: see controllerRecord
		case haveRec && rec.owns(existing):
			next.Created, next.Name, next.CntlID = true, existing.Name, existing.CntlID
		}
		if err := d.state.putController(next); err != nil {
			return connectResult{err: err}
		}
		ctrl, err := d.cfg.Connector.Connect(ctx, conn)
		if err != nil {
			return connectResult{err: err}
		}
		if !found {
			next.Name, next.CntlID = ctrl.Name, ctrl.CntlID
			if err := d.state.putController(next); err != nil {
				return connectResult{err: err}
			}
			log.Info("connected", "controller", ctrl.Name)
		}
		return connectResult{ctrl: ctrl}
	})
	return res.ctrl, res.err
}

// ensureReadable runs right before the blank check that decides whether to
// format. blkid reports "nothing found" for an I/O error too, so a device
// that cannot be read at this moment (a controller reconnecting, I/O failed
// by fast_io_fail_tmo) would look blank and be formatted. The controller
// must be live and the device's first blocks must read.
func (d *Driver) ensureReadable(conn nvme.Connection, ns kernel.Namespace) error {
	ctrl, found, err := d.cfg.Connector.Find(conn)
	if err != nil {
		return toStatus(err, "look up the controller of "+ns.DevicePath)
	}
	if !found || ctrl.State != kernel.StateLive {
		return status.Errorf(codes.Unavailable, "the controller of %s is %q, not live: not deciding whether the device is blank until it is", ns.DevicePath, ctrl.State)
	}
	f, err := os.Open(ns.DevicePath)
	if err != nil {
		return status.Errorf(codes.Unavailable, "open %s before the blank check: %v", ns.DevicePath, err)
	}
	defer func() { _ = f.Close() }()
	if _, err := f.ReadAt(make([]byte, firstBlocks), 0); err != nil && !errors.Is(err, io.EOF) {
		return status.Errorf(codes.Unavailable, "read %s before the blank check: %v; not formatting a device that cannot be read", ns.DevicePath, err)
	}
	return nil
}

// firstBlocks covers where file systems and partition tables keep their
// signatures (ext4 at 1 KiB, xfs at 0, GPT at 512 B).
const firstBlocks = 64 << 10

func (d *Driver) stageFilesystem(ns kernel.Namespace, staging string, mode volumeMode) error {
	entries, err := d.mounts.Mounts()
	if err != nil {
		return status.Error(codes.Internal, err.Error())
	}
	if devs := mountsAt(entries, staging); len(devs) > 0 {
		if devs[0] != ns.DevicePath {
			return status.Errorf(codes.AlreadyExists, "staging path %s already holds %s, not %s", staging, devs[0], ns.DevicePath)
		}
		return nil
	}
	if err := os.MkdirAll(staging, 0o750); err != nil {
		return status.Errorf(codes.Internal, "create staging path: %v", err)
	}
	opts := append([]string(nil), mode.mountFlags...)
	if mode.readOnly {
		opts = append(opts, "ro")
	}
	// SafeFormatAndMount asks blkid first and formats only a blank device.
	if err := d.formatter.FormatAndMount(ns.DevicePath, staging, mode.fsType, opts); err != nil {
		return status.Errorf(codes.Internal, "format and mount %s at %s: %v", ns.DevicePath, staging, err)
	}
	return nil
}

func (d *Driver) stageBlock(ns kernel.Namespace, staging string) error {
	file := blockStagingFile(staging)
	entries, err := d.mounts.Mounts()
	if err != nil {
		return status.Error(codes.Internal, err.Error())
	}
	if devs := mountsAt(entries, file); len(devs) > 0 {
		if devs[0] != ns.DevicePath {
			return status.Errorf(codes.AlreadyExists, "staging path %s already holds %s, not %s", staging, devs[0], ns.DevicePath)
		}
		return nil
	}
	if len(mountsAt(entries, staging)) > 0 {
		return status.Errorf(codes.AlreadyExists, "staging path %s holds a file system; the volume is staged as a mount, not as block", staging)
	}
	if err := os.MkdirAll(staging, 0o750); err != nil {
		return status.Errorf(codes.Internal, "create staging path: %v", err)
	}
	if err := createFile(file); err != nil {
		return status.Errorf(codes.Internal, "create block staging file: %v", err)
	}
	if err := d.cfg.Mounter.Mount(ns.DevicePath, file, "", []string{"bind"}); err != nil {
		return status.Errorf(codes.Internal, "bind %s at %s: %v", ns.DevicePath, file, err)
	}
	return nil
}

func createFile(path string) error {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDONLY, 0o600)
	if err != nil {
		return fmt.Errorf("create %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("create %s: %w", path, err)
	}
	return nil
}

// NodeUnstageVolume unmounts the staging path, then disconnects each
// controller that served the volume, unless another mount on this node
// still uses it or the plugin did not create it.
func (d *Driver) NodeUnstageVolume(ctx context.Context, req *csi.NodeUnstageVolumeRequest) (*csi.NodeUnstageVolumeResponse, error) {
	id, staging := req.GetVolumeId(), req.GetStagingTargetPath()
	if err := requireArgs("volume_id", id, "staging_target_path", staging); err != nil {
		return nil, err
	}
	if err := d.volumes.acquire(id); err != nil {
		return nil, err
	}
	defer d.volumes.release(id)
	log := d.log.With("volume_id", id)

	devices, err := d.unmountStaging(staging)
	if err != nil {
		return nil, err
	}
	if err := ctxStatus(ctx); err != nil {
		return nil, err
	}
	ctrls, err := d.controllersOfVolume(id, staging, devices)
	if err != nil {
		return nil, status.Error(codes.Internal, err.Error())
	}
	for _, ctrl := range ctrls {
		if err := d.releaseController(ctx, log, ctrl); err != nil {
			return nil, err
		}
	}
	if err := d.state.deleteVolume(id, staging); err != nil {
		return nil, status.Error(codes.Internal, err.Error())
	}
	log.Info("unstaged", "devices", devices)
	return &csi.NodeUnstageVolumeResponse{}, nil
}

// unmountStaging takes every mount off the staging paths, read from the
// mount table rather than by stat, so a mount whose device vanished comes
// off too. It returns the devices that were mounted.
func (d *Driver) unmountStaging(staging string) ([]string, error) {
	entries, err := d.mounts.Mounts()
	if err != nil {
		return nil, status.Error(codes.Internal, err.Error())
	}
	var devices []string
	for _, p := range stagingMountPaths(staging) {
		for _, dev := range mountsAt(entries, p) {
			if err := d.cfg.Mounter.Unmount(p); err != nil {
				return nil, status.Errorf(codes.Internal, "unmount %s: %v", p, err)
			}
			devices = append(devices, dev)
		}
	}
	// The block file is ours only in a plain directory: were a file system
	// still mounted at staging (one the mount table did not show, say
	// through a symlink), "block" could be a user's file on the volume.
	if notMnt, err := d.cfg.Mounter.IsLikelyNotMountPoint(staging); err == nil && notMnt {
		if err := os.Remove(blockStagingFile(staging)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return nil, status.Errorf(codes.Internal, "remove block staging file: %v", err)
		}
	}
	return devices, nil
}

// controllersOfVolume finds the controllers that served a volume: through
// its devices when they still exist, else through its state record (an
// unstage retried after the unmount, or after the device vanished).
func (d *Driver) controllersOfVolume(id, staging string, devices []string) ([]kernel.Controller, error) {
	byName := map[string]kernel.Controller{}
	for _, dev := range devices {
		if !isNVMeDevice(dev) {
			continue
		}
		if _, cs, err := d.cfg.Connector.NamespaceOf(dev); err == nil {
			for _, c := range cs {
				byName[c.Name] = c
			}
		}
	}
	rec, ok, err := d.state.volume(id, staging)
	if err != nil {
		return nil, err
	}
	if ok {
		if crec, ok, err := d.state.controller(rec.Key); err != nil {
			return nil, err
		} else if ok {
			c, found, err := d.cfg.Connector.Find(nvme.Connection{Host: d.cfg.Host, Target: crec.Target, Config: crec.Config})
			if err != nil {
				return nil, fmt.Errorf("look for the controller of %s: %w", crec.Target.NQN, err)
			}
			if found {
				byName[c.Name] = c
			}
		}
	}
	out := make([]kernel.Controller, 0, len(byName))
	for _, c := range byName {
		out = append(out, c)
	}
	return out, nil
}

// releaseController disconnects ctrl when the plugin created it and no
// mount on this node uses any of its namespaces; the decision reads the
// mount table and sysfs under the target's exclusive lock.
func (d *Driver) releaseController(ctx context.Context, log hclog.Logger, ctrl kernel.Controller) error {
	key := controllerKey(ctrl)
	unlock := d.targets.exclusive(key)
	defer unlock()
	users, err := d.mountsUsing(ctrl)
	if err != nil {
		return status.Error(codes.Internal, err.Error())
	}
	if len(users) > 0 {
		log.Debug("controller still in use; left connected", "controller", ctrl.Name, "mounts", users)
		return nil
	}
	rec, ok, err := d.state.controller(key)
	if err != nil {
		return status.Error(codes.Internal, err.Error())
	}
	if !ok || !rec.owns(ctrl) {
		log.Info("controller not created by this plugin; left connected", "controller", ctrl.Name)
		return nil
	}
	if err := d.cfg.Connector.Disconnect(ctx, ctrl); err != nil {
		return toStatus(err, "disconnect "+ctrl.Name)
	}
	if err := d.state.deleteController(key); err != nil {
		return status.Error(codes.Internal, err.Error())
	}
	log.Info("disconnected", "controller", ctrl.Name, "nqn", ctrl.Subsystem)
	return nil
}

// mountsUsing lists the mount paths whose device is a namespace reached
// through ctrl.
func (d *Driver) mountsUsing(ctrl kernel.Controller) ([]string, error) {
	entries, err := d.mounts.Mounts()
	if err != nil {
		return nil, err
	}
	var users []string
	for _, e := range entries {
		if !isNVMeDevice(e.Device) {
			continue
		}
		_, cs, err := d.cfg.Connector.NamespaceOf(e.Device)
		if err != nil {
			continue // a device that vanished serves no one
		}
		for _, c := range cs {
			if c.Name == ctrl.Name {
				users = append(users, e.Path)
			}
		}
	}
	return users, nil
}
