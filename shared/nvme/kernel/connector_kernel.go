package kernel

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net/netip"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/hashicorp/go-hclog"
	"k8s.io/apimachinery/pkg/util/wait"

	"github.com/nvmeof/nvmeof/shared/nvme"
	"github.com/nvmeof/nvmeof/shared/retry"
)

// kernelConnector is the Connector of a Linux host: sysfs for everything it
// reads and tunes, a backend for creating controllers.
type kernelConnector struct {
	sys        sysfs
	devRoot    string
	backoff    wait.Backoff
	log        hclog.Logger
	lookupHost HostLookup
	backend    controllerCreator
	// diskEvents listens for disks as Resolve waits for one.
	diskEvents        func() (DiskEvents, error)
	diskEventFallback time.Duration
}

var _ Connector = (*kernelConnector)(nil)

func (k *kernelConnector) Connect(ctx context.Context, vc nvme.ValidConnection) (Controller, error) {
	if err := vc.Check(); err != nil {
		return Controller{}, fmt.Errorf("connect: %w", err)
	}
	c := vc.Connection()
	var ctrl Controller
	err := retry.RetryWithBackoff(ctx, k.backoff, func(ctx context.Context) error {
		var err error
		ctrl, err = k.connectOnce(ctx, vc)
		if err != nil {
			k.log.Debug("connect attempt failed", "nqn", c.Target.NQN, "traddr", c.Target.TrAddr, "error", err)
		}
		return err
	})
	if err != nil {
		return Controller{}, fmt.Errorf("connect to subsystem %q: %w", c.Target.NQN, err)
	}
	return ctrl, nil
}

func (k *kernelConnector) Create(ctx context.Context, vc nvme.ValidConnection) (Controller, error) {
	if err := vc.Check(); err != nil {
		return Controller{}, fmt.Errorf("create: %w", err)
	}
	c := vc.Connection()
	var ctrl Controller
	err := retry.RetryWithBackoff(ctx, k.backoff, func(ctx context.Context) error {
		var err error
		ctrl, err = k.createOnce(ctx, vc)
		if err != nil {
			k.log.Debug("create attempt failed", "nqn", c.Target.NQN, "traddr", c.Target.TrAddr, "error", err)
		}
		return err
	})
	if err != nil {
		return Controller{}, fmt.Errorf("create a controller for subsystem %q: %w", c.Target.NQN, err)
	}
	return ctrl, nil
}

// createOnce makes a controller, or says one exists. It does not look for
// one first: the kernel refuses a duplicate with EALREADY before it does
// anything (the nvme-cli backend looks itself, since nvme-cli's answer is
// not to be trusted), and the caller has just looked (Find) to decide
// between adopting and creating.
func (k *kernelConnector) createOnce(ctx context.Context, vc nvme.ValidConnection) (Controller, error) {
	c := vc.Connection()
	name, err := k.backend.create(ctx, vc)
	var inflight *InFlightError
	switch {
	case errors.As(err, &inflight):
		inflight.read = func(name string) (Controller, error) { return k.newController(name, c) }
		return Controller{}, err
	case errors.Is(err, syscall.EALREADY):
		return Controller{}, &permanentError{fmt.Errorf("someone else connected subsystem %q meanwhile: %w", c.Target.NQN, ErrControllerExists)}
	case err != nil:
		return Controller{}, err
	}
	return k.newController(name, c)
}

// connectOnce adopts a matching controller or creates one.
func (k *kernelConnector) connectOnce(ctx context.Context, vc nvme.ValidConnection) (Controller, error) {
	c := vc.Connection()
	if ctrl, found, err := findController(k.sys, c); err != nil {
		return Controller{}, err
	} else if found {
		return k.adopt(ctrl, c)
	}
	name, err := k.backend.create(ctx, vc)
	var inflight *InFlightError
	if errors.As(err, &inflight) {
		inflight.read = func(name string) (Controller, error) { return k.newController(name, c) }
		return Controller{}, err
	}
	if errors.Is(err, syscall.EALREADY) {
		// Someone else connected between our look and our write.
		ctrl, found, ferr := findController(k.sys, c)
		if ferr != nil {
			return Controller{}, ferr
		}
		if !found {
			// Most likely the duplicate is being deleted right now.
			return Controller{}, fmt.Errorf("the kernel has a controller for subsystem %q, but no usable one matches in sysfs (being deleted?): %w",
				c.Target.NQN, syscall.EAGAIN)
		}
		k.log.Debug("kernel reports the controller exists; adopting it", "controller", ctrl.Name, "nqn", c.Target.NQN)
		return k.adopt(ctrl, c)
	}
	if err != nil {
		return Controller{}, err
	}
	ctrl, err := k.newController(name, c)
	if err != nil {
		return Controller{}, err
	}
	// nvme-cli leaves out some values (0, and -1 in some releases) and
	// the kernel's default applies: what sysfs shows decides, and the
	// reconnection parameters are brought to the connection's.
	if !reconnectParamsMatch(ctrl, c.Config) {
		k.log.Info("new controller does not hold the requested reconnection parameters; writing them", "controller", ctrl.Name,
			"reconnect_delay", ctrl.ReconnectDelay, "ctrl_loss_tmo", formatTimeout(ctrl.CtrlLossTmo), "fast_io_fail_tmo", formatTimeout(ctrl.FastIOFailTmo))
		if err := k.writeReconnectParams(ctrl, c.Config); err != nil {
			return Controller{}, err
		}
		return k.readBack(ctrl, c.Config)
	}
	return ctrl, nil
}

// newController reads the controller the kernel just created for c.
func (k *kernelConnector) newController(name string, c nvme.Connection) (Controller, error) {
	ctrl, err := k.sys.controller(name)
	if err != nil {
		return Controller{}, fmt.Errorf("read new controller: %w", err)
	}
	if !controllerMatches(ctrl, c) {
		// Deleted and its name reused in the meantime; try again.
		return Controller{}, fmt.Errorf("new controller %s does not match subsystem %q any more: %w", name, c.Target.NQN, syscall.EAGAIN)
	}
	// Debug: the caller says at Info level what it connected, and why.
	k.log.Debug("connected", "controller", ctrl.Name, "nqn", ctrl.Subsystem, "traddr", ctrl.TrAddr, "trsvcid", ctrl.TrSvcID, "state", ctrl.State)
	return ctrl, nil
}

// adopt brings an existing controller's reconnection parameters to c's,
// after checking that it authenticates with c's keys: the kernel's
// duplicate rule ignores them, so a connect with other keys would be
// handed a controller that proved other credentials.
func (k *kernelConnector) adopt(ctrl Controller, c nvme.Connection) (Controller, error) {
	k.log.Debug("adopting controller", "controller", ctrl.Name, "nqn", ctrl.Subsystem, "state", ctrl.State)
	if err := k.sys.checkAuth(ctrl, c.Auth); err != nil {
		return Controller{}, err
	}
	cfg := c.Config
	if reconnectParamsMatch(ctrl, cfg) {
		return ctrl, nil
	}
	if err := k.writeReconnectParams(ctrl, cfg); err != nil {
		return Controller{}, err
	}
	return k.readBack(ctrl, cfg)
}

func (k *kernelConnector) Find(c nvme.ValidConnection) (Controller, bool, error) {
	return findController(k.sys, c.Connection())
}

func (k *kernelConnector) Refresh(ctrl Controller) (Controller, error) {
	return k.currentController(ctrl)
}

func (k *kernelConnector) Controllers() ([]Controller, error) {
	return k.sys.controllers()
}

func (k *kernelConnector) Disconnect(ctx context.Context, ctrl Controller) error {
	cur, err := k.sys.controller(ctrl.Name)
	if errors.Is(err, ErrControllerGone) {
		return nil
	}
	if err != nil {
		return err
	}
	if !sameController(cur, ctrl) {
		// The name was reused: ours is gone, and this one is not ours.
		k.log.Debug("controller already gone, its name now belongs to another", "controller", ctrl.Name, "nqn", ctrl.Subsystem, "now", cur.Subsystem)
		return nil
	}
	// Deleting waits for the controller's teardown in the kernel; like the
	// connect write it cannot be interrupted, so ctx only bounds our wait.
	done := make(chan error, 1)
	start := time.Now()
	go func() { done <- k.sys.writeAttr(k.sys.controllerDir(ctrl.Name), "delete_controller", "1") }()
	select {
	case err = <-done:
	case <-ctx.Done():
		return fmt.Errorf("disconnect %s: the kernel is still deleting it: %w", ctrl.Name, ctx.Err())
	}
	if err != nil && !errors.Is(err, fs.ErrNotExist) && !errors.Is(err, syscall.ENODEV) {
		return fmt.Errorf("disconnect %s (subsystem %q): %w", ctrl.Name, ctrl.Subsystem, err)
	}
	k.log.Debug("disconnected", "controller", ctrl.Name, "nqn", ctrl.Subsystem,
		"kernel_delete_ms", float64(time.Since(start).Microseconds())/1000)
	return nil
}

func (k *kernelConnector) UpdateReconnectParams(ctrl Controller, cfg nvme.ConnectionConfig) error {
	if err := cfg.Validate(); err != nil {
		return fmt.Errorf("update %s: %w", ctrl.Name, err)
	}
	cur, err := k.currentController(ctrl)
	if err != nil {
		return err
	}
	if err := k.writeReconnectParams(cur, cfg); err != nil {
		return err
	}
	_, err = k.readBack(cur, cfg)
	return err
}

// currentController re-reads ctrl and checks it is still the same one.
func (k *kernelConnector) currentController(ctrl Controller) (Controller, error) {
	cur, err := k.sys.controller(ctrl.Name)
	if err != nil {
		return Controller{}, err
	}
	if !sameController(cur, ctrl) {
		return Controller{}, fmt.Errorf("controller %s now belongs to subsystem %q: %w", ctrl.Name, cur.Subsystem, ErrControllerGone)
	}
	return cur, nil
}

// writeReconnectParams writes reconnect_delay first: the kernel turns
// ctrl_loss_tmo into a number of attempts using the delay in force when
// ctrl_loss_tmo is written.
func (k *kernelConnector) writeReconnectParams(ctrl Controller, cfg nvme.ConnectionConfig) error {
	dir := k.sys.controllerDir(ctrl.Name)
	writes := []struct{ attr, value string }{
		{"reconnect_delay", fmt.Sprint(cfg.ReconnectDelay)},
		{"ctrl_loss_tmo", formatTimeout(cfg.CtrlLossTmo)},
	}
	if cfg.FastIOFailTmo != nil {
		writes = append(writes, struct{ attr, value string }{"fast_io_fail_tmo", formatTimeout(*cfg.FastIOFailTmo)})
	}
	for _, w := range writes {
		if err := k.sys.writeAttr(dir, w.attr, w.value); err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return fmt.Errorf("tune %s: %w", ctrl.Name, ErrControllerGone)
			}
			return fmt.Errorf("tune %s: %w", ctrl.Name, err)
		}
	}
	k.log.Debug("reconnection parameters written", "controller", ctrl.Name, "reconnect_delay", cfg.ReconnectDelay, "ctrl_loss_tmo", cfg.CtrlLossTmo)
	return nil
}

// readBack checks that the kernel holds what was written: a udev rule may
// rewrite ctrl_loss_tmo behind our back.
func (k *kernelConnector) readBack(ctrl Controller, cfg nvme.ConnectionConfig) (Controller, error) {
	cur, err := k.sys.controller(ctrl.Name)
	if err != nil {
		return Controller{}, err
	}
	if !reconnectParamsMatch(cur, cfg) {
		return Controller{}, fmt.Errorf("controller %s reads reconnect_delay=%d ctrl_loss_tmo=%s fast_io_fail_tmo=%s after writing %d, %s, %s: "+
			"is something else (a udev rule?) tuning it?", ctrl.Name,
			cur.ReconnectDelay, formatTimeout(cur.CtrlLossTmo), formatTimeout(cur.FastIOFailTmo),
			cfg.ReconnectDelay, formatTimeout(expectedCtrlLossTmo(cfg.CtrlLossTmo, cfg.ReconnectDelay)), optionalTimeout(cfg.FastIOFailTmo))
	}
	return cur, nil
}

func optionalTimeout(p *int) string {
	if p == nil {
		return "(unchanged)"
	}
	return formatTimeout(*p)
}

// reconnectParamsMatch compares what sysfs shows with cfg, the kernel's
// rounding of ctrl_loss_tmo included.
func reconnectParamsMatch(ctrl Controller, cfg nvme.ConnectionConfig) bool {
	if ctrl.ReconnectDelay != cfg.ReconnectDelay || ctrl.CtrlLossTmo != expectedCtrlLossTmo(cfg.CtrlLossTmo, cfg.ReconnectDelay) {
		return false
	}
	if cfg.FastIOFailTmo != nil {
		want := *cfg.FastIOFailTmo
		if want < 0 {
			want = -1
		}
		return ctrl.FastIOFailTmo == want
	}
	return true
}

// ResolveTarget replaces a host name in traddr by its first address (the
// kernel takes only literal addresses) and writes an address the way the
// kernel prints it in sysfs, so matching compares like with like.
func (k *kernelConnector) ResolveTarget(ctx context.Context, t nvme.Target) (nvme.Target, error) {
	host := t.TrAddr
	if addr, err := netip.ParseAddr(host); err == nil {
		t.TrAddr = addr.Unmap().String()
		return t, nil
	}
	// Checked before the lookup, so a bad name costs no DNS query.
	if err := t.Validate(nvme.NQNFreeForm); err != nil {
		return nvme.Target{}, fmt.Errorf("resolve target host %q: %w", nvme.Truncate(host), err)
	}
	addrs, err := k.lookupHost(ctx, host)
	if err != nil {
		return nvme.Target{}, fmt.Errorf("resolve target host %q: %w", host, err)
	}
	if len(addrs) == 0 {
		return nvme.Target{}, fmt.Errorf("resolve target host %q: no addresses", host)
	}
	t.TrAddr = addrs[0].Unmap().String()
	k.log.Debug("resolved target host", "host", host, "traddr", t.TrAddr)
	return t, nil
}

// findController returns the usable controller matching c, preferring a
// live one, then the lowest instance.
func findController(sys sysfs, c nvme.Connection) (Controller, bool, error) {
	all, err := sys.controllersOf(c.Target.NQN)
	if err != nil {
		return Controller{}, false, err
	}
	var best Controller
	found := false
	for _, ctrl := range all {
		if !ctrl.Usable() || !controllerMatches(ctrl, c) {
			continue
		}
		if !found || (ctrl.State == StateLive && best.State != StateLive) {
			best, found = ctrl, true
		}
	}
	return best, found, nil
}

// controllerMatches applies the kernel's own duplicate rule: the same
// subsystem, transport, address, host identity and source.
func controllerMatches(ctrl Controller, c nvme.Connection) bool {
	t := c.Target
	return ctrl.Subsystem == t.NQN &&
		ctrl.Transport == t.Transport &&
		sameAddress(ctrl.TrAddr, t.TrAddr) &&
		ctrl.TrSvcID == t.TrSvcID &&
		ctrl.HostNQN == c.Host.NQN &&
		(ctrl.HostID == "" || strings.EqualFold(ctrl.HostID, c.Host.ID)) &&
		sameAddress(ctrl.HostTrAddr, t.HostTrAddr) &&
		ctrl.HostIface == t.HostIface
}

// sameController tells whether cur (read now) is the controller ctrl was
// when it was read: names are reused after a delete. Fields ctrl leaves
// empty are not compared.
func sameController(cur, ctrl Controller) bool {
	eq := func(a, b string) bool { return b == "" || a == b }
	return (ctrl.ID == 0 || cur.ID == ctrl.ID) &&
		eq(cur.Subsystem, ctrl.Subsystem) && eq(cur.Transport, ctrl.Transport) &&
		(ctrl.TrAddr == "" || sameAddress(cur.TrAddr, ctrl.TrAddr)) &&
		eq(cur.TrSvcID, ctrl.TrSvcID) && eq(cur.HostNQN, ctrl.HostNQN)
}

// sameAddress compares addresses by value (IPv6 has many spellings).
func sameAddress(a, b string) bool {
	if a == b {
		return true
	}
	pa, errA := netip.ParseAddr(a)
	pb, errB := netip.ParseAddr(b)
	return errA == nil && errB == nil && pa.Unmap() == pb.Unmap()
}

func sortControllers(cs []Controller) {
	slices.SortFunc(cs, func(a, b Controller) int { return a.Instance - b.Instance })
}

// devicePath is the /dev node of a disk.
func (k *kernelConnector) devicePath(disk string) string {
	return filepath.Join(k.devRoot, disk)
}
