package driver

import (
	"context"
	"fmt"

	"github.com/hashicorp/go-hclog"

	"github.com/nvmeof/nvmeof/shared/nvme"
)

// Reconcile runs at start-up, before serving: Nomad skips unpublish and
// unstage for nodes that were down, and a killed plugin may have connected
// a controller it never recorded as used. It drops records of stages whose
// mount is gone, re-applies reconnection parameters to the controllers the
// plugin connected, logs orphans, and disconnects an orphaned controller
// only when the plugin created it and no mount uses it.
func (d *Driver) Reconcile(ctx context.Context) error {
	log := d.cfg.Logger.Named("reconcile")
	entries, err := d.mounts.Mounts()
	if err != nil {
		return fmt.Errorf("reconcile: %w", err)
	}
	vols, err := d.state.volumes()
	if err != nil {
		return fmt.Errorf("reconcile: %w", err)
	}
	usedKeys := map[string]bool{}
	for _, v := range vols {
		if len(mountsAt(entries, stagedPath(v))) == 0 {
			log.Warn("orphaned stage record: nothing is mounted at its staging path; forgetting it",
				"volume_id", v.VolumeID, "staging_path", v.StagingPath)
			if err := d.state.deleteVolume(v.VolumeID, v.StagingPath); err != nil {
				return fmt.Errorf("reconcile: %w", err)
			}
			continue
		}
		usedKeys[v.Key] = true
	}
	recs, err := d.state.controllers()
	if err != nil {
		return fmt.Errorf("reconcile: %w", err)
	}
	for _, rec := range recs {
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := d.reconcileController(ctx, log.With("nqn", rec.Target.NQN, "traddr", rec.Target.TrAddr), rec, usedKeys[rec.Key]); err != nil {
			return fmt.Errorf("reconcile: %w", err)
		}
	}
	d.logUnknownMounts(log, entries, vols)
	return nil
}

func (d *Driver) reconcileController(ctx context.Context, log hclog.Logger, rec controllerRecord, staged bool) error {
	conn := nvme.Connection{Host: d.cfg.Host, Target: rec.Target, Config: rec.Config}
	ctrl, found, err := d.cfg.Connector.Find(conn)
	if err != nil {
		return fmt.Errorf("look for the controller of %s: %w", rec.Target.NQN, err)
	}
	if !found {
		if staged {
			log.Warn("controller of a staged volume is gone; the kernel gave up reconnecting (ctrl_loss_tmo); the next stage reconnects")
			return nil
		}
		return d.state.deleteController(rec.Key)
	}
	if err := d.cfg.Connector.UpdateReconnectParams(ctrl, rec.Config); err != nil {
		log.Warn("could not re-apply reconnection parameters", "controller", ctrl.Name, "error", err)
	}
	users, err := d.mountsUsing(ctrl)
	if err != nil {
		return err
	}
	if staged || len(users) > 0 {
		return nil
	}
	if !rec.owns(ctrl) {
		log.Info("orphaned controller was not created by this plugin; left connected and forgotten", "controller", ctrl.Name)
		return d.state.deleteController(rec.Key)
	}
	log.Warn("orphaned controller: created by this plugin, no mount uses it; disconnecting", "controller", ctrl.Name)
	if err := d.cfg.Connector.Disconnect(ctx, ctrl); err != nil {
		return fmt.Errorf("disconnect orphaned %s: %w", ctrl.Name, err)
	}
	return d.state.deleteController(rec.Key)
}

// logUnknownMounts reports NVMe mounts the plugin has no record of: made
// by hand, or by a plugin whose state dir was lost.
func (d *Driver) logUnknownMounts(log hclog.Logger, entries []MountEntry, vols []volumeRecord) {
	known := map[string]bool{}
	for _, v := range vols {
		known[stagedPath(v)] = true
	}
	for _, e := range entries {
		if isNVMeDevice(e.Device) && !known[e.Path] {
			log.Info("NVMe mount without a stage record (a publish, or not ours)", "path", e.Path, "device", e.Device)
		}
	}
}
