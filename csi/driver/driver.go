// Package driver is the nvmeof-csi plugin: the CSI identity and node
// services over shared/nvme's connector, with the gRPC server, start-up
// reconciliation and metrics around them. Its state is the kernel (sysfs,
// through the connector), the mount table and a small state dir: nothing
// held only in memory decides anything, so a kill -9 loses nothing.
package driver

import (
	"fmt"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"github.com/hashicorp/go-hclog"
	mount "k8s.io/mount-utils"

	"github.com/nvmeof/nvmeof/shared/nvme"
	"github.com/nvmeof/nvmeof/shared/nvme/kernel"
)

// Driver serves the CSI identity and node services.
type Driver struct {
	csi.UnimplementedIdentityServer
	csi.UnimplementedNodeServer

	cfg    Config
	log    hclog.Logger
	mounts MountTable
	// ownMounts makes the plugin's mounts; formatter runs blkid, mkfs and
	// fsck, and mounts through ownMounts.
	ownMounts Mounts
	formatter *mount.SafeFormatAndMount
	resizer   *mount.ResizeFs
	state     *stateStore
	metrics   *Metrics

	volumes *volumeLocks
	keys    *keyLocks

	// probeMu guards lastProbe, so a kernel problem is logged once when it
	// appears rather than at every Probe.
	probeMu   sync.Mutex
	lastProbe string

	monitor monitorState
	healer  healerState
	auth    authMemory

	// capsMu guards caps, what the kernel can do (see Config.Capabilities).
	capsMu sync.Mutex
	caps   kernel.Capabilities
}

var (
	_ csi.IdentityServer = (*Driver)(nil)
	_ csi.NodeServer     = (*Driver)(nil)
)

// New validates cfg and prepares the state dir.
func New(cfg Config) (*Driver, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	if cfg.Logger == nil {
		cfg.Logger = hclog.NewNullLogger()
	}
	if cfg.Metrics == nil {
		cfg.Metrics = NewMetrics()
	}
	mt := cfg.MountTable
	if mt == nil {
		mt = mounterTable{cfg.Mounter}
	}
	own := cfg.Mounts
	if own == nil {
		own = mounterMounts{cfg.Mounter}
	}
	if cfg.OperationTimeout == 0 {
		cfg.OperationTimeout = DefaultOperationTimeout
	}
	if cfg.NamespaceTimeout == 0 {
		cfg.NamespaceTimeout = DefaultNamespaceTimeout
	}
	if cfg.HealInterval == 0 {
		cfg.HealInterval = DefaultHealInterval
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	boot := cfg.BootID
	if boot == "" {
		boot = readBootID(cfg.Logger)
	}
	state, err := newStateStore(cfg.StateDir, cfg.Logger.Named("state"), boot)
	if err != nil {
		return nil, fmt.Errorf("new driver: %w", err)
	}
	d := &Driver{
		cfg:       cfg,
		log:       cfg.Logger.Named("node"),
		mounts:    mt,
		ownMounts: own,
		formatter: mount.NewSafeFormatAndMount(formatMounter{Interface: cfg.Mounter, own: own}, cfg.Exec),
		resizer:   mount.NewResizeFs(cfg.Exec),
		state:     state,
		metrics:   cfg.Metrics,
		volumes:   newVolumeLocks(),
		keys:      newKeyLocks(),
		monitor:   monitorState{observing: make(chan struct{}, 1)},
	}
	if cfg.Capabilities != nil {
		d.caps = cfg.Capabilities()
		d.log.Info("kernel capabilities", "kernel", d.caps.Release, "dhchap", d.caps.HostAuth.String(),
			"tls", d.caps.TLS.String(), "iopolicies", iopolicies(d.caps.IOPolicies))
	}
	return d, nil
}

func iopolicies(p []string) string {
	if p == nil {
		return "unknown"
	}
	return strings.Join(p, ",")
}

// checkHostAuth refuses, before any connect, a stage with DH-HMAC-CHAP
// secrets on a kernel that cannot authenticate: the kernel would accept
// the option and fail deep inside the connect with an opaque error. While
// the answer is unknown (no config readable, no controller to look at) it
// asks again, and lets the connect be tried when it still does not know.
func (d *Driver) checkHostAuth() error {
	if d.cfg.Capabilities == nil {
		return nil
	}
	d.capsMu.Lock()
	defer d.capsMu.Unlock()
	if d.caps.HostAuth.Support == kernel.Unknown {
		d.caps = d.cfg.Capabilities()
	}
	if err := d.caps.CheckHostAuth(); err != nil {
		return precondition("%v", err)
	}
	return nil
}

// checkIOPolicy refuses, before any connect, an I/O policy the running
// kernel is known not to offer (nvme_core's parameter description lists
// them). When that is not known the policy is tried on the subsystem,
// whose refusal says the same after the connect.
func (d *Driver) checkIOPolicy(policy nvme.IOPolicy) error {
	if policy == "" || d.cfg.Capabilities == nil {
		return nil
	}
	d.capsMu.Lock()
	offered := d.caps.IOPolicies
	release := d.caps.Release
	d.capsMu.Unlock()
	if offered == nil || slices.Contains(offered, string(policy)) {
		return nil
	}
	return precondition("iopolicy %q is not offered by this node's kernel %s (it offers %s): use one it has, or leave iopolicy unset",
		policy, release, strings.Join(offered, ", "))
}

// bootIDFile is where the kernel gives its boot's random id.
const bootIDFile = "/proc/sys/kernel/random/boot_id"

// readBootID returns this boot's id, or "" (controller records then are
// not tied to a boot) when it cannot be read.
func readBootID(log hclog.Logger) string {
	b, err := os.ReadFile(bootIDFile)
	if err != nil {
		log.Warn("cannot read the boot id; records of controllers cannot tell a reboot", "path", bootIDFile, "error", err)
		return ""
	}
	return strings.TrimSpace(string(b))
}
