package kernel

import (
	"context"
	"fmt"
	"strings"
	"syscall"

	"github.com/nvmeof/nvmeof/shared/nvme"
)

// nvmeCLIBackend creates controllers with `nvme connect`. It never parses
// nvme-cli's human output, whose format changes between releases: what was
// created is looked up in sysfs afterwards, and the output only goes into
// an error for a person to read, and to learn the errno nvme-cli printed.
type nvmeCLIBackend struct {
	path string
	exec CommandRunner
	sys  sysfs
}

func (b *nvmeCLIBackend) create(ctx context.Context, vc nvme.ValidConnection) (string, error) {
	c := vc.Connection()
	args, err := vc.BuildConnectArgs()
	if err != nil {
		return "", err
	}
	// A controller there before the run is not the run's: nvme-cli would
	// say "already connected" and exit 0 or 1 depending on its version.
	if _, found, err := findController(b.sys, c); err != nil {
		return "", err
	} else if found {
		return "", fmt.Errorf("nvme connect to subsystem %q: %w", c.Target.NQN, syscall.EALREADY)
	}
	_, stderr, runErr := b.exec.Run(ctx, b.path, args)
	// A failed run may still have left a controller behind, or found one
	// someone made meanwhile: sysfs decides, and a controller that came
	// with a failure is not claimed as the run's.
	ctrl, found, err := findController(b.sys, c)
	if err != nil {
		return "", err
	}
	if found && runErr == nil {
		return ctrl.Name, nil
	}
	if found {
		return "", fmt.Errorf("nvme connect to subsystem %q failed, but %s is there: %w", c.Target.NQN, ctrl.Name, syscall.EALREADY)
	}
	if ctxErr := ctx.Err(); ctxErr != nil {
		return "", fmt.Errorf("nvme connect to subsystem %q: %w", c.Target.NQN, ctxErr)
	}
	if runErr != nil {
		msg, errno := cliFailure(string(stderr), c)
		err := fmt.Errorf("nvme connect failed: %s: %w", msg, runErr)
		if errno != 0 {
			return "", newConnectError(c, fmt.Errorf("%w (%w)", errno, err))
		}
		return "", fmt.Errorf("nvme connect to subsystem %q at %s:%s: %w", c.Target.NQN, c.Target.TrAddr, c.Target.TrSvcID, err)
	}
	return "", fmt.Errorf("nvme connect to subsystem %q at %s:%s succeeded, but no matching controller is in sysfs",
		c.Target.NQN, c.Target.TrAddr, c.Target.TrSvcID)
}

// cliErrnos are the kernel answers a failed `nvme connect` may print
// (strerror's text), in the order they are looked for.
var cliErrnos = []syscall.Errno{
	syscall.EALREADY, syscall.ECONNREFUSED, syscall.ETIMEDOUT, syscall.EHOSTUNREACH, syscall.ENETUNREACH,
	syscall.ECONNRESET, syscall.EAGAIN, syscall.EINVAL, syscall.EIO, syscall.ENODEV,
}

// cliFailure turns nvme-cli's stderr into a message fit for an error and
// the errno it reports (0 when none). Every value the connection carries is
// taken out of the text first: secrets must never show, and a value a user
// wrote (an NQN holding "Connection refused", say) must not decide how the
// failure is classified.
func cliFailure(stderr string, c nvme.Connection) (string, syscall.Errno) {
	text := strings.TrimSpace(stderr)
	for _, s := range []nvme.Secret{c.Auth.HostSecret, c.Auth.CtrlSecret} {
		if v := s.Reveal(); v != "" {
			text = strings.ReplaceAll(text, v, "(redacted)")
		}
	}
	msg := nvme.Truncate(text)
	for _, v := range []string{c.Target.NQN, c.Target.TrAddr, c.Target.TrSvcID, c.Target.HostTrAddr, c.Target.HostIface, c.Host.NQN, c.Host.ID} {
		if v != "" {
			text = strings.ReplaceAll(text, v, "")
		}
	}
	low := strings.ToLower(text)
	if strings.Contains(low, "already connected") {
		return msg, syscall.EALREADY
	}
	for _, e := range cliErrnos {
		if strings.Contains(low, strings.ToLower(e.Error())) {
			return msg, e
		}
	}
	return msg, 0
}
