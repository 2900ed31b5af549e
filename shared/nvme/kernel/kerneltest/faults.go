package kerneltest

import (
	"fmt"
	"maps"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// faults are what a test injected and has not been used yet. Host.mu
// guards them.
type faults struct {
	holds    map[string]*hold // by subsystem NQN
	latency  time.Duration
	failures []syscall.Errno
	before   func()
	after    func(ctrl string)
	// rewrites are attribute values a "udev rule" writes back after every
	// write of the attribute, by attribute name.
	rewrites map[string]string
}

func newFaults() faults {
	return faults{holds: map[string]*hold{}, rewrites: map[string]string{}}
}

func (f *faults) takeFailure() syscall.Errno {
	if len(f.failures) == 0 {
		return 0
	}
	e := f.failures[0]
	f.failures = f.failures[1:]
	return e
}

func (f *faults) takeBefore() func() {
	fn := f.before
	f.before = nil
	return fn
}

func (f *faults) takeAfter(src connectSource) func(string) {
	if src != fromCodeUnderTest {
		return nil
	}
	fn := f.after
	f.after = nil
	return fn
}

// hold keeps connects to one subsystem in the kernel.
type hold struct {
	entered  chan struct{}
	released chan struct{}
}

// enter tells the test that a connect is waiting. The channel has room
// for far more connects than a test makes; one beyond is not announced.
func (hd *hold) enter() {
	select {
	case hd.entered <- struct{}{}:
	default:
	}
}

// HoldConnects makes connects to subsystem nqn wait in the kernel, where
// the TCP connect happens: the new controller is already in sysfs (state
// connecting) and, unless WithConcurrentConnects, every other connect of
// the host waits behind it. entered receives once per connect that
// starts waiting; release lets them all go on (and later ones pass). The
// test's end releases them too.
func (h *Host) HoldConnects(nqn string) (entered <-chan struct{}, release func()) {
	hd := &hold{entered: make(chan struct{}, 1024), released: make(chan struct{})}
	h.mu.Lock()
	h.faults.holds[nqn] = hd
	h.mu.Unlock()
	var once sync.Once
	return hd.entered, func() {
		once.Do(func() {
			h.mu.Lock()
			if h.faults.holds[nqn] == hd {
				delete(h.faults.holds, nqn)
			}
			h.mu.Unlock()
			close(hd.released)
		})
	}
}

// SetConnectLatency makes every connect spend d in the kernel (the TCP
// connect and the fabrics handshake), serialised like the real ones. For
// benchmarks; unit tests hold connects instead.
func (h *Host) SetConnectLatency(d time.Duration) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.faults.latency = d
}

// FailNextConnect makes the next write to /dev/nvme-fabrics by the code
// under test fail with errno before the kernel looks at it; calls queue.
func (h *Host) FailNextConnect(errno syscall.Errno) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.faults.failures = append(h.faults.failures, errno)
}

// BeforeNextConnect runs fn once, at the start of the next connect by the
// code under test (a write to /dev/nvme-fabrics, or an NVMeCLI connect
// before nvme-cli looks for an existing controller): what happens between
// the caller's look at sysfs and its write. fn runs on the writer's
// goroutine with no lock held; it may call AdminConnect.
func (h *Host) BeforeNextConnect(fn func()) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.faults.before = fn
}

// AfterNextConnect runs fn once, after the next successful connect by the
// code under test, before the writer gets its reply: what happens between
// the kernel creating a controller and the caller looking at it. fn gets
// the controller's name; it may call RemoveController.
func (h *Host) AfterNextConnect(fn func(ctrl string)) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.faults.after = fn
}

// SetDown takes every listener of subsystem nqn away (true) or brings it
// back. Going down, its live controllers turn connecting (those with
// ctrl_loss_tmo 0 are deleted at once, as the kernel does) and new
// connects get ECONNREFUSED. Coming back, connecting controllers turn
// live again, with a controller ID the target assigns anew, and rescan.
func (h *Host) SetDown(nqn string, down bool) {
	h.tb.Helper()
	h.mu.Lock()
	defer h.mu.Unlock()
	t := h.k.targets[nqn]
	if t == nil {
		h.tb.Fatalf("kerneltest: SetDown: no target %q", nqn)
		return
	}
	t.down = down
	for _, c := range h.k.controllersOf(nqn) {
		h.pathChanged(c)
	}
}

// SetPortDown takes one listener away (true) or brings it back: only the
// controllers that reached the subsystem through it lose their path.
func (h *Host) SetPortDown(addr, svc string, down bool) {
	h.tb.Helper()
	key, err := parseListener(addr, svc)
	if err != nil {
		h.tb.Fatalf("kerneltest: SetPortDown: %v", err)
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	p := h.k.ports[key]
	if p == nil {
		h.tb.Fatalf("kerneltest: SetPortDown: no listener %s", key)
		return
	}
	p.down = down
	h.pathsChanged(p)
}

// pathsChanged runs pathChanged for the controllers through p, in
// instance order, so that controller IDs are handed out the same way
// every run.
func (h *Host) pathsChanged(p *port) {
	for _, inst := range slices.Sorted(maps.Keys(h.k.ctrls)) {
		if c := h.k.ctrls[inst]; c != nil && c.port == p {
			h.pathChanged(c)
		}
	}
}

// SetExported links subsystem nqn to the listener at addr:svc (true) or
// unlinks it, as nvmet's ports/N/subsystems links do: its controllers
// through that listener turn connecting, and while the listener exports
// other subsystems it keeps listening, so new connects to nqn there fail
// at the NVMe level (EIO); unlinking the last subsystem closes the
// listener (ECONNREFUSED). Linking again brings the controllers back.
func (h *Host) SetExported(addr, svc, nqn string, exported bool) {
	h.tb.Helper()
	key, err := parseListener(addr, svc)
	if err != nil {
		h.tb.Fatalf("kerneltest: SetExported: %v", err)
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	p := h.k.ports[key]
	if p == nil || h.k.targets[nqn] == nil {
		h.tb.Fatalf("kerneltest: SetExported: no listener %s or no target %q", key, nqn)
		return
	}
	if exported {
		p.nqns[nqn] = true
	} else {
		delete(p.nqns, nqn)
	}
	h.pathsChanged(p)
}

// pathChanged moves a controller between live and connecting after its
// target or listener went down or came back.
func (h *Host) pathChanged(c *controller) {
	reachable := c.port.listening() && (c.target == nil || (!c.target.down && c.port.nqns[c.target.nqn]))
	switch {
	case c.inflight || c.removed:
	case !reachable && (c.state == stateLive || c.state == stateResetting):
		if c.target != nil {
			delete(c.target.cntlids, c.cntlid)
		}
		if c.opts.maxReconnects == 0 {
			h.deleteController(c, "Removing controller... (ctrl_loss_tmo 0)")
			return
		}
		c.state = stateConnecting
		h.syncController(c)
	case reachable && c.state == stateConnecting:
		if c.target != nil {
			c.cntlid = c.target.allocCntlid()
		}
		c.state = stateLive
		h.syncController(c)
		h.scan(c)
	}
}

// RemoveController deletes a controller the way the kernel does when an
// administrator disconnects it or its ctrl_loss_tmo runs out: disks (and
// a head with its last path), device, subsystem when empty. It does not
// count as a disconnect by the code under test.
func (h *Host) RemoveController(name string) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	c, err := h.k.controllerByName(name)
	if err != nil {
		return err
	}
	h.deleteController(c, "removed by the test")
	return nil
}

// ExpireCtrlLoss ends an outage of subsystem nqn that outlasted
// ctrl_loss_tmo: its connecting controllers with a finite ctrl_loss_tmo are
// deleted; those with "off" keep reconnecting. It returns the names of
// the deleted ones.
func (h *Host) ExpireCtrlLoss(nqn string) []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	var gone []string
	for _, c := range h.k.controllersOf(nqn) {
		if c.state == stateConnecting && !c.inflight && c.opts.maxReconnects >= 0 {
			gone = append(gone, c.name())
			h.deleteController(c, "Removing ctrl: NQN "+strconv.Quote(nqn)+" (ctrl_loss_tmo expired)")
		}
	}
	return gone
}

// SetControllerState makes sysfs show state for a controller, for states
// no event here leads to and stays in (a controller stuck "deleting (no
// IO)", "dead"). The kernel's duplicate rule follows it; nothing else
// happens by itself.
func (h *Host) SetControllerState(name, state string) error {
	switch state {
	case stateNew, stateLive, stateResetting, stateConnecting, stateDeleting, stateDeletingIO, stateDead:
	default:
		return fmt.Errorf("kerneltest: %q is not a controller state", state)
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	c, err := h.k.controllerByName(name)
	if err != nil {
		return err
	}
	c.state = state
	h.syncController(c)
	return nil
}

// HoldScans defers the namespace scan of subsystem nqn's controllers, as
// when the kernel's scan work runs after the connect returned: they come
// up live without disks. release runs the scans that waited.
func (h *Host) HoldScans(nqn string) (release func()) {
	h.tb.Helper()
	h.mu.Lock()
	t := h.k.targets[nqn]
	if t == nil {
		h.mu.Unlock()
		h.tb.Fatalf("kerneltest: HoldScans: no target %q", nqn)
		return func() {}
	}
	t.scanHeld = true
	h.mu.Unlock()
	var once sync.Once
	return func() {
		once.Do(func() {
			h.mu.Lock()
			defer h.mu.Unlock()
			t.scanHeld = false
			for c := range t.pending {
				delete(t.pending, c)
				h.scan(c)
			}
		})
	}
}

// SetANAState sets the ANA state of every path disk of a controller:
// optimized, non-optimized, inaccessible, persistent-loss or change. It
// needs native multipath (path disks carry the state).
func (h *Host) SetANAState(ctrl, state string) error {
	switch state {
	case "optimized", "non-optimized", "inaccessible", "persistent-loss", "change":
	default:
		return fmt.Errorf("kerneltest: %q is not an ANA state", state)
	}
	if !h.cfg.multipath {
		return fmt.Errorf("kerneltest: SetANAState(%s): no path disks without native multipath", ctrl)
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	c, err := h.k.controllerByName(ctrl)
	if err != nil {
		return err
	}
	for _, d := range c.disks {
		d.anaState = state
		h.tree.attr(filepath.Join(d.dir, "ana_state"), state, modeRO)
	}
	return nil
}

// SetFSErrors makes ext4 on disk report n errors in
// /sys/fs/ext4/<disk>/errors_count; n < 0 removes the directory, as
// unmounting does. The directory outlives the disk, as a mount does.
func (h *Host) SetFSErrors(disk string, n int) {
	h.tb.Helper()
	disk = filepath.Base(disk)
	if strings.ContainsAny(disk, "/.") || disk == "" {
		h.tb.Fatalf("kerneltest: SetFSErrors(%q): not a disk name", disk)
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	dir := filepath.Join(h.sysRoot, "fs/ext4", disk)
	if n < 0 {
		h.tree.remove(dir)
		return
	}
	h.tree.mkdir(dir)
	h.tree.attr(filepath.Join(dir, "errors_count"), strconv.Itoa(n), modeRO)
}

// BreakAttr makes an attribute's reads fail with EIO (EISDIR where
// /proc/self/mem is not there to borrow EIO from) until repair is called:
// a transient sysfs read error. path is relative to SysfsRoot or absolute
// under it, and may go through class/ and block/ links
// ("block/nvme0n1/uuid", "class/nvme/nvme0/state"). Updates of the
// attribute while broken show after the repair.
func (h *Host) BreakAttr(path string) (repair func()) {
	h.tb.Helper()
	real, err := h.realAttrPath(path)
	if err != nil {
		h.tb.Fatalf("kerneltest: BreakAttr: %v", err)
		return func() {}
	}
	h.mu.Lock()
	err = h.tree.breakAttr(real)
	h.mu.Unlock()
	if err != nil {
		h.tb.Fatalf("kerneltest: BreakAttr: %v", err)
		return func() {}
	}
	var once sync.Once
	return func() {
		once.Do(func() {
			h.mu.Lock()
			defer h.mu.Unlock()
			h.tree.repairAttr(real)
		})
	}
}

// realAttrPath resolves the links of an attribute's directory.
func (h *Host) realAttrPath(path string) (string, error) {
	if !filepath.IsAbs(path) {
		path = filepath.Join(h.sysRoot, path)
	}
	path = filepath.Clean(path)
	if !strings.HasPrefix(path, h.sysRoot+string(filepath.Separator)) {
		return "", fmt.Errorf("%s is not under %s", path, h.sysRoot)
	}
	dir, err := filepath.EvalSymlinks(filepath.Dir(path))
	if err != nil {
		return "", fmt.Errorf("attribute %s: %w", path, err)
	}
	return filepath.Join(dir, filepath.Base(path)), nil
}

// HoldDisk keeps a disk's device number taken after the disk is removed,
// as a mounted file system or an open descriptor keeps the kernel's
// gendisk: without holders a removed disk's number is reused at once.
// release drops the hold.
func (h *Host) HoldDisk(name string) (release func(), err error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, d := range h.k.minors {
		if d.name == name && !d.removed {
			d.holders++
			var once sync.Once
			return func() {
				once.Do(func() {
					h.mu.Lock()
					defer h.mu.Unlock()
					d.holders--
					if d.holders == 0 && d.removed && h.k.minors[d.minor] == d {
						delete(h.k.minors, d.minor)
					}
				})
			}, nil
		}
	}
	return nil, fmt.Errorf("kerneltest: no disk %s", name)
}

// RewriteAttr makes a "udev rule" write value to controller attribute name
// (ctrl_loss_tmo, say) after every write of it through WriteAttr, as
// vendor rules rewrite reconnection settings behind the writer's back. An
// empty value removes the rule.
func (h *Host) RewriteAttr(name, value string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if value == "" {
		delete(h.faults.rewrites, name)
		return
	}
	h.faults.rewrites[name] = value
}
