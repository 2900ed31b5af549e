package driver

import (
	"fmt"
	"net/netip"
	"strings"
	"sync"

	"github.com/nvmeof/nvmeof/shared/nvme"
	"github.com/nvmeof/nvmeof/shared/nvme/kernel"
)

// pathMissing is the state of a portal of a staged volume that has no
// controller at all: the kernel deleted it (ctrl_loss_tmo), someone
// disconnected it, or its connect keeps failing. The healer reconnects it.
const pathMissing = "missing"

// pathStatus is one portal of a staged volume as the kernel shows it now.
type pathStatus struct {
	n      int         // portal number, from 1
	target nvme.Target // resolved; the requested one while unresolved
	// ctrl is the controller serving the portal; Name "" when it has none.
	ctrl  kernel.Controller
	state string // the controller's state, or pathMissing
	ana   string // its ANA state for the volume's namespace; "" when unknown
	live  bool   // I/O can go down it now
}

// String names the path for a person: "portal 2 (192.0.2.11:4420, nvme3)
// connecting".
func (p pathStatus) String() string {
	where := p.target.Portal().String()
	if p.ctrl.Name != "" {
		where += ", " + p.ctrl.Name
	}
	s := fmt.Sprintf("portal %d (%s) %s", p.n, where, p.state)
	if p.ana != "" && p.ana != kernel.ANAOptimized {
		s += ", ANA " + p.ana
	}
	return s
}

// volumeStatus is a staged volume's paths: one per portal, in order.
type volumeStatus struct {
	paths []pathStatus
	live  int
}

// degraded reports fewer live paths than portals.
func (v volumeStatus) degraded() bool { return v.live < len(v.paths) }

// down lists the paths that are not live.
func (v volumeStatus) down() []string {
	var out []string
	for _, p := range v.paths {
		if !p.live {
			out = append(out, p.String())
		}
	}
	return out
}

// up lists the live paths.
func (v volumeStatus) up() []string {
	var out []string
	for _, p := range v.paths {
		if p.live {
			out = append(out, p.String())
		}
	}
	return out
}

// statusOf matches a stage record's portals with the paths the kernel has
// to its namespace (kpaths; nil when the namespace is not known, its
// device gone) and with the node's controllers (ctrls), which also show
// the paths that have not scanned the namespace (reconnecting since
// before the stage).
func statusOf(rec stageRecord, kpaths []kernel.PathState, ctrls []kernel.Controller) volumeStatus {
	var v volumeStatus
	for i, p := range rec.paths() {
		st := pathStatus{n: i + 1, target: p.Target, state: pathMissing}
		if !p.resolved() {
			st.target = p.Requested
		}
		matched := false
		for _, kp := range kpaths {
			if p.resolved() && pathMatches(kp.Controller, p.Target) {
				st.ctrl, st.state, st.ana, st.live = kp.Controller, kp.Controller.State, kp.ANAState, kp.Live()
				matched = true
				break
			}
		}
		if !matched && p.resolved() {
			for _, c := range ctrls {
				if pathMatches(c, p.Target) && c.Usable() {
					st.ctrl, st.state = c, c.State
					break
				}
			}
		}
		if st.live {
			v.live++
		}
		v.paths = append(v.paths, st)
	}
	return v
}

// pathMatches reports whether ctrl is the controller of the path to t:
// the kernel's duplicate rule without the host identity, which is the
// plugin's own for every controller it looks at.
func pathMatches(ctrl kernel.Controller, t nvme.Target) bool {
	return ctrl.Subsystem == t.NQN && ctrl.Transport == t.Transport &&
		sameAddr(ctrl.TrAddr, t.TrAddr) && ctrl.TrSvcID == t.TrSvcID &&
		sameAddr(ctrl.HostTrAddr, t.HostTrAddr) && ctrl.HostIface == t.HostIface
}

func sameAddr(a, b string) bool {
	if a == b {
		return true
	}
	pa, errA := netip.ParseAddr(a)
	pb, errB := netip.ParseAddr(b)
	return errA == nil && errB == nil && pa.Unmap() == pb.Unmap()
}

// pathNames lists the kernel's paths for a log line or a message.
func pathNames(paths []kernel.PathState) string {
	names := make([]string, len(paths))
	for i, p := range paths {
		names[i] = p.String()
	}
	return strings.Join(names, "; ")
}

// pathReport says which of a stage's paths are up and which are down, for
// the log line of a finished stage. The controllers are the ones the
// stage claimed (a path that failed to connect has none): a scan of every
// controller on the node would cost more than the line is worth.
func (d *Driver) pathReport(rec stageRecord, ns kernel.Namespace, claimed []kernel.Controller) (up, down []string) {
	kpaths, err := d.cfg.Connector.Paths(ns)
	if err != nil {
		d.log.Debug("paths of a staged namespace", "device", ns.DevicePath, "error", err)
	}
	v := statusOf(rec, kpaths, claimed)
	return v.up(), v.down()
}

// authMemory keeps the DH-HMAC-CHAP secrets of staged volumes in memory
// only, so that the healer can reconnect their paths: secrets never reach
// a state file, a log or a metric. After a restart they are gone, and the
// paths of such volumes are reconnected by their next stage.
type authMemory struct {
	mu    sync.Mutex
	auths map[string]nvme.Auth
}

func (d *Driver) rememberAuth(volumeID string, a nvme.Auth) {
	if a == (nvme.Auth{}) {
		return
	}
	d.auth.mu.Lock()
	defer d.auth.mu.Unlock()
	if d.auth.auths == nil {
		d.auth.auths = map[string]nvme.Auth{}
	}
	d.auth.auths[volumeID] = a
}

// authOf returns a staged volume's secrets; ok false when the plugin has
// none in memory.
func (d *Driver) authOf(volumeID string) (nvme.Auth, bool) {
	d.auth.mu.Lock()
	defer d.auth.mu.Unlock()
	a, ok := d.auth.auths[volumeID]
	return a, ok
}

func (d *Driver) forgetAuth(volumeID string) {
	d.auth.mu.Lock()
	defer d.auth.mu.Unlock()
	delete(d.auth.auths, volumeID)
}

// staged reports whether a stage record of the volume remains (at any
// staging path); its secrets are kept until none does.
func (d *Driver) staged(volumeID string) bool {
	recs, err := d.volumeRecords(volumeID)
	return err != nil || len(recs) > 0
}
