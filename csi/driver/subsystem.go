package driver

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/hashicorp/go-hclog"
	"google.golang.org/grpc/codes"

	"github.com/nvmeof/nvmeof/shared/nvme"
	"github.com/nvmeof/nvmeof/shared/nvme/kernel"
)

// pathConn is one portal of a stage, ready to connect: its number (from
// 1), the target as written and resolved, and the validated connection.
// err says why it cannot be tried now (its host name did not resolve).
type pathConn struct {
	n         int
	requested nvme.Target
	target    nvme.Target
	key       string
	conn      nvme.ValidConnection
	err       error
}

func (p pathConn) record() pathRecord {
	if p.err != nil {
		return pathRecord{Requested: p.requested}
	}
	return pathRecord{Key: p.key, Requested: p.requested, Target: p.target}
}

// claimPaths connects every portal of the stage (one controller per path,
// each adopted or created) and claims the subsystem for the stage: until
// the claim is dropped, no unstage disconnects its controllers. Everything
// happens under the subsystem's lock, so the checks hold for what is done:
// every volume of the subsystem staged on this node asked for the same
// settings (the kernel keeps them per controller, and the controllers
// serve every namespace of the subsystem), and connect-time settings of an
// adopted controller match.
//
// A path that does not connect is no failure of the stage while another
// does: ctrls has a zero Controller for it, and the healer retries it. The
// stage fails only when no path connects, when a path is refused for the
// volume's settings, or when the kernel refuses the I/O policy; the
// controllers it connected are then released before it returns.
func (d *Driver) claimPaths(ctx context.Context, log hclog.Logger, vol nvme.Volume, conns []pathConn, want stageRecord) ([]kernel.Controller, *claim, error) {
	nqn := want.subsystem()
	held, err := d.keys.lock(ctx, subsystemKey(nqn))
	if err != nil {
		return nil, nil, err
	}
	handedOver := false
	defer func() {
		if !handedOver {
			held.unlock()
		}
	}()
	users, err := d.checkShared(held, want)
	if err != nil {
		return nil, nil, err
	}
	ctrls := make([]kernel.Controller, len(conns))
	var failures []error
	connected := 0
	fail := func(err error) ([]kernel.Controller, *claim, error) {
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), releaseTimeout)
		defer cancel()
		if connected > 0 {
			if rerr := d.releaseSubsystemLocked(rctx, log, held, nqn); rerr != nil {
				log.Warn("could not release the paths of a refused stage", "error", rerr)
			}
		}
		return nil, nil, err
	}
	for i, pc := range conns {
		if pc.err != nil {
			failures = append(failures, pc.err)
			continue
		}
		want := pathWant{volumeID: want.VolumeID, key: pc.key, target: pc.target, config: vol.Config}
		ctrl, err := d.connectPath(ctx, log, pc.conn, want, users[pc.key] == 0, held)
		var inflight *kernel.InFlightError
		switch {
		case errors.As(err, &inflight):
			// The settling goroutine holds the lock now, and releases
			// what this stage connected once the kernel has answered.
			handedOver = true
			return nil, nil, err
		case isRefusal(err):
			return fail(err)
		case err != nil:
			failures = append(failures, err)
			log.Warn("path did not connect; the healer retries it in the background", "portal", pc.requested.Portal().String(), "error", err)
			continue
		}
		ctrls[i] = ctrl
		connected++
	}
	if connected == 0 {
		return fail(fmt.Errorf("no portal of %s connected: %w", nqn, errors.Join(failures...)))
	}
	if vol.IOPolicy != "" {
		if err := d.applyIOPolicy(log, ctrls, vol.IOPolicy); err != nil {
			return fail(err)
		}
	}
	c := &claim{volumeID: want.VolumeID, stagingPath: want.StagingPath, config: want.Config, ioPolicy: want.IOPolicy}
	for _, pc := range conns {
		if pc.err == nil {
			c.keys = append(c.keys, pc.key)
		}
	}
	held.addClaim(c)
	return ctrls, c, nil
}

// isRefusal reports an error that is about the request, not about a path
// being down: another path cannot make up for it.
func isRefusal(err error) bool {
	var f *failure
	if errors.As(err, &f) {
		return f.code == codes.FailedPrecondition || f.code == codes.InvalidArgument || f.code == codes.AlreadyExists
	}
	return errors.Is(err, nvme.ErrInvalid)
}

// applyIOPolicy sets the subsystem's multipath I/O policy. The kernel
// keeps one per subsystem (checkShared made sure the volumes of it agree);
// one it does not offer is the node's limit, not the request's mistake.
func (d *Driver) applyIOPolicy(log hclog.Logger, ctrls []kernel.Controller, policy nvme.IOPolicy) error {
	on, err := d.cfg.Connector.Multipath()
	if err != nil {
		return fmt.Errorf("iopolicy %s: %w", policy, err)
	}
	if !on {
		log.Warn("iopolicy is set, but the kernel runs without native multipath (nvme_core.multipath=N): it has no effect", "iopolicy", policy)
		return nil
	}
	for _, c := range ctrls {
		if c.Name == "" {
			continue
		}
		err := d.cfg.Connector.SetIOPolicy(c, policy)
		if errors.Is(err, kernel.ErrIOPolicyUnsupported) {
			return precondition("iopolicy %q is not offered by this node's kernel (%v): use one it has (numa and round-robin are in every kernel with native multipath; queue-depth came with Linux 6.11), or leave iopolicy unset", policy, err)
		}
		if err != nil {
			return err //nolint:wrapcheck // the connector names the subsystem and the policy
		}
		return nil
	}
	return nil
}

// checkShared refuses a stage whose connection parameters or I/O policy
// differ from those of a volume of the same subsystem already on this
// node: staged (its record, and its mount in the mount table) or being
// staged (a claim). Every controller of the subsystem carries I/O for
// every namespace of it (native multipath puts all of them under each
// namespace's head), and the kernel keeps one set of parameters per
// controller and one I/O policy per subsystem: going ahead would silently
// change the other volume's (a ctrl_loss_tmo of 5 under a volume that
// asked for -1 turns its file system read-only after a 6-second outage).
// It returns, per path key, how many volumes use that path.
func (d *Driver) checkShared(held *heldKey, want stageRecord) (map[string]int, error) {
	entries, err := d.mounts.Mounts()
	if err != nil {
		return nil, err
	}
	recs, err := d.state.stages()
	if err != nil {
		return nil, err
	}
	var diffs, users []string
	counts := map[string]int{}
	check := func(who string, cfg nvme.ConnectionConfig, policy nvme.IOPolicy, keys []string) {
		for _, k := range keys {
			counts[k]++
		}
		diff := cfg.Diff(want.Config)
		if policy != "" && want.IOPolicy != "" && policy != want.IOPolicy {
			diff = append(diff, fmt.Sprintf("%s %s -> %s", nvme.KeyIOPolicy, policy, want.IOPolicy))
		}
		if len(diff) > 0 {
			users = append(users, who)
			for _, s := range diff {
				if !slices.Contains(diffs, s) {
					diffs = append(diffs, s)
				}
			}
		}
	}
	for _, r := range recs {
		if r.subsystem() != want.subsystem() || (r.VolumeID == want.VolumeID && r.StagingPath == want.StagingPath) {
			continue
		}
		if len(mountsAt(entries, stagedPath(r))) == 0 {
			continue // a record whose stage is not in force uses nothing
		}
		cfg := r.Config
		if cfg.ReconnectDelay == 0 { // a record from before stage records held their settings
			crec, ok, err := d.state.controller(r.Key)
			if err != nil {
				return nil, err
			}
			if !ok {
				continue
			}
			cfg = crec.Config
		}
		var keys []string
		for _, p := range r.paths() {
			if p.resolved() {
				keys = append(keys, p.Key)
			}
		}
		check(fmt.Sprintf("staged volume %s", r.VolumeID), cfg, r.IOPolicy, keys)
	}
	for _, c := range held.claims() {
		check(fmt.Sprintf("volume %s (being staged)", c.volumeID), c.config, c.ioPolicy, c.keys)
	}
	if len(users) > 0 {
		return nil, precondition("volume %s shares the NVMe controllers of subsystem %s with %s, and the kernel keeps one set of connection parameters per controller and one I/O policy per subsystem (theirs -> requested): %s; give every volume of subsystem %s the same values",
			want.VolumeID, want.subsystem(), strings.Join(users, ", "), strings.Join(diffs, ", "), want.subsystem())
	}
	return counts, nil
}

// releaseSubsystem disconnects the controllers of subsystem nqn that the
// plugin created, when nothing uses them (see releaseSubsystemLocked),
// under the subsystem's lock.
func (d *Driver) releaseSubsystem(ctx context.Context, log hclog.Logger, nqn string) error {
	held, err := d.keys.lock(ctx, subsystemKey(nqn))
	if err != nil {
		return err
	}
	defer held.unlock()
	return d.releaseSubsystemLocked(ctx, log, held, nqn)
}

// releaseSubsystemLocked is the refcount over paths: it disconnects every
// controller of subsystem nqn that the plugin created, each only when
// nothing uses it, and only when no volume of the subsystem is staged on
// this node or being staged (a claim). With native multipath every
// controller of the subsystem is a path of every namespace of it, so a
// path connected for one volume serves the others too: releasing it
// while one is staged would take a path from that volume. Records of
// controllers the plugin adopted are forgotten; the controllers stay.
// When it cannot tell whether a controller is in use, it keeps it and
// says why.
func (d *Driver) releaseSubsystemLocked(ctx context.Context, log hclog.Logger, held *heldKey, nqn string) error {
	if cs := held.claims(); len(cs) > 0 {
		log.Debug("subsystem claimed by a stage in progress; its controllers stay", "nqn", nqn)
		return nil
	}
	entries, err := d.mounts.Mounts()
	if err != nil {
		return err
	}
	stages, err := d.state.stages()
	if err != nil {
		return err
	}
	staged := ""
	for _, r := range stages {
		if r.subsystem() == nqn && len(mountsAt(entries, stagedPath(r))) > 0 {
			staged = r.VolumeID
			break
		}
	}
	recs, err := d.state.controllers()
	if err != nil {
		return err
	}
	var errs []error
	for _, rec := range recs {
		if rec.Target.NQN != nqn {
			continue
		}
		if rec.stale {
			// Written before a reboot: it owns nothing there now.
			if err := d.state.deleteController(rec.Key); err != nil {
				errs = append(errs, err)
			}
			continue
		}
		if err := d.releasePath(ctx, log, rec, staged); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// releasePath disconnects one recorded controller when the plugin created
// it, no mount uses it and no volume of its subsystem is staged (staged
// names one, "" when none is), and forgets the record unless the
// controller stays. Whether a mount uses it is asked first, whatever else
// keeps it: a controller whose use cannot be read is reported, never
// passed over in silence.
func (d *Driver) releasePath(ctx context.Context, log hclog.Logger, rec controllerRecord, staged string) error {
	ctrl, found, err := d.findRecorded(rec)
	if err != nil {
		return err
	}
	if !found {
		if rec.pending() || staged != "" {
			// A creation whose answer is not in (reconciliation settles
			// it), or a path of a staged volume the healer reconnects.
			return nil
		}
		return d.state.deleteController(rec.Key)
	}
	if !rec.owns(ctrl) {
		if staged == "" {
			log.Info("controller not created by this plugin; left connected", "controller", ctrl.Name)
			return d.state.deleteController(rec.Key)
		}
		return nil
	}
	users, err := d.mountsUsing(ctrl)
	if errors.Is(err, kernel.ErrControllerGone) {
		return d.state.deleteController(rec.Key)
	}
	if err != nil {
		return fmt.Errorf("cannot tell whether controller %s is still in use, so it stays connected: %w", ctrl.Name, err)
	}
	switch {
	case staged != "":
		log.Debug("a volume of the subsystem is still staged; controller left connected", "controller", ctrl.Name, "staged", staged)
		return nil
	case len(users) > 0:
		log.Debug("controller still in use; left connected", "controller", ctrl.Name, "mounts", users)
		return nil
	}
	if err := d.cfg.Connector.Disconnect(ctx, ctrl); err != nil {
		return fmt.Errorf("disconnect %s: %w", ctrl.Name, err)
	}
	if err := d.state.deleteController(rec.Key); err != nil {
		return err
	}
	log.Info("disconnected", "controller", ctrl.Name, "nqn", ctrl.Subsystem, "portal", rec.Target.Portal().String())
	return nil
}

// findRecorded finds the usable controller a record's connection matches.
func (d *Driver) findRecorded(rec controllerRecord) (kernel.Controller, bool, error) {
	conn, err := nvme.Connection{Host: d.cfg.Host, Target: rec.Target, Config: rec.Config}.Valid()
	if err != nil {
		// The identity is what matters to Find; a record from before
		// settings were kept has none that validate.
		conn, err = nvme.Connection{Host: d.cfg.Host, Target: rec.Target, Config: nvme.DefaultConnectionConfig()}.Valid()
		if err != nil {
			return kernel.Controller{}, false, fmt.Errorf("controller record of %s: %w", rec.Target.NQN, err)
		}
	}
	ctrl, found, err := d.cfg.Connector.Find(conn)
	if err != nil {
		return kernel.Controller{}, false, fmt.Errorf("look for the controller of %s at %s: %w", rec.Target.NQN, rec.Target.Portal(), err)
	}
	return ctrl, found, nil
}
