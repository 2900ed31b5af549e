package kernel

import (
	"context"
	"errors"
	"fmt"
	"syscall"

	"github.com/nvmeof/nvmeof/shared/nvme"
)

// Errors of the connector, matched with errors.Is.
var (
	// ErrControllerGone: the controller no longer exists in sysfs (or its
	// name now belongs to another controller). Reconnect to go on.
	ErrControllerGone = errors.New("NVMe controller is gone")
	// ErrNamespaceMismatch: the namespace at the requested nsid has another
	// identity than the volume names. Never retried: mounting it would hand
	// over someone else's data.
	ErrNamespaceMismatch = errors.New("NVMe namespace identity mismatch")
	// ErrControllerExists: Create found a matching controller it did not
	// make. Adopt it with Connect; it is not the caller's.
	ErrControllerExists = errors.New("a matching NVMe controller exists already")
	// ErrFabricsUnavailable: the kernel cannot create NVMe-oF controllers
	// (no /dev/nvme-fabrics, or the transport's module is not loaded).
	ErrFabricsUnavailable = errors.New("NVMe over Fabrics is not available in this kernel")
)

// errNoSubsystemYet: the controller's subsystem is not in sysfs yet, which
// happens for a moment after a connect; Resolve keeps polling.
var errNoSubsystemYet = errors.New("subsystem not in sysfs yet")

// permanentError marks an error that retrying cannot fix, for shared/retry.
type permanentError struct{ err error }

func (e *permanentError) Error() string   { return e.err.Error() }
func (e *permanentError) Unwrap() error   { return e.err }
func (e *permanentError) Permanent() bool { return true }

// connectError is a connect the kernel refused, with what the errno most
// likely means for this connection. It unwraps to the errno, so callers can
// test errors.Is(err, syscall.ECONNREFUSED).
type connectError struct {
	target string // "nqn at traddr:trsvcid"
	err    error  // holds the errno
	hint   string
}

func (e *connectError) Error() string {
	if e.hint == "" {
		return fmt.Sprintf("connect to %s: %v", e.target, e.err)
	}
	return fmt.Sprintf("connect to %s: %v: %s", e.target, e.err, e.hint)
}

func (e *connectError) Unwrap() error { return e.err }

// Permanent: the errnos below are answers about the request itself (who
// asks, with which options), so asking again gets the same answer. The
// transient ones (ECONNREFUSED, ETIMEDOUT, ...) are left to shared/retry.
func (e *connectError) Permanent() bool {
	for _, errno := range []syscall.Errno{
		syscall.EINVAL, syscall.EIO, syscall.ENODEV, syscall.ENOENT, syscall.EACCES, syscall.EPERM,
		syscall.EKEYREJECTED, syscall.ENOKEY, syscall.EKEYEXPIRED, syscall.EKEYREVOKED,
	} {
		if errors.Is(e.err, errno) {
			return true
		}
	}
	return false
}

// newConnectError explains err (from the write to /dev/nvme-fabrics) for c.
// Secrets never reach the text: only names and addresses do.
func newConnectError(c nvme.Connection, err error) *connectError {
	t := c.Target
	e := &connectError{target: fmt.Sprintf("subsystem %q at %s:%s", t.NQN, t.TrAddr, t.TrSvcID), err: err}
	switch {
	case errors.Is(err, syscall.EINVAL):
		e.hint = fmt.Sprintf("the target refused host %q (not in the subsystem's allowed hosts?), "+
			"or the kernel refused the options (host NQN known here with another host ID than %q? an option this kernel lacks?)",
			c.Host.NQN, c.Host.ID)
	case errors.Is(err, syscall.EIO) && c.Auth.HostSecret != "":
		// Measured on 6.12: a wrong dhchap_secret sometimes ends not in
		// EKEYREJECTED but in EIO, after the kernel's 60 s admin timeout,
		// when the target drops the connection before the host reads its
		// answer.
		e.hint = fmt.Sprintf("the target refused host %q, or ended the connection during DH-HMAC-CHAP authentication "+
			"(a dhchap_secret it does not hold for the host), or it has no such subsystem; the kernel log names the step", c.Host.NQN)
	case errors.Is(err, syscall.EIO):
		// Linux 6.1 turns the target's "Connect Invalid nvme.Host" status into
		// EIO; the kernel log names the status.
		e.hint = fmt.Sprintf("the target refused host %q (not in the subsystem's allowed hosts?), "+
			"or it has no such subsystem; the kernel log names the NVMe status", c.Host.NQN)
	case errors.Is(err, syscall.EKEYREJECTED):
		// Measured on 6.12: a dhchap_secret the target does not hold for
		// the host, and a dhchap_ctrl_secret that is not the target's,
		// both end the connect with EKEYREJECTED.
		e.hint = fmt.Sprintf("DH-HMAC-CHAP authentication failed: the target does not hold this dhchap_secret for host %q, "+
			"or (bidirectional) the target did not prove dhchap_ctrl_secret; the kernel log names the step", c.Host.NQN)
	case errors.Is(err, syscall.ENOKEY):
		e.hint = fmt.Sprintf("the target requires DH-HMAC-CHAP authentication of host %q (or a TLS key), and the volume has no dhchap_secret", c.Host.NQN)
	case errors.Is(err, syscall.ENODEV):
		e.hint = fmt.Sprintf("host_iface %q does not exist on this host, or the %s transport module is not loaded", t.HostIface, t.Transport)
	case errors.Is(err, syscall.ECONNREFUSED):
		e.hint = "nothing listens there (target down, port not enabled, or wrong trsvcid)"
	case errors.Is(err, syscall.ETIMEDOUT), errors.Is(err, syscall.EHOSTUNREACH), errors.Is(err, syscall.ENETUNREACH):
		e.hint = "the target is unreachable from this host"
	}
	return e
}

// InFlightError: a Connect's context ended while the kernel was still
// creating the controller. The write to /dev/nvme-fabrics cannot be
// interrupted, so the controller may yet appear; whoever recorded that it
// asked for one must learn what happened, through Wait, before it can
// tell the controller from one someone else makes later.
type InFlightError struct {
	target string // "subsystem ... at addr:port"
	cause  error  // the context's error
	wait   func(context.Context) (string, error)
	read   func(name string) (Controller, error)
}

func (e *InFlightError) Error() string {
	return fmt.Sprintf("connect to %s: gave up waiting (%v) while the kernel was still connecting; it finishes in the background", e.target, e.cause)
}

// Unwrap gives the context's error, so the failure maps to
// DeadlineExceeded or Canceled like any other.
func (e *InFlightError) Unwrap() error { return e.cause }

// Wait blocks until the kernel has finished (or ctx ends) and returns the
// controller it created, or the error it gave. It may be called more than
// once.
func (e *InFlightError) Wait(ctx context.Context) (Controller, error) {
	name, err := e.wait(ctx)
	if err != nil {
		return Controller{}, err
	}
	if e.read == nil {
		return Controller{Name: name}, nil
	}
	return e.read(name)
}
