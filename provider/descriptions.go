package provider

import (
	"fmt"
	"strings"

	"github.com/nvmeof/nvmeof/shared/nvme"
)

// Descriptions shared by the resource and the provider's defaults block.
// Ranges come from the core's constants, so the docs cannot drift from the
// rules.
var (
	ctrlLossTmoDescription = fmt.Sprintf("Seconds the kernel keeps reconnecting a lost controller before it deletes it: "+
		"`-1` reconnects forever, `0` gives up at the first error. Defaults to `%d`: once the controller is deleted, "+
		"I/O fails and a mounted ext4 or xfs turns read-only.", nvme.DefaultCtrlLossTmo)
	reconnectDelayDescription = fmt.Sprintf("Seconds between reconnect attempts, at least 1. Defaults to `%d` (the kernel's own default is 10).",
		nvme.DefaultReconnectDelay)
	keepAliveTmoDescription = fmt.Sprintf("Keep-alive timeout in seconds, 1 to %d. Fixed for the life of a controller once it is connected. "+
		"Without a value the kernel's default applies.", nvme.MaxKeepAliveTmo)
	fastIOFailTmoDescription = "Seconds after which I/O fails while reconnecting goes on; `-1` turns it off. At most " +
		"`ctrl_loss_tmo` when that is positive. Without a value it is off."
	transportDescription = fmt.Sprintf("Transport: one of %s. Defaults to `%s`.",
		backticked(nvme.Transports()), nvme.TransportTCP)
	ioPolicyDescription = fmt.Sprintf("How native NVMe multipath on the node spreads I/O over the live paths: one of %s. "+
		"The kernel keeps one per subsystem; unset leaves the node's (normally `%s`). The plugin refuses a policy the node's "+
		"kernel does not offer (`%s` needs Linux 6.11 or later).",
		backticked(ioPolicies()), nvme.IOPolicyNUMA, nvme.IOPolicyQueueDepth)
	formatPolicyDescription = fmt.Sprintf("When the plugin may put a file system on this namespace if it has none: one of %s. "+
		"Unset means `%s`: only a device with no signature whose first MiB reads as zeros. `%s` formats a device with no "+
		"file system signature even when it holds data (whatever is on it is lost); `%s` never formats. A volume's own "+
		"setting: namespaces of one connection may differ.",
		backticked(formatPolicies()), nvme.FormatIfBlank, nvme.FormatIfNoFilesystem, nvme.FormatNever)
)

func ioPolicies() []string {
	var out []string
	for _, p := range nvme.IOPolicies() {
		out = append(out, string(p))
	}
	return out
}

func formatPolicies() []string {
	var out []string
	for _, p := range nvme.FormatPolicies() {
		out = append(out, string(p))
	}
	return out
}

func backticked(values []string) string {
	quoted := make([]string, len(values))
	for i, v := range values {
		quoted[i] = "`" + v + "`"
	}
	return strings.Join(quoted, ", ")
}
