package driver

import (
	"context"
	"errors"
	"fmt"

	"github.com/hashicorp/go-hclog"

	"github.com/nvmeof/nvmeof/shared/nvme"
)

// Reconcile runs at start-up, before serving: Nomad skips unpublish and
// unstage for nodes that were down, and a killed plugin may have left a
// record of a step it never finished. It forgets stage and publish records
// whose mount is gone, settles controller creations whose answer never
// came in, re-applies reconnection parameters, and disconnects an orphaned
// controller only when the plugin created it and no mount uses it. When
// it cannot tell whether a controller is used, it keeps it.
func (d *Driver) Reconcile(ctx context.Context) error {
	log := d.cfg.Logger.Named("reconcile")
	entries, err := d.mounts.Mounts()
	if err != nil {
		return fmt.Errorf("reconcile: %w", err)
	}
	stages, err := d.state.stages()
	if err != nil {
		return fmt.Errorf("reconcile: %w", err)
	}
	usedKeys := map[string]bool{}
	for _, r := range stages {
		if len(mountsAt(entries, stagedPath(r))) == 0 {
			log.Warn("stage record without its mount (a stage that never finished, or an unstage Nomad skipped): forgetting it",
				"volume_id", r.VolumeID, "staging_path", r.StagingPath)
			if err := d.state.deleteStage(r.VolumeID, r.StagingPath); err != nil {
				return fmt.Errorf("reconcile: %w", err)
			}
			continue
		}
		usedKeys[r.Key] = true
	}
	pubs, err := d.state.publishes()
	if err != nil {
		return fmt.Errorf("reconcile: %w", err)
	}
	for _, p := range pubs {
		if len(mountsAt(entries, p.TargetPath)) == 0 {
			log.Info("publish record without its mount: forgetting it", "volume_id", p.VolumeID, "target", p.TargetPath)
			if err := d.state.deletePublish(p.TargetPath); err != nil {
				return fmt.Errorf("reconcile: %w", err)
			}
		}
	}
	recs, err := d.state.controllers()
	if err != nil {
		return fmt.Errorf("reconcile: %w", err)
	}
	var errs []error
	for _, rec := range recs {
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("reconcile: %w", err)
		}
		clog := log.With("nqn", rec.Target.NQN, "traddr", rec.Target.TrAddr)
		if err := d.reconcileController(ctx, clog, rec, usedKeys[rec.Key]); err != nil {
			clog.Error("could not reconcile the controller; leaving it as it is", "error", err)
			errs = append(errs, err)
		}
	}
	d.logUnknownMounts(log, entries, stages, pubs)
	if len(errs) > 0 {
		return fmt.Errorf("reconcile: %w", errors.Join(errs...))
	}
	return nil
}

func (d *Driver) reconcileController(ctx context.Context, log hclog.Logger, rec controllerRecord, staged bool) error {
	held, err := d.keys.lock(ctx, rec.Key)
	if err != nil {
		return err
	}
	defer held.unlock()
	if rec.stale {
		// Its controller went with the kernel that held it; one there now
		// (same name, maybe the same inode) is someone else's.
		log.Info("controller record from before a reboot: forgetting it, and leaving any controller there now alone", "controller", rec.Name)
		return d.state.deleteController(rec.Key)
	}
	conn, err := nvme.Connection{Host: d.cfg.Host, Target: rec.Target, Config: rec.Config}.Valid()
	if err != nil {
		return fmt.Errorf("controller record of %s: %w", rec.Target.NQN, err)
	}
	ctrl, found, err := d.cfg.Connector.Find(conn)
	if err != nil {
		return fmt.Errorf("look for the controller of %s: %w", rec.Target.NQN, err)
	}
	if rec.pending() {
		// Killed while the kernel created it: the one there now is, but
		// for an admin's connect in those same seconds, the one it made.
		if !found {
			log.Info("a connect was cut short by a restart and made no controller; forgetting it")
			return d.state.deleteController(rec.Key)
		}
		rec.identify(ctrl)
		if err := d.state.putController(rec); err != nil {
			return err
		}
		log.Info("a connect cut short by a restart made this controller; recorded as the plugin's", "controller", ctrl.Name)
	}
	if !found {
		if staged {
			log.Warn("controller of a staged volume is gone; the kernel gave up reconnecting (ctrl_loss_tmo); the next stage reconnects")
			return nil
		}
		return d.state.deleteController(rec.Key)
	}
	if staged {
		// A stage in force asked for these settings; something (a udev
		// rule, an admin) may have changed them while the plugin was down.
		if err := d.cfg.Connector.UpdateReconnectParams(ctrl, rec.Config); err != nil {
			log.Warn("could not re-apply reconnection parameters", "controller", ctrl.Name, "error", err)
		}
		return nil
	}
	if !rec.owns(ctrl) {
		users, err := d.mountsUsing(ctrl)
		if err == nil && len(users) == 0 {
			log.Info("orphaned controller was not created by this plugin; left connected and forgotten", "controller", ctrl.Name)
			return d.state.deleteController(rec.Key)
		}
		return nil
	}
	log.Warn("orphaned controller: created by this plugin, no stage uses it; disconnecting unless a mount does", "controller", ctrl.Name)
	return d.releaseLocked(ctx, log, held, ctrl)
}

// logUnknownMounts reports NVMe mounts the plugin has no record of: made
// by hand, or by a plugin whose state dir was lost.
func (d *Driver) logUnknownMounts(log hclog.Logger, entries []MountEntry, stages []stageRecord, pubs []publishRecord) {
	known := map[string]bool{}
	for _, s := range stages {
		known[stagedPath(s)] = true
	}
	for _, p := range pubs {
		known[p.TargetPath] = true
	}
	for _, e := range entries {
		if isNVMeDevice(e.Device) && !known[e.Path] {
			log.Info("NVMe mount without a record (not made by this plugin)", "path", e.Path, "device", e.Device)
		}
	}
}
