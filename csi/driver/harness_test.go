package driver_test

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"github.com/hashicorp/go-hclog"
	"google.golang.org/grpc/codes"
	grpcstatus "google.golang.org/grpc/status"
	"k8s.io/apimachinery/pkg/util/wait"
	mount "k8s.io/mount-utils"

	"github.com/nvmeof/nvmeof/csi/driver"
	"github.com/nvmeof/nvmeof/csi/internal/disktest"
	"github.com/nvmeof/nvmeof/shared/nvme"
	"github.com/nvmeof/nvmeof/shared/nvme/kernel"
	"github.com/nvmeof/nvmeof/shared/nvme/kernel/kerneltest"
)

var testHost = nvme.Host{NQN: "nqn.2026-01.io.nvmeof.test:host-1", ID: "0aaaaaaa-0000-4000-8000-00000000000a"}

const (
	testNQN  = "nqn.2026-01.io.nvmeof.test:one"
	testNQN2 = "nqn.2026-01.io.nvmeof.test:two"
	uuid1    = "11111111-1111-4111-8111-111111111111"
	uuid2    = "22222222-2222-4222-8222-222222222222"
	mib      = int64(1) << 20
)

// syncBuffer collects log output from concurrent RPCs.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p) //nolint:wrapcheck // bytes.Buffer never fails
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// env is one simulated node: kerneltest's host with two targets and the
// real kernel connector over it, mount-utils' fake mounter, the disk tool
// simulator, and the driver over them.
type env struct {
	t         testing.TB
	root      string
	fake      *node
	mounter   *mount.FakeMounter
	exec      *disktest.Exec
	drv       *driver.Driver
	log       *syncBuffer
	kernelErr error
	metrics   *driver.Metrics
	// opTimeout is the driver's bound on each RPC: short, so a test of a
	// wait that never ends ends soon.
	opTimeout time.Duration
	// bootID is the kernel's boot id the driver is told; a test changes it
	// to simulate a reboot.
	bootID string
}

// node is the simulated host: kerneltest's kernel, and the real connector
// that reads its sysfs and writes its control files.
type node struct {
	*kerneltest.Host
	kernel.Connector
}

func newNode(tb testing.TB, opts ...kerneltest.Option) *node {
	tb.Helper()
	h := kerneltest.New(tb, opts...)
	c, err := kernel.NewConnector(kernel.ConnectorConfig{
		SysfsRoot: h.SysfsRoot(), DevRoot: h.DevRoot(), ControlFiles: h, LookupHost: h.LookupHost,
		// Disks are announced as the kernel's uevents announce them.
		DiskEvents: func() (kernel.DiskEvents, error) { return h.DiskEvents(), nil },
		// Retries of a refused connect at once: the tests look at the
		// outcome, not at the backoff.
		Backoff: wait.Backoff{Duration: time.Microsecond, Factor: 1, Steps: 3},
	})
	if err != nil {
		tb.Fatal(err)
	}
	return &node{Host: h, Connector: c}
}

// Controllers are the kernel's, as the connector reads them.
func (n *node) Controllers() ([]kernel.Controller, error) {
	return n.Connector.Controllers() //nolint:wrapcheck // a test double passing through
}

// Counts are the controllers the kernel created and deleted.
func (n *node) Counts() (connects, disconnects int) { return n.Connects(), n.Disconnects() }

func newEnv(t *testing.T) *env {
	t.Helper()
	return newEnvIn(t, t.TempDir())
}

// newEnvIn builds the node under root.
func newEnvIn(t testing.TB, root string, opts ...kerneltest.Option) *env {
	t.Helper()
	fake := newNode(t, opts...)
	fake.AddTarget("127.0.0.1", "4420", testNQN,
		kerneltest.Namespace{NSID: 1, UUID: uuid1, SizeBytes: 64 * mib},
		kerneltest.Namespace{NSID: 2, UUID: uuid2, SizeBytes: 64 * mib})
	fake.AddTarget("127.0.0.1", "4420", testNQN2, kerneltest.Namespace{NSID: 1, SizeBytes: 64 * mib})
	e := &env{t: t, root: root, fake: fake, mounter: mount.NewFakeMounter(nil), exec: disktest.New(), log: &syncBuffer{}, metrics: driver.NewMetrics(), opTimeout: 3 * time.Second, bootID: "boot-1"}
	e.drv = e.newDriver()
	return e
}

// newDriver makes a driver over e's node, as a restarted plugin would be.
func (e *env) newDriver() *driver.Driver {
	e.t.Helper()
	d, err := driver.New(driver.Config{
		DriverName: driver.DefaultDriverName, Version: "v0.0.0-test", NodeID: testHost.NQN, Host: testHost,
		StateDir: filepath.Join(e.root, "state"), MaxVolumes: 16, OperationTimeout: e.opTimeout, NamespaceTimeout: 500 * time.Millisecond,
		Connector: e.fake, Mounter: e.mounter, Exec: e.exec,
		KernelCheck: func() error { return e.kernelErr },
		Logger:      hclog.New(&hclog.LoggerOptions{Level: hclog.Trace, Output: e.log}),
		Metrics:     e.metrics,
		BootID:      e.bootID,
	})
	if err != nil {
		e.t.Fatal(err)
	}
	return d
}

func (e *env) path(p ...string) string { return filepath.Join(append([]string{e.root}, p...)...) }

func volumeContext(nqn string, nsid string) map[string]string {
	return map[string]string{"traddr": "127.0.0.1", "nqn": nqn, "nsid": nsid}
}

func mountCap(fsType string, mode csi.VolumeCapability_AccessMode_Mode) *csi.VolumeCapability {
	return &csi.VolumeCapability{
		AccessType: &csi.VolumeCapability_Mount{Mount: &csi.VolumeCapability_MountVolume{FsType: fsType}},
		AccessMode: &csi.VolumeCapability_AccessMode{Mode: mode},
	}
}

func blockCap() *csi.VolumeCapability {
	return &csi.VolumeCapability{
		AccessType: &csi.VolumeCapability_Block{Block: &csi.VolumeCapability_BlockVolume{}},
		AccessMode: &csi.VolumeCapability_AccessMode{Mode: csi.VolumeCapability_AccessMode_SINGLE_NODE_WRITER},
	}
}

var rwo = csi.VolumeCapability_AccessMode_SINGLE_NODE_WRITER

func (e *env) stageReq(id, nqn, nsid string, vc *csi.VolumeCapability) *csi.NodeStageVolumeRequest {
	return &csi.NodeStageVolumeRequest{
		VolumeId: id, StagingTargetPath: e.path("staging", id), VolumeCapability: vc, VolumeContext: volumeContext(nqn, nsid),
	}
}

func (e *env) stage(id, nqn, nsid string, vc *csi.VolumeCapability) {
	e.t.Helper()
	if _, err := e.drv.NodeStageVolume(context.Background(), e.stageReq(id, nqn, nsid, vc)); err != nil {
		e.t.Fatalf("stage %s: %v", id, err)
	}
}

func (e *env) unstage(id string) {
	e.t.Helper()
	if _, err := e.drv.NodeUnstageVolume(context.Background(), &csi.NodeUnstageVolumeRequest{VolumeId: id, StagingTargetPath: e.path("staging", id)}); err != nil {
		e.t.Fatalf("unstage %s: %v", id, err)
	}
}

func (e *env) controllers() int {
	e.t.Helper()
	cs, err := e.fake.Controllers()
	if err != nil {
		e.t.Fatal(err)
	}
	return len(cs)
}

func (e *env) mountedAt(path string) []string {
	mps, _ := e.mounter.List()
	var devs []string
	for _, mp := range mps {
		if mp.Path == filepath.Clean(path) {
			devs = append(devs, mp.Device)
		}
	}
	return devs
}

// connection is what an admin's `nvme connect` to nqn would ask for.
func connection(t testing.TB, nqn string) nvme.ValidConnection {
	t.Helper()
	c, err := nvme.Connection{Host: testHost, Target: nvme.Target{Transport: "tcp", TrAddr: "127.0.0.1", TrSvcID: "4420", NQN: nqn}, Config: nvme.DefaultConnectionConfig()}.Valid()
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func codeOf(err error) codes.Code { return grpcstatus.Code(err) }

func scrape(t *testing.T, e *env) string {
	t.Helper()
	rec := httptest.NewRecorder()
	e.metrics.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	return rec.Body.String()
}

// devicePath is the /dev node of namespace nsid of nqn, found as the
// plugin finds it; a controller of nqn must be connected.
func (e *env) devicePath(nqn string, nsid uint32) string {
	e.t.Helper()
	cs, err := e.fake.Controllers()
	if err != nil {
		e.t.Fatal(err)
	}
	for _, c := range cs {
		if c.Subsystem != nqn {
			continue
		}
		ns, err := e.fake.Resolve(context.Background(), c, nvme.NamespaceSelector{NSID: nsid})
		if err != nil {
			e.t.Fatal(err)
		}
		return ns.DevicePath
	}
	e.t.Fatalf("no controller of %s", nqn)
	return ""
}
