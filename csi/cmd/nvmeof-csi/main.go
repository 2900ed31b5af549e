// Command nvmeof-csi is the CSI node plugin for NVMe/TCP volumes. main
// only turns flags into a driver.Config; the driver package does the work.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/signal"
	"runtime/debug"
	"syscall"
	"time"

	"github.com/hashicorp/go-hclog"
	mount "k8s.io/mount-utils"
	utilexec "k8s.io/utils/exec"

	"github.com/nvmeof/nvmeof/csi/driver"
	"github.com/nvmeof/nvmeof/shared/nvme/kernel"
)

// drainTimeout bounds how long SIGTERM waits for calls in flight.
const drainTimeout = 30 * time.Second

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) > 0 && args[0] == "validate" {
		return runValidate(args[1:], stdout, stderr)
	}
	opts, err := parseFlags(args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		_, _ = fmt.Fprintf(stderr, "nvmeof-csi: %v\n", err)
		return 2
	}
	if opts.version {
		_, _ = fmt.Fprintln(stdout, "nvmeof-csi", version())
		return 0
	}
	logger := hclog.New(&hclog.LoggerOptions{Name: "nvmeof-csi", Level: hclog.LevelFromString(opts.logLevel), JSONFormat: opts.logJSON, Output: stderr})
	if err := serve(opts, logger); err != nil {
		logger.Error("exiting", "error", err)
		return 1
	}
	return 0
}

func serve(opts options, logger hclog.Logger) error {
	host, derived, err := kernel.LoadHost(opts.host)
	if err != nil {
		return fmt.Errorf("host identity: %w", err)
	}
	if derived {
		logger.Warn("no host ID file; using the uuid of the host NQN as the host ID, as libnvme does", "hostid_file", opts.host.IDFile, "hostid", host.ID)
	}
	nodeID := opts.nodeID
	if nodeID == "" {
		nodeID = host.NQN
	}
	conn, err := kernel.NewConnector(kernel.ConnectorConfig{SysfsRoot: "/sys", DevRoot: "/dev", Backend: opts.connector, Logger: logger})
	if err != nil {
		return fmt.Errorf("connector: %w", err)
	}
	metrics := driver.NewMetrics()
	d, err := driver.New(driver.Config{
		DriverName: opts.driverName, Version: version(), NodeID: nodeID, Host: host,
		StateDir: opts.stateDir, MaxVolumes: opts.maxVolumes, OperationTimeout: opts.operationTimeout,
		HealInterval: opts.healInterval, HealJitter: opts.healJitter,
		Connector: conn, Mounter: mount.New(""), Mounts: driver.SyscallMounts{}, Exec: utilexec.New(),
		MountTable:  driver.ProcMountTable{Path: "/proc/self/mountinfo", DevDir: "/dev"},
		KernelCheck: func() error { return kernel.CheckFabricsSupport("/sys", "/dev") },
		Capabilities: func() kernel.Capabilities {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			return kernel.DetectCapabilities(ctx, kernel.CapabilityConfig{SysfsRoot: "/sys", ConfigFiles: opts.kernelConfig})
		},
		Logger: logger, Metrics: metrics,
	})
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	if err := d.Reconcile(ctx); err != nil {
		logger.Error("start-up reconciliation failed; serving anyway", "error", err)
	}
	go d.Monitor(ctx, opts.healthInterval)
	go d.Heal(ctx)
	if opts.metricsAddr != "" {
		srv := &http.Server{Addr: opts.metricsAddr, Handler: metrics.Handler(), ReadHeaderTimeout: 5 * time.Second}
		go func() {
			if err := srv.ListenAndServe(); err != nil && !errors.Is(err, http.ErrServerClosed) {
				logger.Error("metrics server", "error", err)
			}
		}()
		defer func() { _ = srv.Close() }()
	}
	l, err := driver.Listen(opts.endpoint)
	if err != nil {
		return err
	}
	logger.Info("serving", "endpoint", opts.endpoint, "driver", opts.driverName, "node_id", nodeID, "version", version())
	return driver.Serve(ctx, d.NewGRPCServer(), l, drainTimeout)
}

// version is the main module's version from the build info.
func version() string {
	info, ok := debug.ReadBuildInfo()
	if !ok || info.Main.Version == "" {
		return "(devel)"
	}
	return info.Main.Version
}
