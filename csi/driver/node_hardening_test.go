package driver_test

// Ways the node service could format, disconnect, report or wait for the
// wrong thing, found by an adversarial review of the issue-9 work; each
// test failed before its fix.

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"github.com/hashicorp/go-hclog"
	"google.golang.org/grpc/codes"
	utilexec "k8s.io/utils/exec"

	"github.com/nvmeof/nvmeof/csi/driver"
	"github.com/nvmeof/nvmeof/shared/nvme"
	"github.com/nvmeof/nvmeof/shared/nvme/kernel"
)

// driverWith builds a driver over e's node like e.newDriver, after edit
// has changed the configuration.
func (e *env) driverWith(edit func(*driver.Config)) *driver.Driver {
	e.t.Helper()
	cfg := driver.Config{
		DriverName: driver.DefaultDriverName, Version: "v0.0.0-test", NodeID: testHost.NQN, Host: testHost,
		StateDir: filepath.Join(e.root, "state"), MaxVolumes: 16, OperationTimeout: e.opTimeout, NamespaceTimeout: 500 * time.Millisecond,
		Connector: e.fake.Connector, Mounter: e.mounter, Exec: e.exec,
		KernelCheck: func() error { return e.kernelErr },
		Logger:      hclog.New(&hclog.LoggerOptions{Level: hclog.Trace, Output: e.log}),
		Metrics:     e.metrics,
	}
	edit(&cfg)
	d, err := driver.New(cfg)
	if err != nil {
		e.t.Fatal(err)
	}
	return d
}

// gatedExec holds the first blkid run until release is closed, as a blkid
// that is slow (a large device) or stuck (I/O queued on a reconnecting
// controller) would.
type gatedExec struct {
	utilexec.Interface
	once    sync.Once
	entered chan struct{}
	release chan struct{}
}

func newGatedExec(inner utilexec.Interface) *gatedExec {
	return &gatedExec{Interface: inner, entered: make(chan struct{}), release: make(chan struct{})}
}

func (g *gatedExec) Command(cmd string, args ...string) utilexec.Cmd {
	if cmd == "blkid" {
		first := false
		g.once.Do(func() { first = true })
		if first {
			close(g.entered)
			<-g.release
		}
	}
	return g.Interface.Command(cmd, args...)
}

// R1. Two volumes that name one namespace, one staged as a raw block
// device and one as a file system, arriving together: planStage's "is it
// in use?" looks at the mount table and the stage records outside any
// lock the other stage takes, and the record is written only after the
// plan. While the file-system stage runs blkid, the block stage passes
// its check (no mount, no record yet) and binds the device; then the
// file-system stage formats the device the block volume now exposes.
func TestConcurrentBlockAndFileSystemStagesOfOneNamespace(t *testing.T) {
	e := newEnv(t)
	gate := newGatedExec(e.exec)
	e.drv = e.driverWith(func(c *driver.Config) { c.Exec = gate })
	done := make(chan error, 1)
	go func() {
		done <- e.stageAt("fs-view", testNQN, "1", e.path("staging", "fs-view"), mountCap("ext4", rwo), nil)
	}()
	select {
	case <-gate.entered: // the file-system stage is deciding whether the device is blank
	case err := <-done:
		t.Fatalf("the file-system stage ended before it ran blkid: %v", err)
	}
	blockErr := e.stageAt("raw-view", testNQN, "1", e.path("staging", "raw-view"), blockCap(), nil)
	close(gate.release)
	fsErr := <-done
	if blockErr == nil && fsErr == nil {
		t.Fatalf("both stages of namespace 1 succeeded: it is bound raw at %v and formatted (mkfs ran %d times) and mounted at %v",
			e.mountedAt(filepath.Join(e.path("staging", "raw-view"), "block")), e.exec.Ran("mkfs.ext4"), e.mountedAt(e.path("staging", "fs-view")))
	}
}

// adminRace is the kernel connector's view of an admin's `nvme connect`
// landing between the plugin's Find and its own connect (or during the
// connector's retry backoff, which can last the whole operation bound):
// the real Connect then finds the admin's controller (or gets EALREADY
// from the kernel) and adopts it, and returns it exactly as it returns a
// controller it created.
type adminRace struct {
	kernel.Connector
	admin nvme.ValidConnection
	once  sync.Once
}

func (c *adminRace) Create(ctx context.Context, vc nvme.ValidConnection) (kernel.Controller, error) {
	var err error
	c.once.Do(func() { _, err = c.Connect(ctx, c.admin) })
	if err != nil {
		return kernel.Controller{}, err
	}
	return c.Connector.Create(ctx, vc) //nolint:wrapcheck // a test double passing through
}

// R2. The record of a "create" says the plugin created whatever Connect
// returned, though Connect may have adopted a controller someone else
// made: the admin's controller is then disconnected at the next unstage.
func TestCreateNeverClaimsAnAdoptedController(t *testing.T) {
	e := newEnv(t)
	race := &adminRace{Connector: e.fake.Connector, admin: connection(t, testNQN)}
	e.drv = e.driverWith(func(c *driver.Config) { c.Connector = race })
	staging := e.path("staging", "vol")
	if err := e.stageAt("vol", testNQN, "1", staging, mountCap("ext4", rwo), nil); err != nil {
		t.Fatal(err)
	}
	if connects, _ := e.fake.Counts(); connects != 1 {
		t.Fatalf("%d controllers created, want the admin's only", connects)
	}
	if err := e.unstageAt("vol", staging); err != nil {
		t.Fatal(err)
	}
	if n := e.controllers(); n != 1 {
		t.Fatalf("unstage disconnected the controller the admin connected (%d left)", n)
	}
}

// R3. A partition of a namespace is a user of its controller: mounting
// /dev/nvmeXnYp1 shows the partition's device, not the namespace's, in
// the mount table, and neither the disconnect decision nor the block
// stage's "file system in use?" check counts it.
func TestPartitionMountsAreUsers(t *testing.T) {
	t.Run("unstage keeps the controller", func(t *testing.T) {
		e := newEnv(t)
		staging := e.path("staging", "a")
		if err := e.stageAt("a", testNQN, "1", staging, mountCap("ext4", rwo), nil); err != nil {
			t.Fatal(err)
		}
		part := e.fake.AddPartition(filepath.Base(e.devicePath(testNQN, 2))) // namespace 2 of the same controller, partitioned
		if err := e.mounter.Mount(part, e.path("admin", "data"), "ext4", nil); err != nil {
			t.Fatal(err)
		}
		if err := e.unstageAt("a", staging); err != nil {
			t.Fatal(err)
		}
		if n := e.controllers(); n != 1 {
			t.Fatalf("unstage disconnected the controller under a mounted partition of namespace 2 (%d left)", n)
		}
	})
	t.Run("no raw block stage beside a mounted partition", func(t *testing.T) {
		e := newEnv(t)
		if err := e.stageAt("a", testNQN, "1", e.path("staging", "a"), mountCap("ext4", rwo), nil); err != nil {
			t.Fatal(err)
		}
		part := e.fake.AddPartition(filepath.Base(e.devicePath(testNQN, 2)))
		if err := e.mounter.Mount(part, e.path("admin", "data"), "ext4", nil); err != nil {
			t.Fatal(err)
		}
		err := e.stageAt("raw", testNQN, "2", e.path("staging", "raw"), blockCap(), nil)
		wantCode(t, err, codes.FailedPrecondition)
	})
}

// R4. NodeStage of a read-only block volume binds a writable device node:
// NodePublish refuses read-only block, NodeStage should too (the same
// InvalidArgument), before connecting anything.
func TestReadOnlyBlockStageRefused(t *testing.T) {
	e := newEnv(t)
	vc := blockCap()
	vc.AccessMode.Mode = csi.VolumeCapability_AccessMode_SINGLE_NODE_READER_ONLY
	err := e.stageAt("vol", testNQN, "1", e.path("staging", "vol"), vc, nil)
	wantCode(t, err, codes.InvalidArgument)
	if n := e.controllers(); n != 0 {
		t.Errorf("%d controllers connected for a refused stage", n)
	}
}

// R5. A repeated NodeStage of a staged volume must be answered OK during
// an outage (item 6); with traddr a host name the handler resolves it
// before it looks at the mount table, so a DNS outage fails the repeat.
func TestRestageDuringDNSOutage(t *testing.T) {
	e := newEnv(t)
	e.fake.SetHostAddr("array.example", "127.0.0.1")
	staging := e.path("staging", "vol")
	byName := map[string]string{"traddr": "array.example"}
	if err := e.stageAt("vol", testNQN, "1", staging, mountCap("ext4", rwo), byName); err != nil {
		t.Fatal(err)
	}
	e.fake.SetHostAddr("array.example") // the resolver fails: DNS is down
	if err := e.stageAt("vol", testNQN, "1", staging, mountCap("ext4", rwo), byName); err != nil {
		t.Fatalf("repeated stage of a staged volume during a DNS outage: %v", err)
	}
}

// R6. Every node RPC has a plugin-side bound (item 12), but the head
// read and the first blkid of planUnused run in the handler's goroutine
// with no context: a device whose I/O is queued (the controller went to
// "connecting" after waitLive, with ctrl_loss_tmo=-1) hangs NodeStage,
// which Nomad sends with no deadline, for as long as the outage lasts.
func TestStageBoundedWhileTheDeviceHangs(t *testing.T) {
	const hang = 30 * time.Second // a detector of a hang, far above the 200 ms bound
	// format_policy never ends the stage at the plan once the device reads:
	// nothing runs on in the background after the test.
	never := map[string]string{"format_policy": "never"}
	t.Run("head read", func(t *testing.T) {
		e := newEnv(t)
		e.opTimeout = 200 * time.Millisecond
		e.drv = e.newDriver()
		if _, err := e.fake.Connect(context.Background(), connection(t, testNQN)); err != nil {
			t.Fatal(err)
		}
		// The device node blocks its reader, as a block device does while
		// its controller reconnects.
		dev := e.devicePath(testNQN, 1)
		if err := os.Remove(dev); err != nil {
			t.Fatal(err)
		}
		if err := syscall.Mkfifo(dev, 0o600); err != nil {
			t.Fatal(err)
		}
		done := make(chan error, 1)
		go func() {
			done <- e.stageAt("vol", testNQN, "1", e.path("staging", "vol"), mountCap("ext4", rwo), never)
		}()
		t.Cleanup(func() { unblockFIFO(t, dev, done) })
		select {
		case err := <-done:
			done <- err
			if c := codeOf(err); c != codes.DeadlineExceeded && c != codes.Unavailable {
				t.Errorf("stage: %v, want DeadlineExceeded or Unavailable", err)
			}
		case <-time.After(hang):
			t.Errorf("NodeStage still running %v after its %v bound: it waits on the device", hang, e.opTimeout)
		}
	})
	t.Run("blkid", func(t *testing.T) {
		e := newEnv(t)
		e.opTimeout = 200 * time.Millisecond
		gate := newGatedExec(e.exec)
		e.drv = e.driverWith(func(c *driver.Config) { c.Exec = gate })
		done := make(chan error, 1)
		go func() {
			done <- e.stageAt("vol", testNQN, "1", e.path("staging", "vol"), mountCap("ext4", rwo), never)
		}()
		t.Cleanup(func() { close(gate.release); <-done })
		select {
		case <-gate.entered:
		case err := <-done:
			// On a loaded machine the bound may end before blkid: the
			// stage still returned within it, saying why.
			done <- err
		}
		select {
		case err := <-done:
			done <- err
			if c := codeOf(err); c != codes.DeadlineExceeded && c != codes.Unavailable {
				t.Errorf("stage: %v, want DeadlineExceeded or Unavailable", err)
			}
		case <-time.After(hang):
			t.Errorf("NodeStage still running %v after its %v bound: it waits for blkid", hang, e.opTimeout)
		}
	})
}

// unblockFIFO lets a reader stuck on the FIFO at dev go on, puts a plain
// (blank) file in its place, and waits for the stage to end.
func unblockFIFO(t *testing.T, dev string, done chan error) {
	t.Helper()
	w, err := os.OpenFile(dev, os.O_RDWR, 0) // never blocks on a FIFO; frees a reader waiting in open
	if err != nil {
		t.Error(err)
		return
	}
	if err := os.Remove(dev); err != nil {
		t.Error(err)
	}
	if err := os.WriteFile(dev, make([]byte, 1<<20), 0o600); err != nil {
		t.Error(err)
	}
	_ = w.Close() // the reader sees EOF
	<-done
}

// R7. A stage record set aside as corrupt (item 9) leaves its volume
// stuck: unstage answers FailedPrecondition ("which this plugin did not
// stage there") for ever, so Nomad retries it for a day and the staging
// mount and the controller stay. The set-aside file is named by the hash
// of (volume, staging path): it proves the plugin did stage this volume
// there, and the mount table says what to unmount.
func TestUnstageAfterItsRecordWasSetAside(t *testing.T) {
	e := newEnv(t)
	staging := e.path("staging", "vol")
	if err := e.stageAt("vol", testNQN, "1", staging, mountCap("ext4", rwo), nil); err != nil {
		t.Fatal(err)
	}
	recs, err := filepath.Glob(e.path("state", "volumes", "*.json"))
	if err != nil || len(recs) != 1 {
		t.Fatalf("stage records: %v, %v", recs, err)
	}
	if err := os.WriteFile(recs[0], []byte(`{"VolumeID": "vol", "Stag`), 0o600); err != nil { // torn by a bad disk
		t.Fatal(err)
	}
	if err := e.drv.Reconcile(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := e.unstageAt("vol", staging); err != nil {
		t.Fatalf("unstage of a volume whose record was set aside: %v", err)
	}
	if m := e.mountedAt(staging); len(m) != 0 {
		t.Errorf("staging path still holds %v", m)
	}
	if n := e.controllers(); n != 0 {
		t.Errorf("%d controllers left", n)
	}
}

// R10. Start-up reconciliation re-applies a controller record's
// reconnection parameters before it asks whether the plugin owns the
// controller or any stage uses it: an admin's controller that a stage
// once adopted has its settings overwritten at every plugin start, long
// after the last volume on it was unstaged.
func TestReconcileLeavesAnAdminsControllerAlone(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	if _, err := e.fake.Connect(ctx, connection(t, testNQN)); err != nil { // an admin's nvme connect
		t.Fatal(err)
	}
	staging := e.path("staging", "vol")
	if err := e.stageAt("vol", testNQN, "1", staging, mountCap("ext4", rwo), map[string]string{"ctrl_loss_tmo": "60"}); err != nil {
		t.Fatal(err)
	}
	if err := e.unstageAt("vol", staging); err != nil {
		t.Fatal(err)
	}
	cs, err := e.fake.Controllers()
	if err != nil || len(cs) != 1 {
		t.Fatalf("controllers: %v, %v", cs, err)
	}
	theirs := nvme.ConnectionConfig{CtrlLossTmo: 600, ReconnectDelay: 10} // the admin tunes their controller back
	if err := e.fake.UpdateReconnectParams(cs[0], theirs); err != nil {
		t.Fatal(err)
	}
	e.drv = e.newDriver()
	if err := e.drv.Reconcile(ctx); err != nil {
		t.Fatal(err)
	}
	cs, err = e.fake.Controllers()
	if err != nil || len(cs) != 1 {
		t.Fatalf("controllers: %v, %v", cs, err)
	}
	if cs[0].CtrlLossTmo != 600 || cs[0].ReconnectDelay != 10 {
		t.Fatalf("reconciliation rewrote the admin's controller: ctrl_loss_tmo %d, reconnect_delay %d", cs[0].CtrlLossTmo, cs[0].ReconnectDelay)
	}
}

// R11. The fake connector's adoption still tunes two of the three
// reconnection parameters (the "one shape" item): a stage that
// adopts a controller with fast_io_fail_tmo gets it from the real
// connector (adopt -> writeReconnectParams), not from the fake, so driver
// tests cannot see what the kernel would hold.
func TestFakeAdoptionTunesFastIOFail(t *testing.T) {
	e := newEnv(t)
	if _, err := e.fake.Connect(context.Background(), connection(t, testNQN)); err != nil {
		t.Fatal(err)
	}
	if err := e.stageAt("vol", testNQN, "1", e.path("staging", "vol"), mountCap("ext4", rwo), map[string]string{"fast_io_fail_tmo": "4"}); err != nil {
		t.Fatal(err)
	}
	cs, err := e.fake.Controllers()
	if err != nil || len(cs) != 1 {
		t.Fatalf("controllers: %v, %v", cs, err)
	}
	if cs[0].FastIOFailTmo != 4 {
		t.Fatalf("adopted controller has fast_io_fail_tmo %d, the stage asked for 4", cs[0].FastIOFailTmo)
	}
}

// R12. A controller record set aside as corrupt (item 9) turns the
// plugin's own controller, which staged volumes use, into "connected
// outside the plugin": a sibling stage with the very settings of the
// staged volume is refused, and the error tells the operator to
// `nvme disconnect` the controller a mounted volume runs on. The staged
// volumes' records hold those settings; they prove them.
func TestCorruptControllerRecordKeepsSiblingsStaging(t *testing.T) {
	e := newEnv(t)
	fixed := map[string]string{"nr_io_queues": "2"}
	if err := e.stageAt("a", testNQN, "1", e.path("staging", "a"), mountCap("ext4", rwo), fixed); err != nil {
		t.Fatal(err)
	}
	recs, err := filepath.Glob(e.path("state", "controllers", "*.json"))
	if err != nil || len(recs) != 1 {
		t.Fatalf("controller records: %v, %v", recs, err)
	}
	if err := os.WriteFile(recs[0], []byte("{\"Key\": "), 0o600); err != nil {
		t.Fatal(err)
	}
	err = e.stageAt("b", testNQN, "2", e.path("staging", "b"), mountCap("ext4", rwo), fixed)
	if err != nil {
		t.Fatalf("stage with the settings of staged volume a, refused after the controller record was set aside: %v", err)
	}
}

// R13. A block volume whose controller the kernel deleted (ctrl_loss_tmo
// ran out) can never be unstaged. devtmpfs removes the node, and the bind
// at <staging>/block then shows in /proc/self/mountinfo with the root
// "/nvme0n1//deleted" (dentry_path of an unlinked dentry). ProcMountTable
// no longer takes it for a device node, so the entry keeps devtmpfs's own
// device number, 0:5; checkUnused's sameMount compares device numbers and
// finds the same 0:5 at /dev, and NodeUnstage answers FailedPrecondition
// "also mounted at /dev, which this plugin did not mount: unmount it
// first" on every one of Nomad's retries.
func TestUnstageBlockVolumeAfterItsDeviceWasDeleted(t *testing.T) {
	e := newEnv(t)
	staging := e.path("staging", "vol")
	if err := e.stageAt("vol", testNQN, "1", staging, blockCap(), nil); err != nil {
		t.Fatal(err)
	}
	cs, err := e.fake.Controllers()
	if err != nil || len(cs) != 1 {
		t.Fatalf("controllers: %v, %v", cs, err)
	}
	if err := e.fake.Disconnect(context.Background(), cs[0]); err != nil { // the kernel gave up on it
		t.Fatal(err)
	}
	// What the host's mountinfo then says (lines as the lab VM writes them).
	info := filepath.Join(t.TempDir(), "mountinfo")
	lines := fmt.Sprintf("21 1 0:19 / / rw,relatime shared:1 - rootfs rootfs rw\n"+
		"24 21 0:5 / /dev rw,relatime shared:4 - devtmpfs udev rw,size=493364k,nr_inodes=123341,mode=755\n"+
		"43 21 0:5 /nvme0n1//deleted %s rw,relatime shared:4 - devtmpfs udev rw,size=493364k,nr_inodes=123341,mode=755\n",
		filepath.Join(staging, "block"))
	if err := os.WriteFile(info, []byte(lines), 0o600); err != nil {
		t.Fatal(err)
	}
	e.drv = e.driverWith(func(c *driver.Config) {
		c.MountTable = driver.ProcMountTable{Path: info, DevDir: e.fake.DevRoot()}
	})
	if err := e.unstageAt("vol", staging); err != nil {
		t.Fatalf("unstage of a block volume whose device the kernel deleted: %v", err)
	}
}

// R14. A record that cannot be read, as opposed to parsed (EISDIR here;
// EIO from a bad sector, EACCES after a bad restore), still stops every
// NodeStage on the node with Internal: stages() reads the whole directory
// and returns the first read error (item 9).
func TestUnreadableRecordDoesNotStopEveryStage(t *testing.T) {
	e := newEnv(t)
	if err := os.Mkdir(e.path("state", "volumes", "0123456789abcdef01234567.json"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := e.stageAt("vol", testNQN, "1", e.path("staging", "vol"), mountCap("ext4", rwo), nil); err != nil {
		t.Fatalf("stage beside an unreadable record: %v", err)
	}
}

// flakyNamespaces fails the listing of a controller's namespaces, as a
// sysfs read that returns EIO does.
type flakyNamespaces struct {
	kernel.Connector
	fail atomic.Bool
}

func (c *flakyNamespaces) Namespaces(ctrl kernel.Controller) ([]kernel.Namespace, error) {
	if c.fail.Load() {
		return nil, &os.PathError{Op: "read", Path: "/sys/class/nvme/" + ctrl.Name + "/nvme0c0n2/dev", Err: syscall.EIO}
	}
	return c.Connector.Namespaces(ctrl)
}

// Item 7 has no unit test in the reviewed suite (the lab test proves a
// mount through another node name, not a failed lookup). This one passes
// on the reviewed commit: a read error keeps the controller and fails the
// unstage, whose retry then completes.
func TestItem7FailsClosedOnSysfsReadError(t *testing.T) {
	e := newEnv(t)
	flaky := &flakyNamespaces{Connector: e.fake.Connector}
	e.drv = e.driverWith(func(c *driver.Config) { c.Connector = flaky })
	e.stage("a", testNQN, "1", mountCap("", rwo))
	e.stage("b", testNQN, "2", mountCap("", rwo))
	flaky.fail.Store(true)
	err := e.unstageAt("a", e.path("staging", "a"))
	if err == nil || !strings.Contains(err.Error(), "stays connected") {
		t.Fatalf("unstage during a sysfs read error: %v, want an error saying the controller stays", err)
	}
	if n := e.controllers(); n != 1 {
		t.Fatal("the controller b is mounted through was disconnected during a read error")
	}
	flaky.fail.Store(false)
	if err := e.unstageAt("a", e.path("staging", "a")); err != nil {
		t.Fatal(err)
	}
	if n := e.controllers(); n != 1 {
		t.Fatal("the retried unstage disconnected the controller b is mounted through")
	}
}

// R15 (main's a4e5210). A format record outlives the format it was
// written for: a mkfs that failed (or was killed) leaves it, and it never
// expires and is tied to nothing on the device. Any later file-system
// stage of that namespace on this node, for any volume, then formats a
// head that holds data, although item 1 lets only the volume context
// (format_policy) license that. Here another host fills the namespace
// with raw data after the failed attempt, and this node destroys it.
func TestFormatRecordIsNoLicenceToFormatRawData(t *testing.T) {
	e := newEnv(t)
	e.exec.FailTool("mkfs.ext4", 1)
	if err := e.stageAt("vol", testNQN, "1", e.path("staging", "vol"), mountCap("ext4", rwo), nil); err == nil {
		t.Fatal("stage with a failing mkfs succeeded")
	}
	e.exec.FailTool("mkfs.ext4", 0)
	if n := e.controllers(); n != 0 {
		t.Fatalf("%d controllers after the failed stage", n)
	}

	// Another host (or an operator with dd) writes raw data to namespace 1.
	ctrl, err := e.fake.Connect(context.Background(), connection(t, testNQN))
	if err != nil {
		t.Fatal(err)
	}
	dev := e.devicePath(testNQN, 1)
	f, err := os.OpenFile(dev, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt(rawData, 0); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	if err := e.fake.Disconnect(context.Background(), ctrl); err != nil {
		t.Fatal(err)
	}

	err = e.stageAt("other", testNQN, "1", e.path("staging", "other"), mountCap("ext4", rwo), nil)
	wantCode(t, err, codes.FailedPrecondition)
	if n := e.exec.Ran("mkfs.ext4"); n != 1 {
		t.Errorf("mkfs ran %d times; the only run was the failed one", n)
	}
	if _, err := e.fake.Connect(context.Background(), connection(t, testNQN)); err != nil {
		t.Fatal(err)
	}
	if got := readHead(t, e.devicePath(testNQN, 1), len(rawData)); !bytes.Equal(got, rawData) {
		t.Fatalf("the raw data was overwritten: %q", got)
	}
}

// NodeExpandVolume grows only the volume's own file system: a volume_path
// holding another volume's device is refused.
func TestExpandRefusesAnotherVolumesPath(t *testing.T) {
	e := newEnv(t)
	e.stage("mine", testNQN, "1", mountCap("", rwo))
	e.stage("theirs", testNQN, "2", mountCap("", rwo))
	_, err := e.drv.NodeExpandVolume(context.Background(), &csi.NodeExpandVolumeRequest{VolumeId: "mine", VolumePath: e.path("staging", "theirs")})
	wantCode(t, err, codes.FailedPrecondition)
	if n := e.exec.Ran("resize2fs"); n != 0 {
		t.Errorf("resize2fs ran %d times on another volume", n)
	}
}

// A read-only stage must never write: ro alone lets ext4 replay a dirty
// journal. A second usage of a file system mounted elsewhere is a bind of
// that mount, never a second mount of the device (which fails when the
// read-only state differs).
func TestReadOnlyStagesNeverWrite(t *testing.T) {
	e := newEnv(t)
	ro := csi.VolumeCapability_AccessMode_SINGLE_NODE_READER_ONLY
	// A formatted namespace, staged read-only first.
	if err := e.stageAt("vol", testNQN, "1", e.path("staging", "rw"), mountCap("ext4", rwo), nil); err != nil {
		t.Fatal(err)
	}
	if err := e.unstageAt("vol", e.path("staging", "rw")); err != nil {
		t.Fatal(err)
	}
	if err := e.stageAt("vol", testNQN, "1", e.path("staging", "ro"), mountCap("ext4", ro), nil); err != nil {
		t.Fatal(err)
	}
	mps, _ := e.mounter.List()
	for _, mp := range mps {
		if mp.Path == e.path("staging", "ro") && (!slices.Contains(mp.Opts, "ro") || !slices.Contains(mp.Opts, "noload")) {
			t.Errorf("read-only stage mounted with %v, want ro and noload", mp.Opts)
		}
	}
	// Now a read-write usage beside it: a bind of the mounted file system
	// (the fake mounter logs a bind with no file system type).
	e.mounter.ResetLog()
	if err := e.stageAt("vol", testNQN, "1", e.path("staging", "rw"), mountCap("ext4", rwo), nil); err != nil {
		t.Fatal(err)
	}
	for _, mp := range e.mounter.GetLog() {
		if mp.Target == e.path("staging", "rw") && mp.FSType != "" {
			t.Errorf("second usage mounted the device again (%+v), want a bind of %s", mp, e.path("staging", "ro"))
		}
	}
	if n := e.exec.Ran("fsck"); n != 0 {
		t.Errorf("fsck ran %d times on a mounted file system", n)
	}
}
