// Package labtarget is the lab's fixed NVMe/TCP target: the names, ids and
// address every lab test relies on, and the nvmet configfs operations that
// build it at boot (cmd/labsetup) and cause outages during tests (Unlink,
// Link). It has no build tag: the layout is plain data, and the configfs
// code is tested against a directory tree outside the VM.
package labtarget

// The one port; every subsystem below is linked to it.
const (
	PortID        = "1"
	Transport     = "tcp"
	AddressFamily = "ipv4"
	TrAddr        = "127.0.0.1"
	TrSvcID       = "4420"
)

// Subsystem NQNs.
const (
	SubsystemOne = "nqn.2026-01.io.nvmeof.lab:one" // any host, namespaces 1 and 2
	SubsystemTwo = "nqn.2026-01.io.nvmeof.lab:two" // any host, namespace 1
	SubsystemACL = "nqn.2026-01.io.nvmeof.lab:acl" // only AllowedHostNQN, namespace 1
	// SubsystemAuth admits only HostNQN, and on a kernel with nvmet
	// authentication (CONFIG_NVME_TARGET_AUTH) only with DH-HMAC-CHAP: see
	// HostAuth.
	SubsystemAuth = "nqn.2026-01.io.nvmeof.lab:auth"
)

// Host identities. HostNQN/HostID are what tests connect as (also in
// /etc/nvme/hostnqn and /etc/nvme/hostid in the VM); only
// AllowedHostNQN/AllowedHostID may connect to SubsystemACL.
const (
	HostNQN        = "nqn.2026-01.io.nvmeof.lab:host-1"
	HostID         = "0aaaaaaa-0000-4000-8000-00000000000a"
	AllowedHostNQN = "nqn.2026-01.io.nvmeof.lab:host-allowed"
	AllowedHostID  = "0aaaaaaa-0000-4000-8000-000000000001"
)

// Namespace identities, as the kernel shows them in
// /sys/block/nvmeXnY/{uuid,nguid}.
const (
	OneNS1UUID   = "11111111-1111-4111-8111-111111111111"
	OneNS1NGUID  = "11111111111111111111111111111111"
	OneNS2UUID   = "22222222-2222-4222-8222-222222222222"
	OneNS2NGUID  = "22222222222222222222222222222222"
	TwoNS1UUID   = "33333333-3333-4333-8333-333333333333"
	TwoNS1NGUID  = "33333333333333333333333333333333"
	ACLNS1UUID   = "44444444-4444-4444-8444-444444444444"
	ACLNS1NGUID  = "44444444444444444444444444444444"
	AuthNS1UUID  = "66666666-6666-4666-8666-666666666666"
	AuthNS1NGUID = "66666666666666666666666666666666"
	AuthNS2UUID  = "77777777-7777-4777-8777-777777777777"
	AuthNS2NGUID = "77777777777777777777777777777777"
)

// NamespaceSize is the size of every namespace: a loop device over a sparse
// file on tmpfs, so unwritten space costs no guest memory. Too small for
// xfs: mkfs.xfs (xfsprogs 5.19 and later) refuses file systems under
// 300 MB, and an xfs format writes ~65 MiB (its log).
const NamespaceSize = 128 << 20

// Namespace is one namespace of a subsystem.
type Namespace struct {
	NSID  uint32
	UUID  string
	NGUID string // 32 hex digits
}

// Subsystem is one nvmet subsystem of the layout.
type Subsystem struct {
	NQN          string
	AllowAnyHost bool
	AllowedHosts []string
	Namespaces   []Namespace
}

// Subsystems returns the layout, in the order it is built.
func Subsystems() []Subsystem {
	return []Subsystem{
		{
			NQN: SubsystemOne, AllowAnyHost: true,
			Namespaces: []Namespace{
				{NSID: 1, UUID: OneNS1UUID, NGUID: OneNS1NGUID},
				{NSID: 2, UUID: OneNS2UUID, NGUID: OneNS2NGUID},
			},
		},
		{
			NQN: SubsystemTwo, AllowAnyHost: true,
			Namespaces: []Namespace{{NSID: 1, UUID: TwoNS1UUID, NGUID: TwoNS1NGUID}},
		},
		{
			NQN: SubsystemACL, AllowedHosts: []string{AllowedHostNQN},
			Namespaces: []Namespace{{NSID: 1, UUID: ACLNS1UUID, NGUID: ACLNS1NGUID}},
		},
		{
			NQN: SubsystemAuth, AllowedHosts: []string{HostNQN},
			Namespaces: []Namespace{
				{NSID: 1, UUID: AuthNS1UUID, NGUID: AuthNS1NGUID},
				{NSID: 2, UUID: AuthNS2UUID, NGUID: AuthNS2NGUID},
			},
		},
	}
}

// known reports whether nqn is a subsystem of the layout.
func known(nqn string) bool {
	for _, s := range Subsystems() {
		if s.NQN == nqn {
			return true
		}
	}
	return false
}
