package driver

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/nvmeof/nvmeof/shared/nvme"
	"github.com/nvmeof/nvmeof/shared/nvme/kernel"
)

// releaseTimeout bounds the clean-up that runs after its caller has gone:
// the release of a failed stage's controllers, the settling of a connect
// the kernel finished late.
const releaseTimeout = 30 * time.Second

// settleTimeout bounds the wait for a kernel connect that outlived its
// stage. The kernel's own connect timeouts end long before.
const settleTimeout = 10 * time.Minute

// pathWant is one path a stage (or the healer) wants connected: the
// controller's key, the resolved target, and the volume's settings.
type pathWant struct {
	volumeID string
	key      string
	target   nvme.Target
	config   nvme.ConnectionConfig
}

// connectPath returns a controller for one path, adopting the one that
// exists or creating one, under the subsystem's lock (held). checkFixed
// asks that an adopted controller's connect-time settings be proven to
// match (see checkFixedSettings); volumes already using it proved them.
// A connect the kernel is still doing when ctx ends is settled in the
// background, which takes the lock over: the error is then an
// *kernel.InFlightError and the caller must not unlock.
func (d *Driver) connectPath(ctx context.Context, log hclog.Logger, conn nvme.ValidConnection, want pathWant, checkFixed bool, held *heldKey) (kernel.Controller, error) {
	rec, haveRec, err := d.state.controller(want.key)
	if err != nil {
		return kernel.Controller{}, err
	}
	existing, found, err := d.cfg.Connector.Find(conn)
	if err != nil {
		return kernel.Controller{}, fmt.Errorf("look for a controller of %s at %s: %w", want.target.NQN, want.target.Portal(), err)
	}
	if !found {
		return d.create(ctx, log, conn, want, rec, haveRec, held)
	}
	if checkFixed {
		if err := d.checkFixedSettings(existing, rec, haveRec, want); err != nil {
			return kernel.Controller{}, err
		}
	}
	return d.adopt(ctx, log, conn, existing, rec, haveRec)
}

// create asks the kernel for a new controller. Before the write, a record
// says the plugin creates it; a failed connect puts back what was there,
// so that a controller someone connects later is never taken for ours. A
// connect the kernel is still doing when ctx ends is settled in the
// background, which takes over the key lock.
func (d *Driver) create(ctx context.Context, log hclog.Logger, conn nvme.ValidConnection, want pathWant,
	prev controllerRecord, havePrev bool, held *heldKey,
) (kernel.Controller, error) {
	pending := controllerRecord{Key: want.key, Target: want.target, Config: want.config, Created: true}
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
		// Someone connected the path between our look and our write:
		// theirs, adopted, never recorded as the plugin's.
		if rerr := d.restoreController(want.key, prev, havePrev); rerr != nil {
			return kernel.Controller{}, rerr
		}
		existing, found, ferr := d.cfg.Connector.Find(conn)
		if ferr != nil || !found {
			return kernel.Controller{}, fmt.Errorf("connect %s at %s: %w", want.target.NQN, want.target.Portal(), errors.Join(err, ferr))
		}
		if err := d.checkFixedSettings(existing, prev, havePrev, want); err != nil {
			return kernel.Controller{}, err
		}
		return d.adopt(ctx, log, conn, existing, prev, havePrev)
	case err != nil:
		if rerr := d.restoreController(want.key, prev, havePrev); rerr != nil {
			log.Error("could not roll back the controller record of a failed connect", "error", rerr)
		}
		return kernel.Controller{}, fmt.Errorf("connect %s at %s: %w", want.target.NQN, want.target.Portal(), err)
	}
	pending.identify(ctrl)
	if err := d.state.putController(pending); err != nil {
		return kernel.Controller{}, err
	}
	log.Info("connected", "controller", ctrl.Name, "portal", want.target.Portal().String(), "cntlid", ctrl.CntlID, "id", ctrl.ID)
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

// settle waits for a connect that outlived its stage, holding the
// subsystem's lock so that no other stage or unstage decides about its
// controllers before the kernel has answered. A controller the kernel made
// is recorded as the plugin's, then the subsystem's controllers are
// released like any other unused ones.
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
	} else {
		pending.identify(ctrl)
		if err := d.state.putController(pending); err != nil {
			log.Error("could not record the controller of an abandoned connect", "controller", ctrl.Name, "error", err)
			return
		}
		log.Info("a connect abandoned by its stage finished; releasing the subsystem's controllers unless something uses them", "controller", ctrl.Name)
	}
	if err := d.releaseSubsystemLocked(ctx, log, held, pending.Target.NQN); err != nil {
		log.Warn("could not release the controllers of an abandoned stage", "nqn", pending.Target.NQN, "error", err)
	}
}

// fixedKeys are the settings the kernel takes only at connect time.
var fixedKeys = []string{nvme.KeyKeepAliveTmo, nvme.KeyNrIOQueues, nvme.KeyQueueSize, nvme.KeyTOS, nvme.KeyHdrDigest, nvme.KeyDataDigest}

// checkFixedSettings refuses to adopt a controller whose connect-time
// settings (keep-alive, queues, digests, tos) may differ from those the
// stage asks for: they cannot be changed on a live controller, and the
// volume would silently run without them. They are known when the plugin
// recorded the controller's settings; for a controller made by someone
// else only kato shows in sysfs.
func (d *Driver) checkFixedSettings(ctrl kernel.Controller, rec controllerRecord, haveRec bool, want pathWant) error {
	requested := fixedSettings(want.config)
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
				ctrl.Name, want.target.NQN, strings.Join(diffs, ", "))
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
			ctrl.Name, want.target.NQN, strings.Join(unprovable, ", "), ctrl.KeepAliveTmo, advice)
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

// dropClaim ends a stage's claim on its subsystem. It needs no lock: a
// claim gone can only let a later decision disconnect or retune the
// controllers, and those decisions take the lock and look again.
func (d *Driver) dropClaim(nqn string, c *claim) { d.keys.dropClaim(subsystemKey(nqn), c) }

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
