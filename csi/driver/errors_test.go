package driver

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"syscall"
	"testing"

	"google.golang.org/grpc/codes"

	"github.com/nvmeof/nvmeof/shared/nvme"
	"github.com/nvmeof/nvmeof/shared/nvme/kernel"
)

// codeOf decides what the CO does next: retry (Unavailable), give up on
// this input (InvalidArgument, FailedPrecondition), or believe the volume
// is gone (NotFound). Each row is a failure the plugin meets.
func TestCodeOf(t *testing.T) {
	tests := []struct {
		name string
		err  error
		want codes.Code
	}{
		{"cancelled", fmt.Errorf("connect: %w", context.Canceled), codes.Canceled},
		{"deadline", fmt.Errorf("connect: %w", context.DeadlineExceeded), codes.DeadlineExceeded},
		{"bad input", &nvme.FieldError{Key: "nqn", Reason: "is required"}, codes.InvalidArgument},
		{"no nvme-tcp on the node", fmt.Errorf("%w: %w", kernel.ErrFabricsUnavailable, fs.ErrNotExist), codes.FailedPrecondition},
		{"controller deleted under us", fmt.Errorf("resolve: %w", kernel.ErrControllerGone), codes.Unavailable},
		{"target refuses connections", fmt.Errorf("connect: %w", syscall.ECONNREFUSED), codes.Unavailable},
		{"name does not resolve", &net.DNSError{Err: "no such host", Name: "x.example", IsNotFound: true}, codes.FailedPrecondition},
		{"resolver timed out", &net.DNSError{Err: "i/o timeout", Name: "x.example", IsTimeout: true}, codes.Unavailable},
		// Nomad takes NotFound from NodeUnstage as "already done": a file
		// missing somewhere inside must not say the volume is.
		{"file missing", fmt.Errorf("stat: %w", fs.ErrNotExist), codes.Internal},
		{"kind given by the handler", fmt.Errorf("stage: %w", precondition("in use")), codes.FailedPrecondition},
		{"something else", errors.New("boom"), codes.Internal},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := codeOf(tt.err); got != tt.want {
				t.Errorf("codeOf(%v) = %v, want %v", tt.err, got, tt.want)
			}
		})
	}
}
