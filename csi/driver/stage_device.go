package driver

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"time"

	"github.com/nvmeof/nvmeof/csi/internal/fsprobe"
	"github.com/nvmeof/nvmeof/shared/nvme"
	"github.com/nvmeof/nvmeof/shared/nvme/kernel"
)

// headSize is how much of a device must read as zeros for it to count as
// blank: file systems, partition tables and LVM keep their signatures
// within it, and raw data written by a block-mode user almost always
// starts there.
const headSize = 1 << 20

// livePoll is how often a stage looks at a reconnecting controller.
const livePoll = 50 * time.Millisecond

// namespaceKey names a namespace for the lock that orders the decisions
// about its use: by subsystem and nsid, whatever path reaches it.
func namespaceKey(nqn string, nsid uint32) string {
	return fmt.Sprintf("namespace|%s|%d", nqn, nsid)
}

// reserve decides, from what uses the namespace, how it reaches its
// staging path, and records the stage before anything is mounted: under
// the namespace's lock, so that two stages of it (a block and a file
// system one, by two volume names) cannot both find it unused. It never
// lets a device be formatted that a mount uses anywhere or a stage record
// says is in block use.
func (d *Driver) reserve(ctx context.Context, want stageRecord, ns kernel.Namespace) (stagePlan, error) {
	held, err := d.keys.lock(ctx, namespaceKey(want.Target.NQN, ns.NSID))
	if err != nil {
		return stagePlan{}, err
	}
	defer held.unlock()
	plan, err := d.usagePlan(want, ns)
	if err != nil {
		return stagePlan{}, err
	}
	if err := d.state.putStage(want); err != nil {
		return stagePlan{}, err
	}
	return plan, nil
}

// usagePlan reads the mount table and the stage records: what mounts the
// device (its own number, its partitions'), and which other stages of it
// there are, block or file system. planFormatAndMount means "unused":
// what it holds is for planUnused to look at.
func (d *Driver) usagePlan(want stageRecord, ns kernel.Namespace) (stagePlan, error) {
	entries, err := d.mounts.Mounts()
	if err != nil {
		return stagePlan{}, err
	}
	recs, err := d.state.stages()
	if err != nil {
		return stagePlan{}, err
	}
	var fsUsers, blockUsers []MountEntry
	for _, e := range usersOf(entries, ns) {
		if e.fileSystem() {
			fsUsers = append(fsUsers, e)
		} else {
			blockUsers = append(blockUsers, e)
		}
	}
	var fsStages, blockStages []string
	for _, r := range recs {
		if r.StagingPath == want.StagingPath || !r.stagesNamespace(want.Target.NQN, ns) {
			continue
		}
		if r.Block {
			blockStages = append(blockStages, r.StagingPath)
		} else {
			fsStages = append(fsStages, r.StagingPath)
		}
	}
	holders := ns.Holders
	if want.Block {
		if len(fsUsers) > 0 || len(fsStages) > 0 || len(holders) > 0 {
			return stagePlan{}, precondition("namespace %s (%s) holds a file system in use (mounted at %v, staged at %v, held by %v); raw block access beside a mounted file system corrupts it: unstage the file-system volume first",
				want.Namespace, ns.DevicePath, paths(fsUsers), fsStages, holders)
		}
		return stagePlan{kind: planBlock}, nil
	}
	if len(blockUsers) > 0 || len(blockStages) > 0 {
		return stagePlan{}, precondition("namespace %s (%s) is in use as a raw block device (bound at %v, staged at %v): not putting a file system on it; unstage the block volume first",
			want.Namespace, ns.DevicePath, paths(blockUsers), blockStages)
	}
	if len(holders) > 0 {
		return stagePlan{}, precondition("namespace %s (%s) is held by %v (device mapper, md or a partition in use): not mounting or formatting it", want.Namespace, ns.DevicePath, holders)
	}
	for _, e := range fsUsers {
		if !sameDevice(e, ns) {
			return stagePlan{}, precondition("namespace %s (%s) has a partition mounted at %s: it is not one file system to mount, and never one to format", want.Namespace, ns.DevicePath, e.Path)
		}
	}
	if len(fsUsers) > 0 {
		if fsUsers[0].FSType != want.FSType {
			return stagePlan{}, precondition("namespace %s (%s) is mounted at %s as %s; the volume asks for %s", want.Namespace, ns.DevicePath, fsUsers[0].Path, fsUsers[0].FSType, want.FSType)
		}
		for _, e := range fsUsers {
			if e.Root == "" || e.Root == "/" {
				return stagePlan{kind: planMountInUse, from: e.Path}, nil
			}
		}
		return stagePlan{}, precondition("namespace %s (%s) is mounted only as subdirectories of its file system (%v): not staging it beside them", want.Namespace, ns.DevicePath, paths(fsUsers))
	}
	return stagePlan{kind: planFormatAndMount}, nil
}

// stagesNamespace reports whether r stages the namespace nsid of
// subsystem nqn: by the namespace it found, or for a record from before
// that was kept, by its selector.
func (r stageRecord) stagesNamespace(nqn string, ns kernel.Namespace) bool {
	if r.Target.NQN != nqn {
		return false
	}
	if r.Found.NSID != 0 {
		return r.Found.NSID == ns.NSID
	}
	return selectorMatches(r.Namespace, ns)
}

// planUnused decides for a device nothing uses: mount the file system it
// holds, or format it when it is blank (or the policy says so). blkid says
// "nothing found" for a device it cannot read too, so the controller must
// be live and the head must read before anything is decided.
//
// A device whose own head and tail show a clean file system of the type
// asked for, and nothing else blkid would report (fsprobe), is mounted
// without blkid and fsck: they would only say so again, at the cost of
// three process starts. Everything else, and anything a cut-short format
// of ours may have left, goes to blkid, the authority before any format.
func (d *Driver) planUnused(o *op, want stageRecord, policy nvme.FormatPolicy, ns kernel.Namespace) (stagePlan, error) {
	if err := d.waitLivePath(o.ctx, ns, "deciding whether the device is blank"); err != nil {
		return stagePlan{}, err
	}
	ours, err := d.state.formatStarted(ns, want.VolumeID)
	if err != nil {
		return stagePlan{}, err
	}
	// Reading the device waits as long as its I/O does (a controller that
	// went to "connecting" since): each read is bounded, and one that
	// outlives the bound keeps the volume locked until it returns.
	if !ours {
		var probe fsprobe.Result
		err := o.bounded("reading the superblock of "+ns.DevicePath, func() error {
			var err error
			if probe, err = probeDevice(ns.DevicePath); err != nil {
				return unavailable("read %s before deciding whether it holds a file system: %v; not formatting a device that cannot be read", ns.DevicePath, err)
			}
			return nil
		})
		if err != nil {
			return stagePlan{}, err
		}
		if probe.FSType == want.FSType && (probe.Clean || want.ReadOnly) {
			return stagePlan{kind: planFormatAndMount, probed: true}, nil
		}
		d.log.Debug("the device's own superblock does not settle it; asking blkid", "device", ns.DevicePath, "probe", probe.String())
	}
	var zero bool
	err = o.bounded("reading the first MiB of "+ns.DevicePath, func() error {
		var err error
		if zero, err = headIsZero(ns.DevicePath); err != nil {
			return unavailable("read the first MiB of %s before deciding whether it holds a file system: %v; not formatting a device that cannot be read", ns.DevicePath, err)
		}
		return nil
	})
	if err != nil {
		return stagePlan{}, err
	}
	var format string
	err = o.bounded("running blkid on "+ns.DevicePath, func() error {
		var err error
		if format, err = d.formatter.GetDiskFormat(ns.DevicePath); err != nil {
			return unavailable("blkid could not read %s: %v", ns.DevicePath, err)
		}
		return nil
	})
	if err != nil {
		return stagePlan{}, err
	}
	switch {
	case format != "" && format != want.FSType:
		return stagePlan{}, precondition("namespace %s (%s) holds %q; the volume asks for %s: not mounting it as %s, nor formatting it", want.Namespace, ns.DevicePath, format, want.FSType, want.FSType)
	case format != "":
		return stagePlan{kind: planFormatAndMount}, nil
	case want.ReadOnly:
		return stagePlan{}, precondition("namespace %s (%s) holds no file system, and the volume is read-only: there is nothing to mount, and it is not formatted read-only", want.Namespace, ns.DevicePath)
	case policy == nvme.FormatNever:
		return stagePlan{}, precondition("namespace %s (%s) holds no file system, and format_policy is %q: create the %s file system yourself, or set format_policy to %q", want.Namespace, ns.DevicePath, policy, want.FSType, nvme.FormatIfBlank)
	case !zero && ours:
		// Our own mkfs, cut short by a kill: finish it.
	case !zero && policy != nvme.FormatIfNoFilesystem:
		return stagePlan{}, precondition("namespace %s (%s) holds data but no file system blkid recognises (the first MiB is not blank): raw data of a block-mode user, or a file system this node cannot read. Not formatting it. Stage it as a block device to read it; to destroy the data and format it, set format_policy = %q in the volume context",
			want.Namespace, ns.DevicePath, nvme.FormatIfNoFilesystem)
	}
	return stagePlan{kind: planFormatAndMount, format: true}, nil
}

// waitLivePath waits until a path to ns can take I/O: a controller that
// is live, on a path the target has not made inaccessible (ANA). Without
// one, I/O waits or fails, and blkid would call an unreadable device
// blank. It ends with ctx, saying what it waited for.
func (d *Driver) waitLivePath(ctx context.Context, ns kernel.Namespace, before string) error {
	var ticker *time.Ticker
	for {
		paths, err := d.cfg.Connector.Paths(ns)
		if err != nil {
			if isNotExist(err) {
				return unavailable("namespace %s (%s) is gone: every path to it was deleted", ns.Name, ns.DevicePath)
			}
			return fmt.Errorf("paths of %s: %w", ns.DevicePath, err)
		}
		if slices.ContainsFunc(paths, kernel.PathState.Live) {
			return nil
		}
		if ticker == nil {
			ticker = time.NewTicker(livePoll)
			defer ticker.Stop()
		}
		select {
		case <-ctx.Done():
			what := "none is left"
			if len(paths) > 0 {
				what = pathNames(paths)
			}
			return fmt.Errorf("no path to %s can take I/O (%s); waited for it to be live before %s: %w", ns.DevicePath, what, before, ctx.Err())
		case <-ticker.C:
		}
	}
}

// probeDevice looks at the superblock of a device (fsprobe).
func probeDevice(device string) (fsprobe.Result, error) {
	f, err := os.Open(device)
	if err != nil {
		return fsprobe.Result{}, fmt.Errorf("open %s: %w", device, err)
	}
	defer func() { _ = f.Close() }()
	size, err := f.Seek(0, io.SeekEnd)
	if err != nil {
		return fsprobe.Result{}, fmt.Errorf("size of %s: %w", device, err)
	}
	r, err := fsprobe.Probe(f, size, time.Now())
	if err != nil {
		return fsprobe.Result{}, fmt.Errorf("%s: %w", device, err)
	}
	return r, nil
}

// headIsZero reads the first headSize bytes of a device (all of a smaller
// one) and reports whether they are all zero.
func headIsZero(device string) (bool, error) {
	f, err := os.Open(device)
	if err != nil {
		return false, fmt.Errorf("open %s: %w", device, err)
	}
	defer func() { _ = f.Close() }()
	buf := make([]byte, headSize)
	n, err := io.ReadFull(f, buf)
	if err != nil && !errors.Is(err, io.ErrUnexpectedEOF) && !errors.Is(err, io.EOF) {
		return false, fmt.Errorf("read %s: %w", device, err)
	}
	for _, b := range buf[:n] {
		if b != 0 {
			return false, nil
		}
	}
	return true, nil
}
