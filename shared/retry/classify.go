package retry

import (
	"context"
	"errors"
	"syscall"
)

// permanent is implemented by errors that say for themselves that trying
// again cannot help, such as shared/nvme's validation errors. This package
// cannot import those without turning the dependency arrows around.
type permanent interface{ Permanent() bool }

// transientErrnos are failures of the network or of a target that is
// (re)starting. EALREADY is absent on purpose: the kernel says "this
// controller exists", and the answer is to adopt it, not to try again.
var transientErrnos = []syscall.Errno{
	syscall.ECONNREFUSED, syscall.ECONNRESET, syscall.ECONNABORTED, syscall.ETIMEDOUT,
	syscall.EHOSTUNREACH, syscall.ENETUNREACH, syscall.ENETDOWN, syscall.EHOSTDOWN,
	syscall.EAGAIN, syscall.EINTR, syscall.EBUSY, syscall.EPIPE, syscall.EINPROGRESS,
}

// permanentErrnos mean the request itself is wrong or forbidden: repeating
// it gets the same answer. ENOENT is what opening /dev/nvme-fabrics gives
// without the nvme-fabrics module. (A host the subsystem does not allow gets
// EIO on 6.1, measured in the lab; EIO is in neither list, so it is not
// retried; the connector marks that case permanent itself.)
var permanentErrnos = []syscall.Errno{
	syscall.EINVAL, syscall.EACCES, syscall.EPERM, syscall.ENOENT, syscall.ENODEV, syscall.EALREADY,
}

// timeout is implemented by network errors (net.Error, *net.DNSError)
// that know they ran out of time.
type timeout interface{ Timeout() bool }

// IsRetryableError reports whether a failed operation may succeed if tried
// again. It decides from structured facts only: context, errors that call
// themselves permanent, the errno, a network timeout. Never from text: an
// error's message may quote what a user wrote (an NQN holding "connection
// refused" must not make a missing subsystem look transient). Callers that
// only have a tool's text turn it into an errno themselves, with the user's
// values taken out first.
func IsRetryableError(err error) bool {
	if err == nil {
		return false
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return false
	}
	var p permanent
	if errors.As(err, &p) && p.Permanent() {
		return false
	}
	var errno syscall.Errno
	if errors.As(err, &errno) {
		for _, e := range transientErrnos {
			if errno == e {
				return true
			}
		}
		for _, e := range permanentErrnos {
			if errno == e {
				return false
			}
		}
	}
	var t timeout
	if errors.As(err, &t) && t.Timeout() {
		return true
	}
	return false
}
