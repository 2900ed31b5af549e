package kernel

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/hashicorp/go-hclog"
	"k8s.io/apimachinery/pkg/util/wait"

	"github.com/nvmeof/nvmeof/shared/retry"
)

// Backends a Connector creates controllers with.
const (
	// BackendFabrics writes the option string to /dev/nvme-fabrics itself:
	// no tool to install, and the kernel's errno reaches the caller.
	BackendFabrics = "fabrics"
	// BackendNVMeCLI runs `nvme connect`, for hosts that standardise on it.
	BackendNVMeCLI = "nvme-cli"
)

// Backends lists the accepted backend names, for flags and docs.
func Backends() []string { return []string{BackendFabrics, BackendNVMeCLI} }

// Defaults of ConnectorConfig.
const (
	DefaultSysfsRoot   = "/sys"
	DefaultDevRoot     = "/dev"
	DefaultNVMeCLIPath = "nvme"
)

// CommandRunner runs a program with an argument vector, never through a
// shell. It exists so tests can stand in for nvme-cli.
type CommandRunner interface {
	Run(ctx context.Context, path string, args []string) (stdout, stderr []byte, err error)
}

// HostLookup resolves a target host name to its addresses.
type HostLookup func(ctx context.Context, host string) ([]netip.Addr, error)

// ConnectorConfig configures NewConnector. The zero value is a fabrics
// connector on the real /sys and /dev.
type ConnectorConfig struct {
	SysfsRoot   string // "/sys"
	DevRoot     string // "/dev": /dev/nvme-fabrics and the namespaces' nodes
	Backend     string // BackendFabrics (default) or BackendNVMeCLI
	NVMeCLIPath string // "nvme", looked up in PATH
	// Backoff paces retries of a connect that failed for a passing reason;
	// zero is retry.DefaultBackoff().
	Backoff wait.Backoff
	Logger  hclog.Logger // nil: no logs
	// Exec runs nvme-cli; nil runs it with os/exec.
	Exec CommandRunner
	// LookupHost resolves a traddr that is a host name; nil uses the
	// system resolver.
	LookupHost HostLookup
	// ControlFiles opens /dev/nvme-fabrics and writes sysfs attributes;
	// nil uses the real files. Tests pass a simulated host (kerneltest).
	ControlFiles ControlFiles
	// DiskEvents starts listening for disk events, which Resolve waits
	// for; nil listens to the kernel's uevents (ListenDiskEvents). Tests
	// pass the simulated host's.
	DiskEvents func() (DiskEvents, error)
	// DiskEventFallback is how long Resolve waits for an event before it
	// looks anyway; zero is DefaultDiskEventFallback.
	DiskEventFallback time.Duration
}

// ControlFiles is the connector's edge to the kernel's control files: the
// ones whose writes make the kernel act (create or delete a controller,
// retune it). Reads go straight to the sysfs tree under SysfsRoot.
type ControlFiles interface {
	// OpenFabrics opens /dev/nvme-fabrics (path) read-write.
	OpenFabrics(path string) (io.ReadWriteCloser, error)
	// WriteAttr writes value to the sysfs attribute at path in one write.
	WriteAttr(path, value string) error
}

// osControlFiles are the real files.
type osControlFiles struct{}

func (osControlFiles) OpenFabrics(path string) (io.ReadWriteCloser, error) {
	return os.OpenFile(path, os.O_RDWR, 0) //nolint:wrapcheck // openFabrics wraps it with what it means
}

func (osControlFiles) WriteAttr(path, value string) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_TRUNC, 0)
	if err != nil {
		return fmt.Errorf("open %s for writing: %w", filepath.Base(path), err)
	}
	_, werr := f.WriteString(value)
	cerr := f.Close()
	if werr != nil {
		return fmt.Errorf("write %q to %s: %w", value, filepath.Base(path), werr)
	}
	if cerr != nil {
		return fmt.Errorf("write %q to %s: %w", value, filepath.Base(path), cerr)
	}
	return nil
}

// NewConnector validates cfg, fills in its defaults and returns a
// Connector that talks to the kernel through sysfs and the chosen backend.
func NewConnector(cfg ConnectorConfig) (Connector, error) {
	if cfg.SysfsRoot == "" {
		cfg.SysfsRoot = DefaultSysfsRoot
	}
	if cfg.DevRoot == "" {
		cfg.DevRoot = DefaultDevRoot
	}
	if cfg.Backend == "" {
		cfg.Backend = BackendFabrics
	}
	if cfg.Backoff == (wait.Backoff{}) {
		cfg.Backoff = retry.DefaultBackoff()
	}
	if cfg.Logger == nil {
		cfg.Logger = hclog.NewNullLogger()
	}
	if cfg.ControlFiles == nil {
		cfg.ControlFiles = osControlFiles{}
	}
	if cfg.DiskEvents == nil {
		cfg.DiskEvents = ListenDiskEvents
	}
	if cfg.DiskEventFallback <= 0 {
		cfg.DiskEventFallback = DefaultDiskEventFallback
	}
	if cfg.LookupHost == nil {
		cfg.LookupHost = func(ctx context.Context, host string) ([]netip.Addr, error) {
			return net.DefaultResolver.LookupNetIP(ctx, "ip", host) //nolint:wrapcheck // resolveTarget wraps it with the host name
		}
	}
	k := &kernelConnector{
		sys:        sysfs{root: cfg.SysfsRoot, ctl: cfg.ControlFiles, addrs: newAddressCache()},
		devRoot:    cfg.DevRoot,
		backoff:    cfg.Backoff,
		log:        cfg.Logger.Named("connector"),
		lookupHost: cfg.LookupHost,

		diskEvents:        cfg.DiskEvents,
		diskEventFallback: cfg.DiskEventFallback,
	}
	switch cfg.Backend {
	case BackendFabrics:
		k.backend = &fabricsBackend{path: filepath.Join(cfg.DevRoot, "nvme-fabrics"), open: cfg.ControlFiles.OpenFabrics, log: k.log}
	case BackendNVMeCLI:
		if cfg.NVMeCLIPath == "" {
			cfg.NVMeCLIPath = DefaultNVMeCLIPath
		}
		if cfg.Exec == nil {
			cfg.Exec = execRunner{}
		}
		k.backend = &nvmeCLIBackend{path: cfg.NVMeCLIPath, exec: cfg.Exec, sys: k.sys}
	default:
		return nil, fmt.Errorf("connector backend %q: must be one of %s", cfg.Backend, strings.Join(Backends(), ", "))
	}
	return k, nil
}

// CheckFabricsSupport tells whether this host can create NVMe/TCP
// controllers now: /dev/nvme-fabrics exists (nvme-fabrics is loaded) and
// the nvme-tcp module is. The error matches ErrFabricsUnavailable and says
// what to load. A CSI Probe calls it on every probe, so it only stats.
func CheckFabricsSupport(sysfsRoot, devRoot string) error {
	if sysfsRoot == "" {
		sysfsRoot = DefaultSysfsRoot
	}
	if devRoot == "" {
		devRoot = DefaultDevRoot
	}
	dev := filepath.Join(devRoot, "nvme-fabrics")
	st, err := os.Stat(dev)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return fmt.Errorf("%w: %s does not exist: load the modules with `modprobe nvme-tcp` (or mount the host's /dev)", ErrFabricsUnavailable, dev)
	case err != nil:
		return fmt.Errorf("%w: %w", ErrFabricsUnavailable, err)
	case st.Mode()&fs.ModeCharDevice == 0:
		return fmt.Errorf("%w: %s is not a character device", ErrFabricsUnavailable, dev)
	}
	mod := filepath.Join(sysfsRoot, "module", "nvme_tcp")
	if _, err := os.Stat(mod); errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("%w: %s not found, the NVMe/TCP transport is not loaded: run `modprobe nvme-tcp`", ErrFabricsUnavailable, mod)
	} else if err != nil {
		// Not "not loaded": sysfs itself cannot be read (a bad mount of
		// the host's /sys into the plugin's container, say).
		return fmt.Errorf("%w: look for nvme_tcp: %w", ErrFabricsUnavailable, err)
	}
	return nil
}

// execRunner runs programs with os/exec.
type execRunner struct{}

func (execRunner) Run(ctx context.Context, path string, args []string) ([]byte, []byte, error) {
	var stdout, stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, path, args...)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	if err != nil {
		err = fmt.Errorf("run %s: %w", filepath.Base(path), err)
	}
	return stdout.Bytes(), stderr.Bytes(), err
}
