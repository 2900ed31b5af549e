package kerneltest

import (
	"maps"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"syscall"
)

// Addresses as nvme-tcp reads them (inet_pton_with_scope) and the local
// side of a connection.

// checkAddresses is what nvme_tcp_create_ctrl checks before connecting:
// traddr and trsvcid must parse (inet_pton_with_scope), host_traddr too,
// and host_iface must exist.
func (h *Host) checkAddresses(o *options) error {
	if _, ok := h.parseAddr(o.traddr); !ok {
		return einval("malformed address passed: %s:%s", o.traddr, o.trsvcid)
	}
	if _, ok := kstrtoInt(o.trsvcid, 0, false); !ok || !fitsPort(o.trsvcid) {
		return einval("malformed address passed: %s:%s", o.traddr, o.trsvcid)
	}
	if o.given["host_traddr"] {
		if _, ok := h.parseAddr(o.hostTrAddr); !ok {
			return einval("malformed src address passed: %s", o.hostTrAddr)
		}
	}
	if o.given["host_iface"] {
		if _, ok := h.cfg.ifaces[o.hostIface]; !ok {
			return &optionError{errno: syscall.ENODEV, msg: "invalid interface passed: " + o.hostIface}
		}
	}
	return nil
}

func fitsPort(s string) bool {
	v, ok := kstrtoInt(s, 0, false)
	return ok && v <= 0xffff
}

// parseAddr is inet_pton_with_scope: a literal IPv4 address in dotted
// decimal (leading zeros allowed), or an IPv6 address with an optional
// %scope naming an interface or a number.
func (h *Host) parseAddr(s string) (netip.Addr, bool) {
	if a, ok := parseIPv4(s); ok {
		return a, true
	}
	addr, scope, _ := strings.Cut(s, "%")
	a, err := netip.ParseAddr(addr)
	if err != nil || !a.Is6() || a.Zone() != "" {
		return netip.Addr{}, false
	}
	if scope != "" {
		if _, known := h.cfg.ifaces[scope]; !known {
			if _, err := strconv.ParseUint(scope, 10, 32); err != nil {
				return netip.Addr{}, false
			}
		}
	}
	return a, true
}

// parseIPv4 is in4_pton: four decimal fields of at most three digits,
// each at most 255.
func parseIPv4(s string) (netip.Addr, bool) {
	parts := strings.Split(s, ".")
	if len(parts) != 4 {
		return netip.Addr{}, false
	}
	b := make([]byte, 0, 4)
	for _, p := range parts {
		if p == "" || len(p) > 3 || strings.Trim(p, "0123456789") != "" {
			return netip.Addr{}, false
		}
		n, _ := strconv.Atoi(p)
		if n > 255 {
			return netip.Addr{}, false
		}
		b = append(b, byte(n))
	}
	return netip.AddrFrom4([4]byte(b)), true
}

// isLocal: an address of an interface, or any of 127.0.0.0/8 (Linux answers
// for the whole loopback network).
func (h *Host) isLocal(a netip.Addr) bool {
	a = a.Unmap()
	for _, prefixes := range h.cfg.ifaces {
		for _, p := range prefixes {
			if p.Addr() == a || (a.IsLoopback() && p.Contains(a)) {
				return true
			}
		}
	}
	return false
}

// sourceAddr is the local address the connection leaves from, as %pISc
// prints it.
func (h *Host) sourceAddr(o *options, dst netip.Addr) string {
	if o.given["host_traddr"] {
		a, _ := h.parseAddr(o.hostTrAddr)
		return a.String()
	}
	if h.isLocal(dst) {
		return dst.String()
	}
	var candidates []netip.Addr
	for _, name := range slices.Sorted(maps.Keys(h.cfg.ifaces)) {
		if o.given["host_iface"] && name != o.hostIface {
			continue
		}
		for _, p := range h.cfg.ifaces[name] {
			if p.Addr().Is4() == dst.Unmap().Is4() && !p.Addr().IsLoopback() {
				candidates = append(candidates, p.Addr())
			}
		}
	}
	if len(candidates) > 0 {
		return candidates[0].String()
	}
	if dst.Unmap().Is4() {
		return "127.0.0.1"
	}
	return "::1"
}
