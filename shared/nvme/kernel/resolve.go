package kernel

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/nvmeof/nvmeof/shared/nvme"
)

// Resolve waits for the namespace sel picks on ctrl's subsystem. The kernel
// scans namespaces asynchronously after a connect: the lookup is repeated
// whenever the kernel announces a disk (its uevent), at the latest every
// diskEventFallback, until it succeeds, fails for good, or ctx ends. The
// announcements are listened to before the first lookup, so a disk added
// after that lookup is never missed. Without them (no netlink socket), the
// lookup is repeated every ResolvePoll. An identity mismatch is final at
// once: it is the wrong namespace, and waiting cannot make it the right
// one.
func (k *kernelConnector) Resolve(ctx context.Context, ctrl Controller, sel nvme.NamespaceSelector) (Namespace, error) {
	sel, err := normalizeSelector(sel)
	if err != nil {
		return Namespace{}, fmt.Errorf("resolve namespace on %s: %w", ctrl.Name, err)
	}
	// Usually the namespace is there by now: one look, and no listener.
	ns, found, err := k.lookupNamespace(ctrl, sel)
	if found || err != nil && !errors.Is(err, errNoSubsystemYet) {
		return resolved(ctrl, sel, ns, err)
	}
	// Listen, then look again: a disk added since the first look is found
	// by the second, one added after it is announced.
	events, err := k.diskEvents()
	if err != nil {
		k.log.Debug("no disk events; polling sysfs for the namespace", "error", err)
		events = nil
	} else {
		defer func() { _ = events.Close() }()
	}
	for {
		ns, found, err := k.lookupNamespace(ctrl, sel)
		if found || err != nil && !errors.Is(err, errNoSubsystemYet) {
			return resolved(ctrl, sel, ns, err)
		}
		if err := waitForDisk(ctx, events, k.diskEventFallback); err != nil {
			if ana := k.hiddenByANA(ctrl, sel); ana != "" {
				return Namespace{}, fmt.Errorf("namespace %s of subsystem %q has a path on %s, but the target makes it %s (ANA), and the kernel shows no device for a namespace until one of its paths is optimized or non-optimized: %w (%w)",
					sel, ctrl.Subsystem, ctrl.Name, ana, ErrNamespaceInaccessible, err)
			}
			return Namespace{}, fmt.Errorf("namespace %s of subsystem %q did not appear on %s: %w", sel, ctrl.Subsystem, ctrl.Name, err)
		}
	}
}

// hiddenByANA tells why a namespace has no device though ctrl reaches it:
// its path disk under ctrl is there, in an ANA state that takes no I/O.
// Native multipath adds the head disk only when a path becomes usable.
// "" when that is not the reason.
func (k *kernelConnector) hiddenByANA(ctrl Controller, sel nvme.NamespaceSelector) string {
	ctrlDir := k.sys.controllerDir(ctrl.Name)
	entries, err := readDirNames(ctrlDir)
	if err != nil {
		return ""
	}
	for _, e := range entries {
		if classifyDisk(e) != diskPath {
			continue
		}
		dir := filepath.Join(ctrlDir, e)
		ns, err := k.readNamespace(dir, e, ctrl.Subsystem)
		if err != nil {
			continue
		}
		if ok, _ := selectorMatches(ns, sel); !ok {
			continue
		}
		switch ana, _ := readOptionalAttr(dir, "ana_state"); ana {
		case ANAInaccessible, ANAPersistentLoss, ANAChange:
			return ana
		}
	}
	return ""
}

// resolved is Resolve's answer from a look that settled it.
func resolved(ctrl Controller, sel nvme.NamespaceSelector, ns Namespace, err error) (Namespace, error) {
	if err != nil {
		return Namespace{}, fmt.Errorf("resolve namespace %s of subsystem %q on %s: %w", sel, ctrl.Subsystem, ctrl.Name, err)
	}
	return ns, nil
}

// waitForDisk returns when it is time to look for a disk again: an event
// (or fallback without one) when events is set, ResolvePoll otherwise;
// ctx's error when ctx ends first.
func waitForDisk(ctx context.Context, events DiskEvents, fallback time.Duration) error {
	if events != nil {
		return events.Wait(ctx, fallback) //nolint:wrapcheck // Resolve says what it waited for
	}
	t := time.NewTimer(ResolvePoll)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err() //nolint:wrapcheck // Resolve says what it waited for
	case <-t.C:
		return nil
	}
}

// normalizeSelector validates sel and brings uuid and nguid to canonical form.
func normalizeSelector(sel nvme.NamespaceSelector) (nvme.NamespaceSelector, error) {
	if err := sel.Validate(); err != nil {
		return nvme.NamespaceSelector{}, err
	}
	var err error
	if sel.UUID != "" {
		if sel.UUID, err = nvme.NormalizeUUID(sel.UUID); err != nil {
			return nvme.NamespaceSelector{}, err
		}
	}
	if sel.NGUID != "" {
		if sel.NGUID, err = nvme.NormalizeNGUID(sel.NGUID); err != nil {
			return nvme.NamespaceSelector{}, err
		}
	}
	return sel, nil
}

// lookupNamespace is one look for sel among ctrl's namespaces: the head
// disks of its subsystem (native multipath) and its own disks (without).
// Disk names are read, never derived from controller numbers.
func (k *kernelConnector) lookupNamespace(ctrl Controller, sel nvme.NamespaceSelector) (Namespace, bool, error) {
	ctrlDir := k.sys.controllerDir(ctrl.Name)
	entries, err := readDirNames(ctrlDir)
	if errors.Is(err, fs.ErrNotExist) {
		return Namespace{}, false, fmt.Errorf("controller %s: %w", ctrl.Name, ErrControllerGone)
	}
	if err != nil {
		return Namespace{}, false, err
	}
	nqn, err := readAttr(ctrlDir, "subsysnqn")
	if err != nil {
		return Namespace{}, false, fmt.Errorf("controller %s: %w", ctrl.Name, ErrControllerGone)
	}
	if nqn != ctrl.Subsystem {
		return Namespace{}, false, fmt.Errorf("controller %s now belongs to subsystem %q: %w", ctrl.Name, nqn, ErrControllerGone)
	}
	// Without native multipath the disks hang off the controller.
	for _, e := range entries {
		if classifyDisk(e) != diskPlain {
			continue
		}
		if ns, ok, err := k.matchDisk(filepath.Join(ctrlDir, e), e, nqn, sel); ok || err != nil {
			return ns, ok, err
		}
	}
	// With native multipath, every namespace the controller reaches has a
	// hidden path disk under it, created before its head disk. No path
	// disk yet means the scan has not got this far: look again later,
	// without searching every subsystem of the host on each poll.
	hint := subsystemHint(entries)
	if hint == "" {
		return Namespace{}, false, nil
	}
	subDir, err := k.sys.subsystemDir(ctrl.Name, nqn, hint)
	if err != nil {
		return Namespace{}, false, err
	}
	heads, err := readDirNames(subDir)
	if err != nil {
		return Namespace{}, false, err
	}
	for _, h := range heads {
		if classifyDisk(h) != diskPlain {
			continue
		}
		if ns, ok, err := k.matchDisk(filepath.Join(subDir, h), h, nqn, sel); ok || err != nil {
			return ns, ok, err
		}
	}
	return Namespace{}, false, nil
}

// matchDisk reads the disk at dir and checks it against sel. A disk whose
// attributes vanish while being read is being removed: no match. The disk
// counts as found only once its /dev node exists.
func (k *kernelConnector) matchDisk(dir, name, nqn string, sel nvme.NamespaceSelector) (Namespace, bool, error) {
	if sel.NSID != 0 {
		// The nsid alone rules out the other disks: one read each.
		nsid, err := readAttr(dir, "nsid")
		if err != nil || nsid != strconv.FormatUint(uint64(sel.NSID), 10) {
			return Namespace{}, false, nil //nolint:nilerr // a disk going away while read is simply not the one
		}
	}
	ns, err := k.readNamespace(dir, name, nqn)
	if errors.Is(err, fs.ErrNotExist) {
		return Namespace{}, false, nil
	}
	if err != nil {
		return Namespace{}, false, err
	}
	ok, err := selectorMatches(ns, sel)
	if !ok || err != nil {
		return Namespace{}, false, err
	}
	if _, err := os.Stat(ns.DevicePath); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return Namespace{}, false, nil
		}
		return Namespace{}, false, fmt.Errorf("device node of %s: %w", name, err)
	}
	return ns, true, nil
}

// readNamespace reads a disk's identity, size and device number.
func (k *kernelConnector) readNamespace(dir, name, nqn string) (Namespace, error) {
	var attrs [5]string
	for i, a := range []string{"nsid", "uuid", "nguid", "size", "dev"} {
		var err error
		if a == "nsid" {
			attrs[i], err = readAttr(dir, a)
		} else {
			attrs[i], err = readOptionalAttr(dir, a)
		}
		if err != nil {
			return Namespace{}, fmt.Errorf("disk %s: %w", name, err)
		}
	}
	id, err := parseNSIdentity(attrs[0], attrs[1], attrs[2])
	if err != nil {
		return Namespace{}, fmt.Errorf("disk %s: %w", name, err)
	}
	var size int64
	if attrs[3] != "" {
		sectors, err := parseSysfsInt(attrs[3])
		if err != nil {
			return Namespace{}, fmt.Errorf("disk %s: size %q: %w", name, attrs[3], err)
		}
		size = int64(sectors) * 512 // sysfs counts 512-byte sectors whatever the block size
	}
	parts, holders, err := diskUsers(dir, name)
	if err != nil {
		return Namespace{}, fmt.Errorf("disk %s: %w", name, err)
	}
	return Namespace{
		Partitions: parts,
		Holders:    holders,
		DevicePath: k.devicePath(name),
		Name:       name,
		Subsystem:  nqn,
		NSID:       id.NSID,
		UUID:       id.UUID,
		NGUID:      id.NGUID,
		SizeBytes:  size,
		Dev:        attrs[4],
	}, nil
}

// selectorMatches tells whether ns is the namespace sel picks. A namespace
// found by nsid (or by uuid) whose other identity differs from sel is an
// ErrNamespaceMismatch naming both values.
func selectorMatches(ns Namespace, sel nvme.NamespaceSelector) (bool, error) {
	switch {
	case sel.NSID != 0:
		if ns.NSID != sel.NSID {
			return false, nil
		}
	case sel.UUID != "":
		if ns.UUID != sel.UUID {
			return false, nil
		}
	case ns.NGUID != sel.NGUID:
		return false, nil
	}
	var problems []string
	if sel.UUID != "" && ns.UUID != sel.UUID {
		problems = append(problems, fmt.Sprintf("uuid %s was requested, the namespace has %s", sel.UUID, orNone(ns.UUID)))
	}
	if sel.NGUID != "" && ns.NGUID != sel.NGUID {
		problems = append(problems, fmt.Sprintf("nguid %s was requested, the namespace has %s", sel.NGUID, orNone(ns.NGUID)))
	}
	if len(problems) > 0 {
		return false, &permanentError{fmt.Errorf("namespace %d (%s) of subsystem %q: %s: %w",
			ns.NSID, ns.Name, ns.Subsystem, strings.Join(problems, "; "), ErrNamespaceMismatch)}
	}
	return true, nil
}

func orNone(s string) string {
	if s == "" {
		return "none"
	}
	return s
}

// NamespaceOf maps a block device to its namespace and the controllers that
// reach it: with native multipath every controller of the subsystem with a
// path to the same nsid, without it the disk's own controller.
func (k *kernelConnector) NamespaceOf(device string) (Namespace, []Controller, error) {
	ns, parent, err := k.identify(device)
	if err != nil {
		return Namespace{}, nil, err
	}
	if !strings.HasPrefix(filepath.Base(parent), "nvme-subsys") {
		ctrl, err := k.sys.controller(filepath.Base(parent))
		if err != nil {
			return Namespace{}, nil, err
		}
		return ns, []Controller{ctrl}, nil
	}
	ctrls, err := k.pathControllers(parent, ns.NSID)
	if err != nil {
		return Namespace{}, nil, err
	}
	return ns, ctrls, nil
}

func (k *kernelConnector) Identify(device string) (Namespace, error) {
	ns, _, err := k.identify(device)
	return ns, err
}

// identify reads the namespace of a block device, and the directory its
// disk hangs off: its subsystem's (native multipath) or its controller's.
func (k *kernelConnector) identify(device string) (Namespace, string, error) {
	name := filepath.Base(device)
	if classifyDisk(name) != diskPlain {
		return Namespace{}, "", fmt.Errorf("%q is not an NVMe namespace block device (nvmeXnY)", device)
	}
	real, err := filepath.EvalSymlinks(k.sys.blockDir(name))
	if err != nil {
		return Namespace{}, "", fmt.Errorf("namespace %s: %w", name, err)
	}
	parent := filepath.Dir(real)
	nqn, err := readAttr(parent, "subsysnqn")
	if err != nil {
		return Namespace{}, "", fmt.Errorf("namespace %s: subsystem: %w", name, err)
	}
	ns, err := k.readNamespace(real, name, nqn)
	if err != nil {
		return Namespace{}, "", err
	}
	return ns, parent, nil
}

// pathControllers lists the controllers linked from a subsystem directory
// that have a path disk to nsid.
func (k *kernelConnector) pathControllers(subDir string, nsid uint32) ([]Controller, error) {
	entries, err := readDirNames(subDir)
	if err != nil {
		return nil, err
	}
	var out []Controller
	for _, e := range entries {
		if !isControllerName(e) || !k.hasPathTo(filepath.Join(subDir, e), nsid) {
			continue
		}
		ctrl, err := k.sys.controller(e)
		if errors.Is(err, ErrControllerGone) {
			continue
		}
		if err != nil {
			return nil, err
		}
		out = append(out, ctrl)
	}
	sortControllers(out)
	return out, nil
}

// hasPathTo reports whether the controller at dir has a path disk to nsid.
func (k *kernelConnector) hasPathTo(dir string, nsid uint32) bool {
	entries, err := readDirNames(dir)
	if err != nil {
		return false
	}
	want := fmt.Sprint(nsid)
	for _, e := range entries {
		if classifyDisk(e) != diskPath {
			continue
		}
		if got, err := readAttr(filepath.Join(dir, e), "nsid"); err == nil && got == want {
			return true
		}
	}
	return false
}

// Namespaces lists the disks reached through ctrl: its own disks without
// native multipath, the head disk of each of its paths with it. A disk
// that vanishes while read is no longer reached; any other failure fails
// the whole list, so that a caller deciding whether the controller is
// still used never decides from half a list.
func (k *kernelConnector) Namespaces(ctrl Controller) ([]Namespace, error) {
	ctrlDir := k.sys.controllerDir(ctrl.Name)
	entries, err := readDirNames(ctrlDir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("controller %s: %w", ctrl.Name, ErrControllerGone)
	}
	if err != nil {
		return nil, fmt.Errorf("namespaces of %s: %w", ctrl.Name, err)
	}
	var out []Namespace
	for _, e := range entries {
		var dir, disk string
		switch classifyDisk(e) {
		case diskPlain:
			dir, disk = filepath.Join(ctrlDir, e), e
		case diskPath:
			disk = headOfPath(e)
			dir = k.sys.blockDir(disk)
		default:
			continue
		}
		ns, err := k.readNamespace(dir, disk, ctrl.Subsystem)
		if errors.Is(err, fs.ErrNotExist) {
			if _, serr := os.Stat(dir); errors.Is(serr, fs.ErrNotExist) {
				continue // the disk went away while we looked
			}
		}
		if err != nil {
			return nil, fmt.Errorf("namespaces of %s: %w", ctrl.Name, err)
		}
		out = append(out, ns)
	}
	return out, nil
}

// headOfPath names the head disk of a path disk: nvmeKcCnI is a path of
// nvmeKnI.
func headOfPath(path string) string {
	rest := strings.TrimPrefix(path, "nvme")
	sub, _, _ := strings.Cut(rest, "c")
	_, idx, _ := strings.Cut(rest, "n")
	return "nvme" + sub + "n" + idx
}

// diskUsers reads what stands on a disk: its partitions (subdirectories
// named <disk>p<N>, with their device numbers) and the holders of the disk
// and of each partition. A disk read fails as a whole when any of them
// cannot be read.
func diskUsers(dir, disk string) (parts []Partition, holders []string, err error) {
	entries, err := readDirNames(dir)
	if err != nil {
		return nil, nil, err
	}
	holders, err = holdersOf(dir)
	if err != nil {
		return nil, nil, err
	}
	for _, e := range entries {
		rest, ok := strings.CutPrefix(e, disk+"p")
		if !ok || rest == "" || strings.Trim(rest, "0123456789") != "" {
			continue
		}
		pdir := filepath.Join(dir, e)
		dev, err := readAttr(pdir, "dev")
		if err != nil {
			return nil, nil, fmt.Errorf("partition %s: %w", e, err)
		}
		parts = append(parts, Partition{Name: e, Dev: dev})
		h, err := holdersOf(pdir)
		if err != nil {
			return nil, nil, err
		}
		holders = append(holders, h...)
	}
	return parts, holders, nil
}

// holdersOf lists dir/holders; a disk without the directory has none.
func holdersOf(dir string) ([]string, error) {
	names, err := readDirNames(filepath.Join(dir, "holders"))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	return names, err
}
