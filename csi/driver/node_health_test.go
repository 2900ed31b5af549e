package driver_test

import (
	"context"
	"path/filepath"
	"slices"
	"sync"
	"testing"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"github.com/hashicorp/go-hclog"
	"google.golang.org/grpc/codes"

	"github.com/nvmeof/nvmeof/csi/driver"
	"github.com/nvmeof/nvmeof/shared/nvme/kernel"
)

// healthPaths records the mount paths the driver asks the connector to
// probe, per namespace device.
type healthPaths struct {
	kernel.Connector
	mu    sync.Mutex
	paths map[string][]string
}

func (c *healthPaths) Health(ctrl kernel.Controller, ns kernel.Namespace, mountPath string) (kernel.Health, error) {
	c.mu.Lock()
	c.paths[ns.Name] = append(c.paths[ns.Name], mountPath)
	c.mu.Unlock()
	return c.Connector.Health(ctrl, ns, mountPath) //nolint:wrapcheck // a test double passing through
}

// A block volume has no file system: a write probe of its staging file or
// publish target fails every time and would report it unhealthy, so the
// connector must be asked about the controller only ("" mount path).
func TestVolumeHealthNeverProbesBlock(t *testing.T) {
	e := newEnv(t)
	e.stage("fs", testNQN, "1", mountCap("", rwo))
	e.stage("blk", testNQN, "2", blockCap())
	conn := &healthPaths{Connector: e.fake, paths: map[string][]string{}}
	drv, err := driver.New(driver.Config{
		DriverName: driver.DefaultDriverName, Version: "v0.0.0-test", NodeID: testHost.NQN, Host: testHost,
		StateDir: filepath.Join(e.root, "state"), MaxVolumes: 16,
		Connector: conn, Mounter: e.mounter, Exec: e.exec,
		KernelCheck: func() error { return nil },
		Logger:      hclog.NewNullLogger(),
		Metrics:     driver.NewMetrics(),
	})
	if err != nil {
		t.Fatal(err)
	}
	blkTarget := e.path("target", "blk")
	if _, err := drv.NodePublishVolume(context.Background(), &csi.NodePublishVolumeRequest{
		VolumeId: "blk", StagingTargetPath: e.path("staging", "blk"), TargetPath: blkTarget, VolumeCapability: blockCap(),
	}); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name        string
		id          string
		publishPath string
		device      string
		wantPaths   []string
	}{
		{"block staged and published", "blk", blkTarget, "nvme0n2", []string{"", ""}},
		{"file system staged", "fs", "", "nvme0n1", []string{e.path("staging", "fs")}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, err := drv.NodeGetVolumeHealth(context.Background(), &csi.NodeGetVolumeHealthRequest{VolumeId: tt.id, VolumePublishPath: tt.publishPath})
			wantCode(t, err, codes.OK)
			if st := resp.GetVolumeHealth().GetHealthStatuses(); len(st) != 0 {
				t.Errorf("healthy volume reports %v", st)
			}
			conn.mu.Lock()
			got := conn.paths[tt.device]
			conn.mu.Unlock()
			if !slices.Equal(got, tt.wantPaths) {
				t.Errorf("connector asked to probe %q, want %q", got, tt.wantPaths)
			}
		})
	}
}

// quiesceOrder records the connector's health quiesces around the
// mounter's unmounts.
type quiesceOrder struct {
	kernel.Connector
	mu     sync.Mutex
	events []string
}

func (c *quiesceOrder) QuiesceHealth(_ context.Context, path string) (func(), error) {
	c.add("quiesce " + path)
	return func() { c.add("resume " + path) }, nil
}

func (c *quiesceOrder) add(ev string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.events = append(c.events, ev)
}

// The monitor's write probe holds a file open in the mount it probes: an
// unmount meanwhile fails with "target is busy". Unpublish and unstage
// stop the probes of their path, and wait for one in flight, before they
// unmount.
func TestUnmountsQuiesceHealthProbes(t *testing.T) {
	e := newEnv(t)
	conn := &quiesceOrder{Connector: e.fake}
	e.mounter.UnmountFunc = func(path string) error { conn.add("unmount " + path); return nil }
	drv, err := driver.New(driver.Config{
		DriverName: driver.DefaultDriverName, Version: "v0.0.0-test", NodeID: testHost.NQN, Host: testHost,
		StateDir: filepath.Join(e.root, "state"), Connector: conn, Mounter: e.mounter, Exec: e.exec,
		KernelCheck: func() error { return nil }, Logger: hclog.NewNullLogger(), Metrics: driver.NewMetrics(),
	})
	if err != nil {
		t.Fatal(err)
	}
	e.drv = drv
	staging, target := e.path("staging", "vol"), e.path("target", "vol")
	if err := e.stageAt("vol", testNQN, "1", staging, mountCap("", rwo), nil); err != nil {
		t.Fatal(err)
	}
	if err := e.publish("vol", staging, target, mountCap("", rwo), false); err != nil {
		t.Fatal(err)
	}
	if err := e.unpublish("vol", target); err != nil {
		t.Fatal(err)
	}
	if err := e.unstageAt("vol", staging); err != nil {
		t.Fatal(err)
	}
	want := []string{"quiesce " + target, "unmount " + target, "resume " + target, "quiesce " + staging, "unmount " + staging, "resume " + staging}
	if !slices.Equal(conn.events, want) {
		t.Errorf("events\n got %q\nwant %q", conn.events, want)
	}
}
