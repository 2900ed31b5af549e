package kernel

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/nvmeof/nvmeof/shared/nvme"
)

// The parsers below turn the text of sysfs attributes and of the
// /dev/nvme-fabrics reply into values. They are pure: reading the files is
// someone else's job, so they can be tested on captured samples.

// ctrlAddress is the controller's `address` attribute:
// "traddr=..,trsvcid=..[,host_traddr=..][,host_iface=..][,src_addr=..]".
type ctrlAddress struct {
	TrAddr     string
	TrSvcID    string
	HostTrAddr string
	HostIface  string
	// SrcAddr is the local address of the live connection; the kernel
	// shows it only while the controller is live.
	SrcAddr string
}

// parseCtrlAddress reads an `address` attribute. Unknown fields are ignored:
// newer kernels may add some.
func parseCtrlAddress(s string) (ctrlAddress, error) {
	var a ctrlAddress
	s = strings.TrimSpace(s)
	if s == "" {
		return a, fmt.Errorf("empty controller address")
	}
	for field := range strings.SplitSeq(s, ",") {
		k, v, ok := strings.Cut(field, "=")
		if !ok {
			return ctrlAddress{}, fmt.Errorf("controller address %q: field %q has no '='", s, field)
		}
		switch k {
		case "traddr":
			a.TrAddr = v
		case "trsvcid":
			a.TrSvcID = v
		case "host_traddr":
			a.HostTrAddr = v
		case "host_iface":
			a.HostIface = v
		case "src_addr":
			a.SrcAddr = v
		}
	}
	if a.TrAddr == "" {
		return ctrlAddress{}, fmt.Errorf("controller address %q has no traddr", s)
	}
	return a, nil
}

// parseSysfsInt reads a decimal integer attribute.
func parseSysfsInt(s string) (int, error) {
	n, err := strconv.Atoi(strings.TrimSpace(s))
	if err != nil {
		return 0, fmt.Errorf("not an integer: %w", err)
	}
	return n, nil
}

// parseTimeout reads ctrl_loss_tmo or fast_io_fail_tmo: seconds, or "off"
// for -1 (reconnect forever, never fail I/O early).
func parseTimeout(s string) (int, error) {
	if strings.TrimSpace(s) == "off" {
		return -1, nil
	}
	return parseSysfsInt(s)
}

// formatTimeout is what the kernel expects on a write of a timeout: -1 for
// off, otherwise decimal seconds.
func formatTimeout(n int) string {
	if n < 0 {
		return "-1"
	}
	return strconv.Itoa(n)
}

// expectedCtrlLossTmo is what sysfs reads back after writing tmo with the
// given reconnect delay: the kernel keeps a number of attempts,
// ceil(tmo/delay), and shows attempts*delay.
func expectedCtrlLossTmo(tmo, delay int) int {
	if tmo < 0 {
		return -1
	}
	if delay <= 0 {
		return tmo
	}
	return (tmo + delay - 1) / delay * delay
}

// fabricsReply is the answer read from /dev/nvme-fabrics after a connect.
type fabricsReply struct {
	Instance int // N of /dev/nvmeN
	CntlID   int
}

// parseFabricsReply reads "instance=N,cntlid=M\n".
func parseFabricsReply(s string) (fabricsReply, error) {
	r := fabricsReply{Instance: -1, CntlID: -1}
	for field := range strings.SplitSeq(strings.TrimSpace(s), ",") {
		k, v, ok := strings.Cut(field, "=")
		if !ok {
			continue
		}
		n, err := strconv.Atoi(v)
		if err != nil {
			return fabricsReply{}, fmt.Errorf("reply %q of /dev/nvme-fabrics: %s is not a number", s, k)
		}
		switch k {
		case "instance":
			r.Instance = n
		case "cntlid":
			r.CntlID = n
		}
	}
	if r.Instance < 0 {
		return fabricsReply{}, fmt.Errorf("reply %q of /dev/nvme-fabrics names no controller instance", s)
	}
	return r, nil
}

// diskKind tells the block devices of NVMe apart by their kernel names.
type diskKind int

const (
	diskNone diskKind = iota
	// diskPlain is nvmeXnY: a head disk under its subsystem with native
	// multipath, or the controller's own disk without it. X is a subsystem
	// or controller instance and Y a per-subsystem index, never the nsid.
	diskPlain
	// diskPath is nvmeXcYnZ: a hidden per-controller path of a head disk.
	diskPath
)

// classifyDisk says which kind of NVMe block device name is: nvmeXnY,
// nvmeXcYnZ, or neither (controllers, partitions, attributes). Only the
// shape is checked; the numbers mean nothing to the caller.
func classifyDisk(name string) diskKind {
	rest, ok := strings.CutPrefix(name, "nvme")
	if !ok {
		return diskNone
	}
	rest, ok = cutDigits(rest)
	if !ok {
		return diskNone
	}
	kind := diskPlain
	if after, found := strings.CutPrefix(rest, "c"); found {
		if rest, ok = cutDigits(after); !ok {
			return diskNone
		}
		kind = diskPath
	}
	rest, found := strings.CutPrefix(rest, "n")
	if !found {
		return diskNone
	}
	if rest, ok = cutDigits(rest); !ok || rest != "" {
		return diskNone
	}
	return kind
}

// cutDigits removes a non-empty run of leading decimal digits.
func cutDigits(s string) (string, bool) {
	i := 0
	for i < len(s) && s[i] >= '0' && s[i] <= '9' {
		i++
	}
	return s[i:], i > 0
}

// isControllerName reports whether name has the shape nvmeN.
func isControllerName(name string) bool {
	rest, ok := strings.CutPrefix(name, "nvme")
	if !ok {
		return false
	}
	rest, ok = cutDigits(rest)
	return ok && rest == ""
}

// controllerInstance returns N of nvmeN.
func controllerInstance(name string) (int, bool) {
	if !isControllerName(name) {
		return 0, false
	}
	n, err := strconv.Atoi(strings.TrimPrefix(name, "nvme"))
	return n, err == nil
}

// nsIdentity is a namespace's identity attributes as sysfs shows them.
type nsIdentity struct {
	NSID  uint32
	UUID  string // canonical, "" when the namespace has none
	NGUID string // canonical, "" when the namespace has none
}

// parseNSIdentity reads the nsid, uuid and nguid attributes ("" for one
// that does not exist). Two kernel habits are undone here: `nguid` prints
// in the UUID layout, and `uuid` shows the NGUID when the namespace has no
// UUID, so a uuid equal to the NGUID is no UUID at all.
func parseNSIdentity(nsid, uuid, nguid string) (nsIdentity, error) {
	var id nsIdentity
	n, err := strconv.ParseUint(strings.TrimSpace(nsid), 10, 32)
	if err != nil || n == 0 {
		return nsIdentity{}, fmt.Errorf("namespace id %q is not a namespace id", strings.TrimSpace(nsid))
	}
	id.NSID = uint32(n)
	if g := strings.TrimSpace(nguid); g != "" {
		if id.NGUID, err = nvme.NormalizeNGUID(g); err != nil {
			return nsIdentity{}, fmt.Errorf("namespace %d: sysfs nguid: %w", n, err)
		}
		if id.NGUID == strings.Repeat("0", 32) {
			id.NGUID = ""
		}
	}
	if u := strings.TrimSpace(uuid); u != "" {
		if id.UUID, err = nvme.NormalizeUUID(u); err != nil {
			return nsIdentity{}, fmt.Errorf("namespace %d: sysfs uuid: %w", n, err)
		}
		if bare := strings.ReplaceAll(id.UUID, "-", ""); bare == id.NGUID || bare == strings.Repeat("0", 32) {
			id.UUID = ""
		}
	}
	return id, nil
}
