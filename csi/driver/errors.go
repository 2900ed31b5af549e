package driver

import (
	"context"
	"errors"
	"io/fs"
	"net"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/nvmeof/nvmeof/shared/nvme"
	"github.com/nvmeof/nvmeof/shared/nvme/kernel"
	"github.com/nvmeof/nvmeof/shared/retry"
)

// toStatus is the one place where errors become gRPC codes. msg says what
// failed; the error's own text follows it.
func toStatus(err error, msg string) error {
	if _, ok := status.FromError(err); ok {
		return err
	}
	return status.Error(codeOf(err), msg+": "+err.Error())
}

func codeOf(err error) codes.Code {
	var p interface{ Permanent() bool }
	var dns *net.DNSError
	switch {
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
	case errors.Is(err, fs.ErrNotExist):
		return codes.NotFound
	case errors.As(err, &p) && p.Permanent():
		// The target answered, and the answer will not change by asking
		// again: a refused host, a namespace with another identity.
		return codes.FailedPrecondition
	}
	return codes.Internal
}

// ctxStatus turns a finished context into its status; nil while it runs.
func ctxStatus(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return status.Error(status.FromContextError(err).Code(), err.Error())
	}
	return nil
}

// requireArgs answers InvalidArgument naming the first empty field; args
// are name, value pairs in the order the request declares them.
func requireArgs(args ...string) error {
	for i := 0; i+1 < len(args); i += 2 {
		if args[i+1] == "" {
			return status.Errorf(codes.InvalidArgument, "%s is required", args[i])
		}
	}
	return nil
}
