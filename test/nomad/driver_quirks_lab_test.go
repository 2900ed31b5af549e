//go:build lab

package nomade2e

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/nvmeof/nvmeof/csi/nomadvolume"
	"github.com/nvmeof/nvmeof/test/lab/labtarget"
	"github.com/nvmeof/nvmeof/test/nomad/nomadclient"
)

// The quirks of Nomad's client that the plugin must survive, each a
// step of the story with its own check (NOMAD-CLIENT.md sections named).

// twoReaders: two allocations of one volume with one usage on one node:
// the second finds the staging dir mounted and skips NodeStage (§3.4).
func (d *driverStory) twoReaders() {
	t, s := d.t, d.s
	s.step("two allocations, one volume: one NodeStage (§3.4)")
	mark := d.c.Calls.Len()
	readers := d.run(d.job("testdata/readers.nomad.hcl", map[string]string{"volume_id": volumeID}))
	d.expectCalls(mark, "NodeStageVolume OK", "NodePublishVolume OK", "NodePublishVolume OK")
	n := 0
	for _, r := range readers {
		n = waitReaderLines(t, r)
	}
	d.readers = readers
	s.done("the second allocation found the staging dir a mount point: NodeStage once, NodePublish twice; both read %d lines", n)
}

// clientRestart: the restarted client restores both readers without an
// RPC (their targets are mounted) and with an empty usage tracker, so
// stopping the first sends NodeUnstage while the second still uses the
// volume (Nomad issue 25813; §3.4, §4).
func (d *driverStory) clientRestart() {
	t, s := d.t, d.s
	s.step("client restart: volumes restored without an RPC, usage tracker empty (§4)")
	mark := d.c.Calls.Len()
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	if err := d.c.Restart(ctx); err != nil {
		t.Fatal(err)
	}
	if err := d.c.WaitPluginHealthy(ctx, pluginID); err != nil {
		t.Fatal(err)
	}
	d.expectCalls(mark)
	fingerprinted := len(nomadclient.Methods(d.c.Calls.Since(mark), "GetPluginCapabilities", "NodeGetInfo")) == 2
	if !fingerprinted {
		t.Fatal("the restarted client did not fingerprint the plugin anew")
	}
	s.done("new CSI manager, fingerprinted anew; both readers' targets still mounted: no claim, no mount RPC")

	d.earlyUnstage("NodeUnstage while another allocation has the volume published (#25813)", d.readers)
}

// mountOptionsTracker: a group volume with mount_options gives every
// allocation its own options pointer, which Nomad's usage tracker keys
// on: the same early NodeUnstage without any restart (§3.4).
func (d *driverStory) mountOptionsTracker() {
	t, s := d.t, d.s
	s.step("mount_options split the usage tracker (§3.4)")
	mark := d.c.Calls.Len()
	readers := d.run(d.job("testdata/readers-flags.nomad.hcl", map[string]string{"volume_id": volumeID}))
	d.expectCalls(mark, "NodeStageVolume OK", "NodePublishVolume OK", "NodePublishVolume OK")
	for _, r := range readers {
		waitReaderLines(t, r)
	}
	s.done("two readers with mount_options { mount_flags = [\"noatime\"] }: one staging mount, two tracker keys")
	d.earlyUnstage("the first reader's stop unstages early (#25813 through mount_options)", readers)
}

// earlyUnstage stops the first of two readers: Nomad sends NodeUnstage
// although the second still has the volume published. The plugin must
// refuse (FailedPrecondition naming the target), the published target
// must keep serving I/O, and once the second reader is gone the unstage
// (retried by the client) must succeed and release everything.
func (d *driverStory) earlyUnstage(title string, readers []*nomadclient.Alloc) {
	t, s := d.t, d.s
	s.step(title)
	ctrl := nvmeController(t)
	_, second, _ := readers[1].HostTarget("data")
	mark := d.c.Calls.Len()
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	readers[0].Stop()
	if err := readers[0].WaitDone(ctx); err != nil {
		t.Fatal(err)
	}
	calls := nomadclient.Methods(d.c.Calls.Since(mark), "NodeUnpublishVolume", "NodeUnstageVolume")
	if len(calls) != 2 || calls[0].Method != "NodeUnpublishVolume" || calls[0].Err != nil || calls[1].Method != "NodeUnstageVolume" {
		t.Fatalf("first reader stopped: %v", calls)
	}
	// Issue 9: the plugin refuses an unstage whose staging mount still
	// feeds a published target, and names the target.
	refused := status.Code(calls[1].Err) == codes.FailedPrecondition && strings.Contains(calls[1].Err.Error(), filepath.Base(filepath.Dir(filepath.Dir(second))))
	if !refused {
		s.errorf("NodeUnstage while %s is published answered %v; the plugin must refuse it with FailedPrecondition naming the target (issue 9)", second, calls[1].Err)
	}
	head, err := directRead(filepath.Join(second, "log"))
	if err != nil || !strings.HasPrefix(head, "line 1 ") {
		t.Fatalf("the published target stopped serving I/O after the early unstage: %q, %v", head, err)
	}
	if st, err := os.ReadFile(filepath.Join("/sys/class/nvme", ctrl, "state")); err != nil || strings.TrimSpace(string(st)) != "live" {
		t.Fatalf("controller %s after the early unstage: %q, %v", ctrl, st, err)
	}
	waitReaderLines(t, readers[1])

	mark = d.c.Calls.Len()
	readers[1].Stop()
	if err := readers[1].WaitDone(ctx); err != nil {
		t.Fatal(err)
	}
	if err := readers[0].WaitUnmountRetries(ctx); err != nil {
		t.Fatal(err)
	}
	retried := len(nomadclient.Methods(d.c.Calls.Since(mark), "NodeUnstageVolume"))
	outcome := "released the volume: controller disconnected, no mount"
	if err := d.released(volumeID, labtarget.SubsystemTwo); err != nil {
		s.errorf("after the last reader stopped: %v (issue 9: the early unstage must not forget the volume)", err)
		outcome = "LEFT BEHIND: " + err.Error()
		disconnectAll(t, labtarget.SubsystemTwo)
	}
	verdict := "refused with FailedPrecondition naming the published target"
	if !refused {
		verdict = "NOT REFUSED (" + codeOf(calls[1].Err) + ")"
	}
	s.done("%s; the other target kept serving direct reads; after the last reader, %d NodeUnstage call(s) (the client's retries included) %s",
		verdict, retried, outcome)
}

// perAllocBlock: per_alloc block volumes; the brackets of scratch[N] in
// every path, the target a file the plugin creates (Nomad creates only
// its parent, §2), each allocation on its own namespace.
func (d *driverStory) perAllocBlock() {
	t, s := d.t, d.s
	s.step("per_alloc block volumes: scratch[0], scratch[1] (§2)")
	uuids := []string{labtarget.OneNS1UUID, labtarget.OneNS2UUID}
	for i, uuid := range uuids {
		id := fmt.Sprintf("scratch[%d]", i)
		src := fmt.Sprintf("id = %q\ntype = \"csi\"\nplugin_id = %q\nexternal_id = \"%s/uuid:%s\"\ncapability {\n  access_mode = \"single-node-writer\"\n  attachment_mode = \"block-device\"\n}\n"+
			"context {\n  traddr = %q\n  nqn = %q\n  nsid = %q\n  uuid = %q\n  reconnect_delay = \"2\"\n}\n",
			id, pluginID, labtarget.SubsystemOne, uuid, labtarget.TrAddr, labtarget.SubsystemOne, strconv.Itoa(i+1), uuid)
		spec, err := nomadvolume.Parse([]byte(src), id+".hcl")
		if err != nil {
			t.Fatal(err)
		}
		if err := d.server.Register(spec.Volume); err != nil {
			t.Fatal(err)
		}
	}
	mark := d.c.Calls.Len()
	allocs := d.run(d.job("testdata/scratch.nomad.hcl", nil))
	stages := nomadclient.Methods(d.c.Calls.Since(mark), "NodeStageVolume", "NodePublishVolume")
	if len(stages) != 4 {
		t.Fatalf("mount RPCs %v", stages)
	}
	var targets []string
	for _, a := range allocs {
		id, target, ok := a.HostTarget("scratch")
		want := fmt.Sprintf("scratch[%d]", a.Index)
		if !ok || id != want || !strings.Contains(target, "/"+want+"/") {
			t.Fatalf("allocation %d: volume %s at %s", a.Index, id, target)
		}
		eventually(t, time.Minute, "scratch task reads back", func() (bool, error) {
			l, err := lastMatch(a.ID, "fill", "read ")
			return l == fmt.Sprintf("alloc %d", a.Index), fmt.Errorf("read %q: %w", l, err)
		})
		if err := sameNamespace(target, uuids[a.Index]); err != nil {
			t.Fatalf("allocation %d: %v", a.Index, err)
		}
		targets = append(targets, target)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	mark = d.c.Calls.Len()
	if err := d.c.StopJob(ctx, "nvme-scratch"); err != nil {
		t.Fatal(err)
	}
	for _, c := range nomadclient.Methods(d.c.Calls.Since(mark), "NodeUnpublishVolume", "NodeUnstageVolume") {
		if c.Err != nil {
			s.errorf("%s: %v", c, c.Err)
		}
	}
	for _, target := range targets {
		if _, err := os.Stat(target); !errors.Is(err, os.ErrNotExist) {
			s.errorf("target %s left: %v", target, err)
		}
	}
	if err := d.released("scratch[0]", labtarget.SubsystemOne); err != nil {
		t.Fatal(err)
	}
	s.done("paths with brackets; each allocation wrote its index through a device-node target onto its own namespace (uuid checked); released")
}

// released reports what is left of a volume on the server and the node.
func (d *driverStory) released(volume, nqn string) error {
	if claims := d.server.Claims("default", volume); len(claims) != 0 {
		return fmt.Errorf("claims left on %s: %v", volume, claims)
	}
	states, err := controllerStates(nqn)
	if err != nil {
		return err
	}
	if len(states) != 0 {
		return fmt.Errorf("controllers of %s left: %v", nqn, states)
	}
	mounts, err := nvmeMounts()
	if err != nil {
		return err
	}
	if len(mounts) != 0 {
		return fmt.Errorf("NVMe mounts left: %v", mounts)
	}
	return nil
}

// waitReaderLines waits for a reader to report the log's line count.
func waitReaderLines(t *testing.T, r *nomadclient.Alloc) int {
	t.Helper()
	var n int
	eventually(t, time.Minute, "reader "+r.ID[:8]+" reads", func() (bool, error) {
		l, err := lastMatch(r.ID, "reader", "lines ")
		if err != nil {
			return false, err
		}
		n, err = strconv.Atoi(l)
		return err == nil && n > 0, fmt.Errorf("lines %q: %w", l, err)
	})
	return n
}

// directRead reads the first block of a file with O_DIRECT: through the
// page cache nothing would show that the device still answers.
func directRead(path string) (string, error) {
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_DIRECT, 0)
	if err != nil {
		return "", fmt.Errorf("open %s: %w", path, err)
	}
	defer func() { _ = f.Close() }()
	buf, err := unix.Mmap(-1, 0, 4096, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_ANON|unix.MAP_PRIVATE)
	if err != nil {
		return "", fmt.Errorf("aligned buffer: %w", err)
	}
	defer func() { _ = unix.Munmap(buf) }()
	n, err := f.Read(buf)
	if err != nil {
		return "", fmt.Errorf("direct read of %s: %w", path, err)
	}
	return string(buf[:n]), nil
}

// sameNamespace checks that a block target is the device of the namespace
// with that uuid, from sysfs.
func sameNamespace(target, uuid string) error {
	var st syscall.Stat_t
	if err := syscall.Stat(target, &st); err != nil {
		return fmt.Errorf("stat %s: %w", target, err)
	}
	if st.Mode&syscall.S_IFMT != syscall.S_IFBLK {
		return fmt.Errorf("%s is not a block device (mode %o)", target, st.Mode)
	}
	dev := fmt.Sprintf("/sys/dev/block/%d:%d/uuid", unix.Major(st.Rdev), unix.Minor(st.Rdev))
	b, err := os.ReadFile(dev)
	if err != nil {
		return fmt.Errorf("namespace of %s: %w", target, err)
	}
	if got := strings.TrimSpace(string(b)); got != uuid {
		return fmt.Errorf("%s is namespace %s, want %s", target, got, uuid)
	}
	return nil
}
