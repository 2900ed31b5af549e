package labtarget

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// DH-HMAC-CHAP keys of the lab, in the form `nvme gen-dhchap-key` prints
// (DHHC-1:01: a 32-byte key with its CRC, transformed with SHA-256).
// They are test data, public on purpose: tests grep the plugin's logs,
// errors, state and metrics for them.
const (
	// HostKey is HostNQN's key on the target (dhchap_key): what a volume's
	// dhchap_secret must be.
	HostKey = "DHHC-1:01:I+efvp4wVPrr1X+p6sJOvUZ1SSDG1iw4AF9yP+DSjRD2s8lh:"
	// CtrlKey is the target's own key for HostNQN (dhchap_ctrl_key): what
	// a volume's dhchap_ctrl_secret must be for bidirectional
	// authentication.
	CtrlKey = "DHHC-1:01:yKarObeCHmelkhRBdv47dtDJmc6zTXNeh63xGaY1vxyAZHIO:"
	// WrongHostKey and WrongCtrlKey are well-formed keys the target does
	// not hold.
	WrongHostKey = "DHHC-1:01:94H2VsgjQfwpgVLXFWuD3yirzo1w69VaAuXVLKo3++PiZw5+:"
	WrongCtrlKey = "DHHC-1:01:em2xBoePnSEcAg0Vd+qFk4+eF1Rwk+FZJgKEm15eYag72t4G:"
	// RotatedHostKey is what a rotation test moves HostNQN to.
	RotatedHostKey = "DHHC-1:01:hggx6GSPbQB8jqnZ0dPDkWsqHWTBnXhkVfcTOObOZbrGQrES:"
	// AuthHash and AuthDHGroup are what the target negotiates.
	AuthHash    = "hmac(sha256)"
	AuthDHGroup = "ffdhe2048"
)

// HostAuth is the DH-HMAC-CHAP setting of one allowed host on the target.
type HostAuth struct {
	Key, CtrlKey, Hash, DHGroup string
}

// LabHostAuth is what labsetup gives HostNQN.
func LabHostAuth() HostAuth {
	return HostAuth{Key: HostKey, CtrlKey: CtrlKey, Hash: AuthHash, DHGroup: AuthDHGroup}
}

// ErrNoTargetAuth: the running kernel's nvmet has no in-band
// authentication (built without CONFIG_NVME_TARGET_AUTH): the host
// directories in configfs have no dhchap_key attribute.
var ErrNoTargetAuth = errors.New("nvmet has no DH-HMAC-CHAP (the kernel lacks CONFIG_NVME_TARGET_AUTH)")

// TargetAuth reports whether nvmet can authenticate hosts.
func TargetAuth() (bool, error) { return Nvmet{Root: ConfigfsRoot}.TargetAuth() }

// SetHostAuth sets host's DH-HMAC-CHAP keys on the target; an empty Key or
// CtrlKey clears it. Connected controllers keep their session until they
// authenticate again (a reconnect, or the host's re-authentication).
func SetHostAuth(host string, a HostAuth) error {
	return Nvmet{Root: ConfigfsRoot}.SetHostAuth(host, a)
}

// TargetAuth reports whether the host directories have dhchap_key, which
// nvmet shows only when built with authentication. The host directory of
// HostNQN exists once Create has built SubsystemAuth.
func (n Nvmet) TargetAuth() (bool, error) {
	_, err := os.Stat(filepath.Join(n.hostDir(HostNQN), "dhchap_key"))
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, fs.ErrNotExist):
		if _, derr := os.Stat(n.hostDir(HostNQN)); derr != nil {
			return false, fmt.Errorf("target auth: host %s: %w", HostNQN, derr)
		}
		return false, nil
	default:
		return false, fmt.Errorf("target auth: %w", err)
	}
}

// SetHostAuth writes host's keys, hash and group; see the package function.
func (n Nvmet) SetHostAuth(host string, a HostAuth) error {
	ok, err := n.TargetAuth()
	if err != nil {
		return err
	}
	if !ok {
		return ErrNoTargetAuth
	}
	dir := n.hostDir(host)
	for _, attr := range [][2]string{
		{"dhchap_hash", a.Hash}, {"dhchap_dhgroup", a.DHGroup}, {"dhchap_key", a.Key}, {"dhchap_ctrl_key", a.CtrlKey},
	} {
		if attr[1] == "" && (attr[0] == "dhchap_hash" || attr[0] == "dhchap_dhgroup") {
			continue
		}
		if err := writeAttr(filepath.Join(dir, attr[0]), attr[1]); err != nil {
			// The value is a key: name the attribute only.
			return fmt.Errorf("host %s: set %s: %w", host, attr[0], errors.Unwrap(err))
		}
	}
	return nil
}

func (n Nvmet) hostDir(host string) string {
	return filepath.Join(n.Root, "hosts", host)
}
