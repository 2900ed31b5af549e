package driver

import (
	"sync"

	"google.golang.org/grpc/codes"
)

// volumeLocks lets one operation per volume run; a second one on the same
// volume is refused at once (the CO retries it), others run in parallel.
type volumeLocks struct {
	mu   sync.Mutex
	busy map[string]struct{}
}

func newVolumeLocks() *volumeLocks { return &volumeLocks{busy: map[string]struct{}{}} }

// tryAcquire takes id's lock; false when another operation holds it.
func (l *volumeLocks) tryAcquire(id string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if _, held := l.busy[id]; held {
		return false
	}
	l.busy[id] = struct{}{}
	return true
}

func (l *volumeLocks) release(id string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	delete(l.busy, id)
}

// acquire takes id's lock for one RPC, or answers Aborted: CSI's code for
// "an operation on this volume is in progress, try again".
func (l *volumeLocks) acquire(id string) error {
	if !l.tryAcquire(id) {
		return fail(codes.Aborted, "an operation on volume %s is already in progress", id)
	}
	return nil
}
