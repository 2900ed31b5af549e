package driver_test

import (
	"context"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"github.com/nvmeof/nvmeof/shared/nvme/kernel/kerneltest"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
)

func TestConcurrentOperations(t *testing.T) {
	// The kernel serialises every connect of a host; the driver must not
	// add a lock of its own across subsystems.
	e := newEnvIn(t, t.TempDir(), kerneltest.WithConcurrentConnects())
	entered, release := e.fake.HoldConnects(testNQN)
	defer release()
	var wg sync.WaitGroup
	errs := make([]error, 2)
	for i, id := range []string{"a", "b"} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, errs[i] = e.drv.NodeStageVolume(context.Background(), e.stageReq(id, testNQN, fmt.Sprint(i+1), mountCap("", rwo)))
		}()
	}
	<-entered // a stage holds its volume's lock and waits in the kernel

	t.Run("same volume is aborted", func(t *testing.T) {
		for _, id := range []string{"a", "b"} {
			_, err := e.drv.NodeUnstageVolume(context.Background(), &csi.NodeUnstageVolumeRequest{VolumeId: id, StagingTargetPath: e.path("staging", id)})
			if code := codeOf(err); code != codes.Aborted && code != codes.OK {
				t.Fatalf("unstage %s during its stage: %s", id, code)
			}
		}
	})
	t.Run("other volumes run", func(t *testing.T) {
		e.stage("c", testNQN2, "1", blockCap())
	})
	release()
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("stage %d: %v (coalescing must keep connects to one subsystem from racing)", i, err)
		}
	}
	if n := e.controllers(); n != 2 {
		t.Errorf("%d controllers, want one per subsystem", n)
	}
}

func TestVolumeStats(t *testing.T) {
	e := newEnv(t)
	e.stage("fs", testNQN, "1", mountCap("", rwo))
	e.stage("blk", testNQN, "2", blockCap())
	tests := []struct {
		name, id, path string
		want           codes.Code
		units          int
	}{
		{"file system", "fs", e.path("staging", "fs"), codes.OK, 2},
		{"block", "blk", e.path("staging", "blk", "block"), codes.OK, 1},
		{"no id", "", "/x", codes.InvalidArgument, 0},
		{"no path", "fs", "", codes.InvalidArgument, 0},
		{"unknown volume", "nope", e.path("staging", "fs"), codes.NotFound, 0},
		{"missing path", "fs", e.path("nowhere"), codes.NotFound, 0},
		{"path not mounted", "fs", e.root, codes.NotFound, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, err := e.drv.NodeGetVolumeStats(context.Background(), &csi.NodeGetVolumeStatsRequest{VolumeId: tt.id, VolumePath: tt.path})
			wantCode(t, err, tt.want)
			if len(resp.GetUsage()) != tt.units {
				t.Fatalf("usage %v, want %d entries", resp.GetUsage(), tt.units)
			}
			if tt.units == 1 && resp.GetUsage()[0].GetTotal() != 64*mib {
				t.Errorf("block size %d, want %d", resp.GetUsage()[0].GetTotal(), 64*mib)
			}
		})
	}
}

func TestVolumeHealth(t *testing.T) {
	tests := []struct {
		name   string
		break_ func(e *env)
		reason string
	}{
		{"healthy", func(*env) {}, ""},
		{"target down", func(e *env) { e.fake.SetDown(testNQN, true) }, "ControllerNotLive"},
		{"file system errors", func(e *env) { e.fake.SetFSErrors(filepath.Base(e.mountedAt(e.path("staging", "vol"))[0]), 3) }, "FilesystemErrors"},
		{"device gone", func(e *env) {
			cs, _ := e.fake.Controllers()
			_ = e.fake.Disconnect(context.Background(), cs[0])
		}, "DeviceGone"},
		{"mount gone", func(e *env) { _ = e.mounter.Unmount(e.path("staging", "vol")) }, "NotMounted"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			e.stage("vol", testNQN, "1", mountCap("", rwo))
			tt.break_(e)
			resp, err := e.drv.NodeGetVolumeHealth(context.Background(), &csi.NodeGetVolumeHealthRequest{VolumeId: "vol"})
			wantCode(t, err, codes.OK)
			st := resp.GetVolumeHealth().GetHealthStatuses()
			if tt.reason == "" {
				if len(st) != 0 {
					t.Fatalf("healthy volume reports %v", st)
				}
				return
			}
			if len(st) != 1 || st[0].GetReason() != tt.reason || st[0].GetMessage() == "" {
				t.Fatalf("health %v, want one %s entry with a message", st, tt.reason)
			}
		})
	}
	t.Run("errors", func(t *testing.T) {
		e := newEnv(t)
		_, err := e.drv.NodeGetVolumeHealth(context.Background(), &csi.NodeGetVolumeHealthRequest{})
		wantCode(t, err, codes.InvalidArgument)
		_, err = e.drv.NodeGetVolumeHealth(context.Background(), &csi.NodeGetVolumeHealthRequest{VolumeId: "nope"})
		wantCode(t, err, codes.NotFound)
	})
	t.Run("storage", func(t *testing.T) {
		e := newEnv(t)
		e.stage("vol", testNQN, "1", mountCap("", rwo))
		e.fake.SetDown(testNQN, true)
		resp, err := e.drv.NodeGetStorageHealth(context.Background(), &csi.NodeGetStorageHealthRequest{})
		wantCode(t, err, codes.OK)
		if len(resp.GetBackendHealth()) != 1 || !strings.Contains(resp.GetBackendHealth()[0].GetMessage(), testNQN) {
			t.Fatalf("storage health %v, want the unreachable subsystem", resp.GetBackendHealth())
		}
	})
}

func TestNodeExpandVolume(t *testing.T) {
	e := newEnv(t)
	e.stage("vol", testNQN, "1", mountCap("", rwo))
	e.fake.ResizeNamespace(testNQN, 1, 96*mib)
	req := func(id, path string, want int64) *csi.NodeExpandVolumeRequest {
		return &csi.NodeExpandVolumeRequest{VolumeId: id, VolumePath: path, CapacityRange: &csi.CapacityRange{RequiredBytes: want}}
	}
	staging := e.path("staging", "vol")
	tests := []struct {
		name string
		req  *csi.NodeExpandVolumeRequest
		want codes.Code
	}{
		{"grows online", req("vol", staging, 96*mib), codes.OK},
		{"beyond the namespace", req("vol", staging, 200*mib), codes.OutOfRange},
		{"no id", req("", staging, 0), codes.InvalidArgument},
		{"no path", req("vol", "", 0), codes.InvalidArgument},
		{"unknown volume", req("nope", staging, 0), codes.NotFound},
		{"missing path", req("vol", e.path("nowhere"), 0), codes.NotFound},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, err := e.drv.NodeExpandVolume(context.Background(), tt.req)
			wantCode(t, err, tt.want)
			if tt.want == codes.OK && resp.GetCapacityBytes() != 96*mib {
				t.Errorf("capacity %d, want %d", resp.GetCapacityBytes(), 96*mib)
			}
		})
	}
	if n := e.exec.Ran("resize2fs"); n != 1 {
		t.Errorf("resize2fs ran %d times, want 1", n)
	}
}

func TestIdentity(t *testing.T) {
	e := newEnv(t)
	info, err := e.drv.GetPluginInfo(context.Background(), &csi.GetPluginInfoRequest{})
	if err != nil || info.GetName() != "csi.nvmeof.io" || info.GetVendorVersion() == "" {
		t.Fatalf("plugin info %v, %v", info, err)
	}
	caps, err := e.drv.GetPluginCapabilities(context.Background(), &csi.GetPluginCapabilitiesRequest{})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range caps.GetCapabilities() {
		if c.GetService().GetType() == csi.PluginCapability_Service_CONTROLLER_SERVICE {
			t.Fatal("advertises a controller service it does not have")
		}
	}
	e.kernelErr = errors.New("/dev/nvme-fabrics is missing (modprobe nvme-fabrics)")
	probe, err := e.drv.Probe(context.Background(), &csi.ProbeRequest{})
	if err != nil || probe.GetReady().GetValue() {
		t.Fatalf("probe %v, %v: want not ready", probe, err)
	}
	if !strings.Contains(e.log.String(), "modprobe nvme-fabrics") {
		t.Errorf("the reason is not logged:\n%s", e.log)
	}
	e.kernelErr = nil
	probe, _ = e.drv.Probe(context.Background(), &csi.ProbeRequest{})
	if !probe.GetReady().GetValue() {
		t.Error("probe not ready once the kernel can connect")
	}
	ni, _ := e.drv.NodeGetInfo(context.Background(), &csi.NodeGetInfoRequest{})
	if ni.GetNodeId() != testHost.NQN || ni.GetMaxVolumesPerNode() != 16 {
		t.Errorf("node info %v", ni)
	}
}

func TestInterceptor(t *testing.T) {
	key := []byte("0123456789abcdef0123456789abcdef")
	encoded := base64.StdEncoding.EncodeToString(binary.LittleEndian.AppendUint32(key, crc32.ChecksumIEEE(key)))
	secret := "DHHC-1:00:" + encoded + ":"
	e := newEnv(t)
	icpt := e.drv.UnaryInterceptor()
	info := &grpc.UnaryServerInfo{FullMethod: "/csi.v1.Node/NodeStageVolume"}
	req := e.stageReq("vol", testNQN, "1", mountCap("", rwo))
	req.Secrets = map[string]string{"dhchap_secret": secret}
	t.Run("secrets never reach the log", func(t *testing.T) {
		_, err := icpt(context.Background(), req, info, func(ctx context.Context, r any) (any, error) {
			return e.drv.NodeStageVolume(ctx, r.(*csi.NodeStageVolumeRequest))
		})
		wantCode(t, err, codes.OK)
		out := e.log.String()
		if strings.Contains(out, encoded[:16]) {
			t.Fatalf("secret in log:\n%s", out)
		}
		for _, want := range []string{"method=NodeStageVolume", "volume_id=vol", "code=OK", "duration="} {
			if !strings.Contains(out, want) {
				t.Errorf("log lacks %q:\n%s", want, out)
			}
		}
	})
	t.Run("panic becomes Internal", func(t *testing.T) {
		_, err := icpt(context.Background(), req, info, func(context.Context, any) (any, error) { panic("boom") })
		wantCode(t, err, codes.Internal)
	})
	t.Run("metrics count calls", func(t *testing.T) {
		body := scrape(t, e)
		for _, want := range []string{`nvmeof_csi_rpc_total{code="Internal",method="NodeStageVolume"} 1`, `nvmeof_csi_rpc_total{code="OK",method="NodeStageVolume"} 1`} {
			if !strings.Contains(body, want) {
				t.Errorf("metrics lack %q", want)
			}
		}
	})
}

func TestReconcile(t *testing.T) {
	e := newEnv(t)
	e.stage("kept", testNQN, "1", mountCap("", rwo))
	e.stage("lost", testNQN2, "1", mountCap("", rwo))
	// Nomad skipped the unstage of "lost" while the plugin was down.
	if err := e.mounter.Unmount(e.path("staging", "lost")); err != nil {
		t.Fatal(err)
	}
	restarted := e.newDriver()
	if err := restarted.Reconcile(context.Background()); err != nil {
		t.Fatal(err)
	}
	cs, _ := e.fake.Controllers()
	if len(cs) != 1 || cs[0].Subsystem != testNQN {
		t.Fatalf("controllers after reconcile %v, want only the one still mounted", cs)
	}
	if !strings.Contains(e.log.String(), "orphaned controller") {
		t.Errorf("orphan not logged:\n%s", e.log)
	}
}

func TestMetricsObserveReconnects(t *testing.T) {
	e := newEnv(t)
	e.stage("vol", testNQN, "1", mountCap("", rwo))
	e.drv.Observe()
	e.fake.SetDown(testNQN, true)
	e.drv.Observe()
	e.fake.SetDown(testNQN, false)
	e.fake.SetFSErrors(filepath.Base(e.mountedAt(e.path("staging", "vol"))[0]), 1)
	e.drv.Observe()
	body := scrape(t, e)
	for _, want := range []string{"nvmeof_csi_controller_reconnects_total 1", `nvmeof_csi_controllers{state="live"} 1`, "nvmeof_csi_volumes_fs_errors 1"} {
		if !strings.Contains(body, want) {
			t.Errorf("metrics lack %q:\n%s", want, body)
		}
	}
}
