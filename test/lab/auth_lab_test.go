//go:build lab

package lab

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/nvmeof/nvmeof/shared/nvme"
	"github.com/nvmeof/nvmeof/shared/nvme/kernel"
	"github.com/nvmeof/nvmeof/shared/retry"
	"github.com/nvmeof/nvmeof/test/lab/labtarget"
)

// DH-HMAC-CHAP through the connector on the real kernel, with both
// backends, against SubsystemAuth (allow_any_host=0, HostNQN allowed with
// labtarget's keys).

func authConnection(host, ctrl string) nvme.Connection {
	c := labConnection(labtarget.SubsystemAuth)
	c.Auth = nvme.Auth{HostSecret: nvme.Secret(host), CtrlSecret: nvme.Secret(ctrl)}
	return c
}

// restoreTargetKeysAtEnd puts the lab's keys back on the target when the
// test ends, whatever it changed.
func restoreTargetKeysAtEnd(t *testing.T) {
	t.Helper()
	t.Cleanup(func() {
		if err := labtarget.SetHostAuth(labtarget.HostNQN, labtarget.LabHostAuth()); err != nil {
			t.Errorf("restore the target's keys: %v", err)
		}
	})
}

func TestAuthConnectorRightKeys(t *testing.T) {
	requireAuth(t)
	const backend = kernel.BackendFabrics // nvme-cli refuses keys: TestAuthNVMeCLIConnector
	tests := []struct {
		name       string
		host, ctrl string
	}{
		{"unidirectional", labtarget.HostKey, ""},
		{"bidirectional", labtarget.HostKey, labtarget.CtrlKey},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, _ := newLabConnectorWith(t, backend)
			start := time.Now()
			ctrl := connectForTest(t, c, authConnection(tt.host, tt.ctrl))
			t.Logf("%s connect with DH-HMAC-CHAP (%s) took %s", backend, tt.name, time.Since(start).Round(time.Millisecond))
			if got := ctrlSysfs(t, ctrl, "dhchap_secret"); got != tt.host {
				t.Errorf("sysfs dhchap_secret does not hold the host key")
			}
			wantCtrl := tt.ctrl
			if wantCtrl == "" {
				wantCtrl = "none"
			}
			if got := ctrlSysfs(t, ctrl, "dhchap_ctrl_secret"); got != wantCtrl {
				t.Errorf("sysfs dhchap_ctrl_secret is not the controller key (or none)")
			}
			ns := resolveForTest(t, c, ctrl, nvme.NamespaceSelector{NSID: 1, UUID: labtarget.AuthNS1UUID})
			if got := readWriteDevice(t, ns.DevicePath, []byte("authenticated I/O"), 17); string(got) != "authenticated I/O" {
				t.Errorf("read back %q", got)
			}
			// A second connect with the same keys adopts it.
			again := connectForTest(t, c, authConnection(tt.host, tt.ctrl))
			if again.Name != ctrl.Name {
				t.Errorf("second connect made %s, want %s adopted", again.Name, ctrl.Name)
			}
		})
	}
}

// nvme-cli takes keys only in its argument vector, readable by every
// local user in /proc: the nvme-cli connector refuses them before it runs
// anything, and a connect without them to a subsystem that requires
// authentication is refused by the target (ENOKEY, which 2.13 calls "pre-
// shared TLS key is missing").
func TestAuthNVMeCLIConnector(t *testing.T) {
	requireAuth(t)
	c, _ := newLabConnectorWith(t, kernel.BackendNVMeCLI)
	for _, keys := range [][2]string{{labtarget.HostKey, ""}, {labtarget.HostKey, labtarget.CtrlKey}} {
		_, err := c.Connect(t.Context(), valid(t, authConnection(keys[0], keys[1])))
		if !errors.Is(err, nvme.ErrInvalid) || !strings.Contains(err.Error(), "fabrics connector") {
			t.Errorf("nvme-cli connect with keys = %v, want ErrInvalid pointing at the fabrics connector", err)
		}
		if err != nil {
			assertNoKeyIn(t, "the error", err.Error())
		}
	}
	_, err := c.Connect(t.Context(), valid(t, authConnection("", "")))
	if !errors.Is(err, syscall.ENOKEY) || retry.IsRetryableError(err) {
		t.Errorf("nvme-cli connect without keys = %v, want a permanent ENOKEY", err)
	}
	if got := controllersOf(t, c, labtarget.SubsystemAuth); len(got) != 0 {
		t.Errorf("controllers: %v", got)
	}
}

// A wrong key is refused at once, never retried, and leaves nothing.
func TestAuthConnectorWrongKeys(t *testing.T) {
	requireAuth(t)
	const backend = kernel.BackendFabrics // nvme-cli refuses keys: TestAuthNVMeCLIConnector
	tests := []struct {
		name       string
		host, ctrl string
	}{
		{"wrong host key", labtarget.WrongHostKey, ""},
		{"wrong controller key", labtarget.HostKey, labtarget.WrongCtrlKey},
		{"no key", "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, _ := newLabConnectorWith(t, backend)
			// Beyond the kernel's 60 s admin timeout, which a wrong key
			// sometimes runs into (6.12, measured), as the plugin's 2 min
			// operation bound is.
			ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
			defer cancel()
			start := time.Now()
			ctrl, err := c.Connect(ctx, valid(t, authConnection(tt.host, tt.ctrl)))
			if err == nil {
				_ = c.Disconnect(context.Background(), ctrl)
				t.Fatalf("%s connected", tt.name)
			}
			t.Logf("%s: %s refused after %s: %v", backend, tt.name, time.Since(start).Round(time.Millisecond), err)
			if retry.IsRetryableError(err) || !strings.Contains(err.Error(), "after 1 attempt(s)") {
				t.Errorf("the refusal was retried or is retryable: %v", err)
			}
			// EKEYREJECTED at once, or, when the target drops the
			// connection first, EIO after the kernel's 60 s admin timeout
			// (6.12, measured): both say DH-HMAC-CHAP.
			if !strings.Contains(err.Error(), "DH-HMAC-CHAP") {
				t.Errorf("the error does not point at DH-HMAC-CHAP: %v", err)
			}
			assertNoKeyIn(t, "the error", err.Error())
			if got := controllersOf(t, c, labtarget.SubsystemAuth); len(got) != 0 {
				t.Errorf("controllers after a refusal: %v", got)
			}
		})
	}
}

// A controller authenticated with one key is not handed to a connection
// with another.
func TestAuthConnectorAdoptsOnlyWithTheSameKey(t *testing.T) {
	requireAuth(t)
	const backend = kernel.BackendFabrics // nvme-cli refuses keys: TestAuthNVMeCLIConnector
	c, _ := newLabConnectorWith(t, backend)
	connectForTest(t, c, authConnection(labtarget.HostKey, ""))
	_, err := c.Connect(t.Context(), valid(t, authConnection(labtarget.RotatedHostKey, "")))
	if !errors.Is(err, kernel.ErrAuthMismatch) || retry.IsRetryableError(err) {
		t.Fatalf("connect with another key = %v, want a permanent ErrAuthMismatch", err)
	}
	assertNoKeyIn(t, "the error", err.Error())
	if got := controllersOf(t, c, labtarget.SubsystemAuth); len(got) != 1 {
		t.Errorf("controllers: %v, want the one", got)
	}
}

// Rotation, the kernel's way: the target takes the new key first, then the
// host's controller is given it through sysfs and authenticates again; a
// later outage reconnects with the new key.
func TestAuthConnectorRotationThroughSysfs(t *testing.T) {
	requireAuth(t)
	restoreTargetKeysAtEnd(t)
	c, _ := newLabConnector(t)
	conn := authConnection(labtarget.HostKey, "")
	conn.Config.ReconnectDelay = 1
	ctrl := connectForTest(t, c, conn)
	ns := resolveForTest(t, c, ctrl, nvme.NamespaceSelector{NSID: 1})

	rotated := labtarget.LabHostAuth()
	rotated.Key = labtarget.RotatedHostKey
	if err := labtarget.SetHostAuth(labtarget.HostNQN, rotated); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	reauthenticate(t, ctrl, labtarget.RotatedHostKey)
	t.Logf("re-authenticated with the rotated key in %s", time.Since(start).Round(time.Millisecond))
	if got := ctrlSysfs(t, ctrl, "dhchap_secret"); got != labtarget.RotatedHostKey {
		t.Fatal("sysfs does not show the rotated key")
	}

	// An outage: the reconnect authenticates with the rotated key. A read
	// pending over it makes the host notice at once, as I/O would.
	up := targetDown(t)
	down := time.Now()
	pending := make(chan []byte, 1)
	go func() { pending <- readDirect(ns.DevicePath, 4096) }()
	var states []string
	waitFor(t, "controller connecting", time.Minute, func() bool {
		st := ctrlSysfs(t, ctrl, "state")
		if len(states) == 0 || states[len(states)-1] != st {
			states = append(states, st)
		}
		return st == kernel.StateConnecting
	})
	t.Logf("states after the target went down: %v (connecting after %s)", states, time.Since(down).Round(time.Millisecond))
	up()
	if got := <-pending; got == nil {
		t.Error("the read pending over the outage failed")
	}
	waitFor(t, "controller live with the rotated key", 30*time.Second, func() bool { return ctrlSysfs(t, ctrl, "state") == kernel.StateLive })
	if got := readWriteDevice(t, ns.DevicePath, []byte("after rotation"), 14); string(got) != "after rotation" {
		t.Errorf("read back %q", got)
	}
	// The old key no longer matches the controller.
	if _, err := c.Connect(t.Context(), valid(t, conn)); !errors.Is(err, kernel.ErrAuthMismatch) {
		t.Errorf("connect with the old key after rotation = %v, want ErrAuthMismatch", err)
	}
}

// reauthenticate gives ctrl a new host key through sysfs and waits until
// the kernel has authenticated again with it (a new "authenticated" line
// in its log) and the controller is live. Going on sooner races the
// kernel's re-authentication work: an outage that starts while it runs
// left the controller stuck outside "connecting" for over 10 s on 6.12.
func reauthenticate(t *testing.T, ctrl kernel.Controller, key string) {
	t.Helper()
	mark := kernelLogMark(t)
	writeSysfs(t, ctrl, "dhchap_secret", key)
	waitFor(t, "the kernel's re-authentication", 30*time.Second, func() bool { return authenticatedSince(t, mark) > 0 })
	waitFor(t, "controller live after re-authentication", 30*time.Second, func() bool { return ctrlSysfs(t, ctrl, "state") == kernel.StateLive })
}

func writeSysfs(t *testing.T, ctrl kernel.Controller, attr, value string) {
	t.Helper()
	if err := os.WriteFile(filepath.Join("/sys/class/nvme", ctrl.Name, attr), []byte(value), 0o200); err != nil {
		t.Fatalf("write %s of %s: %v", attr, ctrl.Name, err) // the error names the file, not the value
	}
}

// labKeys are every key of the lab and the base64 bodies inside them.
func labKeys() []string {
	var out []string
	for _, k := range []string{labtarget.HostKey, labtarget.CtrlKey, labtarget.WrongHostKey, labtarget.WrongCtrlKey, labtarget.RotatedHostKey} {
		out = append(out, k, strings.Split(k, ":")[2])
	}
	return out
}

// assertNoKeyIn fails when text holds a lab key or its base64 body.
func assertNoKeyIn(t *testing.T, what, text string) {
	t.Helper()
	for _, k := range labKeys() {
		if strings.Contains(text, k) {
			t.Errorf("%s holds a DH-HMAC-CHAP key (or its base64 body)", what)
			return
		}
	}
}

// TestAuthConnectTiming sets a DH-HMAC-CHAP connect beside a plain one on
// the same kernel: the median of the kernel's connect (the write to
// /dev/nvme-fabrics, which runs the whole authentication) over 10 rounds
// each, plain to SubsystemTwo, unidirectional and bidirectional to
// SubsystemAuth (hmac(sha256), ffdhe2048). Nothing is asserted: the
// figures go to docs/PERFORMANCE.md.
func TestAuthConnectTiming(t *testing.T) {
	requireAuth(t)
	const rounds = 10
	c, logs := newLabConnector(t)
	cases := []struct {
		name string
		conn nvme.Connection
	}{
		{"plain", labConnection(labtarget.SubsystemTwo)},
		{"dhchap-unidirectional", authConnection(labtarget.HostKey, "")},
		{"dhchap-bidirectional", authConnection(labtarget.HostKey, labtarget.CtrlKey)},
	}
	results := map[string][]time.Duration{}
	totals := map[string][]time.Duration{}
	for range rounds {
		for _, tc := range cases {
			logs.take()
			start := time.Now()
			ctrl, err := c.Connect(t.Context(), valid(t, tc.conn))
			if err != nil {
				t.Fatalf("%s: %v", tc.name, err)
			}
			total := time.Since(start)
			write, ok := kernelWriteTime(logs.take())
			if !ok {
				t.Fatalf("%s: no kernel write time logged", tc.name)
			}
			if err := c.Disconnect(t.Context(), ctrl); err != nil {
				t.Fatal(err)
			}
			results[tc.name] = append(results[tc.name], write)
			totals[tc.name] = append(totals[tc.name], total)
		}
	}
	for _, tc := range cases {
		t.Logf("LAB-TIMING auth-connect kernel=%s case=%s rounds=%d median_kernel_write=%s median_connect=%s",
			labCapabilities(t).Release, tc.name, rounds, median(results[tc.name]), median(totals[tc.name]))
	}
}

// readDirect reads n bytes at offset 0 of a block device, bypassing the
// page cache; nil on any error.
func readDirect(dev string, n int) []byte {
	f, err := os.OpenFile(dev, os.O_RDONLY|syscall.O_DIRECT, 0)
	if err != nil {
		return nil
	}
	defer func() { _ = f.Close() }()
	// O_DIRECT wants an aligned buffer: a page from an anonymous mapping.
	buf, err := syscall.Mmap(-1, 0, n, syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_ANON|syscall.MAP_PRIVATE)
	if err != nil {
		return nil
	}
	defer func() { _ = syscall.Munmap(buf) }()
	if _, err := f.ReadAt(buf, 0); err != nil {
		return nil
	}
	return append([]byte(nil), buf...)
}
