package driver

import (
	"context"
	"fmt"
	"sync"

	"github.com/nvmeof/nvmeof/shared/nvme"
)

// keyLocks serialise the decisions about one controller (a subsystem seen
// from this host): whether a stage may use it and with which settings,
// connecting it, and whether an unstage may disconnect it. Each decision
// reads the state it depends on and acts under the one lock, so two
// stages arriving together cannot both pass a check that only one of them
// may pass. The lock is a channel, so waiting for it ends with the
// caller's context, and it may be released by another goroutine than the
// one that took it (a connect the kernel finishes after its caller left).
type keyLocks struct {
	mu    sync.Mutex
	locks map[string]*keyLock
}

type keyLock struct {
	token chan struct{} // holds one token while the lock is free
	refs  int
	// claims are the stages between their connect and their record: they
	// use the controller, though nothing in the state dir or the mount
	// table says so yet. Changed only by the holder of the lock; guarded
	// by keyLocks.mu too, which decides when the entry may go.
	claims map[*claim]struct{}
}

// claim is one stage using a controller it has not recorded yet.
type claim struct {
	volumeID, stagingPath string
	config                nvme.ConnectionConfig
}

func newKeyLocks() *keyLocks { return &keyLocks{locks: map[string]*keyLock{}} }

// lock takes key's lock, or gives up when ctx ends. The returned unlock
// may be called once, from any goroutine.
func (k *keyLocks) lock(ctx context.Context, key string) (*heldKey, error) {
	k.mu.Lock()
	l, ok := k.locks[key]
	if !ok {
		l = &keyLock{token: make(chan struct{}, 1), claims: map[*claim]struct{}{}}
		l.token <- struct{}{}
		k.locks[key] = l
	}
	l.refs++
	k.mu.Unlock()
	select {
	case <-l.token:
		return &heldKey{k: k, key: key, l: l}, nil
	case <-ctx.Done():
		k.put(key, l)
		return nil, fmt.Errorf("wait for another operation on the same NVMe controller: %w", ctx.Err())
	}
}

func (k *keyLocks) put(key string, l *keyLock) {
	k.mu.Lock()
	defer k.mu.Unlock()
	l.refs--
	if l.refs == 0 && len(l.claims) == 0 {
		delete(k.locks, key)
	}
}

// heldKey is a taken key lock.
type heldKey struct {
	k    *keyLocks
	key  string
	l    *keyLock
	once sync.Once
}

// unlock releases the lock; later calls do nothing.
func (h *heldKey) unlock() {
	h.once.Do(func() {
		h.l.token <- struct{}{}
		h.k.put(h.key, h.l)
	})
}

// addClaim records c as using the controller.
func (h *heldKey) addClaim(c *claim) {
	h.k.mu.Lock()
	defer h.k.mu.Unlock()
	h.l.claims[c] = struct{}{}
}

// claims lists the stages using the controller unrecorded.
func (h *heldKey) claims() []*claim {
	h.k.mu.Lock()
	defer h.k.mu.Unlock()
	out := make([]*claim, 0, len(h.l.claims))
	for c := range h.l.claims {
		out = append(out, c)
	}
	return out
}

// dropClaim ends c, whether or not key's lock is held.
func (k *keyLocks) dropClaim(key string, c *claim) {
	k.mu.Lock()
	defer k.mu.Unlock()
	l, ok := k.locks[key]
	if !ok {
		return
	}
	delete(l.claims, c)
	if l.refs == 0 && len(l.claims) == 0 {
		delete(k.locks, key)
	}
}
