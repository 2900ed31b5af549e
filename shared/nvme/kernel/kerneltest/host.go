package kerneltest

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// Host is one simulated Linux host with NVMe/TCP targets it can reach.
type Host struct {
	tb  testing.TB
	cfg config

	sysRoot, devRoot, backRoot string
	cli                        *NVMeCLI

	// connectSem is the kernel's nvmf_dev_mutex: one connect at a time. A
	// channel, not a sync.Mutex, so that a connect waiting for it counts
	// as durably blocked in a testing/synctest bubble.
	connectSem chan struct{}
	// writes counts fabrics writes in progress, for the cleanup.
	writes sync.WaitGroup
	// closing ends every held connect and connect latency.
	closing chan struct{}

	mu     sync.Mutex
	closed bool
	tree   tree
	k      kernelState
	faults faults
	dns    map[string][]netip.Addr
	// log is what the kernel would print (dmesg), for failure messages.
	log []string
	// written is every option string the code under test wrote.
	written              []string
	connects, disconnect int
	// openFiles counts open /dev/nvme-fabrics descriptors; fdClosed is
	// closed and replaced whenever one closes.
	openFiles int
	fdClosed  chan struct{}
	// events are the listeners to disk announcements (DiskEvents).
	events diskEventHub
}

// config holds what the options chose.
type config struct {
	multipath  bool
	fabrics    bool
	concurrent bool
	// strictHosts: newer kernels' host identity rules (see
	// WithStrictHostIdentity).
	strictHosts bool
	cpus        int
	ifaces      map[string][]netip.Prefix
	ifaceErr    error
	defaultID   string
	// ioPolicies are the subsystem iopolicy values the kernel accepts.
	ioPolicies []string
}

// Option changes how New builds the host.
type Option func(*config)

// WithoutMultipath simulates nvme_core.multipath=N: each controller has its
// own disks nvmeCnI, each with a /dev node, and no head disks.
func WithoutMultipath() Option { return func(c *config) { c.multipath = false } }

// WithoutFabrics simulates a host without the nvme-fabrics and nvme-tcp
// modules: no /dev/nvme-fabrics, no /sys/module/nvme_tcp.
func WithoutFabrics() Option { return func(c *config) { c.fabrics = false } }

// WithConcurrentConnects lets connects run in parallel. Linux serialises
// them (one global mutex around the whole controller setup): with this
// option a connect held by HoldConnects no longer holds up connects to
// other subsystems, which isolates tests of the caller's own locking from
// that kernel fact. Without it, they wait as they would on a host.
func WithConcurrentConnects() Option { return func(c *config) { c.concurrent = true } }

// WithStrictHostIdentity simulates the host identity rules of kernels
// newer than Debian's 6.1 (trixie's 6.12): a host NQN known with another
// host ID, or a host ID known with another NQN, is EINVAL; a connect
// without a hostid takes the default host's; a second hostnqn replaces the
// first. Without it, 6.1's rules hold, as measured in the lab: hosts are
// told apart by NQN alone, every connect overwrites its host's ID (with a
// random one when it gives none) for the controllers already using that
// host too, and a second hostnqn is EADDRINUSE.
func WithStrictHostIdentity() Option { return func(c *config) { c.strictHosts = true } }

// WithIOPolicies sets the multipath I/O policies the kernel offers:
// numa and round-robin by default, as Debian's 6.1; 6.11 and later add
// queue-depth. A write of another to a subsystem's iopolicy is EINVAL.
func WithIOPolicies(policies ...string) Option {
	return func(c *config) { c.ioPolicies = policies }
}

// WithCPUs sets the number of online CPUs, which caps nr_io_queues (2 by
// default).
func WithCPUs(n int) Option { return func(c *config) { c.cpus = n } }

// WithInterface adds a network interface with local addresses in CIDR form
// ("192.0.2.10/24"). Every host has "lo" with 127.0.0.1/8 and ::1/128.
// host_iface must name an interface, and host_traddr must be one of their
// addresses.
func WithInterface(name string, prefixes ...string) Option {
	return func(c *config) {
		if _, ok := c.ifaces[name]; !ok {
			c.ifaces[name] = nil
		}
		for _, p := range prefixes {
			pp, err := netip.ParsePrefix(p)
			if err != nil {
				c.ifaceErr = fmt.Errorf("WithInterface(%q): %w", name, err)
				return
			}
			c.ifaces[name] = append(c.ifaces[name], pp)
		}
	}
}

// WithDefaultHostID sets the host ID the kernel generated at boot (random
// otherwise); its default host NQN is nqn.2014-08.org.nvmexpress:uuid:<id>.
// Connects that give no hostnqn or hostid use these.
func WithDefaultHostID(id string) Option { return func(c *config) { c.defaultID = id } }

// New builds a host under tb.TempDir(). Its cleanup releases held connects,
// waits for every fabrics write in progress, and fails the test if a
// /dev/nvme-fabrics descriptor was left open.
func New(tb testing.TB, opts ...Option) *Host {
	tb.Helper()
	cfg := config{multipath: true, fabrics: true, cpus: 2, ioPolicies: []string{"numa", "round-robin"}, ifaces: map[string][]netip.Prefix{
		"lo": {netip.MustParsePrefix("127.0.0.1/8"), netip.MustParsePrefix("::1/128")},
	}}
	for _, o := range opts {
		o(&cfg)
	}
	if cfg.ifaceErr != nil {
		tb.Fatalf("kerneltest: %v", cfg.ifaceErr)
	}
	if cfg.cpus < 1 {
		tb.Fatalf("kerneltest: WithCPUs(%d): a host has at least one CPU", cfg.cpus)
	}
	if cfg.defaultID == "" {
		cfg.defaultID = randomUUID()
	} else if !isUUID(cfg.defaultID) {
		tb.Fatalf("kerneltest: WithDefaultHostID(%q): not a UUID", cfg.defaultID)
	}
	cfg.defaultID = strings.ToLower(cfg.defaultID)
	base := tb.TempDir()
	h := &Host{
		tb:         tb,
		cfg:        cfg,
		sysRoot:    filepath.Join(base, "sys"),
		devRoot:    filepath.Join(base, "dev"),
		backRoot:   filepath.Join(base, "targets"),
		closing:    make(chan struct{}),
		connectSem: make(chan struct{}, 1),
		dns:        map[string][]netip.Addr{},
		fdClosed:   make(chan struct{}),
	}
	h.tree = tree{h: h, stage: filepath.Join(base, "staging"), grave: filepath.Join(base, "removed"), values: map[string]string{}, broken: map[string]os.FileMode{}}
	h.k = newKernelState(cfg.defaultID)
	h.faults = newFaults()
	h.cli = &NVMeCLI{h: h}
	h.mu.Lock()
	h.layout()
	h.mu.Unlock()
	tb.Cleanup(h.shutdown)
	return h
}

// layout makes the parts of /sys and /dev that exist before any connect.
func (h *Host) layout() {
	t := &h.tree
	for _, d := range []string{
		"class/nvme", "class/nvme-subsystem", "class/nvme-fabrics", "class/block", "block", "dev/block",
		"devices/virtual/nvme-fabrics/ctl", "devices/virtual/nvme-subsystem", "fs/ext4",
		"module/nvme_core/parameters",
	} {
		t.mkdir(filepath.Join(h.sysRoot, d))
	}
	t.mkdir(h.devRoot)
	t.mkdir(h.backRoot)
	t.mkdir(t.stage)
	t.mkdir(t.grave)
	multipath := "N"
	if h.cfg.multipath {
		multipath = "Y"
	}
	t.attr(filepath.Join(h.sysRoot, "module/nvme_core/parameters/multipath"), multipath, 0o400)
	if !h.cfg.fabrics {
		return
	}
	t.link(filepath.Join(h.sysRoot, "devices/virtual/nvme-fabrics/ctl"), filepath.Join(h.sysRoot, "class/nvme-fabrics/ctl"))
	for _, m := range []string{"nvme_fabrics", "nvme_tcp"} {
		t.mkdir(filepath.Join(h.sysRoot, "module", m))
	}
	// Any character device passes a check that /dev/nvme-fabrics is one;
	// the code under test opens it through OpenFabrics, never directly.
	t.check(os.Symlink("/dev/null", filepath.Join(h.devRoot, "nvme-fabrics")))
}

// SysfsRoot is the simulated /sys.
func (h *Host) SysfsRoot() string { return h.sysRoot }

// DevRoot is the simulated /dev.
func (h *Host) DevRoot() string { return h.devRoot }

// FabricsPath is /dev/nvme-fabrics of this host.
func (h *Host) FabricsPath() string { return filepath.Join(h.devRoot, "nvme-fabrics") }

// DefaultHostNQN and DefaultHostID are the identity the kernel made at
// boot, used by a connect that gives none. (On 6.1 a connect that gives the
// default NQN with another ID, or none, changes the ID the controllers of
// the default host show; these stay the boot values.)
func (h *Host) DefaultHostNQN() string { return hostNQNUUIDPrefix + h.cfg.defaultID }

// DefaultHostID: see DefaultHostNQN.
func (h *Host) DefaultHostID() string { return h.cfg.defaultID }

// SetHostAddr makes the simulated resolver answer name with addrs (none:
// the name no longer resolves).
func (h *Host) SetHostAddr(name string, addrs ...string) {
	h.tb.Helper()
	parsed := make([]netip.Addr, 0, len(addrs))
	for _, a := range addrs {
		p, err := netip.ParseAddr(a)
		if err != nil {
			h.tb.Fatalf("kerneltest: SetHostAddr(%q): %v", name, err)
		}
		parsed = append(parsed, p)
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if len(parsed) == 0 {
		delete(h.dns, name)
		return
	}
	h.dns[name] = parsed
}

// LookupHost is the simulated resolver, with the signature of the
// connector's HostLookup. Unknown names fail as the system resolver does.
func (h *Host) LookupHost(ctx context.Context, host string) ([]netip.Addr, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("lookup %s: %w", host, err)
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	addrs, ok := h.dns[host]
	if !ok {
		return nil, &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}
	}
	return slices.Clone(addrs), nil
}

// Writes returns every option string written to /dev/nvme-fabrics by the
// code under test (OpenFabrics and NVMeCLI), in order, secrets included,
// whether the kernel accepted it or not. AdminConnect's are not included.
func (h *Host) Writes() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return slices.Clone(h.written)
}

// Connects is the number of controllers the code under test created
// (through OpenFabrics or NVMeCLI).
func (h *Host) Connects() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.connects
}

// Disconnects is the number of controllers deleted through WriteAttr
// (delete_controller), which is how the code under test disconnects.
// RemoveController does not count.
func (h *Host) Disconnects() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.disconnect
}

// Dmesg returns what the kernel logged, oldest first: why a connect was
// refused, which controllers came and went.
func (h *Host) Dmesg() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return slices.Clone(h.log)
}

func (h *Host) logf(format string, args ...any) {
	h.log = append(h.log, fmt.Sprintf(format, args...))
}

// OpenFabricsFiles is the number of /dev/nvme-fabrics descriptors open now.
func (h *Host) OpenFabricsFiles() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.openFiles
}

// WaitFabricsClosed waits until no /dev/nvme-fabrics descriptor is open, or
// ctx ends.
func (h *Host) WaitFabricsClosed(ctx context.Context) error {
	for {
		h.mu.Lock()
		n, ch := h.openFiles, h.fdClosed
		h.mu.Unlock()
		if n == 0 {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return fmt.Errorf("%d /dev/nvme-fabrics descriptor(s) still open: %w", n, ctx.Err())
		}
	}
}

// fdLeakGrace bounds how long the cleanup waits for descriptors that the
// code under test closes on its own goroutines after a write returns.
const fdLeakGrace = 10 * time.Second

// shutdown is the test cleanup: nothing stays blocked in the simulated
// kernel, nothing writes into the tree after the test, and a descriptor
// never closed is a leak the test reports.
func (h *Host) shutdown() {
	h.mu.Lock()
	h.closed = true // no new opens, writes or admin connects
	h.mu.Unlock()
	close(h.closing)
	h.writes.Wait()
	ctx, cancel := context.WithTimeout(context.Background(), fdLeakGrace)
	defer cancel()
	if err := h.WaitFabricsClosed(ctx); err != nil {
		h.tb.Errorf("kerneltest: descriptor leak: %v", err)
	}
}

var errClosed = errors.New("kerneltest: the test has ended")
