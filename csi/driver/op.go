package driver

import (
	"context"
	"fmt"
	"sync"
	"time"
)

// DefaultOperationTimeout bounds every node RPC when the configuration
// names no bound. Nomad sends NodeStage and NodePublish with no deadline
// and never retries them: without a bound of our own, a stage waiting for
// a target that never answers would hang its allocation for ever.
const DefaultOperationTimeout = 2 * time.Minute

// DefaultNamespaceTimeout is how long a stage waits for its namespace
// after the connect. The lab measured the kernel's scan at 8-20 ms after
// the connect returned; thirty seconds leave room for a slow target.
const DefaultNamespaceTimeout = 30 * time.Second

// op is one node RPC on one volume: it holds the volume's lock and the
// plugin's bound on the call.
type op struct {
	d      *Driver
	id     string
	ctx    context.Context
	cancel context.CancelFunc

	mu       sync.Mutex
	detached int    // steps still running after the caller left
	what     string // the last of them
	ended    bool

	steps *stepTimer
}

// begin takes volume id's lock (Aborted when another operation holds it)
// and bounds ctx by the operation timeout.
func (d *Driver) begin(ctx context.Context, id string) (*op, error) {
	steps := newStepTimer()
	ctx, cancel := context.WithTimeout(ctx, d.cfg.OperationTimeout)
	if err := d.volumes.acquire(ctx, id); err != nil {
		cancel()
		return nil, err
	}
	steps.step("lock")
	return &op{d: d, id: id, ctx: ctx, cancel: cancel, steps: steps}, nil
}

// step ends the operation's step called name (see stepTimer).
func (o *op) step(name string) { o.steps.step(name) }

// end releases the volume's lock, unless a step that cannot be abandoned
// still runs: then the last such step releases it when it is done, so no
// other operation on the volume starts while, say, mkfs still writes.
func (o *op) end() {
	o.cancel()
	if o.d.log.IsDebug() {
		o.d.log.Debug("steps", "volume_id", o.id, "ms", o.steps.String())
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	o.ended = true
	if o.detached == 0 {
		o.d.volumes.release(o.id)
		return
	}
	o.d.volumes.detach(o.id, o.what)
}

// finish runs act, a step that must run to its end once started (a format,
// a mount, the bookkeeping after them). When the operation's context ends
// first, finish returns at once with an error saying what is still
// running; act goes on in the background with a context of its own (bound
// by background), and the volume stays locked until it is done.
func (o *op) finish(what string, background time.Duration, act func(ctx context.Context) error) error {
	if err := o.ctx.Err(); err != nil {
		// The time is up before the step starts: do not start what would
		// then run unseen.
		return fmt.Errorf("not %s: %w", what, err)
	}
	o.mu.Lock()
	o.detached++
	o.what = what
	o.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.WithoutCancel(o.ctx), background)
	done := make(chan error, 1)
	go func() {
		defer cancel()
		err := act(ctx)
		// Counted down before the result is handed over: a caller still
		// waiting then finds nothing detached and releases the lock in
		// end itself, before its RPC returns.
		o.mu.Lock()
		o.detached--
		if o.detached == 0 && o.ended {
			o.d.volumes.release(o.id)
		}
		o.mu.Unlock()
		done <- err
	}()
	select {
	case err := <-done:
		return err
	case <-o.ctx.Done():
		o.d.log.Warn("operation bound reached; letting a step finish in the background", "volume_id", o.id, "step", what)
		return fmt.Errorf("still %s when the plugin's bound on the operation ended; it finishes in the background and the volume stays locked until then: %w", what, o.ctx.Err())
	}
}

// bounded runs fn, which takes no context (a read of the device, a tool
// mount-utils runs), within the operation's bound: when the bound ends
// first, bounded returns saying what was awaited, and fn goes on in the
// background with the volume locked until it returns.
func (o *op) bounded(what string, fn func() error) error {
	return o.finish(what, mountBound, func(context.Context) error { return fn() })
}
