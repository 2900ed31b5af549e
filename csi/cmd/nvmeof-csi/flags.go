package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strconv"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/nvmeof/nvmeof/csi/driver"
	"github.com/nvmeof/nvmeof/shared/nvme/kernel"
)

type options struct {
	endpoint, nodeID, driverName     string
	stateDir                         string
	connector, logLevel, metricsAddr string
	host                             kernel.HostSources
	kernelConfig                     []string
	maxVolumes                       int64
	operationTimeout, healthInterval time.Duration
	healInterval                     time.Duration
	healJitter                       float64
	logJSON, version                 bool
}

// parseFlags reads flags; each defaults to its environment variable, so a
// Nomad jobspec can set either.
func parseFlags(args []string, stderr io.Writer) (options, error) {
	var o options
	fset := flag.NewFlagSet("nvmeof-csi", flag.ContinueOnError)
	fset.SetOutput(stderr)
	env := func(name, def string) string {
		if v, ok := os.LookupEnv(name); ok {
			return v
		}
		return def
	}
	fset.StringVar(&o.endpoint, "endpoint", env("CSI_ENDPOINT", ""), "CSI socket, unix:///path (env CSI_ENDPOINT)")
	fset.StringVar(&o.nodeID, "node-id", env("NVMEOF_NODE_ID", ""), "node id reported to the orchestrator (default: the host NQN)")
	fset.StringVar(&o.driverName, "driver-name", env("NVMEOF_DRIVER_NAME", driver.DefaultDriverName), "CSI driver name")
	fset.StringVar(&o.host.NQN, "hostnqn", env("NVMEOF_HOSTNQN", ""), "host NQN (default: read from --hostnqn-file)")
	fset.StringVar(&o.host.ID, "hostid", env("NVMEOF_HOSTID", ""), "host ID, a UUID (default: read from --hostid-file)")
	fset.StringVar(&o.host.NQNFile, "hostnqn-file", env("NVMEOF_HOSTNQN_FILE", kernel.DefaultHostNQNFile), "file holding the host NQN (must exist when given)")
	fset.StringVar(&o.host.IDFile, "hostid-file", env("NVMEOF_HOSTID_FILE", kernel.DefaultHostIDFile),
		"file holding the host ID (must exist when given; the default may be missing when the host NQN is of the uuid form)")
	fset.DurationVar(&o.operationTimeout, "operation-timeout", driver.DefaultOperationTimeout,
		"bound on every node RPC (Nomad sets none on stage and publish); a format or mount still running then finishes in the background")
	fset.DurationVar(&o.healInterval, "heal-interval", driver.DefaultHealInterval,
		"how often to look for missing paths of staged volumes and reconnect them; a path that keeps failing is retried less often, doubling up to 5m")
	fset.Float64Var(&o.healJitter, "heal-jitter", driver.DefaultHealJitter,
		"stretch each healing wait by up to this fraction, at random (0 to 1), so that nodes do not reconnect in lockstep")
	fset.DurationVar(&o.healthInterval, "health-interval", 15*time.Second,
		"how often the background monitor reads the controllers' and paths' states (health and metrics) and probes each staged file system with a write (it skips a volume while an operation runs on it)")
	fset.StringVar(&o.stateDir, "state-dir", env("NVMEOF_STATE_DIR", "/var/lib/nvmeof-csi"), "directory that records what the plugin connected; must survive restarts")
	fset.StringVar(&o.connector, "connector", env("NVMEOF_CONNECTOR", "fabrics"), "how to connect: fabrics (write /dev/nvme-fabrics) or nvme-cli")
	fset.StringVar(&o.logLevel, "log-level", env("NVMEOF_LOG_LEVEL", "info"), "trace, debug, info, warn or error")
	fset.StringVar(&o.metricsAddr, "metrics-addr", env("NVMEOF_METRICS_ADDR", ""), "serve Prometheus metrics on this address, e.g. 127.0.0.1:9810 (off when empty)")
	fset.BoolVar(&o.logJSON, "log-json", env("NVMEOF_LOG_JSON", "") == "true", "log in JSON")
	fset.BoolVar(&o.version, "version", false, "print the version and exit")
	kernelConfig := fset.String("kernel-config", env("NVMEOF_KERNEL_CONFIG", ""),
		"the running kernel's build config, to learn whether it has DH-HMAC-CHAP (default: /proc/config.gz, then /boot/config-$(uname -r); mount /boot read-only into a container)")
	maxVolumes := fset.String("max-volumes", env("NVMEOF_MAX_VOLUMES", "0"), "max_volumes_per_node (0: no limit)")
	if err := fset.Parse(args); err != nil {
		return options{}, err //nolint:wrapcheck // flag's own message is shown as is
	}
	_, envNQNFile := os.LookupEnv("NVMEOF_HOSTNQN_FILE")
	_, envIDFile := os.LookupEnv("NVMEOF_HOSTID_FILE")
	o.host.NQNFileRequired, o.host.IDFileRequired = envNQNFile, envIDFile
	fset.Visit(func(f *flag.Flag) {
		switch f.Name {
		case "hostnqn-file":
			o.host.NQNFileRequired = true
		case "hostid-file":
			o.host.IDFileRequired = true
		}
	})
	if *kernelConfig != "" {
		o.kernelConfig = []string{*kernelConfig}
	}
	if fset.NArg() > 0 {
		return options{}, fmt.Errorf("unexpected argument %q", fset.Arg(0))
	}
	if o.version {
		return o, nil
	}
	var errs []error
	n, err := strconv.ParseInt(*maxVolumes, 10, 64)
	if err != nil || n < 0 {
		errs = append(errs, fmt.Errorf("--max-volumes %q must be a whole number, 0 or more", *maxVolumes))
	}
	o.maxVolumes = n
	if o.healInterval <= 0 {
		errs = append(errs, fmt.Errorf("--heal-interval %v must be positive", o.healInterval))
	}
	if o.healJitter < 0 || o.healJitter > 1 {
		errs = append(errs, fmt.Errorf("--heal-jitter %v must be from 0 to 1", o.healJitter))
	}
	if o.endpoint == "" {
		errs = append(errs, errors.New("--endpoint (or CSI_ENDPOINT) is required"))
	}
	if o.connector != kernel.BackendFabrics && o.connector != kernel.BackendNVMeCLI {
		errs = append(errs, fmt.Errorf("--connector %q must be fabrics or nvme-cli", o.connector))
	}
	if hclog.LevelFromString(o.logLevel) == hclog.NoLevel {
		errs = append(errs, fmt.Errorf("--log-level %q must be trace, debug, info, warn or error", o.logLevel))
	}
	if o.stateDir == "" {
		errs = append(errs, errors.New("--state-dir must not be empty"))
	}
	if o.healthInterval <= 0 {
		errs = append(errs, fmt.Errorf("--health-interval %v must be positive", o.healthInterval))
	}
	return o, errors.Join(errs...)
}
