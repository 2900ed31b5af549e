//go:build lab

package lab

import (
	"context"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/nvmeof/nvmeof/shared/nvme/kernel"
	"github.com/nvmeof/nvmeof/test/lab/labtarget"
)

// What the booted kernel and its release's userspace can do, for tests
// that need a feature one of the lab's kernels lacks: they skip there,
// naming the kernel and its missing option, and run on the other.

// labCapabilities detects the running kernel's capabilities the way the
// plugin does (its /boot/config-<release> is in the image).
func labCapabilities(t *testing.T) kernel.Capabilities {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	return kernel.DetectCapabilities(ctx, kernel.CapabilityConfig{})
}

// requireAuth skips unless both the initiator and nvmet of this kernel
// have DH-HMAC-CHAP.
func requireAuth(t *testing.T) kernel.Capabilities {
	t.Helper()
	caps := labCapabilities(t)
	if caps.HostAuth.Support != kernel.Supported {
		t.Skipf("kernel %s lacks host DH-HMAC-CHAP: %s is not set (%s)", caps.Release, caps.HostAuth.Option, caps.HostAuth.Source)
	}
	ok, err := labtarget.TargetAuth()
	if err != nil {
		t.Fatal(err)
	}
	if !ok {
		t.Skipf("kernel %s lacks CONFIG_NVME_TARGET_AUTH: nvmet cannot authenticate hosts", caps.Release)
	}
	return caps
}

// backends are the connector backends every lifecycle test runs with.
var backends = []string{kernel.BackendFabrics, kernel.BackendNVMeCLI}

// forEachBackend runs f once per backend as a subtest.
func forEachBackend(t *testing.T, f func(t *testing.T, backend string)) {
	t.Helper()
	for _, b := range backends {
		t.Run(b, func(t *testing.T) { f(t, b) })
	}
}

// nvmeCLIVersion is `nvme version`'s first line ("nvme version 2.13 (git 2.13)").
func nvmeCLIVersion(t *testing.T) string {
	t.Helper()
	out, err := exec.CommandContext(t.Context(), "nvme", "version").CombinedOutput()
	if err != nil {
		t.Fatalf("nvme version: %v: %s", err, out)
	}
	line, _, _ := strings.Cut(string(out), "\n")
	return strings.TrimSpace(line)
}

// mustController reads controller name through the connector.
func mustController(t *testing.T, c kernel.Connector, name string) kernel.Controller {
	t.Helper()
	all, err := c.Controllers()
	if err != nil {
		t.Fatal(err)
	}
	for _, ctrl := range all {
		if ctrl.Name == name {
			return ctrl
		}
	}
	t.Fatalf("controller %s not found", name)
	return kernel.Controller{}
}

// targetDown takes the lab's port down (labtarget.PortDown: every
// reconnect is refused, as when a target is down or unreachable) until
// the returned function, or the end of the test, brings it back.
func targetDown(t *testing.T) (up func()) {
	t.Helper()
	restore, err := labtarget.PortDown()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := restore(); err != nil {
			t.Errorf("bring the target back: %v", err)
		}
	})
	return func() {
		t.Helper()
		if err := restore(); err != nil {
			t.Fatalf("bring the target back: %v", err)
		}
	}
}
