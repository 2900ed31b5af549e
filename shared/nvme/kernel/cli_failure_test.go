package kernel

import (
	"os"
	"path/filepath"
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

// TestCLIFailureCaptured reads what Debian's nvme-cli 2.3 and 2.13 really
// printed in the lab (testdata/nvme-cli/<version>-<case>.<errno>).
func TestCLIFailureCaptured(t *testing.T) {
	files, err := filepath.Glob("testdata/nvme-cli/2.*")
	if err != nil || len(files) == 0 {
		t.Fatalf("no captured samples: %v", err)
	}
	errnos := map[string]syscall.Errno{
		"0": 0, "EIO": syscall.EIO, "EINVAL": syscall.EINVAL, "EALREADY": syscall.EALREADY, "ECONNREFUSED": syscall.ECONNREFUSED,
		"EKEYREJECTED": syscall.EKEYREJECTED, "ENOKEY": syscall.ENOKEY,
	}
	conn := connectionTo("nqn.2026-01.io.nvmeof.lab:auth")
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			ext := strings.TrimPrefix(filepath.Ext(f), ".")
			want, ok := errnos[ext]
			if !ok {
				t.Fatalf("unknown errno %q in the file name", ext)
			}
			b, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			msg, got := cliFailure(string(b), conn)
			if got != want {
				t.Errorf("errno = %v (%d), want %v (%d)", got, got, want, want)
			}
			if msg == "" {
				t.Error("no message")
			}
		})
	}
}

func TestCLIFailureRedactsTheKeyBody(t *testing.T) {
	conn := connectionTo("nqn.2026-01.io.nvmeof.lab:auth")
	conn.Auth.HostSecret = keyA
	body := strings.Split(keyA, ":")[2]
	msg, _ := cliFailure("invalid key "+body+"\n", conn)
	if strings.Contains(msg, body) {
		t.Errorf("message shows the key's body: %q", msg)
	}
}
