package driver

import (
	"testing"

	"github.com/nvmeof/nvmeof/shared/nvme"
	"github.com/nvmeof/nvmeof/shared/nvme/kernel"
)

// A path is named by its controller while it has one and by its volume's
// portal while it is missing: both must give one label set, or a path
// that goes missing and comes back splits its not-live seconds and never
// counts its reconnect. The kernel prints host_traddr as it was written,
// and a controller the plugin adopted may have been written otherwise.
func TestPathLabelsOneSeriesPerPath(t *testing.T) {
	const nqn = "nqn.2026-01.io.example:one"
	tests := []struct {
		name   string
		ctrl   kernel.Controller
		target nvme.Target
		same   bool
	}{
		{name: "same spelling",
			ctrl:   kernel.Controller{Subsystem: nqn, TrAddr: "192.0.2.10", TrSvcID: "4420", HostTrAddr: "192.0.2.1"},
			target: nvme.Target{NQN: nqn, TrAddr: "192.0.2.10", TrSvcID: "4420", HostTrAddr: "192.0.2.1"}, same: true},
		{name: "IPv6 source spelt two ways",
			ctrl:   kernel.Controller{Subsystem: nqn, TrAddr: "2001:db8::10", TrSvcID: "4420", HostTrAddr: "2001:0db8:0:0::1"},
			target: nvme.Target{NQN: nqn, TrAddr: "2001:db8::10", TrSvcID: "4420", HostTrAddr: "2001:db8::1"}, same: true},
		{name: "IPv4-mapped source",
			ctrl:   kernel.Controller{Subsystem: nqn, TrAddr: "::ffff:192.0.2.10", TrSvcID: "4420", HostTrAddr: "::ffff:192.0.2.1"},
			target: nvme.Target{NQN: nqn, TrAddr: "192.0.2.10", TrSvcID: "4420", HostTrAddr: "192.0.2.1"}, same: true},
		{name: "scoped link-local source",
			ctrl:   kernel.Controller{Subsystem: nqn, TrAddr: "fe80::10%eth1", TrSvcID: "4420", HostTrAddr: "FE80::1%eth1"},
			target: nvme.Target{NQN: nqn, TrAddr: "fe80::10%eth1", TrSvcID: "4420", HostTrAddr: "fe80::1%eth1"}, same: true},
		{name: "interface",
			ctrl:   kernel.Controller{Subsystem: nqn, TrAddr: "192.0.2.10", TrSvcID: "4420", HostIface: "eth1"},
			target: nvme.Target{NQN: nqn, TrAddr: "192.0.2.10", TrSvcID: "4420", HostIface: "eth1"}, same: true},
		{name: "two source addresses",
			ctrl:   kernel.Controller{Subsystem: nqn, TrAddr: "192.0.2.10", TrSvcID: "4420", HostTrAddr: "192.0.2.1"},
			target: nvme.Target{NQN: nqn, TrAddr: "192.0.2.10", TrSvcID: "4420", HostTrAddr: "192.0.2.2"}},
		{name: "two interfaces",
			ctrl:   kernel.Controller{Subsystem: nqn, TrAddr: "192.0.2.10", TrSvcID: "4420", HostIface: "eth1"},
			target: nvme.Target{NQN: nqn, TrAddr: "192.0.2.10", TrSvcID: "4420", HostIface: "eth2"}},
		{name: "a source and none",
			ctrl:   kernel.Controller{Subsystem: nqn, TrAddr: "192.0.2.10", TrSvcID: "4420"},
			target: nvme.Target{NQN: nqn, TrAddr: "192.0.2.10", TrSvcID: "4420", HostTrAddr: "192.0.2.1"}},
		{name: "an address as interface name is not an address",
			ctrl:   kernel.Controller{Subsystem: nqn, TrAddr: "192.0.2.10", TrSvcID: "4420", HostIface: "192.0.2.1"},
			target: nvme.Target{NQN: nqn, TrAddr: "192.0.2.10", TrSvcID: "4420", HostTrAddr: "192.0.2.1"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, p := controllerPortal(tt.ctrl), targetPortal(tt.target)
			if (c == p) != tt.same {
				t.Errorf("controller labels %v, portal labels %v: same = %v, want %v", c.values(), p.values(), c == p, tt.same)
			}
			if got := len(c.values()); got != len(portalLabels) {
				t.Errorf("%d label values for %d labels", got, len(portalLabels))
			}
		})
	}
}
