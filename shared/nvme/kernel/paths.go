package kernel

import (
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/nvmeof/nvmeof/shared/nvme"
)

// ANA states of a path, as the kernel shows them in a path disk's
// ana_state: what the target says about reaching the namespace through
// that controller.
const (
	ANAOptimized      = "optimized"
	ANANonOptimized   = "non-optimized"
	ANAInaccessible   = "inaccessible"
	ANAPersistentLoss = "persistent-loss"
	ANAChange         = "change"
)

// ANAStates lists them, for metrics and docs.
func ANAStates() []string {
	return []string{ANAOptimized, ANANonOptimized, ANAInaccessible, ANAPersistentLoss, ANAChange}
}

// PathState is one path to a namespace: a controller, and the disk through
// which I/O goes down it.
type PathState struct {
	Controller Controller
	// Disk is the hidden path disk (nvmeKcCnI) with native multipath, the
	// namespace's own disk without it.
	Disk string
	// ANAState is what the target says of the path; "" when the kernel
	// shows none (the target does not report ANA).
	ANAState string
}

// Live reports whether I/O can go down the path now: its controller is
// live and the target has not made it inaccessible. A path in ANA
// "change" is in transition; the kernel holds its I/O until it settles.
func (p PathState) Live() bool {
	if p.Controller.State != StateLive {
		return false
	}
	switch p.ANAState {
	case "", ANAOptimized, ANANonOptimized:
		return true
	}
	return false
}

// String names the path for a person: "nvme3 (192.0.2.10:4420) connecting"
// or "nvme3 (...) live, ANA inaccessible".
func (p PathState) String() string {
	c := p.Controller
	portal := nvme.Portal{TrAddr: c.TrAddr, TrSvcID: c.TrSvcID, HostTrAddr: c.HostTrAddr, HostIface: c.HostIface}
	s := fmt.Sprintf("%s (%s) %s", c.Name, portal, c.State)
	if p.ANAState != "" && p.ANAState != ANAOptimized {
		s += ", ANA " + p.ANAState
	}
	return s
}

// Paths lists the paths the kernel has to ns now: with native multipath
// every controller of the subsystem with a path disk for ns's nsid, each
// with its ANA state; without it, the disk's own controller. A
// controller that goes away while read is left out; any other failure is
// an error, never a shorter list.
func (k *kernelConnector) Paths(ns Namespace) ([]PathState, error) {
	if classifyDisk(ns.Name) != diskPlain {
		return nil, fmt.Errorf("%q is not an NVMe namespace block device (nvmeXnY)", ns.Name)
	}
	real, err := filepath.EvalSymlinks(k.sys.blockDir(ns.Name))
	if err != nil {
		return nil, fmt.Errorf("namespace %s: %w", ns.Name, err)
	}
	parent := filepath.Dir(real)
	if !strings.HasPrefix(filepath.Base(parent), "nvme-subsys") {
		ctrl, err := k.sys.controller(filepath.Base(parent))
		if errors.Is(err, ErrControllerGone) {
			return nil, nil
		}
		if err != nil {
			return nil, err
		}
		ana, err := readOptionalAttr(real, "ana_state")
		if err != nil {
			return nil, fmt.Errorf("namespace %s: %w", ns.Name, err)
		}
		return []PathState{{Controller: ctrl, Disk: ns.Name, ANAState: ana}}, nil
	}
	nsid := ns.NSID
	if nsid == 0 {
		v, err := readAttr(real, "nsid")
		if err != nil {
			return nil, fmt.Errorf("namespace %s: %w", ns.Name, err)
		}
		n, err := parseSysfsInt(v)
		if err != nil {
			return nil, fmt.Errorf("namespace %s: nsid %q: %w", ns.Name, v, err)
		}
		nsid = uint32(n) //nolint:gosec // sysfs shows a 32-bit nsid
	}
	return k.subsystemPaths(parent, nsid)
}

// subsystemPaths lists the controllers linked from a subsystem directory
// that have a path disk to nsid, with the disk and its ANA state.
func (k *kernelConnector) subsystemPaths(subDir string, nsid uint32) ([]PathState, error) {
	entries, err := readDirNames(subDir)
	if err != nil {
		return nil, err
	}
	var out []PathState
	for _, e := range entries {
		if !isControllerName(e) {
			continue
		}
		disk, ana, err := pathDiskTo(filepath.Join(subDir, e), nsid)
		if err != nil {
			return nil, fmt.Errorf("paths of subsystem %s: controller %s: %w", filepath.Base(subDir), e, err)
		}
		if disk == "" {
			continue
		}
		ctrl, err := k.sys.controller(e)
		if errors.Is(err, ErrControllerGone) {
			continue
		}
		if err != nil {
			return nil, err
		}
		out = append(out, PathState{Controller: ctrl, Disk: disk, ANAState: ana})
	}
	sortPaths(out)
	return out, nil
}

// pathDiskTo finds the controller's path disk to nsid and reads its ANA
// state; "" when it has none (or the controller went away meanwhile).
func pathDiskTo(ctrlDir string, nsid uint32) (disk, ana string, err error) {
	entries, err := readDirNames(ctrlDir)
	if errors.Is(err, fs.ErrNotExist) {
		return "", "", nil
	}
	if err != nil {
		return "", "", err
	}
	want := fmt.Sprint(nsid)
	for _, e := range entries {
		if classifyDisk(e) != diskPath {
			continue
		}
		dir := filepath.Join(ctrlDir, e)
		got, err := readAttr(dir, "nsid")
		if gone(err) {
			continue
		}
		if err != nil {
			return "", "", err
		}
		if got != want {
			continue
		}
		ana, err := readOptionalAttr(dir, "ana_state")
		if gone(err) {
			return "", "", nil
		}
		if err != nil {
			return "", "", err
		}
		return e, ana, nil
	}
	return "", "", nil
}

// gone reports an error that means the object was removed while read.
func gone(err error) bool {
	return errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENODEV)
}

func sortPaths(ps []PathState) {
	for i := 1; i < len(ps); i++ {
		for j := i; j > 0 && ps[j].Controller.Instance < ps[j-1].Controller.Instance; j-- {
			ps[j], ps[j-1] = ps[j-1], ps[j]
		}
	}
}

// Multipath reports whether the kernel runs native NVMe multipath: one
// head disk per namespace over every path. With nvme_core.multipath=N
// each controller has its own disk for the namespace, so several portals
// would give several devices for one volume. A kernel built without
// multipath has no such parameter: off.
func (k *kernelConnector) Multipath() (bool, error) {
	dir := filepath.Join(k.sys.root, "module", "nvme_core")
	v, err := readAttr(filepath.Join(dir, "parameters"), "multipath")
	switch {
	case err == nil:
		return v == "Y" || v == "y" || v == "1", nil
	case errors.Is(err, fs.ErrNotExist):
		if _, serr := readDirNames(dir); serr != nil {
			return false, fmt.Errorf("native multipath: nvme_core is not loaded: %w", serr)
		}
		return false, nil
	default:
		return false, fmt.Errorf("native multipath: %w", err)
	}
}

// ErrIOPolicyUnsupported: the running kernel does not offer the I/O
// policy a volume asks for.
var ErrIOPolicyUnsupported = errors.New("the kernel does not offer this multipath I/O policy")

// SetIOPolicy sets the I/O policy of ctrl's subsystem, and reads it back.
// The kernel refuses a policy it does not have with EINVAL, which is how
// the running kernel's offer is learned without guessing from its
// version: the error then matches ErrIOPolicyUnsupported.
func (k *kernelConnector) SetIOPolicy(ctrl Controller, policy nvme.IOPolicy) error {
	dir, err := k.controllerSubsystemDir(ctrl)
	if err != nil {
		return fmt.Errorf("set iopolicy %s: %w", policy, err)
	}
	cur, err := readAttr(dir, "iopolicy")
	if err != nil {
		return fmt.Errorf("set iopolicy %s of subsystem %q: %w", policy, ctrl.Subsystem, err)
	}
	if cur == string(policy) {
		return nil
	}
	if err := k.sys.writeAttr(dir, "iopolicy", string(policy)); err != nil {
		if errors.Is(err, syscall.EINVAL) {
			return fmt.Errorf("iopolicy %q for subsystem %q: %w (it keeps %q)", policy, ctrl.Subsystem, ErrIOPolicyUnsupported, cur)
		}
		return fmt.Errorf("set iopolicy %s of subsystem %q: %w", policy, ctrl.Subsystem, err)
	}
	got, err := readAttr(dir, "iopolicy")
	if err != nil {
		return fmt.Errorf("read back iopolicy of subsystem %q: %w", ctrl.Subsystem, err)
	}
	if got != string(policy) {
		return fmt.Errorf("subsystem %q reads iopolicy %q after writing %q: is something else setting it?", ctrl.Subsystem, got, policy)
	}
	k.log.Info("iopolicy set", "nqn", ctrl.Subsystem, "iopolicy", policy, "was", cur)
	return nil
}

// IOPolicy reads the I/O policy of ctrl's subsystem.
func (k *kernelConnector) IOPolicy(ctrl Controller) (nvme.IOPolicy, error) {
	dir, err := k.controllerSubsystemDir(ctrl)
	if err != nil {
		return "", fmt.Errorf("iopolicy: %w", err)
	}
	v, err := readAttr(dir, "iopolicy")
	if err != nil {
		return "", fmt.Errorf("iopolicy of subsystem %q: %w", ctrl.Subsystem, err)
	}
	return nvme.IOPolicy(v), nil
}

// controllerSubsystemDir is the nvme-subsystem directory holding ctrl.
func (k *kernelConnector) controllerSubsystemDir(ctrl Controller) (string, error) {
	entries, err := readDirNames(k.sys.controllerDir(ctrl.Name))
	if errors.Is(err, fs.ErrNotExist) {
		return "", fmt.Errorf("controller %s: %w", ctrl.Name, ErrControllerGone)
	}
	if err != nil {
		return "", err
	}
	return k.sys.subsystemDir(ctrl.Name, ctrl.Subsystem, subsystemHint(entries))
}
