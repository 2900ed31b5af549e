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
	// The reconnection parameters are brought to c's through sysfs right
	// after the connect (kernelConnector.connectOnce), so nvme-cli is given
	// only what every release passes as is (measured in the lab): no
	// fast_io_fail_tmo (bookworm's 2.3 has no -F and refuses the whole
	// command; 2.13 drops -F 0), and ctrl_loss_tmo 0 as -1 (releases
	// before 2.3 dropped 0).
	cli := c
	cli.Config.FastIOFailTmo = nil
	if cli.Config.CtrlLossTmo == 0 {
		cli.Config.CtrlLossTmo = -1
	}
	cvc, err := cli.Valid()
	if err != nil {
		return "", err
	}
	args, err := cvc.BuildConnectArgs()
	if err != nil {
		return "", err
	}
	// --verbose: nvme-cli 2.13 names the kernel's errno only then
	// (2.3 always); the output is read only on failure.
	args = append(args, "--verbose")
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
	syscall.EKEYREJECTED, syscall.ENOKEY, syscall.EKEYEXPIRED, syscall.EKEYREVOKED,
}

// libnvmeSummaries are libnvme's own words for the errnos it tells apart
// ("could not add new controller: ..."); any other errno it reports as
// "failed to write to nvme-fabrics device", which says nothing. nvme-cli
// 2.13 prints only this summary unless --verbose; 2.3 prints the strerror
// line too (testdata/nvme-cli).
var libnvmeSummaries = []struct {
	text  string
	errno syscall.Errno
}{
	{"already connected", syscall.EALREADY},
	{"connection refused", syscall.ECONNREFUSED},
	{"pre-shared tls key is missing", syscall.ENOKEY}, // libnvme's reading of ENOKEY, which DH-HMAC-CHAP gives too
	{"invalid arguments/configuration", syscall.EINVAL},
}

// fabricsWriteLine is libnvme's account of the failed write, with the
// kernel's errno as strerror: "Failed to write to /dev/nvme-fabrics: Key
// was rejected by service".
const fabricsWriteLine = "failed to write to /dev/nvme-fabrics: "

// cliFailure turns nvme-cli's stderr into a message fit for an error and
// the errno it reports (0 when none). Every value the connection carries is
// taken out of the text first: secrets (whole, and their base64 body) must
// never show, and a value a user wrote (an NQN holding "Connection
// refused", say) must not decide how the failure is classified. The
// errno comes from libnvme's strerror line when there is one, else from
// its summary.
func cliFailure(stderr string, c nvme.Connection) (string, syscall.Errno) {
	text := strings.TrimSpace(stderr)
	for _, s := range []nvme.Secret{c.Auth.HostSecret, c.Auth.CtrlSecret} {
		for _, v := range secretForms(s) {
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
	for line := range strings.Lines(low) {
		if _, cause, ok := strings.Cut(line, fabricsWriteLine); ok {
			for _, e := range cliErrnos {
				if strings.TrimSpace(cause) == strings.ToLower(e.Error()) {
					return msg, e
				}
			}
		}
	}
	for _, s := range libnvmeSummaries {
		if strings.Contains(low, s.text) {
			return msg, s.errno
		}
	}
	for _, e := range cliErrnos {
		if strings.Contains(low, strings.ToLower(e.Error())) {
			return msg, e
		}
	}
	return msg, 0
}

// secretForms are the ways a key may appear in a tool's text: whole, and
// the base64 body between its colons.
func secretForms(s nvme.Secret) []string {
	v := s.Reveal()
	if v == "" {
		return nil
	}
	forms := []string{v}
	if parts := strings.Split(v, ":"); len(parts) >= 3 && len(parts[2]) >= 8 {
		forms = append(forms, parts[2])
	}
	return forms
}
