package driver

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"github.com/hashicorp/go-hclog"

	"github.com/nvmeof/nvmeof/shared/nvme"
	"github.com/nvmeof/nvmeof/shared/nvme/kernel"
)

// mountBound bounds a format and mount that runs on after its caller left:
// mkfs of a large namespace takes minutes, and cannot be stopped halfway.
const mountBound = 30 * time.Minute

// NodeStageVolume connects the subsystem, finds the namespace, and mounts
// it at the staging path (formatting it only when it is blank and nothing
// uses it), or for block volumes binds the device node there.
func (d *Driver) NodeStageVolume(ctx context.Context, req *csi.NodeStageVolumeRequest) (*csi.NodeStageVolumeResponse, error) {
	if err := d.stageVolume(ctx, req); err != nil {
		return nil, toStatus(err, fmt.Sprintf("stage volume %s at %s", req.GetVolumeId(), req.GetStagingTargetPath()))
	}
	return &csi.NodeStageVolumeResponse{}, nil
}

// stageVolume follows the handlers' rhythm: check the arguments, take the
// volume's lock, look at what is real (mount table, records), answer OK
// when it is done already and an error when it conflicts, then act and
// record.
func (d *Driver) stageVolume(ctx context.Context, req *csi.NodeStageVolumeRequest) error {
	args, errs := checkStageArgs(req)
	if len(errs) > 0 {
		return errs[0]
	}
	id, staging, mode, vol, auth := args.id, args.staging, args.mode, args.vol, args.auth
	if auth.HostSecret != "" {
		if err := d.checkHostAuth(); err != nil {
			return err
		}
	}
	o, err := d.begin(ctx, id)
	if err != nil {
		return err
	}
	defer o.end()
	ctx = o.ctx
	log := d.log.With("volume_id", id, "nqn", vol.Target.NQN, "namespace", vol.Namespace.String())

	want := stageRecord{
		VolumeID: id, StagingPath: filepath.Clean(staging), Block: mode.block,
		Requested: vol.Target, Namespace: vol.Namespace, Config: vol.Config, IOPolicy: vol.IOPolicy,
		Authenticated: auth != (nvme.Auth{}),
		FSType:        mode.fsType, MountFlags: mode.mountFlags, ReadOnly: mode.readOnly,
	}
	for _, t := range vol.Targets() {
		want.Paths = append(want.Paths, pathRecord{Requested: t})
	}
	// Answered from the mount table and the record before anything that
	// can wait on the network (a name lookup, the controller): a repeat
	// during an outage is OK.
	if done, err := d.alreadyStaged(want); done || err != nil {
		if done {
			log.Debug("already staged")
			// After a restart the secrets are gone from memory; a repeat
			// is how they come back to the healer.
			d.rememberAuth(id, auth)
		}
		return err
	}
	o.step("look")
	if err := d.checkMultipath(vol); err != nil {
		return err
	}
	if err := d.checkIOPolicy(vol.IOPolicy); err != nil {
		return err
	}
	conns, err := d.preparePaths(ctx, vol, auth)
	if err != nil {
		return err
	}
	want.Paths = want.Paths[:0]
	for _, pc := range conns {
		want.Paths = append(want.Paths, pc.record())
	}
	first := want.Paths[0]
	want.Target, want.Key = first.Target, first.Key
	if !first.resolved() {
		want.Target = first.Requested
	}
	o.step("target")

	ctrls, c, err := d.claimPaths(ctx, log, vol, conns, want)
	if err != nil {
		return err
	}
	d.rememberAuth(id, auth)
	o.step("claim")
	handedOver, recorded := false, false
	defer func() {
		if !handedOver {
			d.undoStage(ctx, log, want, c, recorded)
		}
	}()
	ns, err := d.resolve(ctx, ctrls, vol)
	if err != nil {
		return err
	}
	log = log.With("device", ns.DevicePath)
	log.Debug("namespace resolved")
	o.step("namespace")
	want.Found = nvme.NamespaceSelector{NSID: ns.NSID, UUID: ns.UUID, NGUID: ns.NGUID}
	plan, err := d.reserve(ctx, want, ns)
	if err != nil {
		return err
	}
	recorded = true
	o.step("reserve")
	// A stage goes on only with a path that can take I/O: a device whose
	// every path reconnects, or is inaccessible (ANA), would hang the
	// mount, and blkid would call it blank. planUnused waits for one
	// before it reads the device.
	if plan.kind == planFormatAndMount {
		if plan, err = d.planUnused(o, want, vol.FormatPolicy.OrDefault(), ns); err != nil {
			return err
		}
	} else if err := d.waitLivePath(ctx, ns, "staging it"); err != nil {
		return err
	}
	o.step("device")
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("not %s: %w", plan.what(ns, staging), err)
	}
	handedOver = true
	return o.finish(plan.what(ns, staging), mountBound, func(ctx context.Context) error {
		if err := d.mountStage(want, ns, plan); err != nil {
			d.undoStage(ctx, log, want, c, true)
			return err
		}
		o.step("mount")
		d.dropClaim(want.subsystem(), c)
		up, down := d.pathReport(want, ns, ctrls)
		log.Info("staged", "block", want.Block, "plan", plan.String(), "paths_up", up, "paths_down", down)
		if plan.format || plan.kind == planBlock {
			// The format is done and mounted, or the namespace is a raw
			// block device now: no half-written file system to finish.
			if err := d.state.deleteFormat(ns); err != nil {
				log.Warn("could not remove the format record", "error", err)
			}
		}
		o.step("record")
		return nil
	})
}

// checkMultipath refuses several portals on a kernel without native
// multipath: each path would be a disk of its own, and mounting one of
// them would leave the others writable beside it, unseen.
func (d *Driver) checkMultipath(vol nvme.Volume) error {
	if len(vol.MorePortals) == 0 {
		return nil
	}
	on, err := d.cfg.Connector.Multipath()
	if err != nil {
		return fmt.Errorf("a volume with %d portals needs native NVMe multipath: %w", 1+len(vol.MorePortals), err)
	}
	if !on {
		return precondition("the volume has %d portals, but this node's kernel runs without native NVMe multipath (nvme_core.multipath=N): "+
			"each path would be a device of its own, and the plugin would mount one path's disk while the others stay writable beside it. "+
			"Turn native multipath on (drop nvme_core.multipath=N from the kernel command line, or set it to Y, and reboot), or give the volume one portal",
			1+len(vol.MorePortals))
	}
	return nil
}

// preparePaths resolves every portal's address and validates each path's
// connection: each option string is built from one validated portal. A
// host name that does not resolve fails its path, not the stage, unless
// no portal resolves. Two portals that resolve to one path are refused:
// the kernel would take the second for a duplicate of the first.
func (d *Driver) preparePaths(ctx context.Context, vol nvme.Volume, auth nvme.Auth) ([]pathConn, error) {
	targets := vol.Targets()
	out := make([]pathConn, len(targets))
	resolvedAny := false
	var firstErr error
	for i, t := range targets {
		pc := pathConn{n: i + 1, requested: t}
		// Key the target as sysfs will show it: a host name resolved, the
		// address canonical. Unstage and the healer find the controller
		// by the same key.
		target, err := d.cfg.Connector.ResolveTarget(ctx, t)
		if err != nil {
			pc.err = fmt.Errorf("resolve %s %s: %w", nvme.PortalKey(nvme.KeyTrAddr, i+1), nvme.Truncate(t.TrAddr), err)
			if firstErr == nil {
				firstErr = pc.err
			}
			out[i] = pc
			continue
		}
		for _, prev := range out[:i] {
			if prev.err == nil && prev.key == connectionKey(target, d.cfg.Host) {
				return nil, invalid("portal %d (%s) and portal %d (%s) are one path (%s): give each path once", prev.n, prev.requested.Portal(), i+1, t.Portal(), target.Portal())
			}
		}
		conn, err := nvme.Connection{Host: d.cfg.Host, Target: target, Config: vol.Config, Auth: auth}.Valid()
		if err != nil {
			return nil, err
		}
		pc.target, pc.key, pc.conn = target, connectionKey(target, d.cfg.Host), conn
		out[i] = pc
		resolvedAny = true
	}
	if !resolvedAny {
		return nil, firstErr
	}
	return out, nil
}

// resolve waits for the volume's namespace through any connected path and
// verifies its identity. The kernel scans namespaces within milliseconds
// of a connect; one that has not appeared after NamespaceTimeout is not on
// the target (for this host). A path that is reconnecting has not scanned,
// so every path is asked at once and the first answer counts; an identity
// mismatch is final whichever path found it.
func (d *Driver) resolve(ctx context.Context, ctrls []kernel.Controller, vol nvme.Volume) (kernel.Namespace, error) {
	rctx, cancel := context.WithTimeout(ctx, d.cfg.NamespaceTimeout)
	defer cancel()
	type answer struct {
		ns   kernel.Namespace
		err  error
		ctrl string
	}
	answers := make(chan answer, len(ctrls))
	asked := 0
	for _, c := range ctrls {
		if c.Name == "" {
			continue
		}
		asked++
		go func() {
			ns, err := d.cfg.Connector.Resolve(rctx, c, vol.Namespace)
			answers <- answer{ns: ns, err: err, ctrl: c.Name}
		}()
	}
	var last answer
	for range asked {
		a := <-answers
		if a.err == nil || errors.Is(a.err, kernel.ErrNamespaceMismatch) {
			last = a
			break
		}
		if last.err == nil || errors.Is(last.err, context.DeadlineExceeded) {
			last = a
		}
	}
	cancel()
	switch {
	case last.err == nil:
		return last.ns, nil
	case ctx.Err() == nil && errors.Is(last.err, kernel.ErrNamespaceInaccessible):
		return kernel.Namespace{}, unavailable("%v", last.err)
	case ctx.Err() == nil && errors.Is(last.err, context.DeadlineExceeded):
		return kernel.Namespace{}, notFound("namespace %s of %s did not appear within %v: the target has no such namespace, or does not show it to this host", vol.Namespace, vol.Target.NQN, d.cfg.NamespaceTimeout)
	}
	return kernel.Namespace{}, fmt.Errorf("find namespace %s of %s on %s: %w", vol.Namespace, vol.Target.NQN, last.ctrl, last.err)
}

// undoStage takes back what a failed stage did: its record (when it wrote
// one), its claim, and the subsystem's controllers the plugin created when
// nothing else uses them. It runs after the caller may have gone; the
// stage's own error is what the caller needs, so failures are only logged.
func (d *Driver) undoStage(ctx context.Context, log hclog.Logger, want stageRecord, c *claim, recorded bool) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), releaseTimeout)
	defer cancel()
	if recorded {
		if err := d.state.deleteStage(want.VolumeID, want.StagingPath); err != nil {
			log.Error("could not remove the record of a failed stage", "error", err)
		}
	}
	// The claim goes first, without the lock: were the lock out of reach
	// (a settle holding it), a claim left behind would keep the
	// controllers connected and the settings fixed until a restart.
	d.dropClaim(want.subsystem(), c)
	if !d.staged(want.VolumeID) {
		d.forgetAuth(want.VolumeID)
	}
	if err := d.releaseSubsystem(ctx, log, want.subsystem()); err != nil {
		log.Warn("could not release the controllers of a failed stage", "nqn", want.subsystem(), "error", err)
	}
}

// alreadyStaged looks at the staging path. Nothing mounted there: not
// staged (false). This volume's namespace staged there with the same
// settings: done (true), whatever state its controller is in, so a repeat
// during an outage is answered OK. Anything else is an error that says
// what is there.
func (d *Driver) alreadyStaged(want stageRecord) (bool, error) {
	entries, err := d.mounts.Mounts()
	if err != nil {
		return false, err
	}
	fsAt := mountsAt(entries, want.StagingPath)
	blockAt := mountsAt(entries, blockStagingFile(want.StagingPath))
	switch {
	case want.Block && len(fsAt) > 0:
		return false, conflict("staging path %s holds a file system (%s); the volume is staged as a mount there, not as a block device", want.StagingPath, fsAt[0].Device)
	case !want.Block && len(blockAt) > 0:
		return false, conflict("staging path %s holds the block device %s; the volume is staged as a block device there, not as a file system", want.StagingPath, blockAt[0].Device)
	}
	at := fsAt
	if want.Block {
		at = blockAt
	}
	if len(at) == 0 {
		return false, nil
	}
	rec, ok, err := d.state.stage(want.VolumeID, want.StagingPath)
	if err != nil {
		return false, err
	}
	if !ok {
		return false, precondition("staging path %s already holds %s, which this plugin did not stage there for volume %s", want.StagingPath, at[0].Device, want.VolumeID)
	}
	if err := d.checkMountedNamespace(at[0], rec); err != nil {
		return false, err
	}
	if diff := rec.differences(want); len(diff) > 0 {
		return false, conflict("volume %s is already staged at %s with other settings (staged -> requested): %s", want.VolumeID, want.StagingPath, strings.Join(diff, ", "))
	}
	return true, nil
}

// checkMountedNamespace checks that the device mounted for rec is still
// rec's namespace: a stage record alone never proves what is mounted.
func (d *Driver) checkMountedNamespace(e MountEntry, rec stageRecord) error {
	ns, err := d.cfg.Connector.Identify(e.Device)
	if err != nil {
		if _, serr := os.Stat(e.Device); isNotExist(serr) {
			return precondition("volume %s is staged at %s, but its device %s is gone (its controller was deleted, e.g. after ctrl_loss_tmo): unstage it and stage it again", rec.VolumeID, rec.StagingPath, e.Device)
		}
		return fmt.Errorf("look up the namespace mounted at %s: %w", e.Path, err)
	}
	if ns.Subsystem != rec.Target.NQN || !selectorMatches(rec.Namespace, ns) {
		return conflict("staging path %s holds namespace %d of %s (%s), not %s of %s", rec.StagingPath, ns.NSID, ns.Subsystem, ns.Name, rec.Namespace, rec.Target.NQN)
	}
	return nil
}

// selectorMatches reports whether ns is the namespace sel names.
func selectorMatches(sel nvme.NamespaceSelector, ns kernel.Namespace) bool {
	return (sel.NSID == 0 || sel.NSID == ns.NSID) && (sel.UUID == "" || sel.UUID == ns.UUID) && (sel.NGUID == "" || sel.NGUID == ns.NGUID)
}

// differences lists how a request differs from the stage on record, each
// as "setting staged -> requested".
func (r stageRecord) differences(want stageRecord) []string {
	var out []string
	add := func(what, staged, requested string) {
		if staged != requested {
			out = append(out, fmt.Sprintf("%s %s -> %s", what, staged, requested))
		}
	}
	kind := func(block bool) string {
		if block {
			return "block"
		}
		return "mount"
	}
	add("access type", kind(r.Block), kind(want.Block))
	staged := r.Requested
	if staged.NQN == "" { // a record from before the target as written was kept
		staged = r.Target
	}
	add("target", targetString(staged), targetString(want.Requested))
	add("further portals", morePortals(r), morePortals(want))
	add("iopolicy", orKernelDefault(string(r.IOPolicy)), orKernelDefault(string(want.IOPolicy)))
	add("namespace", r.Namespace.String(), want.Namespace.String())
	add("fs_type", orNone(r.FSType), orNone(want.FSType))
	add("read-only", fmt.Sprint(r.ReadOnly), fmt.Sprint(want.ReadOnly))
	add("mount_flags", fmt.Sprint(r.MountFlags), fmt.Sprint(want.MountFlags))
	if r.Config.ReconnectDelay != 0 { // records from before settings were kept have none to compare
		out = append(out, r.Config.Diff(want.Config)...)
	}
	return out
}

// morePortals names a record's portals after the first, as written.
func morePortals(r stageRecord) string {
	ps := r.paths()
	if len(ps) <= 1 {
		return "none"
	}
	names := make([]string, 0, len(ps)-1)
	for _, p := range ps[1:] {
		names = append(names, p.Requested.Portal().String())
	}
	return strings.Join(names, ", ")
}

func targetString(t nvme.Target) string {
	return fmt.Sprintf("%s %s:%s %s", t.Transport, t.TrAddr, t.TrSvcID, t.NQN)
}

func orNone(s string) string {
	if s == "" {
		return "none"
	}
	return s
}

// stagePlan is how a device is brought to its staging path.
type stagePlan struct {
	kind planKind
	// from is a path where the file system is mounted already
	// (planMountInUse).
	from string
	// format: the device was found blank (or the policy allows formatting
	// it), so mkfs runs.
	format bool
	// probed: the plugin's own look at the superblock found a clean file
	// system of the requested type and nothing else on the device, so it
	// is mounted without asking blkid and fsck again.
	probed bool
}

type planKind int

const (
	planBlock          planKind = iota // bind the device node onto a file
	planMountInUse                     // mount a file system mounted elsewhere already: no fsck, no format
	planFormatAndMount                 // fsck (read-write) and mount a file system, or format a blank device first
)

func (p stagePlan) String() string {
	switch {
	case p.format:
		return "format, then mount"
	case p.probed:
		return "mount the clean file system found"
	}
	return [...]string{"bind the device node", "mount the file system in use elsewhere", "check, then mount"}[p.kind]
}

func (p stagePlan) what(ns kernel.Namespace, staging string) string {
	switch {
	case p.kind == planBlock:
		return fmt.Sprintf("binding %s at %s", ns.DevicePath, staging)
	case p.format:
		return fmt.Sprintf("formatting %s and mounting it at %s", ns.DevicePath, staging)
	}
	return fmt.Sprintf("mounting %s at %s", ns.DevicePath, staging)
}

// mountStage carries out plan.
func (d *Driver) mountStage(want stageRecord, ns kernel.Namespace, plan stagePlan) error {
	if err := os.MkdirAll(want.StagingPath, 0o750); err != nil {
		return fmt.Errorf("create staging path: %w", err)
	}
	opts := slices.Clone(want.MountFlags)
	if want.ReadOnly {
		opts = append(opts, "ro")
		if plan.kind == planFormatAndMount {
			// ro alone still lets ext4 and xfs replay a dirty journal,
			// writing to the device: a reader must never write (another
			// node may be the writer).
			opts = append(opts, map[string]string{"ext4": "noload", "ext3": "noload", "xfs": "norecovery"}[want.FSType])
		}
	}
	switch {
	case plan.kind == planBlock:
		file := blockStagingFile(want.StagingPath)
		if err := createFile(file); err != nil {
			return fmt.Errorf("create block staging file: %w", err)
		}
		if err := d.ownMounts.Bind(ns.DevicePath, file, nil); err != nil {
			return fmt.Errorf("bind %s at %s: %w", ns.DevicePath, file, err)
		}
	case plan.kind == planMountInUse:
		// A second mount of a block device with other read-only state fails
		// (EBUSY: "would change RO state"): bind the mounted file system
		// instead, read-only or not per mount.
		if err := d.ownMounts.Bind(plan.from, want.StagingPath, opts); err != nil {
			return fmt.Errorf("bind %s (the file system of %s) at %s: %w", plan.from, ns.DevicePath, want.StagingPath, err)
		}
	case plan.probed:
		if err := d.ownMounts.Mount(ns.DevicePath, want.StagingPath, want.FSType, opts); err != nil {
			return fmt.Errorf("mount %s at %s: %w", ns.DevicePath, want.StagingPath, err)
		}
	default:
		// The plan has decided the device may be formatted if blkid still
		// finds it blank; mount-utils asks blkid again and runs fsck on a
		// file system mounted read-write. A format is recorded first: a
		// kill during mkfs leaves neither a signature nor a blank head.
		if plan.format {
			if err := d.state.putFormat(ns, want.VolumeID); err != nil {
				return err
			}
		}
		if err := d.formatter.FormatAndMount(ns.DevicePath, want.StagingPath, want.FSType, opts); err != nil {
			return fmt.Errorf("format and mount %s at %s: %w", ns.DevicePath, want.StagingPath, err)
		}
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
