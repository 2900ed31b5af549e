package nvme

import (
	"fmt"
	"net/netip"
	"regexp"
	"strconv"
	"strings"
)

// Transports this project connects over. RDMA may come later; the kernel
// option string is the same shape for it.
const (
	TransportTCP = "tcp"
)

// DefaultTrSvcID is the IANA port of NVMe/TCP I/O controllers. It is always
// passed explicitly: the kernel's own default for tcp is 8009, the discovery
// port, and a connect there to an I/O subsystem fails.
const DefaultTrSvcID = "4420"

// Transports lists the accepted transport names, for validators and docs.
func Transports() []string { return []string{TransportTCP} }

// Target is where a subsystem is reached: the kernel's transport address
// plus the subsystem NQN, and optionally which local address or interface
// the connection leaves from.
type Target struct {
	Transport  string // "tcp"
	TrAddr     string // IPv4/IPv6 address or host name
	TrSvcID    string // port, decimal
	NQN        string // subsystem NQN
	HostTrAddr string // local source address, optional
	HostIface  string // local interface, optional
}

// maxIfaceName is IFNAMSIZ-1: the longest Linux interface name.
const maxIfaceName = 15

var hostnameLabel = regexp.MustCompile(`^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?$`)

// Validate checks every field with the kernel's rules. NQNs are checked in
// mode (see NQNMode).
func (t Target) Validate(mode NQNMode) error {
	var errs FieldErrors
	errs.add(validateTransport(t.Transport))
	errs = append(errs, validatePortal(t.Portal(), 1)...)
	errs.add(checkNQN(KeyNQN, t.NQN, mode))
	return errs.orNil()
}

// IsIPAddress reports whether TrAddr is a literal address. The kernel only
// takes literal addresses; a host name must be resolved by the caller.
func (t Target) IsIPAddress() bool {
	_, err := netip.ParseAddr(t.TrAddr)
	return err == nil
}

func validateTransport(s string) *FieldError {
	for _, ok := range Transports() {
		if s == ok {
			return nil
		}
	}
	return &FieldError{Key: KeyTransport, Value: s, Reason: fmt.Sprintf("must be one of: %s", strings.Join(Transports(), ", "))}
}

// validateTrAddr accepts an IP address (IPv6 with an optional %zone) and,
// when names is set, an RFC 1123 host name.
func validateTrAddr(key, s string, names bool) *FieldError {
	allowed := "must be an IPv4 or IPv6 address"
	if names {
		allowed += " or a host name"
	}
	if s == "" {
		return &FieldError{Key: key, Value: s, Reason: "is required; " + allowed}
	}
	if reason := checkOptionText(s); reason != "" {
		return &FieldError{Key: key, Value: s, Reason: reason}
	}
	if addr, err := netip.ParseAddr(s); err == nil {
		if addr.Zone() != "" {
			if zerr := validateIface(key, addr.Zone()); zerr != nil {
				return &FieldError{Key: key, Value: s, Reason: "has an invalid IPv6 zone: " + zerr.Reason}
			}
		}
		return nil
	}
	if names && isHostname(s) {
		return nil
	}
	return &FieldError{Key: key, Value: s, Reason: allowed}
}

func isHostname(s string) bool {
	if len(s) > 253 {
		return false
	}
	labels := strings.Split(strings.TrimSuffix(s, "."), ".")
	for _, l := range labels {
		if !hostnameLabel.MatchString(l) {
			return false
		}
	}
	// A name made only of digits and dots is a mistyped IPv4 address, not a
	// host name a resolver should be asked about.
	return strings.Trim(s, "0123456789.") != ""
}

func validatePort(key, s string) *FieldError {
	n, err := strconv.ParseUint(s, 10, 16)
	if err != nil || n == 0 || s[0] == '0' {
		return &FieldError{Key: key, Value: s, Reason: "must be a port number from 1 to 65535, in decimal without leading zeros"}
	}
	return nil
}

func validateIface(key, s string) *FieldError {
	if s == "" || len(s) > maxIfaceName || s == "." || s == ".." || strings.ContainsAny(s, "/: \t") {
		return &FieldError{Key: key, Value: s, Reason: fmt.Sprintf("must be a network interface name of 1 to %d bytes without '/', ':' or white space", maxIfaceName)}
	}
	if reason := checkOptionText(s); reason != "" {
		return &FieldError{Key: key, Value: s, Reason: reason}
	}
	return nil
}
