package kerneltest

import (
	"fmt"
	"hash/fnv"
	"maps"
	"path/filepath"
	"slices"
	"strconv"
	"syscall"
	"time"
)

// connectSource says who writes an option string: the code under test
// (counted, faults apply) or the test itself (AdminConnect).
type connectSource int

const (
	fromCodeUnderTest connectSource = iota
	fromAdmin
)

// connectResult is the reply of a successful connect.
type connectResult struct {
	instance, cntlid int
	name             string
}

// connect is nvmf_dev_write for one option string: parse, then
// nvme_tcp_create_ctrl. created, when not nil, is the descriptor's "this
// descriptor already made a controller" flag, checked and set under the
// same lock as the kernel's.
func (h *Host) connect(opts string, src connectSource, created *bool) (connectResult, error) {
	res, after, err := h.connectLocked(opts, src, created)
	if after != nil {
		after(res.name) // after the kernel's mutex: the hook may connect
	}
	return res, err
}

// connectLocked is connect under the kernel's mutex. It returns the
// AfterNextConnect hook to run once the mutex is released.
func (h *Host) connectLocked(opts string, src connectSource, created *bool) (connectResult, func(string), error) {
	if !h.cfg.concurrent {
		h.connectSem <- struct{}{}
		defer func() { <-h.connectSem }()
	}
	c, hold, err := h.startConnect(opts, src, created)
	if err != nil {
		return connectResult{}, nil, err
	}
	h.waitConnect(hold)
	h.mu.Lock()
	defer h.mu.Unlock()
	res, err := h.finishConnect(c, src)
	if err != nil {
		return connectResult{}, nil, err
	}
	if created != nil {
		*created = true
	}
	return res, h.faults.takeAfter(src), nil
}

// startConnect runs everything up to the network: option parsing, host
// identity, address checks, the duplicate rule, and the new controller's
// appearance in sysfs (state connecting).
func (h *Host) startConnect(opts string, src connectSource, created *bool) (*controller, *hold, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if created != nil && *created {
		return nil, nil, h.refuse(&optionError{errno: syscall.EINVAL, msg: "a controller was already created through this descriptor"})
	}
	if src == fromCodeUnderTest {
		if errno := h.faults.takeFailure(); errno != 0 {
			h.logf("nvme_fabrics: injected failure: %v", errno)
			return nil, nil, errno
		}
	}
	o, err := parseOptions(opts, h.cfg.cpus, h.cfg.strictHosts)
	if err != nil {
		return nil, nil, h.refuse(err)
	}
	host, err := h.hostOf(o)
	if err != nil {
		return nil, nil, h.refuse(err)
	}
	if err := h.checkAddresses(o); err != nil {
		h.k.putHost(host)
		return nil, nil, h.refuse(err)
	}
	if !o.dupConnect {
		if dup := h.k.duplicate(o, host); dup != nil {
			h.k.putHost(host)
			return nil, nil, h.refuse(&optionError{errno: syscall.EALREADY, msg: "controller " + dup.name() + " already exists"})
		}
	}
	c := &controller{inst: h.k.allocInstance(), opts: o, host: host, state: stateConnecting, inflight: true, disks: map[uint32]*disk{}}
	h.k.ctrls[c.inst] = c
	h.installController(c)
	return c, h.faults.holds[o.nqn], nil
}

// hostOf finds the connect's host identity. Without a hostnqn it is the
// default host. Without a hostid, 6.1 makes up a random one (which then
// overwrites the host's ID); newer kernels take the default host's.
func (h *Host) hostOf(o *options) (*hostIdentity, error) {
	nqn, id := o.hostNQN, o.hostID
	if nqn == "" {
		nqn = hostNQNUUIDPrefix + h.cfg.defaultID
	}
	if id == "" {
		id = randomUUID()
		if h.cfg.strictHosts {
			id = h.cfg.defaultID
		}
	}
	host, err := h.k.addHost(nqn, id, h.cfg.strictHosts)
	if err != nil {
		return nil, err
	}
	for _, c := range h.k.ctrls {
		if c.host == host {
			h.syncController(c) // its hostid may have changed
		}
	}
	return host, nil
}

// refuse logs why a connect failed and returns its errno.
func (h *Host) refuse(err error) error {
	h.logf("nvme_fabrics: %v", err)
	return errnoOf(err)
}

// waitConnect is the network part of a connect: held by HoldConnects,
// slowed by SetConnectLatency. The test's end releases both.
func (h *Host) waitConnect(hd *hold) {
	if hd != nil {
		hd.enter()
		select {
		case <-hd.released:
		case <-h.closing:
		}
	}
	h.mu.Lock()
	d := h.faults.latency
	h.mu.Unlock()
	if d <= 0 {
		return
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-h.closing:
	}
}

// finishConnect is the connect to the target and what follows: bind,
// listener, subsystem, host ACL; then identify, subsystem, namespaces,
// live. On failure the controller leaves sysfs again.
func (h *Host) finishConnect(c *controller, src connectSource) (connectResult, error) {
	c.inflight = false
	if c.removed {
		return connectResult{}, h.refuse(einval("controller %s was deleted while connecting", c.name()))
	}
	t, err := h.reach(c)
	if err != nil {
		h.destroyController(c)
		return connectResult{}, h.refuse(err)
	}
	c.target = t
	if t != nil {
		c.cntlid = t.allocCntlid()
	} else {
		c.cntlid = 1
	}
	h.joinSubsystem(c)
	c.state = stateLive
	h.syncController(c)
	if t != nil {
		h.scan(c)
	}
	if src == fromCodeUnderTest {
		h.connects++
	}
	h.logf("nvme %s: new ctrl: NQN %q, addr %s", c.name(), c.opts.nqn, c.port.key)
	return connectResult{instance: c.inst, cntlid: c.cntlid, name: c.name()}, nil
}

// reach finds the listener and the subsystem behind it, as the TCP connect
// and the fabrics Connect command do. It returns nil for a discovery
// controller.
func (h *Host) reach(c *controller) (*target, error) {
	o := c.opts
	if o.given["host_traddr"] {
		src, _ := h.parseAddr(o.hostTrAddr)
		if !h.isLocal(src) {
			return nil, &optionError{errno: syscall.EADDRNOTAVAIL, msg: "failed to bind queue 0 socket to " + o.hostTrAddr}
		}
	}
	addr, _ := h.parseAddr(o.traddr)
	portNum, _ := kstrtoInt(o.trsvcid, 0, false)
	key := portKey{addr: addr.Unmap(), port: uint16(portNum)} //nolint:gosec // checked by fitsPort
	p := h.k.ports[key]
	if p == nil || !p.listening() {
		return nil, &optionError{errno: syscall.ECONNREFUSED, msg: "failed to connect socket: -111 (" + key.String() + ")"}
	}
	c.port = p
	c.srcAddr = h.sourceAddr(o, addr)
	if o.discovery {
		return nil, nil
	}
	t := h.k.targets[o.nqn]
	if t == nil || !p.nqns[o.nqn] {
		return nil, &optionError{errno: syscall.EIO, msg: "Connect Invalid Data Parameter, subsysnqn " + strconv.Quote(o.nqn)}
	}
	if t.down {
		return nil, &optionError{errno: syscall.ECONNREFUSED, msg: "failed to connect socket: -111 (" + key.String() + ")"}
	}
	if !t.allows(c.host.nqn) {
		return nil, &optionError{errno: syscall.EIO, msg: fmt.Sprintf("Connect for subsystem %s is not allowed, hostnqn: %s", o.nqn, c.host.nqn)}
	}
	return t, nil
}

// joinSubsystem is nvme_init_subsystem: the subsystem with the
// controller's NQN, or a new one numbered after this controller.
func (h *Host) joinSubsystem(c *controller) {
	s := (*subsystem)(nil)
	if !c.opts.discovery {
		s = h.k.findSubsystem(c.opts.nqn)
	}
	if s == nil {
		s = &subsystem{inst: c.inst, nqn: c.opts.nqn, discovery: c.opts.discovery, iopolicy: "numa",
			ctrls: map[int]*controller{}, heads: map[uint32]*head{}, serial: serialOf(c.opts.nqn)}
		if c.target != nil {
			s.serial = c.target.serial
		}
		h.k.subsys[s.inst] = s
		h.installSubsystem(s)
	}
	s.ctrls[c.inst] = c
	c.sub = s
	h.tree.link(h.ctrlDir(c), filepath.Join(h.subsysDir(s), c.name()))
}

// serialOf is a stable serial number for a subsystem: nvmet makes a random
// one; a stable one keeps wwid fallbacks the same from run to run.
func serialOf(nqn string) string {
	f := fnv.New64a()
	_, _ = f.Write([]byte(nqn)) // hash writes never fail
	return fmt.Sprintf("%016x", f.Sum64())
}

// scan is the namespace scan of a live controller: a disk for every
// namespace of the target it lacks, none for those the target dropped.
// HoldScans defers it.
func (h *Host) scan(c *controller) {
	t := c.target
	if t == nil || c.removed || c.state != stateLive {
		return
	}
	if t.scanHeld {
		t.pending[c] = true
		return
	}
	for _, nsid := range slices.Sorted(maps.Keys(c.disks)) {
		if t.namespaces[nsid] != c.disks[nsid].head.ns {
			h.detach(c, nsid)
		}
	}
	for _, ns := range t.sortedNamespaces() {
		if _, ok := c.disks[ns.NSID]; !ok {
			h.attach(c, ns)
		}
	}
}

// attach gives controller c a disk of namespace ns: with native multipath
// a hidden path disk, then the head disk if this is the first path;
// without it, the controller's own disk.
func (h *Host) attach(c *controller, ns *targetNS) {
	s := c.sub
	hd := s.heads[ns.NSID]
	if hd != nil && hd.ns != ns {
		// Another controller still reaches the namespace that had this
		// nsid before: the kernel refuses to mix them.
		h.logf("nvme %s: IDs don't match for shared namespace %d", c.name(), ns.NSID)
		return
	}
	if hd == nil {
		hd = &head{inst: s.allocHeadInstance(), ns: ns, sub: s}
		s.heads[ns.NSID] = hd
	}
	hd.paths++
	if !h.cfg.multipath {
		d := &disk{name: fmt.Sprintf("nvme%dn%d", c.inst, hd.inst), head: hd, ctrl: c}
		d.node = filepath.Join(h.devRoot, d.name)
		d.minor = h.k.allocMinor(d)
		c.disks[ns.NSID] = d
		h.installDisk(d, h.ctrlDir(c))
		return
	}
	d := &disk{name: fmt.Sprintf("nvme%dc%dn%d", s.inst, c.inst, hd.inst), head: hd, ctrl: c, anaState: "optimized"}
	d.minor = h.k.allocMinor(d)
	c.disks[ns.NSID] = d
	h.installDisk(d, h.ctrlDir(c))
	if hd.disk == nil {
		hd.disk = &disk{name: fmt.Sprintf("nvme%dn%d", s.inst, hd.inst), head: hd}
		hd.disk.node = filepath.Join(h.devRoot, hd.disk.name)
		hd.disk.minor = h.k.allocMinor(hd.disk)
		h.installDisk(hd.disk, h.subsysDir(s))
	}
}

// detach removes controller c's disk of nsid, and the head (its disk and
// /dev node) with its last path.
func (h *Host) detach(c *controller, nsid uint32) {
	d := c.disks[nsid]
	delete(c.disks, nsid)
	h.removeDisk(d)
	hd := d.head
	hd.paths--
	if hd.paths > 0 {
		return
	}
	if hd.disk != nil {
		h.removeDisk(hd.disk)
		hd.disk = nil
	}
	delete(hd.sub.heads, nsid)
}

// removeDisk takes a disk out of sysfs and /dev; its number stays taken
// while something holds the disk (HoldDisk).
func (h *Host) removeDisk(d *disk) {
	d.removed = true
	h.removeDiskTree(d)
	if d.holders == 0 {
		delete(h.k.minors, d.minor)
	}
}

// deleteController is nvme_delete_ctrl_sync: deleting, namespaces removed,
// device removed; the subsystem goes with its last controller.
func (h *Host) deleteController(c *controller, why string) {
	if c.removed {
		return
	}
	c.state = stateDeleting
	h.syncController(c)
	for _, nsid := range slices.Sorted(maps.Keys(c.disks)) {
		h.detach(c, nsid)
	}
	c.state = stateDeletingIO
	h.syncController(c)
	if c.target != nil {
		delete(c.target.cntlids, c.cntlid)
		delete(c.target.pending, c)
	}
	h.logf("nvme %s: %s", c.name(), why)
	h.destroyController(c)
}

// destroyController frees what a controller holds once it left sysfs (or
// never connected): its number, its host identity, its subsystem.
func (h *Host) destroyController(c *controller) {
	c.removed = true
	h.removeControllerTree(c)
	delete(h.k.ctrls, c.inst)
	h.k.putHost(c.host)
	s := c.sub
	if s == nil {
		return
	}
	delete(s.ctrls, c.inst)
	if len(s.ctrls) == 0 {
		h.removeSubsystemTree(s)
		delete(h.k.subsys, s.inst)
	}
}
