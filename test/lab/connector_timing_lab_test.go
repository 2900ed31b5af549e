//go:build lab

package lab

import (
	"os"
	"slices"
	"testing"
	"time"

	"github.com/nvmeof/nvmeof/shared/nvme"
	"github.com/nvmeof/nvmeof/test/lab/labtarget"
)

// TestConnectorTiming measures connect → device path over 20 rounds and
// splits the median into the kernel's write and our overhead: what Connect
// spends around the write (sysfs scans, adoption checks) plus Resolve's
// wait for the kernel's asynchronous namespace scan. With one emulated CPU
// that scan runs on the same CPU right after the write returns and is
// billed to whatever runs then, so our code alone is measured too: a
// Connect that adopts the controller (no kernel write: our sysfs scan and
// checks only), a Resolve of a namespace already there, and a Controllers
// scan.
func TestConnectorTiming(t *testing.T) {
	const rounds = 20
	c, logs := newLabConnector(t)
	conn := valid(t, labConnection(labtarget.SubsystemTwo))
	sel := nvme.NamespaceSelector{NSID: 1, UUID: labtarget.TwoNS1UUID}
	var total, kernel, overhead, aroundWrite, resolveWait, adopt, lookup, scan []time.Duration
	for i := range rounds {
		logs.take()
		start := time.Now()
		ctrl, err := c.Connect(t.Context(), conn)
		if err != nil {
			t.Fatalf("round %d: Connect: %v", i, err)
		}
		connected := time.Now()
		ns, err := c.Resolve(t.Context(), ctrl, sel)
		if err != nil {
			t.Fatalf("round %d: Resolve: %v", i, err)
		}
		end := time.Now()
		if _, err := os.Stat(ns.DevicePath); err != nil {
			t.Fatalf("round %d: %v", i, err)
		}
		write, ok := kernelWriteTime(logs.take())
		if !ok {
			t.Fatalf("round %d: no kernel write time logged (was a controller adopted?)", i)
		}
		// Our code alone, with the controller and namespace in place.
		adoptStart := time.Now()
		if again, err := c.Connect(t.Context(), conn); err != nil || again.Name != ctrl.Name {
			t.Fatalf("round %d: adopting Connect = %s, %v; want %s", i, again.Name, err, ctrl.Name)
		}
		lookupStart := time.Now()
		if _, err := c.Resolve(t.Context(), ctrl, sel); err != nil {
			t.Fatalf("round %d: second Resolve: %v", i, err)
		}
		scanStart := time.Now()
		if _, err := c.Controllers(); err != nil {
			t.Fatalf("round %d: Controllers: %v", i, err)
		}
		scanEnd := time.Now()
		if err := c.Disconnect(t.Context(), ctrl); err != nil {
			t.Fatalf("round %d: Disconnect: %v", i, err)
		}
		total = append(total, end.Sub(start))
		kernel = append(kernel, write)
		overhead = append(overhead, end.Sub(start)-write)
		aroundWrite = append(aroundWrite, connected.Sub(start)-write)
		resolveWait = append(resolveWait, end.Sub(connected))
		adopt = append(adopt, lookupStart.Sub(adoptStart))
		lookup = append(lookup, scanStart.Sub(lookupStart))
		scan = append(scan, scanEnd.Sub(scanStart))
	}
	t.Logf("LAB-TIMING connect-to-device rounds=%d median_total=%s median_kernel_write=%s median_overhead=%s "+
		"(connect_around_write=%s resolve_wait=%s) median_adopting_connect=%s median_resolve_lookup=%s median_controllers_scan=%s",
		rounds, median(total), median(kernel), median(overhead), median(aroundWrite), median(resolveWait),
		median(adopt), median(lookup), median(scan))
	t.Logf("LAB-TIMING overhead per round: %v", overhead)
	// The 20 ms goal is reported, not enforced: under TCG on a busy host
	// every system call of the guest costs several times what it does on
	// hardware. What is enforced is a ratio within this run, which load
	// scales alike on both sides: our code must cost less than the kernel's
	// own connect. A backoff sleep or a full-host rescan creeping into the
	// path would break it at any speed.
	ours := median(adopt) + median(lookup)
	t.Logf("LAB-TIMING goal our_code_median=%s goal=20ms met=%v", ours, ours <= 20*time.Millisecond)
	if k := median(kernel); ours > k {
		t.Errorf("median cost of our code %s (an adopting connect + one lookup) exceeds the kernel's connect %s", ours, k)
	}
}

func kernelWriteTime(lines []map[string]any) (time.Duration, bool) {
	for _, l := range lines {
		if ms, ok := l["kernel_write_ms"].(float64); ok {
			return time.Duration(ms * float64(time.Millisecond)), true
		}
	}
	return 0, false
}

func median(ds []time.Duration) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[len(s)/2]
}

// mountExt4 makes an ext4 file system on dev and mounts it for the test.
