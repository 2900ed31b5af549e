package kernel

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/nvmeof/nvmeof/shared/nvme/kernel/uevent"
)

// DefaultDiskEventFallback is how long Resolve waits for a disk event
// before it looks at sysfs anyway: events can be lost (a full socket
// buffer says so, and Resolve looks at once), and none come at all in a
// network namespace other than the host's. The kernel announces a new
// namespace's disk within milliseconds of the connect (2 ms in the lab).
const DefaultDiskEventFallback = 25 * time.Millisecond

// DiskEvents tells Resolve when to look for a disk again, so that it reads
// sysfs once per change rather than every few milliseconds.
type DiskEvents interface {
	// Wait returns nil when a block disk may have been added or changed,
	// or when wait passed without a word (look anyway); ctx's error when
	// ctx ended first.
	Wait(ctx context.Context, wait time.Duration) error
	Close() error
}

// ListenDiskEvents listens to the kernel's block device uevents.
func ListenDiskEvents() (DiskEvents, error) {
	l, err := uevent.Listen()
	if err != nil {
		return nil, fmt.Errorf("listen for disk events: %w", err)
	}
	return kernelDiskEvents{next: l.Next, close: l.Close}, nil
}

// kernelDiskEvents picks the block device events out of a uevent listener.
type kernelDiskEvents struct {
	next  func(ctx context.Context, wait time.Duration) (uevent.Event, error)
	close func() error
}

func (e kernelDiskEvents) Wait(ctx context.Context, wait time.Duration) error {
	deadline := time.Now().Add(wait)
	for {
		left := time.Until(deadline)
		if left <= 0 {
			return nil
		}
		ev, err := e.next(ctx, left)
		switch {
		case ctx.Err() != nil:
			return fmt.Errorf("wait for a disk event: %w", ctx.Err())
		case errors.Is(err, os.ErrDeadlineExceeded), errors.Is(err, uevent.ErrOverflow):
			return nil
		case err != nil:
			return fmt.Errorf("wait for a disk event: %w", err)
		case ev.Subsystem == "block" && (ev.Action == "add" || ev.Action == "change"):
			return nil
		}
	}
}

func (e kernelDiskEvents) Close() error { return e.close() }
