package kerneltest

import (
	"fmt"
	"maps"
	"net/netip"
	"slices"
	"strconv"
)

// Kernel controller states, as sysfs writes them.
const (
	stateNew        = "new"
	stateLive       = "live"
	stateResetting  = "resetting"
	stateConnecting = "connecting"
	stateDeleting   = "deleting"
	stateDeletingIO = "deleting (no IO)"
	stateDead       = "dead"
)

const hostNQNUUIDPrefix = "nqn.2014-08.org.nvmexpress:uuid:"

// kernelState is what the simulated kernel and its targets hold. Host.mu
// guards it.
type kernelState struct {
	targets map[string]*target  // by subsystem NQN
	ports   map[portKey]*port   // listeners
	ctrls   map[int]*controller // every controller sysfs shows, by instance
	subsys  map[int]*subsystem  // by instance
	// hosts is nvmf_hosts: host NQN and ID pairs in use, the default
	// host (made at boot) first.
	hosts []*hostIdentity
	// minors are the allocated block device numbers (259:N).
	minors  map[int]*disk
	targetN int
}

func newKernelState(defaultID string) kernelState {
	return kernelState{
		targets: map[string]*target{},
		ports:   map[portKey]*port{},
		ctrls:   map[int]*controller{},
		subsys:  map[int]*subsystem{},
		hosts:   []*hostIdentity{{nqn: hostNQNUUIDPrefix + defaultID, id: defaultID, permanent: true}},
		minors:  map[int]*disk{},
	}
}

// portKey identifies a listener: address and TCP port.
type portKey struct {
	addr netip.Addr // unmapped
	port uint16
}

func (k portKey) String() string { return netip.AddrPortFrom(k.addr, k.port).String() }

// port is a target listener and the subsystems it exports.
type port struct {
	key  portKey
	nqns map[string]bool
	down bool
}

// listening: nvmet listens on a port while it exports a subsystem and is
// not taken down.
func (p *port) listening() bool { return !p.down && len(p.nqns) > 0 }

// target is a subsystem on the target side (nvmet).
type target struct {
	nqn        string
	index      int // names the backing files
	namespaces map[uint32]*targetNS
	allowed    []string // host NQNs; nil allows any host
	down       bool
	cntlids    map[int]bool // allocated controller IDs
	serial     string
	// scanHeld: namespace scans of this subsystem's controllers wait
	// (HoldScans); pending lists the controllers whose scan waits.
	scanHeld bool
	pending  map[*controller]bool
}

// targetNS is a namespace of a target and where its data lives.
type targetNS struct {
	Namespace
	backing string
}

func (t *target) sortedNamespaces() []*targetNS {
	out := slices.Collect(maps.Values(t.namespaces))
	slices.SortFunc(out, func(a, b *targetNS) int { return int(a.NSID) - int(b.NSID) })
	return out
}

// allocCntlid takes the lowest free controller ID from 1, as nvmet does.
func (t *target) allocCntlid() int {
	id := 1
	for t.cntlids[id] {
		id++
	}
	t.cntlids[id] = true
	return id
}

func (t *target) allows(hostNQN string) bool {
	return t.allowed == nil || slices.Contains(t.allowed, hostNQN)
}

// hostIdentity is an nvmf_host: a host NQN and ID pair, kept while a
// controller uses it.
type hostIdentity struct {
	nqn, id   string
	refs      int
	permanent bool
}

// controller is a kernel NVMe controller.
type controller struct {
	inst    int
	opts    *options
	host    *hostIdentity
	state   string
	cntlid  int
	port    *port // the listener it reached; nil before
	srcAddr string
	sub     *subsystem
	disks   map[uint32]*disk // its disks by nsid: path disks, or plain disks
	// inflight: its connect is still running in the kernel; removed: it
	// was deleted (perhaps while in flight).
	inflight, removed bool
	// target is the subsystem it connected to; nil for discovery.
	target *target
}

func (c *controller) name() string { return "nvme" + strconv.Itoa(c.inst) }

// subsystem is an nvme-subsysK of the host.
type subsystem struct {
	inst      int
	nqn       string
	discovery bool
	iopolicy  string
	serial    string
	ctrls     map[int]*controller
	heads     map[uint32]*head // by nsid
}

func (s *subsystem) name() string { return "nvme-subsys" + strconv.Itoa(s.inst) }

// head is a namespace head: one per namespace of a subsystem, shared by
// every controller that reaches it.
type head struct {
	inst  int // I of nvmeKnI: lowest free from 1, per subsystem
	ns    *targetNS
	sub   *subsystem
	disk  *disk // the head disk with native multipath
	paths int   // controllers with a disk of it
}

// disk is a block device: a head disk, a hidden path disk, or (without
// native multipath) a controller's own disk.
type disk struct {
	name     string
	minor    int
	dir      string // real sysfs directory
	node     string // /dev node; "" for a hidden path disk
	head     *head
	ctrl     *controller // nil for a head disk
	anaState string
	holders  int
	removed  bool
	parts    []*partition
}

func (d *disk) dev() string { return "259:" + strconv.Itoa(d.minor) }

// allocInstance is the lowest number no controller and no subsystem holds:
// nvme_instance_ida, shared by both since a subsystem takes its first
// controller's number.
func (k *kernelState) allocInstance() int {
	n := 0
	for {
		_, c := k.ctrls[n]
		_, s := k.subsys[n]
		if !c && !s {
			return n
		}
		n++
	}
}

// allocMinor is the lowest free block device minor: the ext_devt_ida.
func (k *kernelState) allocMinor(d *disk) int {
	n := 0
	for k.minors[n] != nil {
		n++
	}
	k.minors[n] = d
	return n
}

// allocHeadInstance is the lowest free head index of s, from 1.
func (s *subsystem) allocHeadInstance() int {
	used := map[int]bool{}
	for _, h := range s.heads {
		used[h.inst] = true
	}
	n := 1
	for used[n] {
		n++
	}
	return n
}

// addHost is nvmf_host_add as Linux 6.1 has it: hosts are found by NQN
// alone, and the connect's host ID (a random one when it gives none)
// overwrites the ID of the host it found, for every controller already
// using it. With strict set (newer kernels), a pair whose halves are known
// apart is EINVAL instead.
func (k *kernelState) addHost(nqn, id string, strict bool) (*hostIdentity, error) {
	for _, h := range k.hosts {
		sameNQN, sameID := h.nqn == nqn, h.id == id
		switch {
		case sameNQN && (sameID || !strict):
			h.refs++
			h.id = id
			return h, nil
		case sameNQN:
			return nil, einval("found same hostnqn %s but different hostid %s", nqn, id)
		case sameID && strict:
			return nil, einval("found same hostid %s but different hostnqn %s", id, nqn)
		}
	}
	h := &hostIdentity{nqn: nqn, id: id, refs: 1}
	k.hosts = append(k.hosts, h)
	return h, nil
}

func (k *kernelState) putHost(h *hostIdentity) {
	h.refs--
	if h.refs > 0 || h.permanent {
		return
	}
	k.hosts = slices.DeleteFunc(k.hosts, func(x *hostIdentity) bool { return x == h })
}

// findSubsystem returns the I/O subsystem with nqn (discovery subsystems
// are never shared).
func (k *kernelState) findSubsystem(nqn string) *subsystem {
	for _, s := range k.subsys {
		if s.nqn == nqn && !s.discovery {
			return s
		}
	}
	return nil
}

// duplicate is nvme_tcp_existing_controller: a controller the new options
// would duplicate. Strings compare as the kernel compares them, byte for
// byte: "::1" and "0::1" are different addresses to it.
func (k *kernelState) duplicate(o *options, host *hostIdentity) *controller {
	for _, inst := range slices.Sorted(maps.Keys(k.ctrls)) {
		c := k.ctrls[inst]
		switch {
		case c.inflight, c.state == stateDeleting, c.state == stateDeletingIO, c.state == stateDead:
			continue
		case c.opts.nqn != o.nqn, c.host != host, c.opts.traddr != o.traddr, c.opts.trsvcid != o.trsvcid:
			continue
		}
		if !sameOptional(c.opts, o, "host_traddr", c.opts.hostTrAddr, o.hostTrAddr) ||
			!sameOptional(c.opts, o, "host_iface", c.opts.hostIface, o.hostIface) {
			continue
		}
		return c
	}
	return nil
}

// sameOptional: both given and equal, or neither given.
func sameOptional(a, b *options, name, va, vb string) bool {
	if a.given[name] && b.given[name] {
		return va == vb
	}
	return a.given[name] == b.given[name]
}

// controllersOf lists the controllers connected to target nqn, in instance
// order.
func (k *kernelState) controllersOf(nqn string) []*controller {
	var out []*controller
	for _, inst := range slices.Sorted(maps.Keys(k.ctrls)) {
		if c := k.ctrls[inst]; c.target != nil && c.target.nqn == nqn {
			out = append(out, c)
		}
	}
	return out
}

// controllerByName finds nvmeN.
func (k *kernelState) controllerByName(name string) (*controller, error) {
	for _, c := range k.ctrls {
		if c.name() == name {
			return c, nil
		}
	}
	return nil, fmt.Errorf("kerneltest: no controller %s", name)
}
