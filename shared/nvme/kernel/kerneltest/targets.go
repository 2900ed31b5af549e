package kerneltest

import (
	"fmt"
	"maps"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// Namespace is a namespace a target exports. UUID and NGUID are optional
// ("" = the namespace has none); NGUID may be written with or without
// dashes. SizeBytes is a positive multiple of 512.
type Namespace struct {
	NSID      uint32
	UUID      string
	NGUID     string
	SizeBytes int64
}

// AddTarget exports subsystem nqn with namespaces on a listener at
// addr:svc, as nvmet does once a port links the subsystem. Calling it
// again for the same subsystem adds a listener (a second path); the
// namespaces must then be left out or be the same. Each namespace gets a
// sparse backing file of its size. Misuse fails the test: call it from the
// test's goroutine.
func (h *Host) AddTarget(addr, svc, nqn string, namespaces ...Namespace) {
	h.tb.Helper()
	key, err := parseListener(addr, svc)
	if err != nil {
		h.tb.Fatalf("kerneltest: AddTarget(%q, %q, %q): %v", addr, svc, nqn, err)
	}
	if nqn == "" || len(nqn) >= nqnSize || strings.ContainsAny(nqn, ",\n") {
		h.tb.Fatalf("kerneltest: AddTarget: NQN %q cannot be written to /dev/nvme-fabrics", nqn)
	}
	canon, err := canonicalNamespaces(namespaces)
	if err != nil {
		h.tb.Fatalf("kerneltest: AddTarget(%q): %v", nqn, err)
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	t := h.k.targets[nqn]
	switch {
	case t == nil:
		t = &target{nqn: nqn, index: h.k.targetN, namespaces: map[uint32]*targetNS{}, cntlids: map[int]bool{},
			serial: serialOf(nqn), pending: map[*controller]bool{}}
		h.k.targetN++
		h.k.targets[nqn] = t
		for _, ns := range canon {
			if err := h.addBacking(t, ns); err != nil {
				h.tb.Fatalf("kerneltest: AddTarget(%q): %v", nqn, err)
			}
		}
	case len(canon) > 0 && !sameNamespaces(t, canon):
		h.tb.Fatalf("kerneltest: AddTarget(%q): the subsystem exists with other namespaces", nqn)
	}
	p := h.k.ports[key]
	if p == nil {
		p = &port{key: key, nqns: map[string]bool{}}
		h.k.ports[key] = p
	}
	p.nqns[nqn] = true
}

func parseListener(addr, svc string) (portKey, error) {
	a, err := netip.ParseAddr(addr)
	if err != nil {
		return portKey{}, fmt.Errorf("address: %w", err)
	}
	n, ok := kstrtoInt(svc, 10, false)
	if !ok || n == 0 || n > 0xffff {
		return portKey{}, fmt.Errorf("port %q is not a TCP port", svc)
	}
	return portKey{addr: a.Unmap(), port: uint16(n)}, nil //nolint:gosec // checked above
}

// canonicalNamespaces checks namespaces and writes their identities the
// way the kernel prints them.
func canonicalNamespaces(namespaces []Namespace) ([]Namespace, error) {
	out := make([]Namespace, 0, len(namespaces))
	seen := map[string]bool{}
	for _, ns := range namespaces {
		if err := canonicalNamespace(&ns); err != nil {
			return nil, err
		}
		for _, id := range []string{fmt.Sprint("nsid ", ns.NSID), "uuid " + ns.UUID, "nguid " + ns.NGUID} {
			if !strings.HasSuffix(id, " ") && seen[id] {
				return nil, fmt.Errorf("two namespaces with %s: the kernel would refuse the second", id)
			}
			seen[id] = true
		}
		out = append(out, ns)
	}
	return out, nil
}

func canonicalNamespace(ns *Namespace) error {
	if ns.NSID == 0 || ns.NSID == 0xffffffff {
		return fmt.Errorf("nsid %d is not a namespace ID", ns.NSID)
	}
	if ns.SizeBytes <= 0 || ns.SizeBytes%512 != 0 {
		return fmt.Errorf("nsid %d: size %d is not a positive multiple of 512", ns.NSID, ns.SizeBytes)
	}
	if ns.UUID != "" {
		if !isUUID(ns.UUID) || ns.UUID == "00000000-0000-0000-0000-000000000000" {
			return fmt.Errorf("nsid %d: uuid %q is not a UUID", ns.NSID, ns.UUID)
		}
		ns.UUID = strings.ToLower(ns.UUID)
	}
	if ns.NGUID != "" {
		g, ok := canonicalNGUID(ns.NGUID)
		if !ok || g == strings.Repeat("0", 32) {
			return fmt.Errorf("nsid %d: nguid %q is not 32 hex digits", ns.NSID, ns.NGUID)
		}
		ns.NGUID = g
	}
	return nil
}

func sameNamespaces(t *target, namespaces []Namespace) bool {
	if len(namespaces) != len(t.namespaces) {
		return false
	}
	for _, ns := range namespaces {
		if cur := t.namespaces[ns.NSID]; cur == nil || cur.Namespace != ns {
			return false
		}
	}
	return true
}

// addBacking creates a namespace's backing file and adds it to t.
func (h *Host) addBacking(t *target, ns Namespace) error {
	if t.namespaces[ns.NSID] != nil {
		return fmt.Errorf("nsid %d exists", ns.NSID)
	}
	for _, cur := range t.namespaces {
		if ns.UUID != "" && cur.UUID == ns.UUID || ns.NGUID != "" && cur.NGUID == ns.NGUID {
			return fmt.Errorf("nsid %d has the identity of nsid %d", ns.NSID, cur.NSID)
		}
	}
	h.tree.seq++
	path := filepath.Join(h.backRoot, fmt.Sprintf("t%d-ns%d-%d.img", t.index, ns.NSID, h.tree.seq))
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return fmt.Errorf("backing file of nsid %d: %w", ns.NSID, err)
	}
	err = f.Truncate(ns.SizeBytes)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("backing file of nsid %d: %w", ns.NSID, err)
	}
	t.namespaces[ns.NSID] = &targetNS{Namespace: ns, backing: path}
	return nil
}

// SetAllowedHosts sets the host NQNs subsystem nqn lets in; nil lets any
// host in (attr_allow_any_host=1), an empty list none. A host not allowed
// gets EIO from the connect (Linux 6.1).
func (h *Host) SetAllowedHosts(nqn string, hostNQNs []string) {
	h.tb.Helper()
	h.mu.Lock()
	defer h.mu.Unlock()
	t := h.k.targets[nqn]
	if t == nil {
		h.tb.Fatalf("kerneltest: SetAllowedHosts: no target %q", nqn)
		return
	}
	if hostNQNs == nil {
		t.allowed = nil
		return
	}
	t.allowed = append([]string{}, hostNQNs...)
}

// AddNamespace adds a namespace to a target, as enabling one in nvmet
// does: live controllers of the subsystem scan it at once (the target's
// event), others when they are live again.
func (h *Host) AddNamespace(nqn string, ns Namespace) {
	h.tb.Helper()
	if err := canonicalNamespace(&ns); err != nil {
		h.tb.Fatalf("kerneltest: AddNamespace(%q): %v", nqn, err)
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	t := h.k.targets[nqn]
	if t == nil {
		h.tb.Fatalf("kerneltest: AddNamespace: no target %q", nqn)
		return
	}
	if err := h.addBacking(t, ns); err != nil {
		h.tb.Fatalf("kerneltest: AddNamespace(%q): %v", nqn, err)
		return
	}
	for _, c := range h.k.controllersOf(nqn) {
		h.scan(c)
	}
}

// RemoveNamespace takes a namespace off a target: live controllers drop
// their disks of it (the head, and its /dev node, with the last). The
// backing file stays, so a test can still look at the data.
func (h *Host) RemoveNamespace(nqn string, nsid uint32) {
	h.tb.Helper()
	h.mu.Lock()
	defer h.mu.Unlock()
	t := h.k.targets[nqn]
	if t == nil || t.namespaces[nsid] == nil {
		h.tb.Fatalf("kerneltest: RemoveNamespace: no nsid %d on %q", nsid, nqn)
		return
	}
	delete(t.namespaces, nsid)
	for _, c := range h.k.controllersOf(nqn) {
		h.scan(c)
	}
}

// ResizeNamespace changes a namespace's size, as a target does: the
// backing file and the size of every disk of it.
func (h *Host) ResizeNamespace(nqn string, nsid uint32, sizeBytes int64) {
	h.tb.Helper()
	if sizeBytes <= 0 || sizeBytes%512 != 0 {
		h.tb.Fatalf("kerneltest: ResizeNamespace: size %d is not a positive multiple of 512", sizeBytes)
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	t := h.k.targets[nqn]
	if t == nil || t.namespaces[nsid] == nil {
		h.tb.Fatalf("kerneltest: ResizeNamespace: no nsid %d on %q", nsid, nqn)
		return
	}
	ns := t.namespaces[nsid]
	if err := os.Truncate(ns.backing, sizeBytes); err != nil {
		h.tb.Fatalf("kerneltest: ResizeNamespace: %v", err)
	}
	ns.SizeBytes = sizeBytes
	for _, c := range h.k.controllersOf(nqn) {
		if d := c.disks[nsid]; d != nil && d.head.ns == ns {
			h.syncDiskSize(d)
			h.syncDiskSize(d.head.disk)
		}
	}
}

// BackingFile is where the data of a namespace lives, for a test that
// looks at what was written to it.
func (h *Host) BackingFile(nqn string, nsid uint32) (string, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if t := h.k.targets[nqn]; t != nil && t.namespaces[nsid] != nil {
		return t.namespaces[nsid].backing, true
	}
	return "", false
}

// Controller is a controller as the simulated kernel holds it.
type Controller struct {
	Name      string // nvmeN
	Instance  int
	State     string
	NQN       string
	Subsystem string // nvme-subsysK; "" while its connect runs
	TrAddr    string // as written
	TrSvcID   string
	// HostTrAddr and HostIface are "" unless given.
	HostTrAddr, HostIface string
	HostNQN, HostID       string
	CntlID                int
	Disks                 []string // its path disks, or its own disks without multipath
}

// Controllers lists every controller sysfs shows, in instance order.
func (h *Host) Controllers() []Controller {
	h.mu.Lock()
	defer h.mu.Unlock()
	out := make([]Controller, 0, len(h.k.ctrls))
	for _, inst := range slices.Sorted(maps.Keys(h.k.ctrls)) {
		c := h.k.ctrls[inst]
		cc := Controller{
			Name: c.name(), Instance: c.inst, State: c.state, NQN: c.opts.nqn,
			TrAddr: c.opts.traddr, TrSvcID: c.opts.trsvcid, HostTrAddr: c.opts.hostTrAddr, HostIface: c.opts.hostIface,
			HostNQN: c.host.nqn, HostID: c.host.id, CntlID: c.cntlid,
		}
		if c.sub != nil {
			cc.Subsystem = c.sub.name()
		}
		for _, nsid := range slices.Sorted(maps.Keys(c.disks)) {
			cc.Disks = append(cc.Disks, c.disks[nsid].name)
		}
		out = append(out, cc)
	}
	return out
}

// Disk is a block device of the simulated host.
type Disk struct {
	Name string // nvme0n1, or nvme0c1n1 for a hidden path disk
	NSID uint32
	// Dev is the device number, "259:N".
	Dev string
	// DevicePath is the /dev node; "" for a hidden path disk.
	DevicePath string
	// Controller is the path's or plain disk's controller; "" for a head.
	Controller string
	Subsystem  string // nvme-subsysK
	SizeBytes  int64
}

// Disks lists every NVMe block device, by name.
func (h *Host) Disks() []Disk {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []Disk
	add := func(d *disk) {
		dd := Disk{Name: d.name, NSID: d.head.ns.NSID, Dev: d.dev(), DevicePath: d.node,
			Subsystem: d.head.sub.name(), SizeBytes: d.head.ns.SizeBytes}
		if d.ctrl != nil {
			dd.Controller = d.ctrl.name()
		}
		out = append(out, dd)
	}
	for _, c := range h.k.ctrls {
		for _, d := range c.disks {
			add(d)
		}
	}
	for _, s := range h.k.subsys {
		for _, hd := range s.heads {
			if hd.disk != nil {
				add(hd.disk)
			}
		}
	}
	slices.SortFunc(out, func(a, b Disk) int { return strings.Compare(a.Name, b.Name) })
	return out
}
