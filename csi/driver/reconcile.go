package driver

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"

	"github.com/hashicorp/go-hclog"

	"github.com/nvmeof/nvmeof/shared/nvme/kernel"
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
	staged := map[string][]stageRecord{} // by subsystem NQN, stages in force
	for _, r := range stages {
		if len(mountsAt(entries, stagedPath(r))) == 0 {
			log.Warn("stage record without its mount (a stage that never finished, or an unstage Nomad skipped): forgetting it",
				"volume_id", r.VolumeID, "staging_path", r.StagingPath)
			if err := d.state.deleteStage(r.VolumeID, r.StagingPath); err != nil {
				return fmt.Errorf("reconcile: %w", err)
			}
			continue
		}
		staged[r.subsystem()] = append(staged[r.subsystem()], r)
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
	bySubsystem := map[string][]controllerRecord{}
	for _, rec := range recs {
		bySubsystem[rec.Target.NQN] = append(bySubsystem[rec.Target.NQN], rec)
	}
	var errs []error
	for _, nqn := range slices.Sorted(maps.Keys(bySubsystem)) {
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("reconcile: %w", err)
		}
		slog := log.With("nqn", nqn)
		if err := d.reconcileSubsystem(ctx, slog, nqn, bySubsystem[nqn], staged[nqn]); err != nil {
			slog.Error("could not reconcile the subsystem's controllers; leaving them as they are", "error", err)
			errs = append(errs, err)
		}
	}
	d.logUnknownMounts(log, entries, stages, pubs)
	if len(errs) > 0 {
		return fmt.Errorf("reconcile: %w", errors.Join(errs...))
	}
	return nil
}

// reconcileSubsystem settles the records of one subsystem's controllers:
// creations whose answer never came in are identified or forgotten. While
// a volume of the subsystem is staged, its paths' reconnection parameters
// and I/O policy are put back (something may have changed them while the
// plugin was down), and a missing path is left to the healer; when none
// is, every controller the plugin created is released as at an unstage.
// A partial path set (a stage killed between two connects) is thus either
// completed by the healer or taken down whole.
func (d *Driver) reconcileSubsystem(ctx context.Context, log hclog.Logger, nqn string, recs []controllerRecord, staged []stageRecord) error {
	held, err := d.keys.lock(ctx, subsystemKey(nqn))
	if err != nil {
		return err
	}
	defer held.unlock()
	var errs []error
	var live []kernel.Controller
	for _, rec := range recs {
		plog := log.With("portal", rec.Target.Portal().String())
		if rec.stale {
			// Its controller went with the kernel that held it; one there
			// now (same name, maybe the same inode) is someone else's.
			plog.Info("controller record from before a reboot: forgetting it, and leaving any controller there now alone", "controller", rec.Name)
			if err := d.state.deleteController(rec.Key); err != nil {
				errs = append(errs, err)
			}
			continue
		}
		ctrl, found, err := d.findRecorded(rec)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if rec.pending() {
			// Killed while the kernel created it: the one there now is, but
			// for an admin's connect in those same seconds, the one it made.
			if !found {
				plog.Info("a connect was cut short by a restart and made no controller; forgetting it")
				if err := d.state.deleteController(rec.Key); err != nil {
					errs = append(errs, err)
				}
				continue
			}
			rec.identify(ctrl)
			if err := d.state.putController(rec); err != nil {
				errs = append(errs, err)
				continue
			}
			plog.Info("a connect cut short by a restart made this controller; recorded as the plugin's", "controller", ctrl.Name)
		}
		if len(staged) == 0 {
			if found && rec.owns(ctrl) {
				plog.Warn("orphaned controller: created by this plugin, no stage uses it; disconnecting unless a mount does", "controller", ctrl.Name)
			}
			continue
		}
		if !found {
			plog.Warn("a path of a staged volume is gone (the kernel gave up reconnecting after ctrl_loss_tmo, or it was disconnected); the healer reconnects it")
			continue
		}
		live = append(live, ctrl)
		// A stage in force asked for these settings; something (a udev
		// rule, an admin) may have changed them while the plugin was down.
		if err := d.cfg.Connector.UpdateReconnectParams(ctrl, rec.Config); err != nil {
			plog.Warn("could not re-apply reconnection parameters", "controller", ctrl.Name, "error", err)
		}
	}
	if len(staged) == 0 {
		if len(errs) > 0 {
			return errors.Join(errs...)
		}
		return d.releaseSubsystemLocked(ctx, log, held, nqn)
	}
	for _, r := range staged {
		if r.IOPolicy == "" || len(live) == 0 {
			continue
		}
		if err := d.applyIOPolicy(log, live, r.IOPolicy); err != nil {
			log.Warn("could not re-apply the I/O policy", "iopolicy", r.IOPolicy, "error", err)
		}
		break
	}
	return errors.Join(errs...)
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
