// Package fakeconnector simulates NVMe-oF targets and the kernel's
// controllers behind the kernel.Connector interface, for the plugin's unit
// tests and csi-sanity. Namespaces are real files under a temporary device
// root: a controller's block device /dev/nvmeXnY is a hard link to the
// namespace's backing file, so data written through one controller is seen
// by the next, and the device node vanishes when the controller goes.
package fakeconnector

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/nvmeof/nvmeof/shared/nvme"
	"github.com/nvmeof/nvmeof/shared/nvme/kernel"
)

// ErrAlready is what the kernel answers when two connects to one subsystem
// race; the plugin must coalesce them so that this never happens.
var ErrAlready = fmt.Errorf("fake kernel: controller for this subsystem is being created: %w", syscall.EALREADY)

// Namespace describes one simulated namespace of a target.
type Namespace struct {
	NSID      uint32
	UUID      string
	NGUID     string
	SizeBytes int64
}

type target struct {
	addr, port string
	namespaces []Namespace
	down       bool
}

type controller struct {
	kernel.Controller
	conn nvme.Connection
}

// Connector is a simulated host: targets it can reach and the controllers
// it holds. Safe for concurrent use.
type Connector struct {
	devRoot string

	mu          sync.Mutex
	targets     map[string]*target // by subsystem NQN
	controllers map[string]*controller
	nextID      int
	inFlight    map[string]bool
	fsErrors    map[string]int // by device name
	// Connects counts controllers created; Disconnects those deleted.
	connects, disconnects int
	// connectGate, when set, holds every Connect until it is closed;
	// connectEntered hears of each Connect that waits there.
	connectGate    chan struct{}
	connectEntered chan struct{}
	gatedNQN       string
	// latency is how long the simulated kernel takes to create a
	// controller (a TCP connect and the fabrics handshake).
	latency time.Duration
	// hosts is the simulated DNS: host name to address.
	hosts map[string]string
}

var _ kernel.Connector = (*Connector)(nil)

// New returns a host whose device nodes live in devRoot (created).
func New(devRoot string) (*Connector, error) {
	if err := os.MkdirAll(filepath.Join(devRoot, ".backing"), 0o750); err != nil {
		return nil, fmt.Errorf("fake connector: create device root: %w", err)
	}
	return &Connector{
		devRoot:     devRoot,
		targets:     map[string]*target{},
		controllers: map[string]*controller{},
		inFlight:    map[string]bool{},
		fsErrors:    map[string]int{},
	}, nil
}

// DevRoot is where device nodes appear.
func (c *Connector) DevRoot() string { return c.devRoot }

// AddTarget makes subsystem nqn reachable at addr:port with namespaces.
// Each namespace gets a sparse backing file of its size.
func (c *Connector) AddTarget(addr, port, nqn string, namespaces ...Namespace) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, ns := range namespaces {
		f, err := os.OpenFile(c.backingPath(nqn, ns.NSID), os.O_RDWR|os.O_CREATE, 0o600)
		if err != nil {
			return fmt.Errorf("fake connector: backing file of %s nsid %d: %w", nqn, ns.NSID, err)
		}
		err = f.Truncate(ns.SizeBytes)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return fmt.Errorf("fake connector: size backing file of %s nsid %d: %w", nqn, ns.NSID, err)
		}
	}
	c.targets[nqn] = &target{addr: addr, port: port, namespaces: slices.Clone(namespaces)}
	return nil
}

// SetDown makes a target unreachable (true) or reachable again. Its
// controllers go to "connecting" and come back "live", like the kernel's.
func (c *Connector) SetDown(nqn string, down bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if t, ok := c.targets[nqn]; ok {
		t.down = down
	}
	for _, ctrl := range c.controllers {
		if ctrl.Subsystem == nqn {
			ctrl.State = kernel.StateLive
			if down {
				ctrl.State = kernel.StateConnecting
			}
		}
	}
}

// ResizeNamespace grows (or shrinks) a namespace, as a target would.
func (c *Connector) ResizeNamespace(nqn string, nsid uint32, size int64) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	t, ok := c.targets[nqn]
	if !ok {
		return fmt.Errorf("fake connector: no target %s: %w", nqn, fs.ErrNotExist)
	}
	for i := range t.namespaces {
		if t.namespaces[i].NSID == nsid {
			t.namespaces[i].SizeBytes = size
			if err := os.Truncate(c.backingPath(nqn, nsid), size); err != nil {
				return fmt.Errorf("fake connector: resize: %w", err)
			}
			return nil
		}
	}
	return fmt.Errorf("fake connector: no nsid %d on %s: %w", nsid, nqn, fs.ErrNotExist)
}

// SetFSErrors makes Health report n file-system errors for a device name.
func (c *Connector) SetFSErrors(device string, n int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.fsErrors[filepath.Base(device)] = n
}

// HoldConnects makes every Connect to subsystem nqn wait until release is
// called; entered receives once for each Connect that starts waiting.
func (c *Connector) HoldConnects(nqn string) (entered <-chan struct{}, release func()) {
	c.mu.Lock()
	defer c.mu.Unlock()
	gate := make(chan struct{})
	c.connectGate, c.gatedNQN = gate, nqn
	c.connectEntered = make(chan struct{}, 1024)
	var once sync.Once
	return c.connectEntered, func() {
		once.Do(func() {
			c.mu.Lock()
			c.connectGate = nil
			c.mu.Unlock()
			close(gate)
		})
	}
}

// SetConnectLatency makes creating a controller take d, as a kernel's
// connect over the network does; benchmarks use it, unit tests do not.
func (c *Connector) SetConnectLatency(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.latency = d
}

// Counts reports how many controllers were created and deleted.
func (c *Connector) Counts() (connects, disconnects int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.connects, c.disconnects
}

// Connect adopts a usable matching controller or creates one.
func (c *Connector) Connect(ctx context.Context, vc nvme.ValidConnection) (kernel.Controller, error) {
	conn := vc.Connection()
	key := connKey(conn)
	c.mu.Lock()
	if c.inFlight[key] {
		c.mu.Unlock()
		return kernel.Controller{}, ErrAlready
	}
	c.inFlight[key] = true
	gate, entered := c.connectGate, c.connectEntered
	if c.gatedNQN != conn.Target.NQN {
		gate = nil
	}
	c.mu.Unlock()
	defer func() {
		c.mu.Lock()
		delete(c.inFlight, key)
		c.mu.Unlock()
	}()
	if gate != nil {
		entered <- struct{}{}
		select {
		case <-gate:
		case <-ctx.Done():
			return kernel.Controller{}, ctx.Err()
		}
	}
	if err := ctx.Err(); err != nil {
		return kernel.Controller{}, err
	}
	c.mu.Lock()
	_, exists := c.findLocked(conn)
	latency := c.latency
	c.mu.Unlock()
	if !exists && latency > 0 {
		t := time.NewTimer(latency)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return kernel.Controller{}, ctx.Err()
		}
	}

	c.mu.Lock()
	defer c.mu.Unlock()
	if ctrl, ok := c.findLocked(conn); ok {
		c.controllers[ctrl.Name].CtrlLossTmo = conn.Config.CtrlLossTmo
		c.controllers[ctrl.Name].ReconnectDelay = conn.Config.ReconnectDelay
		return c.controllers[ctrl.Name].Controller, nil
	}
	t, ok := c.targets[conn.Target.NQN]
	if !ok || t.addr != conn.Target.TrAddr || t.port != conn.Target.TrSvcID {
		return kernel.Controller{}, fmt.Errorf("fake connector: connect to %s at %s:%s: %w",
			conn.Target.NQN, conn.Target.TrAddr, conn.Target.TrSvcID, syscall.EINVAL)
	}
	if t.down {
		return kernel.Controller{}, fmt.Errorf("fake connector: connect to %s: %w", conn.Target.NQN, syscall.ECONNREFUSED)
	}
	id := c.nextID
	c.nextID++
	ctrl := kernel.Controller{
		Name: "nvme" + strconv.Itoa(id), Instance: id, State: kernel.StateLive,
		Subsystem: conn.Target.NQN, Transport: conn.Target.Transport,
		TrAddr: conn.Target.TrAddr, TrSvcID: conn.Target.TrSvcID,
		HostTrAddr: conn.Target.HostTrAddr, HostIface: conn.Target.HostIface,
		HostNQN: conn.Host.NQN, HostID: conn.Host.ID, CntlID: id + 1,
		CtrlLossTmo: conn.Config.CtrlLossTmo, ReconnectDelay: conn.Config.ReconnectDelay, FastIOFailTmo: -1, KeepAliveTmo: 5,
	}
	for _, ns := range t.namespaces {
		if err := os.Link(c.backingPath(conn.Target.NQN, ns.NSID), c.devicePath(id, ns.NSID)); err != nil && !errors.Is(err, fs.ErrExist) {
			return kernel.Controller{}, fmt.Errorf("fake connector: create device node: %w", err)
		}
	}
	c.controllers[ctrl.Name] = &controller{Controller: ctrl, conn: conn}
	c.connects++
	return ctrl, nil
}

// SetHost makes the simulated resolver answer name with addr.
func (c *Connector) SetHost(name, addr string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.hosts == nil {
		c.hosts = map[string]string{}
	}
	c.hosts[name] = addr
}

// ResolveTarget resolves a host name set with SetHost and writes addresses
// in canonical form, as the kernel connector does.
func (c *Connector) ResolveTarget(_ context.Context, t nvme.Target) (nvme.Target, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if addr, ok := c.hosts[t.TrAddr]; ok {
		t.TrAddr = addr
	}
	a, err := netip.ParseAddr(t.TrAddr)
	if err != nil {
		return nvme.Target{}, fmt.Errorf("resolve target host %q: %w", t.TrAddr, &net.DNSError{Err: "no such host", Name: t.TrAddr, IsNotFound: true})
	}
	t.TrAddr = a.Unmap().String()
	return t, nil
}

// Find returns the usable controller matching conn.
func (c *Connector) Find(vc nvme.ValidConnection) (kernel.Controller, bool, error) {
	conn := vc.Connection()
	c.mu.Lock()
	defer c.mu.Unlock()
	ctrl, ok := c.findLocked(conn)
	return ctrl, ok, nil
}

func (c *Connector) findLocked(conn nvme.Connection) (kernel.Controller, bool) {
	for _, name := range c.sortedNames() {
		ctrl := c.controllers[name]
		if ctrl.Usable() && connKey(ctrl.conn) == connKey(conn) {
			return ctrl.Controller, true
		}
	}
	return kernel.Controller{}, false
}

// Resolve finds the namespace sel picks and verifies its identity.
func (c *Connector) Resolve(ctx context.Context, ctrl kernel.Controller, sel nvme.NamespaceSelector) (kernel.Namespace, error) {
	if err := ctx.Err(); err != nil {
		return kernel.Namespace{}, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.controllers[ctrl.Name]; !ok {
		return kernel.Namespace{}, fmt.Errorf("fake connector: controller %s is gone: %w", ctrl.Name, syscall.ENODEV)
	}
	t := c.targets[ctrl.Subsystem]
	for _, ns := range t.namespaces {
		byID := sel.NSID != 0 && ns.NSID == sel.NSID
		byIdentity := sel.NSID == 0 && ((sel.UUID != "" && sel.UUID == ns.UUID) || (sel.NGUID != "" && sel.NGUID == ns.NGUID))
		if !byID && !byIdentity {
			continue
		}
		if (sel.UUID != "" && sel.UUID != ns.UUID) || (sel.NGUID != "" && sel.NGUID != ns.NGUID) {
			return kernel.Namespace{}, &mismatchError{nsid: ns.NSID, sel: sel.String()}
		}
		return c.namespaceLocked(ctrl.Instance, ctrl.Subsystem, ns), nil
	}
	// Like the kernel's: a namespace that is not there may still be on its
	// way, so Resolve waits for it until ctx ends.
	c.mu.Unlock()
	<-ctx.Done()
	c.mu.Lock()
	return kernel.Namespace{}, fmt.Errorf("fake connector: no namespace %s on %s: %w", sel, ctrl.Subsystem, ctx.Err())
}

// mismatchError is a namespace whose identity differs from the selector's:
// permanent, never retried.
type mismatchError struct {
	nsid uint32
	sel  string
}

func (e *mismatchError) Error() string {
	return fmt.Sprintf("fake connector: namespace %d does not match %s", e.nsid, e.sel)
}

func (e *mismatchError) Permanent() bool { return true }

// Disconnect deletes a controller and its device nodes.
func (c *Connector) Disconnect(ctx context.Context, ctrl kernel.Controller) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	cur, ok := c.controllers[ctrl.Name]
	if !ok {
		return nil
	}
	for _, ns := range c.targets[cur.Subsystem].namespaces {
		if err := os.Remove(c.devicePath(cur.Instance, ns.NSID)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("fake connector: remove device node: %w", err)
		}
	}
	delete(c.controllers, ctrl.Name)
	c.disconnects++
	return nil
}

// UpdateReconnectParams writes cfg's reconnection parameters.
func (c *Connector) UpdateReconnectParams(ctrl kernel.Controller, cfg nvme.ConnectionConfig) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	cur, ok := c.controllers[ctrl.Name]
	if !ok {
		return fmt.Errorf("fake connector: controller %s: %w", ctrl.Name, fs.ErrNotExist)
	}
	cur.CtrlLossTmo, cur.ReconnectDelay = cfg.CtrlLossTmo, cfg.ReconnectDelay
	cur.conn.Config = cfg
	return nil
}

// Controllers lists every controller, by name.
func (c *Connector) Controllers() ([]kernel.Controller, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]kernel.Controller, 0, len(c.controllers))
	for _, name := range c.sortedNames() {
		out = append(out, c.controllers[name].Controller)
	}
	return out, nil
}

// NamespaceOf maps nvmeXnY (or its path) to its namespace and controller.
func (c *Connector) NamespaceOf(device string) (kernel.Namespace, []kernel.Controller, error) {
	name := filepath.Base(device)
	inst, nsid, ok := parseDeviceName(name)
	c.mu.Lock()
	defer c.mu.Unlock()
	if ok {
		for _, ctrl := range c.controllers {
			if ctrl.Instance != inst {
				continue
			}
			for _, ns := range c.targets[ctrl.Subsystem].namespaces {
				if ns.NSID == nsid {
					return c.namespaceLocked(inst, ctrl.Subsystem, ns), []kernel.Controller{ctrl.Controller}, nil
				}
			}
		}
	}
	return kernel.Namespace{}, nil, fmt.Errorf("fake connector: no NVMe namespace %s: %w", name, fs.ErrNotExist)
}

// Health reports the controller state and injected file-system errors.
func (c *Connector) Health(ctrl kernel.Controller, ns kernel.Namespace, _ string) (kernel.Health, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	var h kernel.Health
	if cur, ok := c.controllers[ctrl.Name]; ok {
		h.ControllerState = cur.State
	}
	h.FSErrors = c.fsErrors[ns.Name]
	switch {
	case h.ControllerState == "":
		h.Message = fmt.Sprintf("controller %s of %s is gone: the volume cannot do I/O; re-stage it", ctrl.Name, ctrl.Subsystem)
	case h.ControllerState != kernel.StateLive:
		h.Message = fmt.Sprintf("controller %s is %s: target %s:%s is unreachable; check the target and the network", ctrl.Name, h.ControllerState, ctrl.TrAddr, ctrl.TrSvcID)
	case h.FSErrors > 0:
		h.Message = fmt.Sprintf("file system on %s recorded %d errors and may be read-only; unmount and fsck it", ns.DevicePath, h.FSErrors)
	}
	return h, nil
}

func (c *Connector) namespaceLocked(instance int, nqn string, ns Namespace) kernel.Namespace {
	name := fmt.Sprintf("nvme%dn%d", instance, ns.NSID)
	return kernel.Namespace{
		DevicePath: filepath.Join(c.devRoot, name), Name: name, Subsystem: nqn,
		NSID: ns.NSID, UUID: ns.UUID, NGUID: ns.NGUID, SizeBytes: ns.SizeBytes,
	}
}

func (c *Connector) sortedNames() []string {
	names := make([]string, 0, len(c.controllers))
	for n := range c.controllers {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}

func (c *Connector) backingPath(nqn string, nsid uint32) string {
	safe := strings.NewReplacer("/", "_", ":", "_").Replace(nqn)
	return filepath.Join(c.devRoot, ".backing", fmt.Sprintf("%s-%d", safe, nsid))
}

func (c *Connector) devicePath(instance int, nsid uint32) string {
	return filepath.Join(c.devRoot, fmt.Sprintf("nvme%dn%d", instance, nsid))
}

func connKey(conn nvme.Connection) string {
	t := conn.Target
	return strings.Join([]string{t.Transport, t.TrAddr, t.TrSvcID, t.NQN, t.HostTrAddr, t.HostIface, conn.Host.NQN, conn.Host.ID}, "|")
}

// parseDeviceName splits "nvme3n2" into 3 and 2.
func parseDeviceName(name string) (instance int, nsid uint32, ok bool) {
	rest, found := strings.CutPrefix(name, "nvme")
	if !found {
		return 0, 0, false
	}
	ctrlPart, nsPart, found := strings.Cut(rest, "n")
	if !found {
		return 0, 0, false
	}
	i, err1 := strconv.Atoi(ctrlPart)
	n, err2 := strconv.ParseUint(nsPart, 10, 32)
	if err1 != nil || err2 != nil {
		return 0, 0, false
	}
	return i, uint32(n), true
}

// Namespaces lists the namespaces reached through ctrl.
func (c *Connector) Namespaces(ctrl kernel.Controller) ([]kernel.Namespace, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	cur, ok := c.controllers[ctrl.Name]
	if !ok {
		return nil, fmt.Errorf("fake connector: controller %s: %w", ctrl.Name, kernel.ErrControllerGone)
	}
	var out []kernel.Namespace
	for _, ns := range c.targets[cur.Subsystem].namespaces {
		out = append(out, c.namespaceLocked(cur.Instance, cur.Subsystem, ns))
	}
	return out, nil
}
