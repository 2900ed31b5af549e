package kernel

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
)

// sysfs reads and writes the kernel's NVMe objects under a root that is
// /sys on a host and a fixture tree in tests:
//
//	class/nvme/nvmeN               controllers (links into devices/)
//	class/nvme-subsystem/nvme-subsysK  subsystems: links to their controllers, head disks
//	block/<disk>                   every block device
//	fs/ext4/<disk>, fs/xfs/<disk>  file systems mounted from a disk
//
// Nothing is cached: every call reads what the kernel shows now.
type sysfs struct {
	root string
	ctl  ControlFiles // where writes go
	// addrs keeps controllers' `address` attributes (nil: read each time);
	// addressCache says why reading it often is a hazard.
	addrs *addressCache
}

func (s sysfs) controllerDir(name string) string {
	return filepath.Join(s.root, "class", "nvme", name)
}

func (s sysfs) subsystemClassDir() string {
	return filepath.Join(s.root, "class", "nvme-subsystem")
}

func (s sysfs) blockDir(disk string) string {
	return filepath.Join(s.root, "block", disk)
}

// maxAttrSize is the most a sysfs attribute holds: one page.
const maxAttrSize = 4096

// readAttr returns an attribute's text without the trailing newline.
//
// It makes three system calls (open, read, close) where os.ReadFile makes
// five or more (fstat, a read to see EOF, and the runtime poller's
// registration of a pollable sysfs file): Resolve reads a dozen attributes
// per poll, and under emulation every system call counts. A sysfs
// attribute comes whole in the first read.
func readAttr(dir, name string) (string, error) {
	path := filepath.Join(dir, name)
	fd, err := syscall.Open(path, syscall.O_RDONLY|syscall.O_CLOEXEC, 0)
	if err != nil {
		return "", fmt.Errorf("read %s: %w", name, &fs.PathError{Op: "open", Path: path, Err: err})
	}
	var buf [maxAttrSize]byte
	n, err := syscall.Read(fd, buf[:])
	_ = syscall.Close(fd) // read-only: nothing to lose on close
	if err != nil {
		return "", fmt.Errorf("read %s: %w", name, &fs.PathError{Op: "read", Path: path, Err: err})
	}
	return strings.TrimRight(string(buf[:max(n, 0)]), "\n"), nil
}

// readOptionalAttr is readAttr that returns "" for an attribute the kernel
// does not show (older kernels, or a value the namespace lacks).
func readOptionalAttr(dir, name string) (string, error) {
	v, err := readAttr(dir, name)
	if errors.Is(err, fs.ErrNotExist) {
		return "", nil
	}
	return v, err
}

// writeAttr writes one value to a sysfs attribute in a single write.
func (s sysfs) writeAttr(dir, name, value string) error {
	return s.ctl.WriteAttr(filepath.Join(dir, name), value) //nolint:wrapcheck // ControlFiles name the attribute
}

// readDirNames lists a directory without sorting or stat'ing its entries:
// subsystem and controller directories are read on every poll of Resolve.
func readDirNames(dir string) ([]string, error) {
	f, err := os.Open(dir)
	if err != nil {
		return nil, fmt.Errorf("list %s: %w", dir, err)
	}
	defer func() { _ = f.Close() }()
	names, err := f.Readdirnames(-1)
	if err != nil {
		return nil, fmt.Errorf("list %s: %w", dir, err)
	}
	return names, nil
}

// controllerAttrs are the attributes parseController needs. The
// reconnection ones exist only for fabrics controllers.
var controllerAttrs = []string{
	"state", "subsysnqn", "transport", "address", "hostnqn", "hostid", "cntlid", "kato",
	"ctrl_loss_tmo", "reconnect_delay", "fast_io_fail_tmo",
}

// controller reads /sys/class/nvme/<name>. A controller that does not
// exist (any more) gives an error matching ErrControllerGone.
func (s sysfs) controller(name string) (Controller, error) {
	if !isControllerName(name) {
		return Controller{}, fmt.Errorf("%q is not an NVMe controller name (nvmeN)", name)
	}
	dir := s.controllerDir(name)
	id, err := dirID(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return Controller{}, fmt.Errorf("controller %s: %w", name, ErrControllerGone)
	}
	if err != nil {
		return Controller{}, fmt.Errorf("controller %s: %w", name, err)
	}
	attrs := make(map[string]string, len(controllerAttrs))
	cachedAddr, addrKnown := s.addrs.get(name, id)
	for _, a := range controllerAttrs {
		if a == "address" && addrKnown {
			attrs[a] = cachedAddr
			continue
		}
		v, err := readAttr(dir, a)
		switch {
		case err == nil:
			attrs[a] = v
		case errors.Is(err, fs.ErrNotExist):
			if _, serr := os.Stat(dir); errors.Is(serr, fs.ErrNotExist) {
				return Controller{}, fmt.Errorf("controller %s: %w", name, ErrControllerGone)
			}
		case errors.Is(err, syscall.ENODEV):
			// Reading an attribute of a controller being torn down.
			return Controller{}, fmt.Errorf("controller %s: %w", name, ErrControllerGone)
		default:
			return Controller{}, fmt.Errorf("controller %s: %w", name, err)
		}
	}
	c, err := parseController(name, attrs)
	if err != nil {
		return Controller{}, fmt.Errorf("controller %s: %w", name, err)
	}
	// Deleted and re-created under the same name while we read: the
	// attributes may be the new one's, the ID the old one's.
	if again, err := dirID(dir); err != nil || again != id {
		return Controller{}, fmt.Errorf("controller %s changed while read: %w", name, ErrControllerGone)
	}
	c.ID = id
	if !addrKnown && c.Transport != "pcie" {
		s.addrs.put(name, id, attrs["address"])
	}
	return c, nil
}

// dirID is the inode number of the directory dir leads to. sysfs (kernfs)
// numbers its nodes from a cyclic 64-bit counter and never gives a number
// to two nodes, so it tells a controller apart from a later one that took
// its name.
func dirID(dir string) (uint64, error) {
	var st syscall.Stat_t
	if err := syscall.Stat(dir, &st); err != nil {
		return 0, &fs.PathError{Op: "stat", Path: dir, Err: err}
	}
	return st.Ino, nil
}

// parseController builds a Controller from its attributes; a missing
// attribute is absent from attrs.
func parseController(name string, attrs map[string]string) (Controller, error) {
	instance, ok := controllerInstance(name)
	if !ok {
		return Controller{}, fmt.Errorf("%q is not an NVMe controller name (nvmeN)", name)
	}
	c := Controller{
		Name:      name,
		Instance:  instance,
		State:     attrs["state"],
		Subsystem: attrs["subsysnqn"],
		Transport: attrs["transport"],
		HostNQN:   attrs["hostnqn"],
		HostID:    strings.ToLower(attrs["hostid"]),
	}
	if c.Transport != "pcie" {
		addr, err := parseCtrlAddress(attrs["address"])
		if err != nil {
			return Controller{}, err
		}
		c.TrAddr, c.TrSvcID, c.HostTrAddr, c.HostIface = addr.TrAddr, addr.TrSvcID, addr.HostTrAddr, addr.HostIface
	}
	ints := []struct {
		attr  string
		dst   *int
		parse func(string) (int, error)
	}{
		{"cntlid", &c.CntlID, parseSysfsInt},
		{"kato", &c.KeepAliveTmo, parseSysfsInt},
		{"ctrl_loss_tmo", &c.CtrlLossTmo, parseTimeout},
		{"reconnect_delay", &c.ReconnectDelay, parseSysfsInt},
		{"fast_io_fail_tmo", &c.FastIOFailTmo, parseTimeout},
	}
	c.FastIOFailTmo = -1
	for _, f := range ints {
		v, present := attrs[f.attr]
		if !present {
			continue
		}
		n, err := f.parse(v)
		if err != nil {
			return Controller{}, fmt.Errorf("%s %q: %w", f.attr, v, err)
		}
		*f.dst = n
	}
	return c, nil
}

// controllers lists every controller, in instance order. One that vanishes
// while being read is left out.
func (s sysfs) controllers() ([]Controller, error) {
	return s.controllersOf("")
}

// controllersOf lists the controllers of subsystem nqn ("" for all). Only
// the subsystem NQN of the others is read: a Connect on a host with a
// thousand controllers reads a thousand small files, not eleven thousand.
func (s sysfs) controllersOf(nqn string) ([]Controller, error) {
	names, err := readDirNames(filepath.Join(s.root, "class", "nvme"))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil // no nvme-core loaded: no controllers
	}
	if err != nil {
		return nil, err
	}
	out := make([]Controller, 0, len(names))
	for _, n := range names {
		if !isControllerName(n) {
			continue
		}
		if nqn != "" {
			got, err := readAttr(s.controllerDir(n), "subsysnqn")
			if err != nil || got != nqn {
				continue // another subsystem's, or gone while listed
			}
		}
		c, err := s.controller(n)
		if errors.Is(err, ErrControllerGone) {
			continue
		}
		if err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	if nqn == "" {
		s.addrs.keepOnly(out)
	}
	sortControllers(out)
	return out, nil
}

// subsystemDir finds the subsystem directory that links controller name
// and carries nqn. hint, when not empty, is the subsystem the controller's
// path disks name and is checked first; the full scan is the fallback, so
// a wrong hint costs time, never correctness.
func (s sysfs) subsystemDir(name, nqn, hint string) (string, error) {
	class := s.subsystemClassDir()
	check := func(sub string) bool {
		dir := filepath.Join(class, sub)
		if _, err := os.Lstat(filepath.Join(dir, name)); err != nil {
			return false
		}
		got, err := readAttr(dir, "subsysnqn")
		return err == nil && got == nqn
	}
	if hint != "" && check(hint) {
		return filepath.Join(class, hint), nil
	}
	subs, err := readDirNames(class)
	if err != nil {
		return "", err
	}
	for _, sub := range subs {
		if sub != hint && check(sub) {
			return filepath.Join(class, sub), nil
		}
	}
	return "", fmt.Errorf("no subsystem %q links controller %s: %w", nqn, name, errNoSubsystemYet)
}

// subsystemHint names the subsystem of a controller from its path disks:
// nvmeKcCnI lives in nvme-subsysK. "" when there is no path disk.
func subsystemHint(ctrlEntries []string) string {
	for _, e := range ctrlEntries {
		if classifyDisk(e) != diskPath {
			continue
		}
		rest := strings.TrimPrefix(e, "nvme")
		digits, _, _ := strings.Cut(rest, "c")
		return "nvme-subsys" + digits
	}
	return ""
}
