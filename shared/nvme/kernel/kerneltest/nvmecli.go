package kerneltest

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"syscall"
)

// NVMeCLI is a simulated nvme-cli (2.x) over the host: a CommandRunner, as
// the connector's nvme-cli backend runs it. `nvme connect` builds the
// option string as libnvme does (integer options that are 0 left out) and
// performs the same connect as a write to /dev/nvme-fabrics; `nvme
// disconnect -n NQN | -d nvmeN` deletes controllers. It fails as nvme-cli
// does: exit status 1 and a message on stderr, "already connected" when a
// matching controller is in sysfs whatever its state.
type NVMeCLI struct {
	h     *Host
	calls [][]string
}

// NVMeCLI returns the host's nvme-cli; every call returns the same one.
func (h *Host) NVMeCLI() *NVMeCLI { return h.cli }

// ExitError is how a simulated run fails. Like *exec.ExitError it has an
// ExitCode: 1 for nvme-cli's own errors, -1 when the run was killed
// because its context ended.
type ExitError struct{ Code int }

func (e *ExitError) Error() string {
	if e.Code < 0 {
		return "signal: killed"
	}
	return "exit status " + strconv.Itoa(e.Code)
}

// ExitCode is the process's exit status, -1 when killed.
func (e *ExitError) ExitCode() int { return e.Code }

// Calls returns every argument vector run so far, the program path first.
func (n *NVMeCLI) Calls() [][]string {
	n.h.mu.Lock()
	defer n.h.mu.Unlock()
	out := make([][]string, len(n.calls))
	for i, c := range n.calls {
		out[i] = slices.Clone(c)
	}
	return out
}

// Run runs `path args...`. A context that ends while the kernel connects
// kills nvme-cli only once the write to /dev/nvme-fabrics returned (it
// cannot be interrupted): the controller may exist although the run
// failed, exactly as on a host.
func (n *NVMeCLI) Run(ctx context.Context, path string, args []string) (stdout, stderr []byte, err error) {
	h := n.h
	h.mu.Lock()
	n.calls = append(n.calls, append([]string{path}, args...))
	closed := h.closed
	h.mu.Unlock()
	if closed {
		return nil, nil, errClosed
	}
	if err := ctx.Err(); err != nil {
		return nil, nil, fmt.Errorf("run %s: %w", path, err) // exec does not start a process for a dead context
	}
	if len(args) == 0 {
		return nil, []byte("usage: nvme <command> [<device>] [<args>]\n"), &ExitError{Code: 1}
	}
	var out, msg string
	code := 0
	switch args[0] {
	case "connect":
		out, msg, code = n.connect(args[1:])
	case "disconnect":
		out, msg, code = n.disconnect(args[1:])
	default:
		msg, code = fmt.Sprintf("unknown command %q\n", args[0]), 1
	}
	if ctx.Err() != nil {
		return []byte(out), []byte(msg), &ExitError{Code: -1}
	}
	if code != 0 {
		return []byte(out), []byte(msg), &ExitError{Code: code}
	}
	return []byte(out), []byte(msg), nil
}

// cliOption is one nvme-cli flag of connect.
type cliOption struct {
	short, long, key string
	kind             optKind
}

// connectFlags in libnvme's order of the option string.
var connectFlags = []cliOption{
	{"-n", "--nqn", "nqn", optString},
	{"-t", "--transport", "transport", optString},
	{"-a", "--traddr", "traddr", optString},
	{"-w", "--host-traddr", "host_traddr", optString},
	{"-f", "--host-iface", "host_iface", optString},
	{"-s", "--trsvcid", "trsvcid", optString},
	{"-q", "--hostnqn", "hostnqn", optString},
	{"-I", "--hostid", "hostid", optString},
	{"-S", "--dhchap-secret", "dhchap_secret", optString},
	{"-C", "--dhchap-ctrl-secret", "dhchap_ctrl_secret", optString},
	{"-i", "--nr-io-queues", "nr_io_queues", optInt},
	{"-W", "--nr-write-queues", "nr_write_queues", optInt},
	{"-P", "--nr-poll-queues", "nr_poll_queues", optInt},
	{"-Q", "--queue-size", "queue_size", optInt},
	{"-k", "--keep-alive-tmo", "keep_alive_tmo", optInt},
	{"-c", "--reconnect-delay", "reconnect_delay", optInt},
	{"-l", "--ctrl-loss-tmo", "ctrl_loss_tmo", optInt},
	{"-F", "--fast_io_fail_tmo", "fast_io_fail_tmo", optInt},
	{"-T", "--tos", "tos", optInt},
	{"-D", "--duplicate-connect", "duplicate_connect", optFlag},
	{"-d", "--disable-sqflow", "disable_sqflow", optFlag},
	{"-g", "--hdr-digest", "hdr_digest", optFlag},
	{"-G", "--data-digest", "data_digest", optFlag},
	{"-o", "--output-format", "", optString},
	{"-v", "--verbose", "", optFlag},
}

// parseFlags reads getopt_long style flags: "-x VALUE", "--long=VALUE",
// "--long VALUE". Integers are read with strtol base 0.
func parseFlags(args []string, flags []cliOption) (map[string]string, error) {
	got := map[string]string{}
	for i := 0; i < len(args); i++ {
		a := args[i]
		name, val, hasVal := strings.Cut(a, "=")
		if !strings.HasPrefix(a, "--") {
			name, val, hasVal = a, "", false
		}
		var f *cliOption
		for j := range flags {
			if flags[j].short == name || flags[j].long == name {
				f = &flags[j]
			}
		}
		if f == nil {
			return nil, fmt.Errorf("unrecognized option '%s'", a)
		}
		if f.kind == optFlag {
			got[f.key] = "1"
			continue
		}
		if !hasVal {
			if i+1 >= len(args) {
				return nil, fmt.Errorf("option '%s' requires an argument", name)
			}
			i++
			val = args[i]
		}
		if f.kind == optInt {
			if _, n := simpleStrtol(val); n == 0 || n != len(val) {
				return nil, errors.New("Expected integer argument for '" + f.long[2:] + "' but got '" + val + "'!") //nolint:staticcheck // nvme-cli's own message
			}
		}
		if f.key != "" {
			got[f.key] = val
		}
	}
	return got, nil
}

// connect is `nvme connect`.
func (n *NVMeCLI) connect(args []string) (stdout, stderr string, code int) {
	h := n.h
	got, err := parseFlags(args, connectFlags)
	if err != nil {
		return "", "connect: " + err.Error() + "\n", 1
	}
	for _, req := range []struct{ key, flag string }{{"nqn", "--nqn | -n"}, {"transport", "--transport | -t"}, {"traddr", "--traddr | -a"}} {
		if got[req.key] == "" {
			return "", "required argument [" + req.flag + "] not specified\n", 1
		}
	}
	if got["trsvcid"] == "" && got["transport"] == "tcp" {
		got["trsvcid"] = "4420"
		if got["nqn"] == discoveryNQN {
			got["trsvcid"] = tcpDiscoveryPort
		}
	}
	opts := libnvmeOptions(got)

	h.mu.Lock()
	if h.closed {
		h.mu.Unlock()
		return "", errClosed.Error() + "\n", 1
	}
	h.writes.Add(1)
	before := h.faults.takeBefore()
	h.mu.Unlock()
	defer h.writes.Done()
	if before != nil {
		before()
	}

	h.mu.Lock()
	existing := got["duplicate_connect"] == "" && n.alreadyConnected(got)
	if !existing {
		h.written = append(h.written, opts)
	}
	h.mu.Unlock()
	if existing {
		return "", "already connected\n", 1
	}
	if _, err := h.connect(opts, fromCodeUnderTest, nil); err != nil {
		errno := errnoOf(err)
		return "", "Failed to write to /dev/nvme-fabrics: " + strerror(errno) + "\n" +
			"could not add new controller: " + libnvmeMessage(errno) + "\n", 1
	}
	return "", "", 0
}

// libnvmeOptions renders the option string as libnvme's build_options
// does: fixed order, integers that are 0 (or negative, but ctrl_loss_tmo
// -1) left out, tos sent from 0.
func libnvmeOptions(got map[string]string) string {
	parts := []string{"nqn=" + got["nqn"]}
	for _, f := range connectFlags[1:] {
		v, ok := got[f.key]
		if !ok || f.key == "" {
			continue
		}
		switch f.kind {
		case optFlag:
			parts = append(parts, f.key)
		case optInt:
			num, _ := simpleStrtol(v)
			keep := num > 0 || (num == 0 && f.key == "tos") || (num == -1 && f.key == "ctrl_loss_tmo")
			if keep {
				parts = append(parts, f.key+"="+strconv.FormatInt(num, 10))
			}
		case optString:
			parts = append(parts, f.key+"="+v)
		}
	}
	return strings.Join(parts, ",")
}

// libnvmeMessage is nvme_strerror of the libnvme code a failed write maps
// to.
func libnvmeMessage(errno syscall.Errno) string {
	switch errno {
	case syscall.EALREADY:
		return "already connected"
	case syscall.EINVAL:
		return "invalid arguments/configuration"
	case syscall.EADDRINUSE:
		return "hostnqn already in use"
	case syscall.ENODEV:
		return "invalid interface"
	case syscall.EOPNOTSUPP:
		return "not supported"
	case syscall.ECONNREFUSED:
		return "connection refused"
	case syscall.EADDRNOTAVAIL:
		return "cannot assign requested address"
	}
	return "failed to write to nvme-fabrics device"
}

// alreadyConnected is nvme-cli's look for an existing controller before
// connecting: the same subsystem, address and host, in any state.
func (n *NVMeCLI) alreadyConnected(got map[string]string) bool {
	h := n.h
	for _, inst := range slices.Sorted(maps.Keys(h.k.ctrls)) {
		c := h.k.ctrls[inst]
		o := c.opts
		switch {
		case o.nqn != got["nqn"], o.transport != got["transport"], o.traddr != got["traddr"], o.trsvcid != got["trsvcid"]:
		case o.hostTrAddr != got["host_traddr"], o.hostIface != got["host_iface"]:
		case got["hostnqn"] != "" && c.host.nqn != got["hostnqn"]:
		case got["hostid"] != "" && c.host.id != strings.ToLower(got["hostid"]):
		default:
			return true
		}
	}
	return false
}

var disconnectFlags = []cliOption{
	{"-n", "--nqn", "nqn", optString},
	{"-d", "--device", "device", optString},
	{"-v", "--verbose", "", optFlag},
}

// disconnect is `nvme disconnect -n NQN` (every controller of the
// subsystem) or `-d nvmeN`, through delete_controller.
func (n *NVMeCLI) disconnect(args []string) (stdout, stderr string, code int) {
	h := n.h
	got, err := parseFlags(args, disconnectFlags)
	if err != nil {
		return "", "disconnect: " + err.Error() + "\n", 1
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	var victims []*controller
	for _, inst := range slices.Sorted(maps.Keys(h.k.ctrls)) {
		c := h.k.ctrls[inst]
		if (got["nqn"] != "" && c.opts.nqn == got["nqn"]) || (got["device"] != "" && c.name() == got["device"]) {
			victims = append(victims, c)
		}
	}
	switch {
	case got["nqn"] == "" && got["device"] == "":
		return "", "Neither device name [--device | -d] nor NQN [--nqn | -n] provided\n", 1
	case got["device"] != "" && len(victims) == 0:
		return "", "Did not find device " + got["device"] + "\n", 1
	}
	for _, c := range victims {
		if err := h.storeCtrl(c, h.ctrlDir(c)+"/delete_controller", "delete_controller", "1", true); err != nil {
			return "", err.Error() + "\n", 1
		}
	}
	if got["nqn"] != "" {
		return fmt.Sprintf("NQN:%s disconnected %d controller(s)\n", got["nqn"], len(victims)), "", 0
	}
	return "", "", 0
}
