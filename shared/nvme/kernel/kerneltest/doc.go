// Package kerneltest simulates one Linux host's NVMe over TCP initiator for
// tests: a sysfs tree and a /dev directory under a test's temporary
// directory, laid out like Debian's 6.1 kernel shows them, and the control
// files whose writes make the kernel act (/dev/nvme-fabrics and the
// controllers' sysfs attributes). Code under test reads the tree directly
// and writes through Host, which implements the kernel connector's
// ControlFiles interface structurally; this package does not import the
// connector (the connector's own tests import it).
//
// What the simulation honours (../shared/KERNEL.md, fabrics.c, tcp.c,
// core.c and multipath.c of Linux 6.1):
//
//   - /dev/nvme-fabrics: a read before any write returns the option list
//     (5.17+); one write of an option string, split on ',' and '\n', parsed
//     with the kernel's patterns (integers in base 0, a later value of an
//     option replacing an earlier one, unknown or malformed pieces EINVAL);
//     the reply "instance=N,cntlid=M\n" read from the same descriptor; a
//     second write on a descriptor that created a controller is EINVAL.
//     All connects of the host are serialised, as by nvmf_dev_mutex.
//   - Errors: duplicate controller EALREADY, nothing listening or a target
//     down ECONNREFUSED, a host the subsystem does not allow or a subsystem
//     the port does not export EIO, an unknown host_iface ENODEV, a
//     host_traddr that is not local EADDRNOTAVAIL, a second hostnqn
//     EADDRINUSE.
//   - Host identity as on 6.1 (measured): hosts are told apart by NQN only,
//     and each connect writes its host ID (a random one when it gives
//     none) over the ID of every controller of that NQN. Newer kernels'
//     EINVAL for a known NQN with another ID: WithStrictHostIdentity.
//   - Names and numbers: controller instances and subsystem instances from
//     one pool, lowest free first (a subsystem takes its first controller's
//     number and keeps it while it lives); namespace head indexes per
//     subsystem, lowest free; block device numbers 259:N, lowest free.
//     Names are reused after a delete, as on a real host.
//   - Native multipath (the default): head disk nvmeKnI under nvme-subsysK,
//     the only /dev node, and a hidden path disk nvmeKcCnI with ana_state
//     under each controller; the head goes with its last path. Without it
//     (WithoutMultipath): nvmeCnI under controller C, one /dev node each.
//   - sysfs attributes as the kernel renders them, and its stores:
//     ctrl_loss_tmo kept as a number of attempts of reconnect_delay (so it
//     reads rounded up, and changing reconnect_delay alone changes what
//     ctrl_loss_tmo reads), "off" for forever.
//
// A test wires the connector to a host like this (the nvme-cli backend
// takes Exec: h.NVMeCLI()):
//
//	h := kerneltest.New(t)
//	h.AddTarget("127.0.0.1", "4420", nqn, kerneltest.Namespace{NSID: 1, UUID: id, SizeBytes: 64 << 20})
//	c, err := kernel.NewConnector(kernel.ConnectorConfig{
//		SysfsRoot: h.SysfsRoot(), DevRoot: h.DevRoot(),
//		ControlFiles: h, LookupHost: h.LookupHost,
//	})
//
// test/lab/kerneltest_lab_test.go runs the same scenarios against Debian's
// kernel and against this package and fails on any difference.
//
// Namespace data lives in one backing file per namespace; every /dev node
// of the namespace is a hard link to it, so bytes written through one
// controller are read through the next. Nodes are regular files: nothing
// here needs root or a block device.
//
// Faults and events (SetDown, HoldConnects, BreakAttr, ...) are methods of
// Host. Host is safe for concurrent use and starts no goroutines. Its
// cleanup releases held connects, waits for the writes still in the
// simulated kernel, and fails the test for a /dev/nvme-fabrics descriptor
// that was never closed.
//
// What it does not simulate: I/O errors on the /dev nodes (they are plain
// files: a test writes with O_WRONLY, never O_TRUNC, which would shrink
// the namespace), the controllers' character devices /dev/nvmeN,
// DH-HMAC-CHAP and TLS (Debian 6.1 has neither: dhchap options are parsed
// and checked, then ignored), discovery log pages, and timing: reconnects
// happen when a test calls SetDown or SetPortDown, never by a timer.
package kerneltest
