package nomadclient

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"github.com/hashicorp/nomad/api"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

// fakeMounts is the node's mount table as the fake plugin keeps it, by
// host path; the client reads it through MountChecker.
type fakeMounts struct {
	mu    sync.Mutex
	paths map[string]bool
}

func (m *fakeMounts) IsMountPoint(path string) (bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.paths[filepath.Clean(path)], nil
}

func (m *fakeMounts) set(path string, mounted bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if mounted {
		m.paths[filepath.Clean(path)] = true
	} else {
		delete(m.paths, filepath.Clean(path))
	}
}

func (m *fakeMounts) under(dir string) []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []string
	for p := range m.paths {
		if strings.HasPrefix(p, dir) {
			out = append(out, p)
		}
	}
	return out
}

// fakePlugin is a CSI node plugin: it keeps the mount table, creates and
// removes targets as nvmeof-csi does, and lets a test decide answers.
type fakePlugin struct {
	csi.UnimplementedIdentityServer
	csi.UnimplementedNodeServer

	mounts               *fakeMounts
	hostRoot, pluginRoot string

	mu         sync.Mutex
	ready      bool
	nodeID     string
	maxVolumes int64
	staging    bool // advertise STAGE_UNSTAGE_VOLUME
	// blockInside stages block volumes on a file inside the staging dir,
	// as nvmeof-csi does, instead of on the dir.
	blockInside bool
	// keepTarget leaves the target behind on unpublish.
	keepTarget bool
	// refuseEarlyUnstage answers FailedPrecondition to an unstage while a
	// target published from that staging path is mounted (issue 9's rule).
	refuseEarlyUnstage bool
	onStage            func(ctx context.Context, req *csi.NodeStageVolumeRequest) error
	onPublish          func(req *csi.NodePublishVolumeRequest) error
	onUnpublish        func(req *csi.NodeUnpublishVolumeRequest) error
	published          map[string]string // host target → host staging
}

func (p *fakePlugin) host(pluginPath string) string {
	rel, err := filepath.Rel(p.pluginRoot, pluginPath)
	if err != nil || strings.HasPrefix(rel, "..") {
		return pluginPath
	}
	return filepath.Join(p.hostRoot, rel)
}

func (p *fakePlugin) GetPluginInfo(context.Context, *csi.GetPluginInfoRequest) (*csi.GetPluginInfoResponse, error) {
	return &csi.GetPluginInfoResponse{Name: "csi.fake.test", VendorVersion: "v0.1"}, nil
}

func (p *fakePlugin) GetPluginCapabilities(context.Context, *csi.GetPluginCapabilitiesRequest) (*csi.GetPluginCapabilitiesResponse, error) {
	return &csi.GetPluginCapabilitiesResponse{}, nil
}

func (p *fakePlugin) Probe(context.Context, *csi.ProbeRequest) (*csi.ProbeResponse, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return &csi.ProbeResponse{Ready: wrapperspb.Bool(p.ready)}, nil
}

func (p *fakePlugin) NodeGetInfo(context.Context, *csi.NodeGetInfoRequest) (*csi.NodeGetInfoResponse, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return &csi.NodeGetInfoResponse{NodeId: p.nodeID, MaxVolumesPerNode: p.maxVolumes}, nil
}

func (p *fakePlugin) NodeGetCapabilities(context.Context, *csi.NodeGetCapabilitiesRequest) (*csi.NodeGetCapabilitiesResponse, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	resp := &csi.NodeGetCapabilitiesResponse{}
	if p.staging {
		resp.Capabilities = append(resp.Capabilities, &csi.NodeServiceCapability{Type: &csi.NodeServiceCapability_Rpc{
			Rpc: &csi.NodeServiceCapability_RPC{Type: csi.NodeServiceCapability_RPC_STAGE_UNSTAGE_VOLUME}}})
	}
	return resp, nil
}

func (p *fakePlugin) stagedPath(staging string, block bool) string {
	if block && p.blockInside {
		return filepath.Join(staging, "block")
	}
	return staging
}

func (p *fakePlugin) NodeStageVolume(ctx context.Context, req *csi.NodeStageVolumeRequest) (*csi.NodeStageVolumeResponse, error) {
	p.mu.Lock()
	hook := p.onStage
	p.mu.Unlock()
	if hook != nil {
		if err := hook(ctx, req); err != nil {
			return nil, err
		}
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.mounts.set(p.stagedPath(p.host(req.GetStagingTargetPath()), req.GetVolumeCapability().GetBlock() != nil), true)
	return &csi.NodeStageVolumeResponse{}, nil
}

func (p *fakePlugin) NodePublishVolume(_ context.Context, req *csi.NodePublishVolumeRequest) (*csi.NodePublishVolumeResponse, error) {
	p.mu.Lock()
	hook := p.onPublish
	p.mu.Unlock()
	if hook != nil {
		if err := hook(req); err != nil {
			return nil, err
		}
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	target := p.host(req.GetTargetPath())
	if _, err := os.Stat(filepath.Dir(target)); err != nil {
		return nil, status.Errorf(codes.Internal, "target parent: %v", err)
	}
	var err error
	if req.GetVolumeCapability().GetBlock() != nil {
		err = os.WriteFile(target, nil, 0o600)
	} else {
		err = os.MkdirAll(target, 0o750)
	}
	if err != nil {
		return nil, status.Error(codes.Internal, err.Error())
	}
	p.mounts.set(target, true)
	if p.published == nil {
		p.published = map[string]string{}
	}
	p.published[target] = p.host(req.GetStagingTargetPath())
	return &csi.NodePublishVolumeResponse{}, nil
}

func (p *fakePlugin) NodeUnpublishVolume(_ context.Context, req *csi.NodeUnpublishVolumeRequest) (*csi.NodeUnpublishVolumeResponse, error) {
	p.mu.Lock()
	hook := p.onUnpublish
	p.mu.Unlock()
	if hook != nil {
		if err := hook(req); err != nil {
			return nil, err
		}
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	target := p.host(req.GetTargetPath())
	p.mounts.set(target, false)
	delete(p.published, target)
	if !p.keepTarget {
		if err := os.Remove(target); err != nil && !errors.Is(err, os.ErrNotExist) {
			return nil, status.Error(codes.Internal, err.Error())
		}
	}
	return &csi.NodeUnpublishVolumeResponse{}, nil
}

func (p *fakePlugin) NodeUnstageVolume(_ context.Context, req *csi.NodeUnstageVolumeRequest) (*csi.NodeUnstageVolumeResponse, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	staging := p.host(req.GetStagingTargetPath())
	if p.refuseEarlyUnstage {
		var users []string
		for target, from := range p.published {
			if from == staging {
				users = append(users, target)
			}
		}
		if len(users) > 0 {
			return nil, status.Errorf(codes.FailedPrecondition, "volume %s is still published at %v", req.GetVolumeId(), users)
		}
	}
	p.mounts.set(staging, false)
	p.mounts.set(filepath.Join(staging, "block"), false)
	return &csi.NodeUnstageVolumeResponse{}, nil
}

func (p *fakePlugin) set(f func(p *fakePlugin)) {
	p.mu.Lock()
	defer p.mu.Unlock()
	f(p)
}

// fakeDriver runs tasks in-process: a plugin task serves the fake plugin
// on the socket CSI_ENDPOINT names; other tasks just run until stopped.
type fakeDriver struct {
	isolation, mounts bool
	plugin            *fakePlugin
	// silent: a plugin task that never creates its socket.
	silent bool

	mu     sync.Mutex
	starts map[string]int // by task name
	last   map[string]*fakeHandle
	specs  []TaskSpec
}

func (d *fakeDriver) FSIsolation() bool   { return d.isolation }
func (d *fakeDriver) MountsVolumes() bool { return d.mounts }

func (d *fakeDriver) Start(_ context.Context, spec TaskSpec) (TaskHandle, error) {
	h := &fakeHandle{exited: make(chan struct{})}
	d.mu.Lock()
	silent := d.silent
	d.mu.Unlock()
	if ep, ok := spec.Env["CSI_ENDPOINT"]; ok && d.plugin != nil && !silent {
		socket := strings.TrimPrefix(ep, "unix://")
		_ = os.Remove(socket)
		l, err := (&net.ListenConfig{}).Listen(context.Background(), "unix", socket)
		if err != nil {
			return nil, fmt.Errorf("fake plugin: %w", err)
		}
		srv := grpc.NewServer()
		csi.RegisterIdentityServer(srv, d.plugin)
		csi.RegisterNodeServer(srv, d.plugin)
		go func() { _ = srv.Serve(l) }()
		h.stopServe = srv.Stop
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.starts == nil {
		d.starts, d.last = map[string]int{}, map[string]*fakeHandle{}
	}
	d.starts[spec.Name]++
	d.last[spec.Name] = h
	d.specs = append(d.specs, spec)
	return h, nil
}

func (d *fakeDriver) startsOf(task string) int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.starts[task]
}

func (d *fakeDriver) lastSpec() TaskSpec {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.specs[len(d.specs)-1]
}

func (d *fakeDriver) handle(task string) *fakeHandle {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.last[task]
}

type fakeHandle struct {
	once      sync.Once
	exited    chan struct{}
	err       error
	stopServe func()
}

func (h *fakeHandle) Exited() <-chan struct{} { return h.exited }
func (h *fakeHandle) Err() error              { return h.err }

func (h *fakeHandle) Signal(sig os.Signal) error {
	h.exit(fmt.Errorf("signal: %v", sig))
	return nil
}

// exit ends the task (a crash when the test calls it).
func (h *fakeHandle) exit(err error) {
	h.once.Do(func() {
		if h.stopServe != nil {
			h.stopServe()
		}
		h.err = err
		close(h.exited)
	})
}

// node is one client and server with the fake plugin, ready to run jobs.
type node struct {
	t      *testing.T
	dir    string
	mounts *fakeMounts
	plugin *fakePlugin
	raw    *fakeDriver // raw_exec: hosts the plugin, cannot mount volumes
	exec   *fakeDriver // exec: consumers
	server *Server
	c      *Client
}

const pluginRoot = "/local/csi" // stage_publish_base_dir, distinct from the host root

func testTimings() Timings {
	t := NomadTimings()
	t.ProbeInterval, t.HealthProbeInterval, t.FingerprintInterval = 5*time.Millisecond, 20*time.Millisecond, 20*time.Millisecond
	t.SocketRetry, t.DialTimeout = 5*time.Millisecond, 5*time.Second
	t.ClaimBackoff, t.UnmountBackoff = 5*time.Millisecond, 5*time.Millisecond
	t.ClaimBackoffMax, t.UnmountBackoffMax = 20*time.Millisecond, 20*time.Millisecond
	return t
}

func newNode(t *testing.T) *node {
	t.Helper()
	dir, err := os.MkdirTemp("", "nc") // short: unix socket paths are limited
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	mounts := &fakeMounts{paths: map[string]bool{}}
	n := &node{t: t, dir: dir, mounts: mounts, server: NewServer()}
	n.plugin = &fakePlugin{mounts: mounts, hostRoot: filepath.Join(dir, "client", "csi", "node", "nvmeof"), pluginRoot: pluginRoot,
		ready: true, nodeID: "node-1", staging: true, blockInside: true}
	n.raw = &fakeDriver{plugin: n.plugin}
	n.exec = &fakeDriver{isolation: true, mounts: true}
	n.c, err = New(Config{DataDir: dir, NodeID: "node-1", Mounts: mounts, Timings: testTimings(), PlacementPoll: 2 * time.Millisecond,
		Drivers: map[string]TaskDriver{"raw_exec": n.raw, "exec": n.exec}}, n.server)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = n.c.Shutdown(ctx)
	})
	return n
}

func (n *node) ctx() context.Context {
	ctx, cancel := context.WithTimeout(n.t.Context(), 10*time.Second)
	n.t.Cleanup(cancel)
	return ctx
}

// pluginJob is the nvmeof plugin under raw_exec, with a stage/publish
// root that differs from the host's, so the path split shows.
func pluginJob(healthTimeout time.Duration) *api.Job {
	job := &api.Job{ID: ptr("nvmeof-csi"), Type: ptr("system"), TaskGroups: []*api.TaskGroup{{
		Name: ptr("node"),
		RestartPolicy: &api.RestartPolicy{Attempts: ptr(10), Interval: ptr(time.Minute), Delay: ptr(time.Millisecond),
			Mode: ptr("delay")},
		Tasks: []*api.Task{{Name: "plugin", Driver: "raw_exec", Config: map[string]any{"command": "nvmeof-csi", "args": []any{"--endpoint=${CSI_ENDPOINT}"}},
			CSIPluginConfig: &api.TaskCSIPluginConfig{ID: "nvmeof", Type: "node", StagePublishBaseDir: pluginRoot, HealthTimeout: healthTimeout}}},
	}}}
	job.Canonicalize()
	return job
}

// startPlugin runs the plugin job and waits for the node to report it
// healthy.
func (n *node) startPlugin() *Alloc {
	n.t.Helper()
	allocs, err := n.c.RunJob(n.ctx(), pluginJob(time.Second))
	if err != nil {
		n.t.Fatal(err)
	}
	if err := n.c.WaitPluginHealthy(n.ctx(), "nvmeof"); err != nil {
		n.t.Fatal(err)
	}
	return allocs[0]
}

// register registers a file-system volume of the plugin.
func (n *node) register(id, externalID string, edit ...func(*api.CSIVolume)) *api.CSIVolume {
	n.t.Helper()
	v := &api.CSIVolume{ID: id, Name: id, ExternalID: externalID, PluginID: "nvmeof",
		RequestedCapabilities: []*api.CSIVolumeCapability{{AccessMode: "single-node-writer", AttachmentMode: "file-system"}},
		MountOptions:          &api.CSIMountOptions{FSType: "ext4", MountFlags: []string{"noatime"}},
		Context:               map[string]string{"traddr": "192.0.2.10", "nqn": "nqn.2026-01.io.example:" + id, "nsid": "1"},
		Secrets:               api.CSISecrets{"dhchap_secret": "s3cret"},
	}
	for _, e := range edit {
		e(v)
	}
	if err := n.server.Register(v); err != nil {
		n.t.Fatal(err)
	}
	return v
}

// consumer is a job whose group claims volume vol count times.
func consumer(name string, count int, vol *api.VolumeRequest) *api.Job {
	vol.Name, vol.Type = "data", "csi"
	job := &api.Job{ID: ptr(name), TaskGroups: []*api.TaskGroup{{
		Name: ptr("g"), Count: ptr(count), Volumes: map[string]*api.VolumeRequest{"data": vol},
		Tasks: []*api.Task{{Name: "app", Driver: "exec", Config: map[string]any{"command": "/bin/app"},
			VolumeMounts: []*api.VolumeMount{{Volume: ptr("data"), Destination: ptr("/data")}}}},
	}}}
	job.Canonicalize()
	return job
}

// run places a job and waits for every allocation to run.
func (n *node) run(job *api.Job) []*Alloc {
	n.t.Helper()
	allocs, err := n.c.RunJob(n.ctx(), job)
	if err != nil {
		n.t.Fatal(err)
	}
	for _, a := range allocs {
		if err := a.WaitRunning(n.ctx()); err != nil {
			n.t.Fatal(err)
		}
	}
	return allocs
}

func (n *node) stop(a *Alloc) {
	n.t.Helper()
	a.Stop()
	if err := a.WaitDone(n.ctx()); err != nil {
		n.t.Fatal(err)
	}
}

// callsSince returns the mount RPCs since mark, as "Method volume".
func (n *node) callsSince(mark int) []string {
	var out []string
	for _, c := range Methods(n.c.Calls.Since(mark), "NodeStageVolume", "NodePublishVolume", "NodeUnpublishVolume", "NodeUnstageVolume") {
		out = append(out, c.String())
	}
	return out
}

func ptr[T any](v T) *T { return &v }
