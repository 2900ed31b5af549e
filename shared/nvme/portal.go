package nvme

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"
)

// MaxPortals bounds the portals of one volume. Each is a controller, a
// TCP connection per I/O queue and a reconnect loop on the host; eight is
// more paths than any fabric here has (two NICs times two target ports is
// four), and a mistyped context cannot make the plugin open hundreds.
const MaxPortals = 8

// Portal is one way to reach a subsystem: the target's address and port,
// and optionally the local address or interface the connection leaves
// from. With native multipath each portal of a volume becomes one
// controller, and the kernel moves I/O between them.
type Portal struct {
	TrAddr     string
	TrSvcID    string
	HostTrAddr string
	HostIface  string
}

// String is "traddr:trsvcid" (an IPv6 address in brackets), with the source
// when one is set: how logs, errors and metrics name a path.
func (p Portal) String() string {
	s := p.TrAddr + ":" + p.TrSvcID
	if strings.Contains(p.TrAddr, ":") {
		s = "[" + p.TrAddr + "]:" + p.TrSvcID
	}
	switch {
	case p.HostIface != "" && p.HostTrAddr != "":
		s += " from " + p.HostTrAddr + "%" + p.HostIface
	case p.HostIface != "":
		s += " from " + p.HostIface
	case p.HostTrAddr != "":
		s += " from " + p.HostTrAddr
	}
	return s
}

// Portal is the target's address part.
func (t Target) Portal() Portal {
	return Portal{TrAddr: t.TrAddr, TrSvcID: t.TrSvcID, HostTrAddr: t.HostTrAddr, HostIface: t.HostIface}
}

// WithPortal is t reached through p: same subsystem and transport.
func (t Target) WithPortal(p Portal) Target {
	t.TrAddr, t.TrSvcID, t.HostTrAddr, t.HostIface = p.TrAddr, p.TrSvcID, p.HostTrAddr, p.HostIface
	return t
}

// portalKeys are the keys each portal has; portal 1 writes them plain,
// portal n (2..MaxPortals) with the suffix "_n".
var portalKeys = []string{KeyTrAddr, KeyTrSvcID, KeyHostTrAddr, KeyHostIface}

// PortalKey is the volume-context key of field key (traddr, trsvcid,
// host_traddr, host_iface) of portal n, counted from 1: "traddr" for the
// first, "traddr_2" for the second.
func PortalKey(key string, n int) string {
	if n <= 1 {
		return key
	}
	return key + "_" + strconv.Itoa(n)
}

// PortalKeys returns the per-portal keys, unsuffixed.
func PortalKeys() []string { return append([]string(nil), portalKeys...) }

// isPortalKey reports whether key is one of the per-portal keys.
func isPortalKey(key string) bool {
	for _, k := range portalKeys {
		if k == key {
			return true
		}
	}
	return false
}

// splitPortalSuffix splits "traddr_2" into ("traddr", "2"); ok is false
// when k does not end in '_' and digits.
func splitPortalSuffix(k string) (base, digits string, ok bool) {
	i := strings.LastIndexByte(k, '_')
	if i <= 0 || i == len(k)-1 {
		return "", "", false
	}
	digits = k[i+1:]
	if strings.Trim(digits, "0123456789") != "" {
		return "", "", false
	}
	return k[:i], digits, true
}

// portalIndex reads the number of a portal suffix: decimal, 2 to
// MaxPortals. The problem, when there is one, is said in words for the
// caller's error.
func portalIndex(digits string) (int, string) {
	n, err := strconv.Atoi(digits)
	switch {
	case err != nil || (len(digits) > 1 && digits[0] == '0'):
		return 0, fmt.Sprintf("portal numbers are decimal, 2 to %d, without leading zeros", MaxPortals)
	case n == 1:
		return 0, "the first portal's keys take no suffix (traddr, trsvcid, host_traddr, host_iface); further portals are numbered from 2"
	case n == 0:
		return 0, fmt.Sprintf("portals are numbered from 1 (no suffix) to %d", MaxPortals)
	case n > MaxPortals:
		return 0, fmt.Sprintf("a volume has at most %d portals", MaxPortals)
	}
	return n, ""
}

// validatePortal checks one portal's fields; keys carry its suffix, so an
// error names the key as the user wrote it ("traddr_2").
func validatePortal(p Portal, n int) FieldErrors {
	var errs FieldErrors
	errs.add(validateTrAddr(PortalKey(KeyTrAddr, n), p.TrAddr, true))
	errs.add(validatePort(PortalKey(KeyTrSvcID, n), p.TrSvcID))
	if p.HostTrAddr != "" {
		errs.add(validateTrAddr(PortalKey(KeyHostTrAddr, n), p.HostTrAddr, false))
	}
	if p.HostIface != "" {
		errs.add(validateIface(PortalKey(KeyHostIface, n), p.HostIface))
	}
	return errs
}

// samePortal reports whether two portals make the same kernel path: the
// kernel refuses the second connect as a duplicate (EALREADY), so a
// volume listing one twice has one path fewer than it says. Addresses
// compare by value, host names without regard to case.
func samePortal(a, b Portal) bool {
	return sameAddr(a.TrAddr, b.TrAddr) && a.TrSvcID == b.TrSvcID &&
		sameAddr(a.HostTrAddr, b.HostTrAddr) && a.HostIface == b.HostIface
}

func sameAddr(a, b string) bool {
	if strings.EqualFold(a, b) {
		return true
	}
	pa, errA := netip.ParseAddr(a)
	pb, errB := netip.ParseAddr(b)
	return errA == nil && errB == nil && pa.Unmap() == pb.Unmap()
}
