package labtarget

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
)

// The multipath target: one subsystem exported on two ports of its own,
// each on an address of its own (two target NICs, as in production), with
// two ANA groups. It is built by the tests that use it (CreateMultipath)
// and taken down after them, so the rest of the layout is untouched.
//
// Each port carries this subsystem alone: unlinking it closes the port's
// listener, so the path's reconnects are refused (ECONNREFUSED) as when a
// cable or a switch fails. Unlinking one subsystem from a port others keep
// open is something else: the target answers "subsystem not found", and
// Linux 6.12 then deletes the controller at once.
const (
	SubsystemMulti = "nqn.2026-01.io.nvmeof.lab:multi"
	MultiNS1UUID   = "88888888-8888-4888-8888-888888888888"
	MultiNS1NGUID  = "88888888888888888888888888888888"
	MultiNS2UUID   = "99999999-9999-4999-8999-999999999999"
	MultiNS2NGUID  = "99999999999999999999999999999999"
	// MultiTrSvcID is the port number on both addresses.
	MultiTrSvcID = "4420"
	// MultiNS2ANAGroup is namespace 2's ANA group; namespace 1 is in
	// group 1, which every port has.
	MultiNS2ANAGroup = 2
)

// Path is one port of the multipath target: its nvmet port ID and address.
type Path struct {
	PortID string
	TrAddr string
}

// PathA and PathB are the two ports of SubsystemMulti. Port IDs are far
// from the layout's port 1, so tests adding ports of their own do not
// collide.
var (
	PathA = Path{PortID: "21", TrAddr: "127.0.0.2"}
	PathB = Path{PortID: "22", TrAddr: "127.0.0.3"}
)

// MultipathPaths lists the paths, A first.
func MultipathPaths() []Path { return []Path{PathA, PathB} }

// MultiNamespaces are SubsystemMulti's namespaces.
func MultiNamespaces() []Namespace {
	return []Namespace{
		{NSID: 1, UUID: MultiNS1UUID, NGUID: MultiNS1NGUID},
		{NSID: 2, UUID: MultiNS2UUID, NGUID: MultiNS2NGUID},
	}
}

// ANA states nvmet takes for a port's ANA group.
var anaStates = []string{"optimized", "non-optimized", "inaccessible", "persistent-loss", "change"}

// CreateMultipath builds SubsystemMulti over the files in backing (by
// nsid; regular files, so with buffered I/O), namespace 2 in ANA group 2,
// and its two ports with both ANA groups optimized. A half-built target is
// taken down again on failure.
func (n Nvmet) CreateMultipath(backing map[uint32]string) (err error) {
	defer func() {
		if err != nil {
			err = errors.Join(err, n.RemoveMultipath())
		}
	}()
	sub := n.subsystemDir(SubsystemMulti)
	if err := mkdir(sub); err != nil {
		return err
	}
	if err := writeAttr(filepath.Join(sub, "attr_allow_any_host"), "1"); err != nil {
		return err
	}
	for _, p := range MultipathPaths() {
		if err := n.createPathPort(p); err != nil {
			return err
		}
	}
	for _, ns := range MultiNamespaces() {
		file, ok := backing[ns.NSID]
		if !ok {
			return fmt.Errorf("namespace %d: no backing file", ns.NSID)
		}
		dir := filepath.Join(sub, "namespaces", strconv.FormatUint(uint64(ns.NSID), 10))
		if err := mkdir(dir); err != nil {
			return err
		}
		group := 1
		if ns.NSID == 2 {
			group = MultiNS2ANAGroup
		}
		for _, attr := range [][2]string{
			{"device_path", file}, {"buffered_io", "1"}, {"device_uuid", ns.UUID}, {"device_nguid", ns.NGUID},
			{"ana_grpid", strconv.Itoa(group)}, {"enable", "1"},
		} {
			if err := writeAttr(filepath.Join(dir, attr[0]), attr[1]); err != nil {
				return fmt.Errorf("namespace %d: %w", ns.NSID, err)
			}
		}
	}
	for _, p := range MultipathPaths() {
		if err := n.RestorePath(p); err != nil {
			return err
		}
	}
	return nil
}

// createPathPort makes one port: address, transport, and ANA group 2
// beside the group 1 nvmet gives every port. nvmet starts a new group
// inaccessible, and the host then shows no device for its namespaces: it
// is made optimized.
func (n Nvmet) createPathPort(p Path) error {
	dir := filepath.Join(n.Root, "ports", p.PortID)
	if err := mkdir(dir); err != nil {
		return err
	}
	for _, attr := range [][2]string{
		{"addr_trtype", Transport}, {"addr_adrfam", AddressFamily}, {"addr_traddr", p.TrAddr}, {"addr_trsvcid", MultiTrSvcID},
	} {
		if err := writeAttr(filepath.Join(dir, attr[0]), attr[1]); err != nil {
			return fmt.Errorf("port %s: %w", p.PortID, err)
		}
	}
	for _, d := range []string{"subsystems", filepath.Join("ana_groups", strconv.Itoa(MultiNS2ANAGroup))} {
		if err := mkdir(filepath.Join(dir, d)); err != nil {
			return fmt.Errorf("port %s: %w", p.PortID, err)
		}
	}
	return n.SetANAState(p, MultiNS2ANAGroup, "optimized")
}

// CutPath unlinks SubsystemMulti from the path's port: its listener
// closes and the host's controller on it starts reconnecting. Cutting a
// cut path is not an error.
func (n Nvmet) CutPath(p Path) error {
	err := os.Remove(n.pathLink(p))
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("cut path %s (port %s): %w", p.TrAddr, p.PortID, err)
	}
	return nil
}

// RestorePath links SubsystemMulti to the path's port again.
func (n Nvmet) RestorePath(p Path) error {
	err := os.Symlink(n.subsystemDir(SubsystemMulti), n.pathLink(p))
	if err != nil && !errors.Is(err, fs.ErrExist) {
		return fmt.Errorf("restore path %s (port %s): %w", p.TrAddr, p.PortID, err)
	}
	return nil
}

// SetANAState sets the ANA state of an ANA group on the path's port: what
// the target tells hosts about reaching the group's namespaces there.
func (n Nvmet) SetANAState(p Path, group int, state string) error {
	if !slices.Contains(anaStates, state) {
		return fmt.Errorf("ANA state %q: must be one of %v", state, anaStates)
	}
	path := filepath.Join(n.Root, "ports", p.PortID, "ana_groups", strconv.Itoa(group), "ana_state")
	if err := writeAttr(path, state); err != nil {
		return fmt.Errorf("port %s ANA group %d: %w", p.PortID, group, err)
	}
	return nil
}

// RemoveMultipath takes the multipath target down, in the order nvmet
// requires: links, ANA groups and ports, namespaces, subsystem. What is
// not there is skipped, so it is safe in t.Cleanup after a failed create.
func (n Nvmet) RemoveMultipath() error {
	var errs []error
	rm := func(path string) {
		if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
			errs = append(errs, fmt.Errorf("remove %s: %w", path, err))
		}
	}
	for _, p := range MultipathPaths() {
		rm(n.pathLink(p))
	}
	for _, p := range MultipathPaths() {
		dir := filepath.Join(n.Root, "ports", p.PortID)
		rm(filepath.Join(dir, "ana_groups", strconv.Itoa(MultiNS2ANAGroup)))
		rm(dir)
	}
	sub := n.subsystemDir(SubsystemMulti)
	for _, ns := range MultiNamespaces() {
		dir := filepath.Join(sub, "namespaces", strconv.FormatUint(uint64(ns.NSID), 10))
		if _, err := os.Stat(dir); err == nil {
			if err := writeAttr(filepath.Join(dir, "enable"), "0"); err != nil {
				errs = append(errs, err)
			}
		}
		rm(dir)
	}
	rm(sub)
	return errors.Join(errs...)
}

func (n Nvmet) pathLink(p Path) string {
	return filepath.Join(n.Root, "ports", p.PortID, "subsystems", SubsystemMulti)
}
