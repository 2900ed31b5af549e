package kerneltest

import (
	"fmt"
	"strings"
	"syscall"
)

// The option parser of /dev/nvme-fabrics, after nvmf_parse_options and
// nvmf_create_ctrl in drivers/nvme/host/fabrics.c (Linux 6.1): the string
// is split on ',' AND '\n' with no escaping, empty pieces are skipped, each
// piece must match one pattern of the option table exactly, integers are
// read with base 0, and a later value of an option replaces an earlier one.

// optKind is how a pattern takes its argument: "%s", "%d" or none.
type optKind int

const (
	optString optKind = iota
	optInt
	optFlag
)

// optionTable is the kernel's match table in its own order: the order
// matters for the option list a read before any write returns.
var optionTable = []struct {
	name string
	kind optKind
}{
	{"transport", optString},
	{"traddr", optString},
	{"trsvcid", optString},
	{"nqn", optString},
	{"queue_size", optInt},
	{"nr_io_queues", optInt},
	{"reconnect_delay", optInt},
	{"ctrl_loss_tmo", optInt},
	{"keep_alive_tmo", optInt},
	{"hostnqn", optString},
	{"host_traddr", optString},
	{"host_iface", optString},
	{"hostid", optString},
	{"duplicate_connect", optFlag},
	{"disable_sqflow", optFlag},
	{"hdr_digest", optFlag},
	{"data_digest", optFlag},
	{"nr_write_queues", optInt},
	{"nr_poll_queues", optInt},
	{"tos", optInt},
	{"fast_io_fail_tmo", optInt},
	{"discovery", optFlag},
	{"dhchap_secret", optString},
	{"dhchap_ctrl_secret", optString},
}

// OptionList is what a read of /dev/nvme-fabrics before any write returns
// (Linux 5.17 and later): dummy instance and cntlid, then every pattern the
// kernel accepts.
func OptionList() string {
	var b strings.Builder
	b.WriteString("instance=-1,cntlid=-1")
	for _, o := range optionTable {
		b.WriteString(",")
		b.WriteString(o.name)
		switch o.kind {
		case optString:
			b.WriteString("=%s")
		case optInt:
			b.WriteString("=%d")
		case optFlag:
		}
	}
	b.WriteString("\n")
	return b.String()
}

// Kernel defaults (fabrics.h, nvme.h).
const (
	defaultQueueSize      = 128
	minQueueSize          = 16
	maxQueueSize          = 1024
	defaultReconnectDelay = 10
	defaultCtrlLossTmo    = 600
	defaultKATO           = 5
	tcpDiscoveryPort      = "8009"
	nqnSize               = 223 // NVMF_NQN_SIZE: an NQN is at most 222 bytes
	discoveryNQN          = "nqn.2014-08.org.nvmexpress.discovery"
)

// options is what the kernel keeps of one option string.
type options struct {
	given map[string]bool // options present, by name

	transport, nqn, traddr, trsvcid string
	hostTrAddr, hostIface           string
	hostNQN, hostID                 string // "" when not given: the default host's
	dhchapSecret, dhchapCtrlSecret  string

	queueSize, nrIOQueues, nrWriteQueues, nrPollQueues int
	reconnectDelay, kato, tos, fastIOFailTmo           int
	// maxReconnects is what the kernel keeps of ctrl_loss_tmo: the number
	// of reconnect attempts, -1 for forever. sysfs shows it multiplied by
	// reconnect_delay, which is where the rounding up comes from.
	maxReconnects int

	dupConnect, disableSQFlow, hdrDigest, dataDigest, discovery bool
}

// optionError is a refusal of the option string: the errno the write
// returns and the line the kernel logs.
type optionError struct {
	errno syscall.Errno
	msg   string
}

func (e *optionError) Error() string { return e.msg + ": " + e.errno.Error() }
func (e *optionError) Unwrap() error { return e.errno }

func einval(format string, args ...any) *optionError {
	return &optionError{errno: syscall.EINVAL, msg: fmt.Sprintf(format, args...)}
}

// parseOptions parses an option string as nvmf_parse_options does, then
// applies the checks of nvmf_create_ctrl that come before the transport
// (required options, known transport). cpus caps nr_io_queues. A second
// hostnqn is EADDRINUSE on 6.1 ("hostnqn already user-assigned"); newer
// kernels (strictHosts) take the last one like any other option.
func parseOptions(s string, cpus int, strictHosts bool) (*options, error) {
	o := &options{
		given:          map[string]bool{},
		queueSize:      defaultQueueSize,
		nrIOQueues:     cpus,
		reconnectDelay: defaultReconnectDelay,
		fastIOFailTmo:  -1,
		tos:            -1,
	}
	ctrlLossTmo := defaultCtrlLossTmo
	for piece := range strings.FieldsFuncSeq(s, func(r rune) bool { return r == ',' || r == '\n' }) {
		name, arg, ok := matchOption(piece)
		if !ok {
			return nil, einval("unknown parameter or missing value '%s' in ctrl creation request", piece)
		}
		if name == "hostnqn" && o.given[name] && !strictHosts {
			return nil, &optionError{errno: syscall.EADDRINUSE, msg: "hostnqn already user-assigned: " + o.hostNQN}
		}
		o.given[name] = true
		if err := o.set(name, arg, cpus, &ctrlLossTmo); err != nil {
			return nil, err
		}
	}
	if o.discovery {
		o.nrIOQueues, o.nrWriteQueues, o.nrPollQueues = 0, 0, 0
		o.dupConnect = true
	} else if o.kato == 0 {
		o.kato = defaultKATO
	}
	o.maxReconnects = maxReconnects(ctrlLossTmo, o.reconnectDelay)
	if !o.given["transport"] || !o.given["nqn"] {
		return nil, einval("missing parameter 'transport=%%s' or 'nqn=%%s'")
	}
	if o.transport != "tcp" {
		return nil, einval("no handler found for transport %s", o.transport)
	}
	if !o.given["traddr"] {
		return nil, einval("missing parameter 'traddr=%%s'")
	}
	if !o.given["trsvcid"] {
		o.trsvcid = tcpDiscoveryPort
	}
	return o, nil
}

// maxReconnects turns a ctrl_loss_tmo into attempts: DIV_ROUND_UP.
func maxReconnects(ctrlLossTmo, delay int) int {
	if ctrlLossTmo < 0 {
		return -1
	}
	return (ctrlLossTmo + delay - 1) / delay
}

// matchOption finds the pattern piece matches, as match_token does: a flag
// must equal its name; "%s" takes a non-empty rest; "%d" takes a rest that
// simple_strtol reads whole.
func matchOption(piece string) (name, arg string, ok bool) {
	for _, o := range optionTable {
		if o.kind == optFlag {
			if piece == o.name {
				return o.name, "", true
			}
			continue
		}
		rest, found := strings.CutPrefix(piece, o.name+"=")
		if !found || rest == "" {
			continue
		}
		if o.kind == optInt {
			if _, consumed := simpleStrtol(rest); consumed != len(rest) {
				continue
			}
		}
		return o.name, rest, true
	}
	return "", "", false
}

// set applies one matched option.
func (o *options) set(name, arg string, cpus int, ctrlLossTmo *int) error {
	switch name {
	case "transport":
		o.transport = arg
	case "traddr":
		o.traddr = arg
	case "trsvcid":
		o.trsvcid = arg
	case "host_traddr":
		o.hostTrAddr = arg
	case "host_iface":
		o.hostIface = arg
	case "nqn":
		if len(arg) >= nqnSize {
			return einval("%s needs to be < %d bytes", arg, nqnSize)
		}
		o.nqn = arg
		o.discovery = o.discovery || arg == discoveryNQN
	case "hostnqn":
		if len(arg) >= nqnSize {
			return einval("%s needs to be < %d bytes", arg, nqnSize)
		}
		o.hostNQN = arg
	case "hostid":
		// uuid_parse checks the first 36 characters only.
		if len(arg) < 36 || !isUUID(arg[:36]) {
			return einval("Invalid hostid %s", arg)
		}
		o.hostID = strings.ToLower(arg[:36])
	case "dhchap_secret", "dhchap_ctrl_secret":
		if len(arg) < 11 || !strings.HasPrefix(arg, "DHHC-1:") {
			// The kernel logs the secret itself here; this log does not.
			return einval("Invalid DH-CHAP secret")
		}
		if name == "dhchap_secret" {
			o.dhchapSecret = arg
		} else {
			o.dhchapCtrlSecret = arg
		}
	case "duplicate_connect":
		o.dupConnect = true
	case "disable_sqflow":
		o.disableSQFlow = true
	case "hdr_digest":
		o.hdrDigest = true
	case "data_digest":
		o.dataDigest = true
	case "discovery":
		o.discovery = true
	default:
		return o.setInt(name, arg, cpus, ctrlLossTmo)
	}
	return nil
}

// setInt applies an integer option with the kernel's range checks.
func (o *options) setInt(name, arg string, cpus int, ctrlLossTmo *int) error {
	n, ok := matchInt(arg)
	if !ok {
		return einval("%s=%s is out of the int range", name, arg)
	}
	switch name {
	case "queue_size":
		if n < minQueueSize || n > maxQueueSize {
			return einval("Invalid queue_size %d", n)
		}
		o.queueSize = n
	case "nr_io_queues":
		if n <= 0 {
			return einval("Invalid number of IOQs %d", n)
		}
		if !o.discovery {
			o.nrIOQueues = min(n, cpus)
		}
	case "nr_write_queues", "nr_poll_queues":
		if n <= 0 {
			return einval("Invalid %s %d", name, n)
		}
		if name == "nr_write_queues" {
			o.nrWriteQueues = n
		} else {
			o.nrPollQueues = n
		}
	case "reconnect_delay":
		if n <= 0 {
			return einval("Invalid reconnect_delay %d", n)
		}
		o.reconnectDelay = n
	case "ctrl_loss_tmo":
		*ctrlLossTmo = n
	case "keep_alive_tmo":
		if n < 0 {
			return einval("Invalid keep_alive_tmo %d", n)
		}
		o.kato = n
	case "fast_io_fail_tmo":
		o.fastIOFailTmo = max(n, -1)
	case "tos":
		if n < 0 {
			return einval("Invalid type of service %d", n)
		}
		o.tos = min(n, 255)
	}
	return nil
}

// simpleStrtol reads a number as the kernel's simple_strtol with base 0
// does: an optional '-', then "0x" + hex, "0" + octal, or decimal. It
// returns the value (wrapped to 64 bits, as simple_strtoull does) and how
// many bytes it consumed; 0 means no number.
func simpleStrtol(s string) (int64, int) {
	neg := strings.HasPrefix(s, "-")
	start := 0
	if neg {
		start = 1
	}
	base, i := uint64(10), start
	switch {
	case len(s) > i+2 && s[i] == '0' && (s[i+1] == 'x' || s[i+1] == 'X') && hexDigit(s[i+2]) >= 0:
		base, i = 16, i+2
	case len(s) > i && s[i] == '0':
		base = 8
	}
	var v uint64
	digits := 0
	for ; i < len(s); i++ {
		d := hexDigit(s[i])
		if d < 0 || uint64(d) >= base {
			break
		}
		v = v*base + uint64(d)
		digits++
	}
	if digits == 0 {
		return 0, 0
	}
	if neg {
		return -int64(v), i //nolint:gosec // wraps like the kernel's unsigned arithmetic
	}
	return int64(v), i //nolint:gosec // wraps like the kernel's unsigned arithmetic
}

// matchInt is match_int: the whole argument as an int, ERANGE (which the
// caller turns into EINVAL) outside the int range.
func matchInt(arg string) (int, bool) {
	v, n := simpleStrtol(arg)
	if n == 0 || v < -1<<31 || v > 1<<31-1 {
		return 0, false
	}
	return int(v), true
}

func hexDigit(c byte) int {
	switch {
	case c >= '0' && c <= '9':
		return int(c - '0')
	case c >= 'a' && c <= 'f':
		return int(c-'a') + 10
	case c >= 'A' && c <= 'F':
		return int(c-'A') + 10
	}
	return -1
}

// isUUID is uuid_is_valid: 8-4-4-4-12 hex digits, any case.
func isUUID(s string) bool {
	if len(s) != 36 {
		return false
	}
	for i := range len(s) {
		if i == 8 || i == 13 || i == 18 || i == 23 {
			if s[i] != '-' {
				return false
			}
		} else if hexDigit(s[i]) < 0 {
			return false
		}
	}
	return true
}

// kstrtoInt is the kernel's kstrtoint/kstrtou32 with an explicit base, as
// sysfs stores use them: an optional sign ('-' only when signed), digits
// of base, one optional trailing newline, nothing else.
func kstrtoInt(s string, base int, signed bool) (int64, bool) {
	s = strings.TrimSuffix(s, "\n")
	neg := false
	switch {
	case strings.HasPrefix(s, "+"):
		s = s[1:]
	case signed && strings.HasPrefix(s, "-"):
		neg, s = true, s[1:]
	}
	if base == 0 {
		switch {
		case len(s) > 2 && s[0] == '0' && (s[1] == 'x' || s[1] == 'X'):
			base, s = 16, s[2:]
		case len(s) > 1 && s[0] == '0':
			base = 8
		default:
			base = 10
		}
	}
	if s == "" {
		return 0, false
	}
	var v int64
	for i := range len(s) {
		d := hexDigit(s[i])
		if d < 0 || d >= base {
			return 0, false
		}
		v = v*int64(base) + int64(d)
		if v > 1<<32 {
			return 0, false
		}
	}
	if neg {
		v = -v
	}
	if signed && (v < -1<<31 || v > 1<<31-1) || !signed && (v < 0 || v > 1<<32-1) {
		return 0, false
	}
	return v, true
}
