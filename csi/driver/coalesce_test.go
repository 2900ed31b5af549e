package driver

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"

	"github.com/nvmeof/nvmeof/shared/nvme/kernel"
)

// blockingRun is a connect that waits for release (or its caller's
// context) and counts how often it ran.
type blockingRun struct {
	runs    atomic.Int32
	release chan struct{}
	result  connectResult
}

func newBlockingRun(res connectResult) *blockingRun {
	return &blockingRun{release: make(chan struct{}), result: res}
}

func (b *blockingRun) fn(ctx context.Context) connectResult {
	b.runs.Add(1)
	select {
	case <-b.release:
		return b.result
	case <-ctx.Done():
		return connectResult{err: ctx.Err()}
	}
}

// The tests run in a synctest bubble: synctest.Wait returns once every
// goroutine is blocked, so "the callers are waiting" is a fact, not a
// sleep.

func TestConnectGroupSharesOneRun(t *testing.T) {
	tests := []struct {
		name   string
		result connectResult
	}{
		{"a controller", connectResult{ctrl: kernel.Controller{Name: "nvme3"}}},
		{"an error", connectResult{err: errors.New("target refused the host")}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				g := newConnectGroup()
				run := newBlockingRun(tt.result)
				const callers = 4
				got := make([]connectResult, callers)
				var wg sync.WaitGroup
				for i := range callers {
					wg.Go(func() { got[i] = g.do(t.Context(), "key", run.fn) })
				}
				synctest.Wait()
				close(run.release)
				wg.Wait()
				if n := run.runs.Load(); n != 1 {
					t.Errorf("%d runs for %d concurrent callers, want 1", n, callers)
				}
				for i, r := range got {
					if r.ctrl != tt.result.ctrl || !errors.Is(r.err, tt.result.err) {
						t.Errorf("caller %d got %+v, want %+v", i, r, tt.result)
					}
				}
				if len(g.calls) != 0 {
					t.Errorf("calls left in the group: %v", g.calls)
				}
			})
		})
	}
}

func TestConnectGroupDoesNotShareARunWhoseCallerLeft(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		g := newConnectGroup()
		run := newBlockingRun(connectResult{ctrl: kernel.Controller{Name: "nvme0"}})
		leaverCtx, leave := context.WithCancel(t.Context())
		var leaver, waiter connectResult
		var wg sync.WaitGroup
		wg.Go(func() { leaver = g.do(leaverCtx, "key", run.fn) })
		synctest.Wait() // the leaver's run is under way
		wg.Go(func() { waiter = g.do(t.Context(), "key", run.fn) })
		synctest.Wait() // the waiter waits for it
		leave()
		synctest.Wait() // the waiter has started its own run
		close(run.release)
		wg.Wait()
		if !errors.Is(leaver.err, context.Canceled) {
			t.Errorf("the caller that left got %+v, want context.Canceled", leaver)
		}
		if waiter.err != nil || waiter.ctrl.Name != "nvme0" {
			t.Errorf("the waiter got %+v, want its own run's controller", waiter)
		}
		if n := run.runs.Load(); n != 2 {
			t.Errorf("%d runs, want 2: the waiter must run again with its own context", n)
		}
	})
}

func TestConnectGroupWaiterLeaves(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		g := newConnectGroup()
		run := newBlockingRun(connectResult{ctrl: kernel.Controller{Name: "nvme0"}})
		var first, left connectResult
		var wg sync.WaitGroup
		wg.Go(func() { first = g.do(t.Context(), "key", run.fn) })
		synctest.Wait()
		waiterCtx, leave := context.WithCancel(t.Context())
		wg.Go(func() { left = g.do(waiterCtx, "key", run.fn) })
		synctest.Wait()
		leave()
		synctest.Wait()
		if !errors.Is(left.err, context.Canceled) {
			t.Errorf("the waiter that left got %+v, want context.Canceled", left)
		}
		close(run.release)
		wg.Wait()
		if first.err != nil || first.ctrl.Name != "nvme0" || run.runs.Load() != 1 {
			t.Errorf("the run got %+v after %d runs; a waiter leaving must not disturb it", first, run.runs.Load())
		}
	})
}

func TestConnectGroupKeysRunApart(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		g := newConnectGroup()
		a := newBlockingRun(connectResult{ctrl: kernel.Controller{Name: "nvme0"}})
		b := newBlockingRun(connectResult{ctrl: kernel.Controller{Name: "nvme1"}})
		var wg sync.WaitGroup
		wg.Go(func() { g.do(t.Context(), "a", a.fn) })
		wg.Go(func() { g.do(t.Context(), "b", b.fn) })
		synctest.Wait()
		if a.runs.Load() != 1 || b.runs.Load() != 1 {
			t.Errorf("runs a=%d b=%d while both are blocked; different keys must run at once", a.runs.Load(), b.runs.Load())
		}
		close(a.release)
		close(b.release)
		wg.Wait()
	})
}

func TestConnectGroupKeepsNoResult(t *testing.T) {
	g := newConnectGroup()
	run := newBlockingRun(connectResult{ctrl: kernel.Controller{Name: "nvme0"}})
	close(run.release)
	for range 2 {
		if r := g.do(t.Context(), "key", run.fn); r.ctrl.Name != "nvme0" {
			t.Fatalf("got %+v", r)
		}
	}
	if n := run.runs.Load(); n != 2 {
		t.Errorf("%d runs for two calls one after the other, want 2: a finished run is not a cache", n)
	}
}
