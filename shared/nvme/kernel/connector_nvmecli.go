package kernel

import (
	"github.com/nvmeof/nvmeof/shared/nvme"

	"context"
	"fmt"
	"strings"
)

// nvmeCLIBackend creates controllers with `nvme connect`. It never parses
// nvme-cli's human output, whose format changes between releases: what was
// created is looked up in sysfs afterwards, and the output only goes into
// an error for a person to read.
type nvmeCLIBackend struct {
	path string
	exec CommandRunner
	sys  sysfs
}

func (b *nvmeCLIBackend) create(ctx context.Context, c nvme.Connection) (string, error) {
	args, err := c.BuildConnectArgs()
	if err != nil {
		return "", err
	}
	_, stderr, runErr := b.exec.Run(ctx, b.path, args)
	// nvme-cli says "already connected" without checking the controller's
	// state, and a failed run may still have left a controller behind:
	// sysfs decides either way.
	ctrl, found, err := findController(b.sys, c)
	if err != nil {
		return "", err
	}
	if found {
		return ctrl.Name, nil
	}
	if ctxErr := ctx.Err(); ctxErr != nil {
		return "", fmt.Errorf("nvme connect to subsystem %q: %w", c.Target.NQN, ctxErr)
	}
	if runErr != nil {
		// The arguments may hold secrets: only the subsystem and nvme-cli's
		// own message are shown.
		return "", fmt.Errorf("nvme connect to subsystem %q at %s:%s failed: %s: %w",
			c.Target.NQN, c.Target.TrAddr, c.Target.TrSvcID, strings.TrimSpace(string(stderr)), runErr)
	}
	return "", fmt.Errorf("nvme connect to subsystem %q at %s:%s succeeded, but no matching controller is in sysfs",
		c.Target.NQN, c.Target.TrAddr, c.Target.TrSvcID)
}
