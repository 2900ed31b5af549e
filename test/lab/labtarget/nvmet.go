package labtarget

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
)

// ConfigfsRoot is where nvmet lives in configfs inside the VM.
const ConfigfsRoot = "/sys/kernel/config/nvmet"

// ErrUnknownSubsystem means an NQN that is not part of the layout.
var ErrUnknownSubsystem = errors.New("not a subsystem of the lab layout")

// Nvmet acts on one nvmet configfs tree.
type Nvmet struct {
	Root string
}

// Unlink removes the port → subsystem link: the target stops serving that
// subsystem and its controllers on the port are torn down, so hosts see an
// outage (reconnects fail) until Link. The port keeps listening while
// other subsystems are linked to it. Unlinking an unlinked subsystem is
// not an error, so it is safe in t.Cleanup.
func Unlink(nqn string) error { return Nvmet{Root: ConfigfsRoot}.Unlink(nqn) }

// Link restores the port → subsystem link removed by Unlink. Linking a
// linked subsystem is not an error.
func Link(nqn string) error { return Nvmet{Root: ConfigfsRoot}.Link(nqn) }

// Linked reports whether the subsystem is linked to the port now.
func Linked(nqn string) (bool, error) { return Nvmet{Root: ConfigfsRoot}.Linked(nqn) }

// Unlink removes the port → subsystem link; see the package function.
func (n Nvmet) Unlink(nqn string) error {
	if !known(nqn) {
		return fmt.Errorf("unlink %q: %w", nqn, ErrUnknownSubsystem)
	}
	err := os.Remove(n.portLink(nqn))
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("unlink %s from port %s: %w", nqn, PortID, err)
	}
	return nil
}

// Link creates the port → subsystem link; see the package function.
func (n Nvmet) Link(nqn string) error {
	if !known(nqn) {
		return fmt.Errorf("link %q: %w", nqn, ErrUnknownSubsystem)
	}
	err := os.Symlink(n.subsystemDir(nqn), n.portLink(nqn))
	if err != nil && !errors.Is(err, fs.ErrExist) {
		return fmt.Errorf("link %s to port %s: %w", nqn, PortID, err)
	}
	return nil
}

// Linked reports whether the subsystem is linked to the port.
func (n Nvmet) Linked(nqn string) (bool, error) {
	if !known(nqn) {
		return false, fmt.Errorf("linked %q: %w", nqn, ErrUnknownSubsystem)
	}
	_, err := os.Lstat(n.portLink(nqn))
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, fs.ErrNotExist):
		return false, nil
	default:
		return false, fmt.Errorf("linked %s: %w", nqn, err)
	}
}

// Create builds subsystems, their namespaces over the given block devices
// and the port, in the order nvmet requires: allowed hosts need
// attr_allow_any_host=0 first, a namespace needs its device before enable,
// and a port needs its address before the first link starts the listener.
// devices maps "<nqn>/<nsid>" (see DeviceKey) to a block device path.
func (n Nvmet) Create(subsystems []Subsystem, devices map[string]string) error {
	for _, s := range subsystems {
		if err := n.createSubsystem(s, devices); err != nil {
			return fmt.Errorf("subsystem %s: %w", s.NQN, err)
		}
	}
	port := n.portDir()
	if err := mkdir(port); err != nil {
		return err
	}
	for _, attr := range [][2]string{
		{"addr_trtype", Transport}, {"addr_adrfam", AddressFamily},
		{"addr_traddr", TrAddr}, {"addr_trsvcid", TrSvcID},
	} {
		if err := writeAttr(filepath.Join(port, attr[0]), attr[1]); err != nil {
			return fmt.Errorf("port %s: %w", PortID, err)
		}
	}
	if err := mkdir(filepath.Join(port, "subsystems")); err != nil {
		return err
	}
	for _, s := range subsystems {
		if err := n.Link(s.NQN); err != nil {
			return err
		}
	}
	return nil
}

// DeviceKey names a namespace in the devices map of Create.
func DeviceKey(nqn string, nsid uint32) string {
	return nqn + "/" + strconv.FormatUint(uint64(nsid), 10)
}

func (n Nvmet) createSubsystem(s Subsystem, devices map[string]string) error {
	dir := n.subsystemDir(s.NQN)
	if err := mkdir(dir); err != nil {
		return err
	}
	anyHost := "0"
	if s.AllowAnyHost {
		anyHost = "1"
	}
	if err := writeAttr(filepath.Join(dir, "attr_allow_any_host"), anyHost); err != nil {
		return err
	}
	for _, host := range s.AllowedHosts {
		hostDir := filepath.Join(n.Root, "hosts", host)
		if err := mkdir(hostDir); err != nil {
			return err
		}
		if err := mkdir(filepath.Join(dir, "allowed_hosts")); err != nil {
			return err
		}
		if err := os.Symlink(hostDir, filepath.Join(dir, "allowed_hosts", host)); err != nil {
			return fmt.Errorf("allow host %s: %w", host, err)
		}
	}
	for _, ns := range s.Namespaces {
		device, ok := devices[DeviceKey(s.NQN, ns.NSID)]
		if !ok {
			return fmt.Errorf("namespace %d: no backing device", ns.NSID)
		}
		if err := n.createNamespace(dir, ns, device); err != nil {
			return fmt.Errorf("namespace %d: %w", ns.NSID, err)
		}
	}
	return nil
}

func (n Nvmet) createNamespace(subsystemDir string, ns Namespace, device string) error {
	dir := filepath.Join(subsystemDir, "namespaces", strconv.FormatUint(uint64(ns.NSID), 10))
	if err := mkdir(dir); err != nil {
		return err
	}
	// Without explicit ids nvmet makes up a random uuid per boot; tests
	// verify namespaces by these.
	for _, attr := range [][2]string{
		{"device_path", device}, {"device_uuid", ns.UUID}, {"device_nguid", ns.NGUID}, {"enable", "1"},
	} {
		if err := writeAttr(filepath.Join(dir, attr[0]), attr[1]); err != nil {
			return err
		}
	}
	return nil
}

func (n Nvmet) subsystemDir(nqn string) string {
	return filepath.Join(n.Root, "subsystems", nqn)
}

func (n Nvmet) portDir() string {
	return filepath.Join(n.Root, "ports", PortID)
}

func (n Nvmet) portLink(nqn string) string {
	return filepath.Join(n.portDir(), "subsystems", nqn)
}

// mkdir creates dir and any missing parent. In configfs the parents a
// mkdir implies (namespaces/, allowed_hosts/) already exist, so this is
// a plain mkdir there and builds the same tree in a test directory.
func mkdir(dir string) error {
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return fmt.Errorf("mkdir: %w", err)
	}
	return nil
}

// writeAttr writes a configfs attribute; the mode only matters for the
// plain files of a test tree.
func writeAttr(path, value string) error {
	if err := os.WriteFile(path, []byte(value), 0o600); err != nil {
		return fmt.Errorf("write %q: %w", value, err)
	}
	return nil
}

// PortDown unlinks every subsystem from the port, so its listener closes
// and reconnects get ECONNREFUSED: a target that is down or unreachable,
// the outage hosts must ride out. (Unlinking one subsystem while others
// keep the port open is another thing: the target answers the reconnect
// with "subsystem not found", a status with Do Not Retry set, and Linux
// 6.12 then deletes the controller at once whatever ctrl_loss_tmo says;
// 6.1 keeps retrying.) restore links them back.
func PortDown() (restore func() error, err error) { return Nvmet{Root: ConfigfsRoot}.PortDown() }

// PortDown unlinks every subsystem of the port; see the package function.
func (n Nvmet) PortDown() (func() error, error) {
	dir := filepath.Join(n.portDir(), "subsystems")
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("port %s down: %w", PortID, err)
	}
	var linked []string
	restore := func() error {
		var errs []error
		for _, nqn := range linked {
			err := os.Symlink(n.subsystemDir(nqn), filepath.Join(dir, nqn))
			if err != nil && !errors.Is(err, fs.ErrExist) {
				errs = append(errs, fmt.Errorf("link %s to port %s: %w", nqn, PortID, err))
			}
		}
		return errors.Join(errs...)
	}
	for _, e := range entries {
		if err := os.Remove(filepath.Join(dir, e.Name())); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return restore, fmt.Errorf("unlink %s from port %s: %w", e.Name(), PortID, errors.Join(err, restore()))
		}
		linked = append(linked, e.Name())
	}
	return restore, nil
}
