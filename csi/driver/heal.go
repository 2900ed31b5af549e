package driver

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
	"k8s.io/apimachinery/pkg/util/wait"

	"github.com/nvmeof/nvmeof/shared/nvme"
	"github.com/nvmeof/nvmeof/shared/nvme/kernel"
)

// Healing defaults: how often the healer looks for missing paths, and how
// much each wait is stretched at random, so that the nodes of a cluster
// that lost a target together do not reconnect in lockstep.
const (
	DefaultHealInterval = 10 * time.Second
	DefaultHealJitter   = 0.1
	// maxHealBackoff caps the wait between two attempts at one path.
	maxHealBackoff = 5 * time.Minute
	// healConnectTimeout bounds one attempt: a connect to an address that
	// does not answer waits for the kernel's TCP timeout.
	healConnectTimeout = 2 * time.Minute
)

// healerState is what the healer remembers between passes: per path, how
// often it failed and when it may be tried again.
type healerState struct {
	mu    sync.Mutex
	paths map[string]*healPath
}

type healPath struct {
	failures int
	next     time.Time
}

// due reports whether the path may be tried at now.
func (h *healerState) due(key string, now time.Time) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	p, ok := h.paths[key]
	return !ok || !now.Before(p.next)
}

// failed schedules the next attempt after the jittered, doubling backoff.
func (h *healerState) failed(key string, now time.Time, interval time.Duration, jitter float64) time.Duration {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.paths == nil {
		h.paths = map[string]*healPath{}
	}
	p := h.paths[key]
	if p == nil {
		p = &healPath{}
		h.paths[key] = p
	}
	p.failures++
	wait := backoffAfter(p.failures, interval, jitter)
	p.next = now.Add(wait)
	return wait
}

// backoffAfter is the wait after n failures: the interval doubling from
// the first failure on, capped, then stretched by up to jitter.
func backoffAfter(n int, interval time.Duration, jitter float64) time.Duration {
	d := interval
	for i := 1; i < n && d < maxHealBackoff; i++ {
		d *= 2
	}
	d = min(d, maxHealBackoff)
	if jitter > 0 {
		d = wait.Jitter(d, jitter)
	}
	return d
}

// healed forgets a path's failures.
func (h *healerState) healed(key string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	delete(h.paths, key)
}

// keep drops the state of paths no staged volume has any more.
func (h *healerState) keep(keys map[string]bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for k := range h.paths {
		if !keys[k] {
			delete(h.paths, k)
		}
	}
}

// Heal runs HealPaths at once and then every HealInterval, each wait
// stretched by up to HealJitter, until ctx ends.
func (d *Driver) Heal(ctx context.Context) {
	for {
		// Each failed attempt is logged where it fails, with its retry.
		if n, err := d.HealPaths(ctx); n > 0 || err != nil {
			d.log.Named("heal").Debug("healing pass", "healed", n, "error", err)
		}
		t := time.NewTimer(wait.Jitter(d.cfg.HealInterval, d.cfg.HealJitter))
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
	}
}

// healTarget is one portal of the staged volumes of a subsystem that the
// healer looks after.
type healTarget struct {
	volumeID, stagingPath string
	path                  pathRecord
	config                nvme.ConnectionConfig
	authenticated         bool
}

// healKey names a path across passes: by the portal as written, which a
// host name that resolves differently later does not change.
func (t healTarget) healKey() string {
	return connectionKey(t.path.Requested, nvme.Host{})
}

// HealPaths makes one pass over the staged volumes: every portal without a
// usable controller (deleted after ctrl_loss_tmo, disconnected by someone,
// or never connected at stage time) is connected again, and one that came
// back by other means is adopted (its reconnection parameters brought to
// the volume's). Each path is tried no more often than its backoff allows;
// a volume under an operation (a stage, an unstage) is left alone. It
// returns how many paths it connected or adopted.
func (d *Driver) HealPaths(ctx context.Context) (int, error) {
	log := d.cfg.Logger.Named("heal")
	entries, err := d.mounts.Mounts()
	if err != nil {
		return 0, fmt.Errorf("heal: %w", err)
	}
	recs, err := d.state.stages()
	if err != nil {
		return 0, fmt.Errorf("heal: %w", err)
	}
	bySubsystem := map[string][]healTarget{}
	keys := map[string]bool{}
	for _, r := range recs {
		if len(mountsAt(entries, stagedPath(r))) == 0 || d.volumes.inUse(r.VolumeID) {
			continue
		}
		for _, p := range r.paths() {
			t := healTarget{volumeID: r.VolumeID, stagingPath: r.StagingPath, path: p, config: r.Config, authenticated: r.Authenticated}
			if t.config.ReconnectDelay == 0 { // a record from before settings were kept
				t.config = nvme.DefaultConnectionConfig()
			}
			if keys[t.healKey()] {
				continue // another volume of the subsystem has the same portal
			}
			keys[t.healKey()] = true
			bySubsystem[r.subsystem()] = append(bySubsystem[r.subsystem()], t)
		}
	}
	d.healer.keep(keys)
	healed := 0
	var errs []error
	for _, nqn := range slices.Sorted(maps.Keys(bySubsystem)) {
		for _, t := range bySubsystem[nqn] {
			if err := ctx.Err(); err != nil {
				return healed, fmt.Errorf("heal: %w", err)
			}
			ok, err := d.healPath(ctx, log.With("volume_id", t.volumeID, "nqn", nqn, "portal", t.path.Requested.Portal().String()), t)
			if ok {
				healed++
			}
			if err != nil {
				errs = append(errs, err)
			}
		}
	}
	return healed, errors.Join(errs...)
}

// healPath looks at one portal and connects it when it has no usable
// controller and its backoff allows. ok reports a path connected or
// adopted; err a failed attempt (logged, and retried after the backoff).
func (d *Driver) healPath(ctx context.Context, log hclog.Logger, t healTarget) (bool, error) {
	now := d.cfg.Now()
	key := t.healKey()
	target := t.path.Target
	if !t.path.resolved() {
		if !d.healer.due(key, now) {
			return false, nil
		}
		resolved, err := d.cfg.Connector.ResolveTarget(ctx, t.path.Requested)
		if err != nil {
			return false, d.healFailed(log, key, now, fmt.Errorf("resolve %s: %w", nvme.Truncate(t.path.Requested.TrAddr), err))
		}
		target = resolved
	}
	auth, haveAuth := d.authOf(t.volumeID)
	conn, err := nvme.Connection{Host: d.cfg.Host, Target: target, Config: t.config, Auth: auth}.Valid()
	if err != nil {
		return false, fmt.Errorf("heal portal %s of volume %s: %w", target.Portal(), t.volumeID, err)
	}
	ctrl, found, err := d.cfg.Connector.Find(conn)
	if err != nil {
		return false, fmt.Errorf("heal: look for the controller of %s at %s: %w", target.NQN, target.Portal(), err)
	}
	pathKey := connectionKey(target, d.cfg.Host)
	rec, haveRec, err := d.state.controller(pathKey)
	if err != nil {
		return false, err
	}
	if found && haveRec && (rec.owns(ctrl) || !rec.Created) {
		d.healer.healed(key)
		return false, nil // connected, and known: nothing to do
	}
	if !found && t.authenticated && !haveAuth {
		if d.healer.due(key, now) {
			wait := d.healer.failed(key, now, d.cfg.HealInterval, d.cfg.HealJitter)
			log.Warn("path is missing, but the volume authenticates with DH-HMAC-CHAP and the plugin keeps its secrets only in memory, gone since a restart: stage the volume again to reconnect it", "retry_in", wait)
		}
		return false, nil
	}
	if !d.healer.due(key, now) {
		return false, nil
	}
	return d.healLocked(ctx, log, t, conn, pathKey, key, now)
}

// healLocked connects (or adopts) the path under the subsystem's lock,
// once it has made sure the volume is still staged.
func (d *Driver) healLocked(ctx context.Context, log hclog.Logger, t healTarget, conn nvme.ValidConnection, pathKey, key string, now time.Time) (bool, error) {
	target := conn.Connection().Target
	ctx, cancel := context.WithTimeout(ctx, healConnectTimeout)
	defer cancel()
	held, err := d.keys.lock(ctx, subsystemKey(target.NQN))
	if err != nil {
		return false, err
	}
	handedOver := false
	defer func() {
		if !handedOver {
			held.unlock()
		}
	}()
	// Looked at again under the lock: an unstage may have taken the
	// volume away meanwhile, and then nothing may be connected for it.
	rec, ok, err := d.state.stage(t.volumeID, t.stagingPath)
	if err != nil || !ok {
		return false, err
	}
	entries, err := d.mounts.Mounts()
	if err != nil {
		return false, err
	}
	if len(mountsAt(entries, stagedPath(rec))) == 0 {
		return false, nil
	}
	_, existed, err := d.cfg.Connector.Find(conn)
	if err != nil {
		return false, fmt.Errorf("heal: look for the controller of %s at %s: %w", target.NQN, target.Portal(), err)
	}
	want := pathWant{volumeID: t.volumeID, key: pathKey, target: target, config: t.config}
	ctrl, err := d.connectPath(ctx, log, conn, want, true, held)
	if err != nil {
		var inflight *kernel.InFlightError
		if errors.As(err, &inflight) {
			handedOver = true // the settling goroutine unlocks
		}
		return false, d.healFailed(log, key, now, err)
	}
	d.healer.healed(key)
	if !t.path.resolved() {
		d.recordResolved(log, rec, t.path, target, pathKey)
	}
	d.metrics.pathHealed(target, existed)
	if existed {
		log.Info("path came back; adopted", "controller", ctrl.Name, "state", ctrl.State)
	} else {
		log.Info("path reconnected", "controller", ctrl.Name, "state", ctrl.State)
	}
	return true, nil
}

// healFailed schedules the path's next attempt and says why this one
// failed.
func (d *Driver) healFailed(log hclog.Logger, key string, now time.Time, err error) error {
	wait := d.healer.failed(key, now, d.cfg.HealInterval, d.cfg.HealJitter)
	log.Warn("path did not connect; trying again later", "retry_in", wait.Round(time.Millisecond), "error", err)
	return fmt.Errorf("heal: %w", err)
}

// recordResolved writes into the stage record the address a portal's host
// name resolved to, once its path is connected: health, metrics and
// unstage then know the path by it. The caller holds the subsystem's
// lock, which an unstage takes before it deletes the record.
func (d *Driver) recordResolved(log hclog.Logger, rec stageRecord, p pathRecord, target nvme.Target, key string) {
	for i := range rec.Paths {
		if rec.Paths[i].Requested != p.Requested {
			continue
		}
		rec.Paths[i].Target, rec.Paths[i].Key = target, key
		if i == 0 {
			rec.Target, rec.Key = target, key
		}
		if err := d.state.putStage(rec); err != nil {
			log.Warn("could not record the address the portal resolved to", "error", err)
		}
		return
	}
}
