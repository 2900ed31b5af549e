// Package uevent listens to the kernel's device events: the messages the
// kernel multicasts on NETLINK_KOBJECT_UEVENT when a device is added,
// changed or removed (what udev itself listens to). An event is only ever a
// hint to look at sysfs again: sysfs says what is there, the event says
// when to look.
package uevent

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// kernelGroup is the multicast group the kernel sends its events to; udev
// re-sends processed ones to group 2, which this package does not join.
const kernelGroup = 1

// maxMessage bounds one event: the kernel builds each in a 2 KiB
// environment buffer (UEVENT_BUFFER_SIZE) plus its header.
const maxMessage = 8 << 10

// recvBuffer is the socket's receive buffer: room for a burst of events
// (a connect adds a controller, its disks, their queues and bdis) while
// the listener is busy looking at sysfs.
const recvBuffer = 1 << 20

// ErrOverflow says events were lost: the socket's buffer ran over. Whoever
// waited for one must look at sysfs again rather than wait.
var ErrOverflow = errors.New("uevent: events were lost (receive buffer overflow)")

// Event is one kernel device event.
type Event struct {
	Action    string // add, remove, change, move, online, offline, bind, unbind
	DevPath   string // under /sys: /devices/virtual/nvme-subsystem/nvme-subsys0/nvme0n1
	Subsystem string // block, nvme, nvme-subsystem, ...
	DevName   string // the /dev node's name, "" when the device has none
	DevType   string // disk, partition, ...
}

// Listener receives the kernel's events from the moment Listen returns.
type Listener struct {
	f   *os.File
	buf []byte
}

// Listen joins the kernel's event group. It needs no privilege, but the
// kernel sends device events only to sockets in the initial network
// namespace: in another one Listen succeeds and no event ever comes, which
// is why callers keep a slow look at sysfs as a fallback.
func Listen() (*Listener, error) {
	fd, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_DGRAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, unix.NETLINK_KOBJECT_UEVENT)
	if err != nil {
		return nil, fmt.Errorf("uevent socket: %w", err)
	}
	// A larger buffer is a wish: the kernel caps it at rmem_max.
	_ = unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUF, recvBuffer)
	if err := unix.Bind(fd, &unix.SockaddrNetlink{Family: unix.AF_NETLINK, Groups: kernelGroup}); err != nil {
		_ = unix.Close(fd)
		return nil, fmt.Errorf("uevent socket: join the kernel's group: %w", err)
	}
	// Non-blocking, so the runtime's poller waits for it and deadlines work.
	return &Listener{f: os.NewFile(uintptr(fd), "uevent"), buf: make([]byte, maxMessage)}, nil
}

// Close leaves the group.
func (l *Listener) Close() error {
	if err := l.f.Close(); err != nil {
		return fmt.Errorf("close uevent socket: %w", err)
	}
	return nil
}

// Next returns the next event the kernel sent, waiting until one comes,
// ctx ends, or wait passes (wait <= 0: no bound but ctx). It returns
// os.ErrDeadlineExceeded when wait passed, ctx's error when ctx ended, and
// ErrOverflow when events were lost. Messages not from the kernel, and
// ones it cannot parse, are skipped.
func (l *Listener) Next(ctx context.Context, wait time.Duration) (Event, error) {
	deadline, ctxBound := ctx.Deadline()
	waitBound := wait > 0 && (!ctxBound || time.Now().Add(wait).Before(deadline))
	switch {
	case waitBound:
		deadline = time.Now().Add(wait)
	case !ctxBound:
		deadline = time.Time{}
	}
	if err := l.f.SetReadDeadline(deadline); err != nil {
		return Event{}, fmt.Errorf("uevent socket: %w", err)
	}
	// A ctx ended from elsewhere wakes the wait by moving the deadline.
	stop := context.AfterFunc(ctx, func() { _ = l.f.SetReadDeadline(time.Now()) })
	defer stop()
	raw, err := l.f.SyscallConn()
	if err != nil {
		return Event{}, fmt.Errorf("uevent socket: %w", err)
	}
	for {
		var n int
		var from unix.Sockaddr
		var rerr error
		err := raw.Read(func(fd uintptr) bool {
			n, from, rerr = unix.Recvfrom(int(fd), l.buf, 0)
			return !errors.Is(rerr, unix.EAGAIN)
		})
		switch {
		case ctx.Err() != nil:
			return Event{}, fmt.Errorf("wait for a kernel event: %w", ctx.Err())
		case errors.Is(err, os.ErrDeadlineExceeded) && !waitBound:
			// ctx's own deadline, reached a hair before its timer fired.
			return Event{}, fmt.Errorf("wait for a kernel event: %w", context.DeadlineExceeded)
		case err != nil:
			return Event{}, fmt.Errorf("wait for a kernel event: %w", err)
		case errors.Is(rerr, unix.ENOBUFS):
			return Event{}, ErrOverflow
		case errors.Is(rerr, syscall.EINTR):
			continue
		case rerr != nil:
			return Event{}, fmt.Errorf("receive a kernel event: %w", rerr)
		}
		// Only the kernel (port 0) speaks for the kernel: a process may
		// send to the group too when it has CAP_NET_ADMIN.
		if sa, ok := from.(*unix.SockaddrNetlink); !ok || sa.Pid != 0 {
			continue
		}
		if ev, ok := Parse(l.buf[:n]); ok {
			return ev, nil
		}
	}
}

// Parse reads one kernel event: a header "ACTION@DEVPATH", then
// NUL-separated KEY=VALUE pairs. ok is false for anything else (udev's
// "libudev" messages, truncated or empty ones).
func Parse(msg []byte) (ev Event, ok bool) {
	fields := bytes.Split(msg, []byte{0})
	if len(fields) < 2 || !bytes.Contains(fields[0], []byte("@")) {
		return Event{}, false
	}
	for _, f := range fields[1:] {
		key, value, found := strings.Cut(string(f), "=")
		if !found {
			continue
		}
		switch key {
		case "ACTION":
			ev.Action = value
		case "DEVPATH":
			ev.DevPath = value
		case "SUBSYSTEM":
			ev.Subsystem = value
		case "DEVNAME":
			ev.DevName = value
		case "DEVTYPE":
			ev.DevType = value
		}
	}
	if ev.Action == "" || ev.DevPath == "" {
		return Event{}, false
	}
	return ev, true
}
