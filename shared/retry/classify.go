package retry

import (
	"context"
	"errors"
	"strings"
	"syscall"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
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
// retried unless its text says otherwise, and the connector marks that case
// permanent itself.)
var permanentErrnos = []syscall.Errno{
	syscall.EINVAL, syscall.EACCES, syscall.EPERM, syscall.ENOENT, syscall.ENODEV, syscall.EALREADY,
}

// transientCodes are the gRPC codes that promise a retry may succeed.
var transientCodes = []codes.Code{codes.Unavailable, codes.ResourceExhausted, codes.Aborted}

// transientMessages match errors that arrive only as text (nvme-cli's
// stderr, errors flattened into strings along the way). Lower case.
var transientMessages = []string{
	"connection refused",
	"connection reset",
	"connection timed out",
	"timed out",
	"i/o timeout",
	"no route to host",
	"network is unreachable",
	"network is down",
	"host is down",
	"resource temporarily unavailable",
	"try again",
	"device or resource busy",
	"interrupted system call",
	"broken pipe",
	"temporary failure in name resolution",
	"transport endpoint is not connected",
	"controller is resetting",
	"controller is connecting",
}

// IsRetryableError reports whether a failed operation may succeed if tried
// again. Structured facts come first (context, errors that call themselves
// permanent, errno, gRPC status), text last, so a message can never
// overrule what the error's type says.
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
	if s, ok := status.FromError(err); ok && s.Code() != codes.Unknown {
		for _, c := range transientCodes {
			if s.Code() == c {
				return true
			}
		}
		return false
	}
	msg := strings.ToLower(err.Error())
	for _, m := range transientMessages {
		if strings.Contains(msg, m) {
			return true
		}
	}
	return false
}
