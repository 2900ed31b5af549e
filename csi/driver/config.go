package driver

import (
	"errors"
	"fmt"
	"time"

	"github.com/hashicorp/go-hclog"
	mount "k8s.io/mount-utils"
	utilexec "k8s.io/utils/exec"

	"github.com/nvmeof/nvmeof/shared/nvme"
	"github.com/nvmeof/nvmeof/shared/nvme/kernel"
)

// DefaultDriverName is the CSI driver name the plugin reports.
const DefaultDriverName = "csi.nvmeof.io"

// Config is everything the driver needs; New validates it. The OS edges
// (connector, mounter, exec, mount table, kernel check) are injected so
// tests run without a kernel.
type Config struct {
	DriverName string
	Version    string
	NodeID     string
	Host       nvme.Host
	// StateDir holds what the plugin connected; it must survive restarts.
	StateDir string
	// MaxVolumes is max_volumes_per_node; 0 means no limit.
	MaxVolumes int64
	// OperationTimeout bounds every node RPC; 0 is
	// DefaultOperationTimeout. Steps that cannot be abandoned halfway (a
	// format, a mount) finish after it, with the volume locked.
	OperationTimeout time.Duration
	// NamespaceTimeout is how long a stage waits for its namespace to
	// appear after the connect; 0 is DefaultNamespaceTimeout.
	NamespaceTimeout time.Duration

	// HealInterval is how often the healer looks for missing paths of
	// staged volumes; 0 is DefaultHealInterval. HealJitter stretches each
	// wait by up to that fraction, at random (0 to 1).
	HealInterval time.Duration
	HealJitter   float64
	// Now is the clock of the healer and the metrics; nil is time.Now.
	Now func() time.Time

	Connector kernel.Connector
	// Mounter is mount-utils' mounter: the tools it runs (blkid, mkfs,
	// fsck, resize) and its mount-point checks.
	Mounter mount.Interface
	// Mounts makes and takes off the plugin's own mounts; nil does them
	// through Mounter, which is right for mount-utils' fake mounter. The
	// binary passes SyscallMounts.
	Mounts Mounts
	Exec   utilexec.Interface
	// MountTable reads which device is mounted where; nil reads the
	// mounter's list, which is right for mount-utils' fake mounter. The
	// binary passes ProcMountTable, which also sees block bind mounts.
	MountTable MountTable
	// KernelCheck reports why the host cannot connect NVMe/TCP (nil when
	// it can); Probe answers not ready while it fails.
	KernelCheck func() error
	// Capabilities says what the running kernel can do beyond a plain
	// connect (DH-HMAC-CHAP, TLS, iopolicies); New reads it once and logs
	// it, a stage with secrets asks again while host authentication is
	// unknown. nil: nothing is known, and a stage with secrets is tried.
	Capabilities func() kernel.Capabilities
	Logger       hclog.Logger
	// Metrics may be shared with a caller that serves them; nil makes new.
	Metrics *Metrics
	// BootID is the kernel's boot id (a controller never outlives its
	// boot); empty reads /proc/sys/kernel/random/boot_id.
	BootID string
}

func (c *Config) validate() error {
	var errs []error
	if c.DriverName == "" {
		errs = append(errs, errors.New("driver name is empty"))
	}
	if c.NodeID == "" {
		errs = append(errs, errors.New("node id is empty"))
	}
	if err := c.Host.Validate(); err != nil {
		errs = append(errs, fmt.Errorf("host identity: %w", err))
	}
	if c.StateDir == "" {
		errs = append(errs, errors.New("state dir is empty"))
	}
	if c.OperationTimeout < 0 || c.NamespaceTimeout < 0 {
		errs = append(errs, fmt.Errorf("operation timeout %v and namespace timeout %v must not be negative", c.OperationTimeout, c.NamespaceTimeout))
	}
	if c.HealInterval < 0 || c.HealJitter < 0 || c.HealJitter > 1 {
		errs = append(errs, fmt.Errorf("heal interval %v must not be negative, and heal jitter %v must be from 0 to 1", c.HealInterval, c.HealJitter))
	}
	if c.MaxVolumes < 0 {
		errs = append(errs, fmt.Errorf("max volumes %d is negative", c.MaxVolumes))
	}
	if c.Connector == nil {
		errs = append(errs, errors.New("no connector"))
	}
	if c.Mounter == nil {
		errs = append(errs, errors.New("no mounter"))
	}
	if c.Exec == nil {
		errs = append(errs, errors.New("no exec"))
	}
	if c.KernelCheck == nil {
		errs = append(errs, errors.New("no kernel check"))
	}
	if len(errs) > 0 {
		return fmt.Errorf("invalid driver config: %w", errors.Join(errs...))
	}
	return nil
}
