package kernel

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/nvmeof/nvmeof/shared/nvme"
	"github.com/nvmeof/nvmeof/shared/nvme/kernel/kerneltest"
	"github.com/nvmeof/nvmeof/shared/retry"
)

// Well-formed DH-HMAC-CHAP keys (32 bytes and their CRC).
const (
	keyA = "DHHC-1:01:I+efvp4wVPrr1X+p6sJOvUZ1SSDG1iw4AF9yP+DSjRD2s8lh:"
	keyB = "DHHC-1:01:94H2VsgjQfwpgVLXFWuD3yirzo1w69VaAuXVLKo3++PiZw5+:"
	keyC = "DHHC-1:01:yKarObeCHmelkhRBdv47dtDJmc6zTXNeh63xGaY1vxyAZHIO:"
)

// withAuthAttrs gives controller name of h the dhchap attributes a kernel
// with authentication shows (kerneltest simulates 6.1, which has none).
func withAuthAttrs(t *testing.T, h *kerneltest.Host, name string, attrs map[string]string) {
	t.Helper()
	for k, v := range attrs {
		if err := os.WriteFile(filepath.Join(h.SysfsRoot(), "class/nvme", name, k), []byte(v+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
}

// TestConnectAdoptsOnlyWithTheSameKeys: the kernel's duplicate rule
// ignores DH-HMAC-CHAP keys, so the connector compares them with what the
// controller shows in sysfs before it adopts, and never prints either.
func TestConnectAdoptsOnlyWithTheSameKeys(t *testing.T) {
	tests := []struct {
		name string
		// sysfs of the existing controller; nil: no dhchap attributes (a
		// kernel without authentication).
		shows    map[string]string
		auth     nvme.Auth
		wantErr  bool
		wantSays string
	}{
		{name: "same host key", shows: map[string]string{"dhchap_secret": keyA, "dhchap_ctrl_secret": "none"},
			auth: nvme.Auth{HostSecret: keyA}},
		{name: "same keys, bidirectional", shows: map[string]string{"dhchap_secret": keyA, "dhchap_ctrl_secret": keyC},
			auth: nvme.Auth{HostSecret: keyA, CtrlSecret: keyC}},
		{name: "no keys either side", shows: map[string]string{"dhchap_secret": "none", "dhchap_ctrl_secret": "none"}},
		{name: "kernel without auth, no keys asked"},
		{name: "other host key", shows: map[string]string{"dhchap_secret": keyA, "dhchap_ctrl_secret": "none"},
			auth: nvme.Auth{HostSecret: keyB}, wantErr: true, wantSays: "another dhchap_secret than"},
		{name: "other controller key", shows: map[string]string{"dhchap_secret": keyA, "dhchap_ctrl_secret": keyC},
			auth: nvme.Auth{HostSecret: keyA, CtrlSecret: keyB}, wantErr: true, wantSays: "another dhchap_ctrl_secret than"},
		{name: "controller key asked, controller has none", shows: map[string]string{"dhchap_secret": keyA, "dhchap_ctrl_secret": "none"},
			auth: nvme.Auth{HostSecret: keyA, CtrlSecret: keyC}, wantErr: true, wantSays: "dhchap_ctrl_secret"},
		{name: "keys asked, controller without", shows: map[string]string{"dhchap_secret": "none", "dhchap_ctrl_secret": "none"},
			auth: nvme.Auth{HostSecret: keyA}, wantErr: true, wantSays: "dhchap_secret"},
		{name: "no keys asked, controller with", shows: map[string]string{"dhchap_secret": keyA, "dhchap_ctrl_secret": "none"},
			wantErr: true, wantSays: "dhchap_secret"},
		{name: "kernel without auth, keys asked", auth: nvme.Auth{HostSecret: keyA}, wantErr: true, wantSays: "without DH-HMAC-CHAP"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := kerneltest.New(t)
			h.AddTarget("127.0.0.1", "4420", nqnOne, nsOne)
			existing := adminConnect(t, h, adminOptions(nqnOne))
			if tt.shows != nil {
				withAuthAttrs(t, h, existing, tt.shows)
			}
			k := newTestConnector(t, h)
			conn := connectionTo(nqnOne)
			conn.Auth = tt.auth
			writes := len(h.Writes())

			ctrl, err := k.Connect(t.Context(), valid(t, conn))
			if len(h.Writes()) != writes {
				t.Fatalf("writes to /dev/nvme-fabrics %q: a controller exists, nothing may be created", h.Writes())
			}
			if !tt.wantErr {
				if err != nil || ctrl.Name != existing {
					t.Fatalf("Connect = %s, %v; want %s adopted", ctrl.Name, err, existing)
				}
				return
			}
			if !errors.Is(err, ErrAuthMismatch) || !strings.Contains(err.Error(), tt.wantSays) || !strings.Contains(err.Error(), existing) {
				t.Fatalf("Connect = %v, want ErrAuthMismatch naming %s and saying %q", err, existing, tt.wantSays)
			}
			if retry.IsRetryableError(err) || !strings.Contains(err.Error(), "after 1 attempt(s)") {
				t.Errorf("a key mismatch was retried or is retryable: %v", err)
			}
			for _, key := range []string{keyA, keyB, keyC, strings.Split(keyA, ":")[2], strings.Split(keyB, ":")[2]} {
				if strings.Contains(err.Error(), key) {
					t.Errorf("the error shows a key: %v", err)
				}
			}
		})
	}
}

// TestConnectAuthUnreadable: when the keys cannot be read, the controller
// is not adopted on faith.
func TestConnectAuthUnreadable(t *testing.T) {
	h := kerneltest.New(t)
	h.AddTarget("127.0.0.1", "4420", nqnOne, nsOne)
	existing := adminConnect(t, h, adminOptions(nqnOne))
	withAuthAttrs(t, h, existing, map[string]string{"dhchap_ctrl_secret": "none"})
	// A directory where the attribute should be: reading it fails (EISDIR).
	if err := os.Mkdir(filepath.Join(h.SysfsRoot(), "class/nvme", existing, "dhchap_secret"), 0o700); err != nil {
		t.Fatal(err)
	}
	k := newTestConnector(t, h)
	conn := connectionTo(nqnOne)
	conn.Auth = nvme.Auth{HostSecret: keyA}
	_, err := k.Connect(t.Context(), valid(t, conn))
	if err == nil || !strings.Contains(err.Error(), "cannot tell whether it authenticates") {
		t.Fatalf("Connect = %v, want an error saying the keys could not be compared", err)
	}
}
