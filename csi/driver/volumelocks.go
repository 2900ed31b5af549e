package driver

import (
	"context"
	"fmt"
	"sync"

	"google.golang.org/grpc/codes"
)

// volumeLocks lets one operation per volume run. A second RPC on a volume
// whose RPC is still running is refused at once with Aborted (CSI's "an
// operation is in progress"); one on a volume whose last RPC has returned
// but left a step finishing in the background (a format past the bound)
// waits for that step, up to its own bound: Nomad never retries a stage
// or a publish, so Aborted there would fail an allocation for a wait of
// seconds.
type volumeLocks struct {
	mu      sync.Mutex
	holders map[string]*volumeHolder
}

type volumeHolder struct {
	detached bool          // the RPC returned; a step still runs
	what     string        // that step, for the waiter's error
	done     chan struct{} // closed when the lock is released
}

func newVolumeLocks() *volumeLocks { return &volumeLocks{holders: map[string]*volumeHolder{}} }

// acquire takes id's lock for one RPC.
func (l *volumeLocks) acquire(ctx context.Context, id string) error {
	for {
		l.mu.Lock()
		h, held := l.holders[id]
		if !held {
			l.holders[id] = &volumeHolder{done: make(chan struct{})}
			l.mu.Unlock()
			return nil
		}
		detached, what := h.detached, h.what
		l.mu.Unlock()
		if !detached {
			return fail(codes.Aborted, "an operation on volume %s is already in progress", id)
		}
		select {
		case <-h.done:
		case <-ctx.Done():
			return fmt.Errorf("volume %s is still %s, left running by an earlier call: %w", id, what, ctx.Err())
		}
	}
}

// detach marks id's holder as an RPC that returned with what still
// running.
func (l *volumeLocks) detach(id, what string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if h, ok := l.holders[id]; ok {
		h.detached, h.what = true, what
	}
}

// inUse reports whether an operation holds id's lock now.
func (l *volumeLocks) inUse(id string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	_, held := l.holders[id]
	return held
}

func (l *volumeLocks) release(id string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if h, ok := l.holders[id]; ok {
		delete(l.holders, id)
		close(h.done)
	}
}
