package driver_test

import (
	"context"
	"fmt"
	"path/filepath"
	"sync"
	"testing"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"github.com/kubernetes-csi/csi-test/v5/pkg/sanity"
	"github.com/onsi/ginkgo/v2"
	"github.com/onsi/gomega"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/nvmeof/nvmeof/csi/driver"
	"github.com/nvmeof/nvmeof/shared/nvme"
	"github.com/nvmeof/nvmeof/shared/nvme/kernel/kerneltest"
)

// TestSanity runs csi-test's sanity suite against the real gRPC server,
// interceptor and node service on a unix socket, over the simulated node.
// csi-test creates volumes through a controller even in node cases, and
// runs its end-to-end cases only when the identity advertises one; the
// harness therefore adds a test-only controller that mints namespaces on
// simulated targets, and an identity that advertises it. The binary has
// neither. The controller suites themselves are skipped: they would test
// this scaffolding, not the plugin.
func TestSanity(t *testing.T) {
	e := newEnv(t)
	sock := filepath.Join(e.root, "csi.sock")
	l, err := driver.Listen("unix://" + sock)
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer(grpc.UnaryInterceptor(e.drv.UnaryInterceptor()))
	csi.RegisterIdentityServer(srv, identityWithController{e.drv})
	csi.RegisterNodeServer(srv, e.drv)
	csi.RegisterControllerServer(srv, &testController{fake: e.fake, vols: map[string]*testVolume{}})
	go func() { _ = srv.Serve(l) }()
	t.Cleanup(srv.Stop)

	cfg := sanity.NewTestConfig()
	cfg.Address = "unix://" + sock
	cfg.TargetPath = e.path("sanity-target")
	cfg.StagingPath = e.path("sanity-staging")
	cfg.TestVolumeSize = 64 * mib
	cfg.TestVolumeExpandSize = 128 * mib
	cfg.IdempotentCount = 3
	sc := sanity.GinkgoTest(&cfg)
	gomega.RegisterFailHandler(ginkgo.Fail)
	suite, reporter := ginkgo.GinkgoConfiguration()
	suite.SkipStrings = []string{"Controller Server"}
	ginkgo.RunSpecs(t, "nvmeof-csi sanity", suite, reporter)
	sc.Finalize()
}

type identityWithController struct{ *driver.Driver }

func (i identityWithController) GetPluginCapabilities(context.Context, *csi.GetPluginCapabilitiesRequest) (*csi.GetPluginCapabilitiesResponse, error) {
	return &csi.GetPluginCapabilitiesResponse{Capabilities: []*csi.PluginCapability{{
		Type: &csi.PluginCapability_Service_{Service: &csi.PluginCapability_Service{Type: csi.PluginCapability_Service_CONTROLLER_SERVICE}},
	}}}, nil
}

// testController mints a volume as a new simulated subsystem with one
// namespace of the requested size; its volume context is what the
// Terraform provider would hand Nomad.
type testController struct {
	csi.UnimplementedControllerServer
	fake *node
	mu   sync.Mutex
	n    int
	vols map[string]*testVolume // by name
}

type testVolume struct {
	vol  nvme.Volume
	size int64
}

const defaultTestSize = 64 << 20

func (c *testController) CreateVolume(_ context.Context, req *csi.CreateVolumeRequest) (*csi.CreateVolumeResponse, error) {
	if req.GetName() == "" {
		return nil, status.Error(codes.InvalidArgument, "name is required")
	}
	if len(req.GetVolumeCapabilities()) == 0 {
		return nil, status.Error(codes.InvalidArgument, "volume_capabilities are required")
	}
	size := req.GetCapacityRange().GetRequiredBytes()
	if size == 0 {
		size = defaultTestSize
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if v, ok := c.vols[req.GetName()]; ok {
		if v.size != size {
			return nil, status.Errorf(codes.AlreadyExists, "volume %s exists with %d bytes", req.GetName(), v.size)
		}
		return &csi.CreateVolumeResponse{Volume: csiVolume(v)}, nil
	}
	c.n++
	uuid := fmt.Sprintf("%08x-0000-4000-8000-%012x", c.n, c.n)
	nqn := fmt.Sprintf("nqn.2026-01.io.nvmeof.sanity:vol-%d", c.n)
	c.fake.AddTarget("127.0.0.1", "4420", nqn, kerneltest.Namespace{NSID: 1, UUID: uuid, SizeBytes: size})
	v := &testVolume{size: size, vol: nvme.Volume{
		Target:    nvme.Target{Transport: nvme.TransportTCP, TrAddr: "127.0.0.1", TrSvcID: "4420", NQN: nqn},
		Config:    nvme.DefaultConnectionConfig(),
		Namespace: nvme.NamespaceSelector{NSID: 1, UUID: uuid},
	}}
	c.vols[req.GetName()] = v
	return &csi.CreateVolumeResponse{Volume: csiVolume(v)}, nil
}

func csiVolume(v *testVolume) *csi.Volume {
	return &csi.Volume{VolumeId: v.vol.ExternalID(), CapacityBytes: v.size, VolumeContext: v.vol.ToVolumeContext()}
}

func (c *testController) byID(id string) *testVolume {
	for _, v := range c.vols {
		if v.vol.ExternalID() == id {
			return v
		}
	}
	return nil
}

func (c *testController) DeleteVolume(_ context.Context, req *csi.DeleteVolumeRequest) (*csi.DeleteVolumeResponse, error) {
	if req.GetVolumeId() == "" {
		return nil, status.Error(codes.InvalidArgument, "volume_id is required")
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for name, v := range c.vols {
		if v.vol.ExternalID() == req.GetVolumeId() {
			delete(c.vols, name)
		}
	}
	return &csi.DeleteVolumeResponse{}, nil
}

func (c *testController) ControllerExpandVolume(_ context.Context, req *csi.ControllerExpandVolumeRequest) (*csi.ControllerExpandVolumeResponse, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	v := c.byID(req.GetVolumeId())
	if v == nil {
		return nil, status.Errorf(codes.NotFound, "no volume %s", req.GetVolumeId())
	}
	size := req.GetCapacityRange().GetRequiredBytes()
	c.fake.ResizeNamespace(v.vol.Target.NQN, 1, size)
	v.size = size
	return &csi.ControllerExpandVolumeResponse{CapacityBytes: size, NodeExpansionRequired: true}, nil
}

func (c *testController) ValidateVolumeCapabilities(_ context.Context, req *csi.ValidateVolumeCapabilitiesRequest) (*csi.ValidateVolumeCapabilitiesResponse, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.byID(req.GetVolumeId()) == nil {
		return nil, status.Errorf(codes.NotFound, "no volume %s", req.GetVolumeId())
	}
	return &csi.ValidateVolumeCapabilitiesResponse{Confirmed: &csi.ValidateVolumeCapabilitiesResponse_Confirmed{VolumeCapabilities: req.GetVolumeCapabilities()}}, nil
}

func (c *testController) ControllerGetCapabilities(context.Context, *csi.ControllerGetCapabilitiesRequest) (*csi.ControllerGetCapabilitiesResponse, error) {
	var caps []*csi.ControllerServiceCapability
	for _, t := range []csi.ControllerServiceCapability_RPC_Type{csi.ControllerServiceCapability_RPC_CREATE_DELETE_VOLUME, csi.ControllerServiceCapability_RPC_EXPAND_VOLUME} {
		caps = append(caps, &csi.ControllerServiceCapability{Type: &csi.ControllerServiceCapability_Rpc{Rpc: &csi.ControllerServiceCapability_RPC{Type: t}}})
	}
	return &csi.ControllerGetCapabilitiesResponse{Capabilities: caps}, nil
}
