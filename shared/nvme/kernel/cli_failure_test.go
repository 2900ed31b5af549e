package kernel

import (
	"strings"
	"syscall"
	"testing"

	"github.com/nvmeof/nvmeof/shared/nvme"
)

// nvme-cli's stderr is the only account of why it failed. The errno it
// names decides whether the connect is tried again, but only once every
// value of the connection is out of the text: a user's NQN that reads
// "Connection refused" must not make a refused host look transient.
func TestCLIFailure(t *testing.T) {
	secret := nvme.Secret("DHHC-1:00:c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0eHh4eA==:")
	conn := connectionTo("nqn.2026-01.io.example:Connection refused")
	conn.Auth.HostSecret = secret
	tests := []struct {
		name, stderr string
		want         syscall.Errno
	}{
		{"refused", "Failed to write to /dev/nvme-fabrics: Connection refused\n", syscall.ECONNREFUSED},
		{"timed out", "could not add new controller: Connection timed out", syscall.ETIMEDOUT},
		{"already", "already connected\n", syscall.EALREADY},
		{"the NQN is no errno", `could not add new controller: failed to write to nvme-fabrics device (nqn "nqn.2026-01.io.example:Connection refused")`, 0},
		{"invalid", "Failed to write to /dev/nvme-fabrics: Invalid argument", syscall.EINVAL},
		{"nothing known", "something else went wrong", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			msg, errno := cliFailure(tt.stderr, conn)
			if errno != tt.want {
				t.Errorf("errno = %v, want %v", errno, tt.want)
			}
			if msg == "" {
				t.Error("no message")
			}
		})
	}
	msg, _ := cliFailure("bad key "+secret.Reveal(), conn)
	if strings.Contains(msg, secret.Reveal()) || !strings.Contains(msg, "(redacted)") {
		t.Errorf("message shows the secret: %q", msg)
	}
}
