package kerneltest

import (
	"context"
	"sync"
	"time"
)

// DiskEvents listens to the simulated kernel's disk announcements: what a
// real kernel's uevent says when it adds a disk. It has the shape of the
// connector's kernel.DiskEvents (this package cannot import it: the
// connector's own tests import this one).
type DiskEvents struct {
	hub *diskEventHub
	// notice holds one pending announcement: a listener only needs to know
	// that something changed since it last looked.
	notice chan struct{}
}

// diskEventHub is the host's list of listeners.
type diskEventHub struct {
	mu        sync.Mutex
	listeners map[*DiskEvents]struct{}
	// silent drops every announcement: a host whose events never reach
	// the plugin (another network namespace).
	silent bool
}

// DiskEvents starts listening: every disk added from now on is announced.
func (h *Host) DiskEvents() *DiskEvents {
	e := &DiskEvents{hub: &h.events, notice: make(chan struct{}, 1)}
	h.events.mu.Lock()
	defer h.events.mu.Unlock()
	if h.events.listeners == nil {
		h.events.listeners = map[*DiskEvents]struct{}{}
	}
	h.events.listeners[e] = struct{}{}
	return e
}

// SilenceDiskEvents makes the host announce nothing, as a kernel does to
// a listener outside its initial network namespace.
func (h *Host) SilenceDiskEvents() {
	h.events.mu.Lock()
	defer h.events.mu.Unlock()
	h.events.silent = true
}

// announce tells every listener that a disk was added.
func (hub *diskEventHub) announce() {
	hub.mu.Lock()
	defer hub.mu.Unlock()
	if hub.silent {
		return
	}
	for e := range hub.listeners {
		select {
		case e.notice <- struct{}{}:
		default: // one is pending already
		}
	}
}

// Wait returns nil when a disk was added since the last Wait, or when wait
// passed; ctx's error when ctx ends first.
func (e *DiskEvents) Wait(ctx context.Context, wait time.Duration) error {
	t := time.NewTimer(wait)
	defer t.Stop()
	select {
	case <-e.notice:
		return nil
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Close stops listening.
func (e *DiskEvents) Close() error {
	e.hub.mu.Lock()
	defer e.hub.mu.Unlock()
	delete(e.hub.listeners, e)
	return nil
}
