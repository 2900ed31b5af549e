package kernel

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/nvmeof/nvmeof/shared/nvme"
	"github.com/nvmeof/nvmeof/shared/nvme/kernel/kerneltest"
	"github.com/nvmeof/nvmeof/shared/nvme/kernel/uevent"
)

// simulatedDiskEvents listens to h's disk announcements.
func simulatedDiskEvents(h *kerneltest.Host) func() (DiskEvents, error) {
	return func() (DiskEvents, error) { return h.DiskEvents(), nil }
}

// Resolve waits for the namespace's disk the way it is configured to, and
// finds it once the held scan runs: woken by the disk's announcement with
// no polling at all, by the fallback look when the announcements never
// come, and by the old poll when there is nothing to listen to.
func TestResolveWaysOfWaiting(t *testing.T) {
	tests := []struct {
		name     string
		events   func(h *kerneltest.Host) func() (DiskEvents, error)
		fallback time.Duration
	}{
		{
			// A fallback of an hour: only the event can end the wait
			// within the test's bound.
			name: "the disk's announcement", events: simulatedDiskEvents, fallback: time.Hour,
		},
		{
			name: "announcements that never come",
			events: func(h *kerneltest.Host) func() (DiskEvents, error) {
				h.SilenceDiskEvents()
				return simulatedDiskEvents(h)
			},
			fallback: time.Millisecond,
		},
		{
			name: "no way to listen",
			events: func(*kerneltest.Host) func() (DiskEvents, error) {
				return func() (DiskEvents, error) { return nil, errors.New("netlink: permission denied") }
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := kerneltest.New(t)
			h.AddTarget("127.0.0.1", "4420", nqnOne, nsOne)
			scan := h.HoldScans(nqnOne)
			name := adminConnect(t, h, adminOptions(nqnOne))
			c, err := NewConnector(ConnectorConfig{SysfsRoot: h.SysfsRoot(), DevRoot: h.DevRoot(), ControlFiles: h,
				DiskEvents: tt.events(h), DiskEventFallback: tt.fallback})
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
			defer cancel()
			type result struct {
				ns  Namespace
				err error
			}
			done := make(chan result, 1)
			go func() {
				ns, err := c.Resolve(ctx, Controller{Name: name, Subsystem: nqnOne}, nvme.NamespaceSelector{NSID: 1})
				done <- result{ns, err}
			}()
			scan()
			if r := <-done; r.err != nil || r.ns.Name != "nvme0n1" {
				t.Fatalf("Resolve = %+v, %v; want nvme0n1", r.ns, r.err)
			}
		})
	}
}

// The kernel's events are filtered: only a block device added or changed
// is a reason to look again; a lost event is one too (look, since it may
// have been the disk); the wait bound and the context end the wait.
func TestKernelDiskEventsFilter(t *testing.T) {
	block := uevent.Event{Action: "add", Subsystem: "block", DevName: "nvme0n1", DevType: "disk"}
	tests := []struct {
		name    string
		replies []any // uevent.Event or error, in order
		ctxDone bool
		want    error
		read    int // replies consumed
	}{
		{name: "a disk added", replies: []any{block}, read: 1},
		{name: "a disk changed", replies: []any{uevent.Event{Action: "change", Subsystem: "block"}}, read: 1},
		{name: "others are skipped", replies: []any{
			uevent.Event{Action: "add", Subsystem: "nvme"}, uevent.Event{Action: "add", Subsystem: "bdi"},
			uevent.Event{Action: "remove", Subsystem: "block"}, block,
		}, read: 4},
		{name: "events were lost", replies: []any{uevent.ErrOverflow}, read: 1},
		{name: "the wait passed", replies: []any{fmt.Errorf("wait: %w", os.ErrDeadlineExceeded)}, read: 1},
		{name: "the socket failed", replies: []any{errors.New("recvfrom: EBADF")}, want: errors.New("EBADF"), read: 1},
		{name: "the context ended", replies: []any{fmt.Errorf("wait: %w", context.Canceled)}, ctxDone: true, want: context.Canceled, read: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithCancel(t.Context())
			defer cancel()
			if tt.ctxDone {
				cancel()
			}
			read := 0
			e := kernelDiskEvents{
				next: func(context.Context, time.Duration) (uevent.Event, error) {
					if read == len(tt.replies) {
						t.Fatal("Wait asked for more events than the test has")
					}
					r := tt.replies[read]
					read++
					if err, ok := r.(error); ok {
						return uevent.Event{}, err
					}
					return r.(uevent.Event), nil
				},
				close: func() error { return nil },
			}
			err := e.Wait(ctx, time.Hour)
			switch {
			case tt.want == nil && err != nil:
				t.Fatalf("Wait = %v, want nil", err)
			case tt.want != nil && (err == nil || !errors.Is(err, tt.want) && !strings.Contains(err.Error(), tt.want.Error())):
				t.Fatalf("Wait = %v, want %v", err, tt.want)
			}
			if read != tt.read {
				t.Fatalf("Wait read %d events, want %d", read, tt.read)
			}
		})
	}
}
