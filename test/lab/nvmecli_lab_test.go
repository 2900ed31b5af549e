//go:build lab

package lab

import (
	"context"
	"os/exec"
	"strings"
	"testing"

	"github.com/nvmeof/nvmeof/test/lab/labtarget"
)

// How the release's own nvme-cli behaves, pinned: the nvme-cli connector
// depends on each point (see connector_nvmecli.go and docs/nomad.md).
// bookworm ships 2.3 (with 6.1), trixie 2.13 (with 6.12).

// rawNVMeConnect runs `nvme connect` to SubsystemTwo with extra
// arguments and returns its output, the sysfs attributes of the controller
// it made (which it then disconnects) and how it exited.
func rawNVMeConnect(t *testing.T, extra ...string) (string, map[string]string, error) {
	t.Helper()
	args := append([]string{"connect", "-t", "tcp", "-a", labtarget.TrAddr, "-s", labtarget.TrSvcID,
		"-n", labtarget.SubsystemTwo, "-q", labtarget.HostNQN, "-I", labtarget.HostID}, extra...)
	out, err := exec.CommandContext(t.Context(), "nvme", args...).CombinedOutput()
	c, _ := newLabConnector(t)
	var attrs map[string]string
	for _, ctrl := range controllersOf(t, c, labtarget.SubsystemTwo) {
		attrs = map[string]string{}
		for _, a := range []string{"ctrl_loss_tmo", "kato", "fast_io_fail_tmo", "reconnect_delay"} {
			attrs[a] = readTrimmed(t, "/sys/class/nvme/"+ctrl+"/"+a)
		}
		if err := c.Disconnect(context.Background(), mustController(t, c, ctrl)); err != nil {
			t.Fatal(err)
		}
	}
	return string(out), attrs, err
}

func TestNVMeCLIBehaviour(t *testing.T) {
	version := nvmeCLIVersion(t)
	old := strings.Contains(version, " 2.3 ")
	t.Logf("%s on kernel %s", version, labCapabilities(t).Release)

	t.Run("fast_io_fail_tmo", func(t *testing.T) {
		out, attrs, err := rawNVMeConnect(t, "-F", "4")
		if old {
			// 2.3 has no -F: the whole command fails.
			if err == nil || !strings.Contains(out, "unrecognized option") {
				t.Errorf("nvme-cli 2.3 with -F: %v %q, want it refused as an unrecognized option", err, out)
			}
			return
		}
		if err != nil || attrs["fast_io_fail_tmo"] != "4" {
			t.Errorf("-F 4: %v %q, sysfs %v", err, out, attrs)
		}
		// -F 0 is left out: the kernel's default (off) applies.
		if _, attrs, err := rawNVMeConnect(t, "-F", "0"); err != nil || attrs["fast_io_fail_tmo"] != "off" {
			t.Errorf("-F 0: %v, sysfs %v; want fast_io_fail_tmo off (dropped)", err, attrs)
		}
	})
	t.Run("keep_alive_tmo 0 is dropped", func(t *testing.T) {
		if _, attrs, err := rawNVMeConnect(t, "-k", "0"); err != nil || attrs["kato"] != "5" {
			t.Errorf("-k 0: %v, sysfs %v; want kato 5 (the kernel's default: nvme-cli left it out)", err, attrs)
		}
	})
	t.Run("ctrl_loss_tmo 0 and -1 reach the kernel", func(t *testing.T) {
		if _, attrs, err := rawNVMeConnect(t, "-l", "0"); err != nil || attrs["ctrl_loss_tmo"] != "0" {
			t.Errorf("-l 0: %v, sysfs %v; want 0", err, attrs)
		}
		if _, attrs, err := rawNVMeConnect(t, "-l", "-1"); err != nil || attrs["ctrl_loss_tmo"] != "off" {
			t.Errorf("-l -1: %v, sysfs %v; want off", err, attrs)
		}
	})
	t.Run("the errno is printed", func(t *testing.T) {
		// A closed port: ECONNREFUSED. 2.13 prints the kernel's errno only
		// with --verbose; 2.3 always.
		args := []string{"connect", "-t", "tcp", "-a", labtarget.TrAddr, "-s", "4421", "-n", labtarget.SubsystemTwo,
			"-q", labtarget.HostNQN, "-I", labtarget.HostID}
		plain, _ := exec.CommandContext(t.Context(), "nvme", args...).CombinedOutput()
		verbose, _ := exec.CommandContext(t.Context(), "nvme", append(args, "--verbose")...).CombinedOutput()
		const line = "Failed to write to /dev/nvme-fabrics: Connection refused"
		if !strings.Contains(string(verbose), line) {
			t.Errorf("--verbose output %q lacks %q", verbose, line)
		}
		if strings.Contains(string(plain), line) == !old {
			t.Errorf("plain output %q: with %s the strerror line should be there: %v", plain, version, old)
		}
	})
}
