package kernel

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/nvmeof/nvmeof/shared/nvme"
	"github.com/nvmeof/nvmeof/shared/retry"
)

// Well-formed DH-HMAC-CHAP keys (32 bytes and their CRC).
const (
	keyA = "DHHC-1:01:I+efvp4wVPrr1X+p6sJOvUZ1SSDG1iw4AF9yP+DSjRD2s8lh:"
	keyB = "DHHC-1:01:94H2VsgjQfwpgVLXFWuD3yirzo1w69VaAuXVLKo3++PiZw5+:"
	keyC = "DHHC-1:01:yKarObeCHmelkhRBdv47dtDJmc6zTXNeh63xGaY1vxyAZHIO:"
)

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
			fx := newSysfsFixture(t)
			fx.addSubsystem(9, nqnOne)
			fx.addController(fixtureCtrl{Instance: 4, Subsys: 9, NQN: nqnOne})
			if tt.shows != nil {
				fx.writeAttrs(fx.ctrlDevDir(4), tt.shows)
			}
			fake := newFakeFabrics(fx)
			k := newTestConnector(t, fx, fake)
			conn := connectionTo(nqnOne)
			conn.Auth = tt.auth

			ctrl, err := k.Connect(t.Context(), valid(t, conn))
			if fake.writeCount() != 0 {
				t.Fatalf("%d writes to /dev/nvme-fabrics: a controller exists, nothing may be created", fake.writeCount())
			}
			if !tt.wantErr {
				if err != nil || ctrl.Name != "nvme4" {
					t.Fatalf("Connect = %s, %v; want nvme4 adopted", ctrl.Name, err)
				}
				return
			}
			if !errors.Is(err, ErrAuthMismatch) || !strings.Contains(err.Error(), tt.wantSays) || !strings.Contains(err.Error(), "nvme4") {
				t.Fatalf("Connect = %v, want ErrAuthMismatch naming nvme4 and saying %q", err, tt.wantSays)
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
	fx := newSysfsFixture(t)
	fx.addSubsystem(9, nqnOne)
	fx.addController(fixtureCtrl{Instance: 4, Subsys: 9, NQN: nqnOne})
	// A directory where the attribute should be: reading it fails (EISDIR).
	fx.mkdir(filepath.Join(fx.ctrlDevDir(4), "dhchap_secret"))
	if err := os.WriteFile(filepath.Join(fx.ctrlDevDir(4), "dhchap_ctrl_secret"), []byte("none\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	k := newTestConnector(t, fx, newFakeFabrics(fx))
	conn := connectionTo(nqnOne)
	conn.Auth = nvme.Auth{HostSecret: keyA}
	_, err := k.Connect(t.Context(), valid(t, conn))
	if err == nil || !strings.Contains(err.Error(), "cannot tell whether it authenticates") {
		t.Fatalf("Connect = %v, want an error saying the keys could not be compared", err)
	}
}
