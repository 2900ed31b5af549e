package kernel

import (
	"crypto/subtle"
	"errors"
	"fmt"
	"io/fs"
	"strings"

	"github.com/nvmeof/nvmeof/shared/nvme"
)

// ErrAuthMismatch: a controller that would be adopted authenticates with
// other DH-HMAC-CHAP keys than the connection asks for. A controller has
// one set of keys for all the volumes of its subsystem.
var ErrAuthMismatch = errors.New("the controller authenticates with other DH-HMAC-CHAP keys")

// authMismatchError names the controller and which keys differ; never the
// keys themselves.
type authMismatchError struct {
	ctrl, subsystem string
	differ          []string // dhchap_secret, dhchap_ctrl_secret
	noAuth          bool     // the controller has no authentication at all (kernel without it)
}

func (e *authMismatchError) Error() string {
	if e.noAuth {
		return fmt.Sprintf("controller %s of subsystem %q was connected without DH-HMAC-CHAP (this kernel has no dhchap attributes), "+
			"but the volume asks for it", e.ctrl, e.subsystem)
	}
	return fmt.Sprintf("controller %s of subsystem %q authenticates with another %s than this volume's: "+
		"the volumes of one subsystem share one controller and so one set of keys; give them all the same secrets, "+
		"or rotate the controller's keys first (docs/nomad.md, \"Rotating a host key\")",
		e.ctrl, e.subsystem, strings.Join(e.differ, " and "))
}

func (e *authMismatchError) Is(target error) bool { return target == ErrAuthMismatch }

// Permanent: asking again with the same keys gets the same answer.
func (e *authMismatchError) Permanent() bool { return true }

// noneSecret is what the kernel shows for a key the controller was
// connected without.
const noneSecret = "none"

// checkAuth compares the keys a controller holds (sysfs dhchap_secret and
// dhchap_ctrl_secret, readable by root only, shown by kernels with
// authentication built in) with those of auth. Nothing is stored or
// printed: the comparison is in constant time, and errors name only the
// attribute.
func (s sysfs) checkAuth(ctrl Controller, auth nvme.Auth) error {
	dir := s.controllerDir(ctrl.Name)
	var differ []string
	for _, k := range []struct {
		attr string
		want nvme.Secret
	}{{"dhchap_secret", auth.HostSecret}, {"dhchap_ctrl_secret", auth.CtrlSecret}} {
		got, err := readAttr(dir, k.attr)
		if errors.Is(err, fs.ErrNotExist) {
			if auth.HostSecret == "" && auth.CtrlSecret == "" {
				return nil // no authentication asked for, none possible
			}
			return &authMismatchError{ctrl: ctrl.Name, subsystem: ctrl.Subsystem, noAuth: true}
		}
		if err != nil {
			return fmt.Errorf("controller %s: cannot tell whether it authenticates with this volume's keys: %w", ctrl.Name, err)
		}
		want := k.want.Reveal()
		if want == "" {
			want = noneSecret
		}
		if subtle.ConstantTimeCompare([]byte(got), []byte(want)) != 1 {
			differ = append(differ, k.attr)
		}
	}
	if len(differ) > 0 {
		return &authMismatchError{ctrl: ctrl.Name, subsystem: ctrl.Subsystem, differ: differ}
	}
	return nil
}
