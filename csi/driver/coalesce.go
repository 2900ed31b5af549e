package driver

import (
	"context"
	"errors"
	"sync"

	"github.com/nvmeof/nvmeof/shared/nvme/kernel"
)

// connectGroup runs one connect per subsystem (target + host) at a time and
// hands its result to every caller that asked meanwhile: two stages of
// namespaces of one subsystem must not race into the kernel's EALREADY.
type connectGroup struct {
	mu    sync.Mutex
	calls map[string]*connectCall
}

type connectCall struct {
	done chan struct{}
	res  connectResult
}

type connectResult struct {
	ctrl kernel.Controller
	err  error
}

func newConnectGroup() *connectGroup { return &connectGroup{calls: map[string]*connectCall{}} }

// do runs fn for key unless a run is under way, in which case it waits for
// that run. A run that ended because its own caller went away is not
// shared: the waiter runs again with its own context.
func (g *connectGroup) do(ctx context.Context, key string, fn func(context.Context) connectResult) connectResult {
	for {
		g.mu.Lock()
		if c, ok := g.calls[key]; ok {
			g.mu.Unlock()
			select {
			case <-c.done:
			case <-ctx.Done():
				return connectResult{err: ctx.Err()}
			}
			if isContextError(c.res.err) && ctx.Err() == nil {
				continue
			}
			return c.res
		}
		c := &connectCall{done: make(chan struct{})}
		g.calls[key] = c
		g.mu.Unlock()

		c.res = fn(ctx)
		g.mu.Lock()
		delete(g.calls, key)
		g.mu.Unlock()
		close(c.done)
		return c.res
	}
}

func isContextError(err error) bool {
	return errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)
}

// targetLocks order stages against unstages of one subsystem: stages share
// the lock, so they run together; an unstage that may disconnect the
// controller holds it alone, so it never pulls a controller from under a
// stage that has connected but not yet mounted.
type targetLocks struct {
	mu    sync.Mutex
	locks map[string]*targetLock
}

type targetLock struct {
	sync.RWMutex
	refs int
}

func newTargetLocks() *targetLocks { return &targetLocks{locks: map[string]*targetLock{}} }

func (t *targetLocks) get(key string) *targetLock {
	t.mu.Lock()
	defer t.mu.Unlock()
	l, ok := t.locks[key]
	if !ok {
		l = &targetLock{}
		t.locks[key] = l
	}
	l.refs++
	return l
}

func (t *targetLocks) put(key string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if l := t.locks[key]; l != nil {
		l.refs--
		if l.refs == 0 {
			delete(t.locks, key)
		}
	}
}

// shared takes key's lock for a stage; call the result to release it.
func (t *targetLocks) shared(key string) func() {
	l := t.get(key)
	l.RLock()
	return func() { l.RUnlock(); t.put(key) }
}

// exclusive takes key's lock for a disconnect decision.
func (t *targetLocks) exclusive(key string) func() {
	l := t.get(key)
	l.Lock()
	return func() { l.Unlock(); t.put(key) }
}
