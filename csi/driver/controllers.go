package driver

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/nvmeof/nvmeof/shared/nvme"
	"github.com/nvmeof/nvmeof/shared/nvme/kernel"
)

// releaseTimeout bounds the clean-up that runs after its caller has gone:
// the release of a failed stage's controller, the settling of a connect
// the kernel finished late.
const releaseTimeout = 30 * time.Second

// settleTimeout bounds the wait for a kernel connect that outlived its
// stage. The kernel's own connect timeouts end long before.
const settleTimeout = 10 * time.Minute

// claimController returns the controller for want's stage, connecting or
// adopting it, and claims it for the stage: until the claim is dropped, no
// unstage disconnects it. Everything happens under the controller's key
// lock, so the checks hold for what is done: every volume already using
// the controller asked for the same settings (the kernel keeps one set per
// controller), and settings that cannot change after connect match.
func (d *Driver) claimController(ctx context.Context, log hclog.Logger, conn nvme.ValidConnection, want stageRecord) (kernel.Controller, *claim, error) {
	held, err := d.keys.lock(ctx, want.Key)
	if err != nil {
		return kernel.Controller{}, nil, err
	}
	handedOver := false
	defer func() {
		if !handedOver {
			held.unlock()
		}
	}()
	users, err := d.checkShared(held, want)
	if err != nil {
		return kernel.Controller{}, nil, err
	}
	rec, haveRec, err := d.state.controller(want.Key)
	if err != nil {
		return kernel.Controller{}, nil, err
	}
	existing, found, err := d.cfg.Connector.Find(conn)
	if err != nil {
		return kernel.Controller{}, nil, fmt.Errorf("look for a controller of %s: %w", want.Target.NQN, err)
	}
	var ctrl kernel.Controller
	if found {
		// Volumes using the controller asked for the same settings
		// (checkShared), fixed ones included, and were checked against it
		// when they came: they prove them, whatever the record says.
		if users == 0 {
			if err := d.checkFixedSettings(existing, rec, haveRec, want); err != nil {
				return kernel.Controller{}, nil, err
			}
		}
		if ctrl, err = d.adopt(ctx, log, conn, existing, rec, haveRec); err != nil {
			return kernel.Controller{}, nil, err
		}
	} else {
		ctrl, err = d.create(ctx, log, conn, want, rec, haveRec, held)
		var inflight *kernel.InFlightError
		if errors.As(err, &inflight) {
			handedOver = true // the settling goroutine unlocks
		}
		if err != nil {
			return kernel.Controller{}, nil, err
		}
	}
	c := &claim{volumeID: want.VolumeID, stagingPath: want.StagingPath, config: want.Config}
	held.addClaim(c)
	return ctrl, c, nil
}

// create asks the kernel for a new controller. Before the write, a record
// says the plugin creates it; a failed connect puts back what was there,
// so that a controller someone connects later is never taken for ours. A
// connect the kernel is still doing when ctx ends is settled in the
// background, which takes over the key lock.
func (d *Driver) create(ctx context.Context, log hclog.Logger, conn nvme.ValidConnection, want stageRecord,
	prev controllerRecord, havePrev bool, held *heldKey,
) (kernel.Controller, error) {
	pending := controllerRecord{Key: want.Key, Target: want.Target, Config: want.Config, Created: true}
	if err := d.state.putController(pending); err != nil {
		return kernel.Controller{}, err
	}
	ctrl, err := d.cfg.Connector.Create(ctx, conn)
	var inflight *kernel.InFlightError
	switch {
	case errors.As(err, &inflight):
		go d.settle(log, held, inflight, pending, prev, havePrev)
		return kernel.Controller{}, err
	case errors.Is(err, kernel.ErrControllerExists):
		// Someone connected the subsystem between our look and our write:
		// theirs, adopted, never recorded as the plugin's.
		if rerr := d.restoreController(want.Key, prev, havePrev); rerr != nil {
			return kernel.Controller{}, rerr
		}
		existing, found, ferr := d.cfg.Connector.Find(conn)
		if ferr != nil || !found {
			return kernel.Controller{}, fmt.Errorf("connect %s: %w", want.Target.NQN, errors.Join(err, ferr))
		}
		if err := d.checkFixedSettings(existing, prev, havePrev, want); err != nil {
			return kernel.Controller{}, err
		}
		return d.adopt(ctx, log, conn, existing, prev, havePrev)
	case err != nil:
		if rerr := d.restoreController(want.Key, prev, havePrev); rerr != nil {
			log.Error("could not roll back the controller record of a failed connect", "error", rerr)
		}
		return kernel.Controller{}, fmt.Errorf("connect %s at %s:%s: %w", want.Target.NQN, want.Target.TrAddr, want.Target.TrSvcID, err)
	}
	pending.identify(ctrl)
	if err := d.state.putController(pending); err != nil {
		return kernel.Controller{}, err
	}
	log.Info("connected", "controller", ctrl.Name, "cntlid", ctrl.CntlID, "id", ctrl.ID)
	return ctrl, nil
}

// adopt uses a controller that exists: the connector brings its
// reconnection parameters to the request. The record keeps whether the
// plugin created it.
func (d *Driver) adopt(ctx context.Context, log hclog.Logger, conn nvme.ValidConnection, existing kernel.Controller,
	prev controllerRecord, havePrev bool,
) (kernel.Controller, error) {
	c := conn.Connection()
	ctrl, err := d.cfg.Connector.Connect(ctx, conn)
	if err != nil {
		return kernel.Controller{}, fmt.Errorf("adopt %s for %s: %w", existing.Name, c.Target.NQN, err)
	}
	next := controllerRecord{Key: prev.Key, Target: c.Target, Config: c.Config}
	if next.Key == "" {
		next.Key = connectionKey(c.Target, c.Host)
	}
	switch {
	case havePrev && prev.owns(ctrl):
		next.Created = true
		next.identify(ctrl)
	case ctrl.Name != existing.Name || ctrl.ID != existing.ID:
		// The one found went away meanwhile, and Connect made or adopted
		// another: not known to be ours, so never disconnected by us.
		log.Warn("the controller to adopt was replaced meanwhile; the new one is left connected at unstage", "was", existing.Name, "now", ctrl.Name)
	default:
		log.Debug("adopted a controller the plugin did not create; it will be left connected", "controller", ctrl.Name)
	}
	if err := d.state.putController(next); err != nil {
		return kernel.Controller{}, err
	}
	return ctrl, nil
}

// restoreController puts back the record a failed connect replaced.
func (d *Driver) restoreController(key string, prev controllerRecord, havePrev bool) error {
	if havePrev {
		return d.state.putController(prev)
	}
	return d.state.deleteController(key)
}

// settle waits for a connect that outlived its stage, holding the key lock
// so that no other stage or unstage decides about the controller before
// the kernel has answered. A controller the kernel made is recorded as the
// plugin's, by name and cntlid, then released like any other unused one.
func (d *Driver) settle(log hclog.Logger, held *heldKey, inflight *kernel.InFlightError, pending, prev controllerRecord, havePrev bool) {
	defer held.unlock()
	ctx, cancel := context.WithTimeout(context.Background(), settleTimeout)
	defer cancel()
	ctrl, err := inflight.Wait(ctx)
	if ctx.Err() != nil {
		log.Error("the kernel has not finished a connect; its pending record stays for start-up reconciliation", "error", err)
		return
	}
	if err != nil {
		log.Info("a connect abandoned by its stage failed in the kernel; rolling back its record", "error", err)
		if rerr := d.restoreController(pending.Key, prev, havePrev); rerr != nil {
			log.Error("could not roll back the controller record", "error", rerr)
		}
		return
	}
	pending.identify(ctrl)
	if err := d.state.putController(pending); err != nil {
		log.Error("could not record the controller of an abandoned connect", "controller", ctrl.Name, "error", err)
		return
	}
	log.Info("a connect abandoned by its stage finished; releasing the controller unless something uses it", "controller", ctrl.Name)
	if err := d.releaseLocked(ctx, log, held, ctrl); err != nil {
		log.Warn("could not release the controller of an abandoned connect", "controller", ctrl.Name, "error", err)
	}
}

// checkShared refuses a stage whose connection parameters differ from
// those of a volume already using the controller: staged (its record, and
// its mount in the mount table) or being staged (a claim). The kernel
// keeps one set per controller; going ahead would silently change the
// other volume's (a ctrl_loss_tmo of 5 under a volume that asked for -1
// turns its file system read-only after a 6-second outage).
// It returns how many volumes use the controller.
func (d *Driver) checkShared(held *heldKey, want stageRecord) (int, error) {
	entries, err := d.mounts.Mounts()
	if err != nil {
		return 0, err
	}
	recs, err := d.state.stages()
	if err != nil {
		return 0, err
	}
	crec, haveCrec, err := d.state.controller(want.Key)
	if err != nil {
		return 0, err
	}
	var diffs, users []string
	n := 0
	check := func(who string, cfg nvme.ConnectionConfig) {
		n++
		if diff := cfg.Diff(want.Config); len(diff) > 0 {
			users = append(users, who)
			for _, s := range diff {
				if !slices.Contains(diffs, s) {
					diffs = append(diffs, s)
				}
			}
		}
	}
	for _, r := range recs {
		if r.Key != want.Key || (r.VolumeID == want.VolumeID && r.StagingPath == want.StagingPath) {
			continue
		}
		if len(mountsAt(entries, stagedPath(r))) == 0 {
			continue // a record whose stage is not in force uses nothing
		}
		cfg := r.Config
		if cfg.ReconnectDelay == 0 && haveCrec {
			cfg = crec.Config // a record from before stage records held their settings
		}
		check(fmt.Sprintf("staged volume %s", r.VolumeID), cfg)
	}
	for _, c := range held.claims() {
		check(fmt.Sprintf("volume %s (being staged)", c.volumeID), c.config)
	}
	if len(users) > 0 {
		return 0, precondition("volume %s shares its NVMe controller with %s, and the kernel keeps one set of connection parameters per controller (theirs -> requested): %s; give every volume of subsystem %s the same values",
			want.VolumeID, strings.Join(users, ", "), strings.Join(diffs, ", "), want.Target.NQN)
	}
	return n, nil
}

// fixedKeys are the settings the kernel takes only at connect time.
var fixedKeys = []string{nvme.KeyKeepAliveTmo, nvme.KeyNrIOQueues, nvme.KeyQueueSize, nvme.KeyTOS, nvme.KeyHdrDigest, nvme.KeyDataDigest}

// checkFixedSettings refuses to adopt a controller whose connect-time
// settings (keep-alive, queues, digests, tos) may differ from those the
// stage asks for: they cannot be changed on a live controller, and the
// volume would silently run without them. They are known when the plugin
// recorded the controller's settings; for a controller made by someone
// else only kato shows in sysfs.
func (d *Driver) checkFixedSettings(ctrl kernel.Controller, rec controllerRecord, haveRec bool, want stageRecord) error {
	requested := fixedSettings(want.Config)
	// The record tells what the controller was connected with when the
	// plugin made it, or when a stage adopted it and checked it then.
	recordApplies := haveRec && rec.Config.ReconnectDelay != 0 && (rec.owns(ctrl) || !rec.Created)
	if recordApplies {
		known := fixedSettings(rec.Config)
		var diffs []string
		for _, k := range fixedKeys {
			if requested[k] != known[k] {
				diffs = append(diffs, fmt.Sprintf("%s %s -> %s", k, orKernelDefault(known[k]), orKernelDefault(requested[k])))
			}
		}
		if len(diffs) > 0 {
			return precondition("controller %s of subsystem %s was connected with other settings that cannot change after connect (connected -> requested): %s; give every volume of the subsystem the same values, or unstage them all first",
				ctrl.Name, want.Target.NQN, strings.Join(diffs, ", "))
		}
		return nil
	}
	var unprovable []string
	for _, k := range fixedKeys {
		v, asked := requested[k]
		if !asked {
			continue
		}
		if k == nvme.KeyKeepAliveTmo && v == fmt.Sprint(ctrl.KeepAliveTmo) {
			continue // sysfs shows kato: it matches
		}
		unprovable = append(unprovable, k+" "+v)
	}
	if len(unprovable) > 0 {
		advice := fmt.Sprintf("disconnect it (nvme disconnect -d %s) or drop these settings from the volume context", ctrl.Name)
		if users, err := d.mountsUsing(ctrl); err != nil || len(users) > 0 {
			advice = fmt.Sprintf("it is in use (%v): drop these settings from the volume context", users)
		}
		return precondition("controller %s of subsystem %s already exists, connected outside the plugin, and %s cannot be set after connect (sysfs shows kato=%d); %s",
			ctrl.Name, want.Target.NQN, strings.Join(unprovable, ", "), ctrl.KeepAliveTmo, advice)
	}
	return nil
}

// fixedSettings renders cfg's connect-time settings by key; a setting left
// to the kernel is absent.
func fixedSettings(cfg nvme.ConnectionConfig) map[string]string {
	all := nvme.Volume{Config: cfg}.ToVolumeContext()
	out := map[string]string{}
	for _, k := range fixedKeys {
		if v, ok := all[k]; ok {
			out[k] = v
		}
	}
	return out
}

func orKernelDefault(s string) string {
	if s == "" {
		return "kernel default"
	}
	return s
}

// dropClaim ends a stage's claim on its controller. It needs no key lock:
// a claim gone can only let a later decision disconnect or retune the
// controller, and those decisions take the lock and look again.
func (d *Driver) dropClaim(key string, c *claim) { d.keys.dropClaim(key, c) }

// releaseController disconnects ctrl when the plugin created it and
// nothing uses it (see releaseLocked), under its key lock.
func (d *Driver) releaseController(ctx context.Context, log hclog.Logger, key string, ctrl kernel.Controller) error {
	held, err := d.keys.lock(ctx, key)
	if err != nil {
		return err
	}
	defer held.unlock()
	return d.releaseLocked(ctx, log, held, ctrl)
}

// releaseLocked disconnects ctrl unless a stage has claimed it, the plugin
// did not create it, or a mount uses one of its namespaces. When it cannot
// tell whether a mount uses it, it keeps the controller and says why.
func (d *Driver) releaseLocked(ctx context.Context, log hclog.Logger, held *heldKey, ctrl kernel.Controller) error {
	if cs := held.claims(); len(cs) > 0 {
		log.Debug("controller claimed by a stage in progress; left connected", "controller", ctrl.Name)
		return nil
	}
	rec, ok, err := d.state.controller(held.key)
	if err != nil {
		return err
	}
	if !ok || !rec.owns(ctrl) {
		log.Info("controller not created by this plugin; left connected", "controller", ctrl.Name)
		return nil
	}
	users, err := d.mountsUsing(ctrl)
	if errors.Is(err, kernel.ErrControllerGone) {
		return d.state.deleteController(held.key)
	}
	if err != nil {
		return fmt.Errorf("cannot tell whether controller %s is still in use, so it stays connected: %w", ctrl.Name, err)
	}
	if len(users) > 0 {
		log.Debug("controller still in use; left connected", "controller", ctrl.Name, "mounts", users)
		return nil
	}
	if err := d.cfg.Connector.Disconnect(ctx, ctrl); err != nil {
		return fmt.Errorf("disconnect %s: %w", ctrl.Name, err)
	}
	if err := d.state.deleteController(held.key); err != nil {
		return err
	}
	log.Info("disconnected", "controller", ctrl.Name, "nqn", ctrl.Subsystem)
	return nil
}

// mountsUsing lists the mount paths of any namespace reached through
// ctrl, found by device number, so a mount made through another path to
// the device node counts too. An error listing the namespaces is returned,
// never taken for "no users".
func (d *Driver) mountsUsing(ctrl kernel.Controller) ([]string, error) {
	nss, err := d.cfg.Connector.Namespaces(ctrl)
	if err != nil {
		return nil, err //nolint:wrapcheck // the connector names the controller
	}
	entries, err := d.mounts.Mounts()
	if err != nil {
		return nil, err
	}
	return paths(usersOf(entries, nss...)), nil
}
