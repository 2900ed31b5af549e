package kernel

import (
	"context"
	"time"

	"github.com/nvmeof/nvmeof/shared/nvme"
)

// Controller is one kernel NVMe controller, /sys/class/nvme/<Name>, as
// sysfs showed it when it was read.
type Controller struct {
	Name      string // "nvme3"
	Instance  int    // 3: /dev/nvme3
	State     string // live, connecting, resetting, deleting, "deleting (no IO)", dead, new
	Subsystem string // subsystem NQN
	Transport string
	TrAddr    string
	TrSvcID   string
	// HostTrAddr and HostIface are set only when the controller was created
	// with them.
	HostTrAddr string
	HostIface  string
	HostNQN    string
	HostID     string
	CntlID     int
	// ID tells this controller apart from a later one under the same name
	// (names are reused after a delete; cntlid changes at every reconnect
	// to a dynamic-controller target such as nvmet): the inode of its
	// sysfs directory, which lasts as long as the controller does.
	ID uint64
	// Reconnection parameters as the kernel holds them; CtrlLossTmo -1
	// when sysfs says "off", FastIOFailTmo -1 when "off".
	CtrlLossTmo    int
	ReconnectDelay int
	FastIOFailTmo  int
	KeepAliveTmo   int // kato
}

// Controller states the kernel reports.
const (
	StateLive       = "live"
	StateConnecting = "connecting"
	StateResetting  = "resetting"
	StateDeleting   = "deleting"
	StateDeletingIO = "deleting (no IO)"
	StateDead       = "dead"
	StateNew        = "new"
)

// Usable reports whether the controller serves I/O now or will again
// without a new connect: live, or reconnecting on its own.
func (c Controller) Usable() bool {
	switch c.State {
	case StateLive, StateConnecting, StateResetting, StateNew:
		return true
	}
	return false
}

// Namespace is one block device of a subsystem: the head disk with native
// multipath, the controller's own disk without it.
type Namespace struct {
	DevicePath string // /dev/nvme1n2
	Name       string // nvme1n2
	Subsystem  string // subsystem NQN
	NSID       uint32
	UUID       string // canonical, "" when the namespace has none
	NGUID      string // canonical, "" when the namespace has none
	SizeBytes  int64
	// Dev is the block device's number, "major:minor" as sysfs writes it:
	// what the mount table shows for a file system mounted from it, whatever
	// path it was mounted by.
	Dev string
	// Partitions are its partitions' block devices: a mounted partition
	// uses the namespace as much as a mounted whole.
	Partitions []Partition
	// Holders name the devices stacked on it or on a partition (device
	// mapper, md): in use, though no mount shows the namespace.
	Holders []string
}

// Partition is a partition of a namespace's disk: its name (nvme1n2p1,
// also its /dev node's) and its device number.
type Partition struct {
	Name string
	Dev  string
}

// Health is what a node can say about a staged volume without Nomad asking.
type Health struct {
	// ControllerState is live when a path can take I/O; otherwise the
	// state of the first path's controller, "" when no path is left.
	ControllerState string
	// Paths are the paths the kernel has to the namespace now, LivePaths
	// how many of them can take I/O (see PathState.Live).
	Paths     []PathState
	LivePaths int
	// FSErrors counts errors the file system recorded (ext4 errors_count);
	// a non-zero count means it may have turned read-only.
	FSErrors int
	ReadOnly bool   // the file system refuses writes (probed)
	Message  string // for a person: what is wrong and what to do; "" when healthy
}

// Healthy reports whether the volume serves I/O.
func (h Health) Healthy() bool { return h.Message == "" }

// Connector attaches NVMe-oF subsystems through the Linux kernel. Every
// method is idempotent: state is read back from sysfs, never remembered.
type Connector interface {
	// Connect returns a controller for c: a usable one that matches c
	// (subsystem, transport, address, host identity, source) is adopted
	// and its reconnection parameters brought to c.Config; otherwise a new
	// one is created. Transient failures are retried until ctx ends.
	//
	// When ctx ends while the kernel is still creating the controller (its
	// write cannot be interrupted), the error matches *InFlightError, whose
	// Wait says what the kernel finally did.
	Connect(ctx context.Context, c nvme.ValidConnection) (Controller, error)
	// Create makes a new controller for c and never adopts one: when a
	// matching controller exists, or one appears while it works (someone
	// else's connect), it fails with an error matching
	// ErrControllerExists. What it returns the caller made, and only that.
	// A context ending mid-write gives an *InFlightError as Connect does.
	Create(ctx context.Context, c nvme.ValidConnection) (Controller, error)
	// ResolveTarget returns t with TrAddr as the kernel will show it: a
	// host name resolved to one address, an address in canonical form.
	// Callers that key state by target use the result, so that what they
	// record matches what sysfs says later.
	ResolveTarget(ctx context.Context, t nvme.Target) (nvme.Target, error)
	// Find returns the usable controller matching c, if there is one.
	Find(c nvme.ValidConnection) (Controller, bool, error)
	// Refresh reads ctrl again, as sysfs shows it now: one controller's
	// attributes, where Find looks at every controller of the subsystem.
	// A controller that is gone, or whose name now belongs to another, is
	// an error matching ErrControllerGone.
	Refresh(ctrl Controller) (Controller, error)
	// Resolve waits (bounded by ctx) for the namespace sel picks on the
	// controller's subsystem to appear, and verifies its identity.
	Resolve(ctx context.Context, ctrl Controller, sel nvme.NamespaceSelector) (Namespace, error)
	// Disconnect deletes the controller; one already gone is success.
	Disconnect(ctx context.Context, ctrl Controller) error
	// UpdateReconnectParams writes cfg's reconnection parameters to a live
	// controller through sysfs and reads them back.
	UpdateReconnectParams(ctrl Controller, cfg nvme.ConnectionConfig) error
	// Controllers lists every NVMe controller on the host.
	Controllers() ([]Controller, error)
	// NamespaceOf maps a block device (a name such as nvme1n2, or a /dev
	// path) to its namespace and the controllers that reach it.
	NamespaceOf(device string) (Namespace, []Controller, error)
	// Identify maps a block device to its namespace alone: what
	// NamespaceOf returns without the controllers, which cost a read of
	// each (a publish asks only which namespace is mounted).
	Identify(device string) (Namespace, error)
	// Namespaces lists the namespaces reached through ctrl. Any read that
	// fails is an error, never a shorter list: callers decide from it
	// whether a controller is still in use.
	Namespaces(ctrl Controller) ([]Namespace, error)
	// Health reports the state of the namespace's paths (of ctrl alone
	// when ns is not known) and the error state of the file system of the
	// namespace mounted at mountPath ("" for block).
	Health(ctrl Controller, ns Namespace, mountPath string) (Health, error)
	// Paths lists the paths the kernel has to a namespace now, with their
	// ANA state.
	Paths(ns Namespace) ([]PathState, error)
	// Multipath reports whether the kernel runs native NVMe multipath
	// (nvme_core.multipath=Y): one head disk over every path.
	Multipath() (bool, error)
	// SetIOPolicy sets the multipath I/O policy of ctrl's subsystem; a
	// policy the kernel does not offer gives ErrIOPolicyUnsupported.
	SetIOPolicy(ctrl Controller, policy nvme.IOPolicy) error
	// IOPolicy reads the multipath I/O policy of ctrl's subsystem.
	IOPolicy(ctrl Controller) (nvme.IOPolicy, error)
	// QuiesceHealth stops Health's write probes of mountPath and waits
	// (until ctx ends) for one in flight, before the path is unmounted: the
	// probe's open file would make the unmount fail. Call the result when
	// the unmount is done.
	QuiesceHealth(ctx context.Context, mountPath string) (func(), error)
}

// ResolvePoll is how often Resolve looks for a namespace that the kernel is
// still scanning: short, because the scan usually ends within milliseconds.
const ResolvePoll = 5 * time.Millisecond
