package driver

import (
	"context"
	"errors"
	"fmt"
	"net"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/nvmeof/nvmeof/shared/nvme"
	"github.com/nvmeof/nvmeof/shared/nvme/kernel"
	"github.com/nvmeof/nvmeof/shared/retry"
)

// failure is an error whose gRPC code the handler knows: the request
// itself (InvalidArgument), the state of the node (FailedPrecondition,
// AlreadyExists, NotFound), or another operation (Aborted). Errors from
// below carry no code; codeOf classifies them.
type failure struct {
	code codes.Code
	msg  string
}

func (f *failure) Error() string { return f.msg }

func fail(code codes.Code, format string, args ...any) error {
	return &failure{code: code, msg: fmt.Sprintf(format, args...)}
}

func invalid(format string, args ...any) error { return fail(codes.InvalidArgument, format, args...) }

// conflict: the request repeats one already done, with other settings.
func conflict(format string, args ...any) error { return fail(codes.AlreadyExists, format, args...) }

// precondition: the node's state forbids the act; the message says what
// to change.
func precondition(format string, args ...any) error {
	return fail(codes.FailedPrecondition, format, args...)
}

func notFound(format string, args ...any) error { return fail(codes.NotFound, format, args...) }

// outOfRange is codes.OutOfRange, for fail.
const outOfRange = codes.OutOfRange

// unavailable: try again later; the message says what is awaited.
func unavailable(format string, args ...any) error { return fail(codes.Unavailable, format, args...) }

// toStatus is the one place where errors become gRPC codes. what names the
// operation and its object ("stage volume pg at /csi/staging/pg/rw").
func toStatus(err error, what string) error {
	if err == nil {
		return nil
	}
	return status.Error(codeOf(err), what+": "+err.Error())
}

func codeOf(err error) codes.Code {
	var f *failure
	var p interface{ Permanent() bool }
	var dns *net.DNSError
	switch {
	case errors.As(err, &f):
		return f.code
	case errors.Is(err, context.Canceled):
		return codes.Canceled
	case errors.Is(err, context.DeadlineExceeded):
		return codes.DeadlineExceeded
	case errors.Is(err, nvme.ErrInvalid):
		return codes.InvalidArgument
	case errors.Is(err, kernel.ErrFabricsUnavailable):
		// The node lacks nvme-tcp: nothing about the volume is missing, and
		// NotFound would tell the CO that it is.
		return codes.FailedPrecondition
	case errors.Is(err, kernel.ErrControllerGone):
		// The kernel deleted the controller under us (a lost target, a
		// concurrent disconnect): the next try connects again.
		return codes.Unavailable
	case errors.As(err, &dns):
		if dns.IsTemporary || dns.IsTimeout {
			return codes.Unavailable
		}
		return codes.FailedPrecondition
	case retry.IsRetryableError(err):
		return codes.Unavailable
	case errors.As(err, &p) && p.Permanent():
		// The target answered, and the answer will not change by asking
		// again: a refused host, a namespace with another identity.
		return codes.FailedPrecondition
	}
	// Never NotFound by accident: for NodeUnstage and NodeUnpublish, Nomad
	// takes NotFound as "already done".
	return codes.Internal
}

// requireArgs answers InvalidArgument naming the first empty field; args
// are name, value pairs in the order the request declares them.
func requireArgs(args ...string) error {
	for i := 0; i+1 < len(args); i += 2 {
		if args[i+1] == "" {
			return invalid("%s is required", args[i])
		}
	}
	return nil
}
