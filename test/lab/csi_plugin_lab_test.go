//go:build lab

package lab

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	mount "k8s.io/mount-utils"

	"github.com/nvmeof/nvmeof/shared/nvme/kernel"
	"github.com/nvmeof/nvmeof/test/lab/labtarget"
)

// The CSI lab tests run the real nvmeof-csi binary from /lab/bin and drive
// it over its unix socket with the CSI spec's own client, as Nomad would.
// This file holds the plugin process and the checks the tests share.

const pluginBinary = "/lab/bin/nvmeof-csi"

// pluginLog keeps everything the plugin wrote to stderr (JSON lines).
type pluginLog struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *pluginLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *pluginLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

// entries parses the log lines written so far; since skips the first ones.
func (l *pluginLog) entries(since int) []map[string]any {
	var out []map[string]any
	sc := bufio.NewScanner(strings.NewReader(l.String()))
	sc.Buffer(nil, 1<<20)
	for i := 0; sc.Scan(); i++ {
		var m map[string]any
		if i >= since && json.Unmarshal(sc.Bytes(), &m) == nil {
			out = append(out, m)
		}
	}
	return out
}

// lines counts the log lines so far, a mark for entries.
func (l *pluginLog) lines() int {
	return strings.Count(l.String(), "\n")
}

// csiPlugin is one nvmeof-csi process and a client connected to it.
type csiPlugin struct {
	t        *testing.T
	socket   string
	stateDir string
	cmd      *exec.Cmd
	exited   chan error
	log      *pluginLog
	conn     *grpc.ClientConn
	node     csi.NodeClient
	identity csi.IdentityClient
}

// pluginDirs returns a short base directory (unix socket paths are limited
// to 107 bytes) holding the socket and the state dir, removed at the end.
func pluginDirs(t *testing.T) (socket, stateDir string) {
	t.Helper()
	dir, err := os.MkdirTemp("/tmp", "csi-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := os.RemoveAll(dir); err != nil {
			t.Errorf("remove %s: %v", dir, err)
		}
	})
	return filepath.Join(dir, "csi.sock"), filepath.Join(dir, "state")
}

// startPlugin starts nvmeof-csi as the lab's test host and waits until it
// answers Probe ready. The process gets its own process group, so a kill
// takes the tools it runs (mkfs) with it, as a task kill by Nomad does.
func startPlugin(t *testing.T, socket, stateDir string) *csiPlugin {
	t.Helper()
	return startPluginWith(t, socket, stateDir, pluginOptions{})
}

// pluginOptions are the flags a test changes.
type pluginOptions struct {
	connector      string // --connector; "" for the default (fabrics)
	metricsAddr    string // --metrics-addr; "" for none
	logLevel       string // --log-level; "" for debug
	healthInterval string // --health-interval; "" for the default (15s)
	// logFile takes the plugin's stderr instead of a pipe into csiPlugin.log:
	// a write to a file wakes no reader, so a benchmark reading the debug
	// log does not pay for a context switch per line.
	logFile string
	extra   []string // further flags
}

func startPluginWith(t *testing.T, socket, stateDir string, opts pluginOptions) *csiPlugin {
	t.Helper()
	p := &csiPlugin{t: t, socket: socket, stateDir: stateDir, log: &pluginLog{}, exited: make(chan error, 1)}
	args := []string{"--endpoint=unix://" + socket, "--state-dir=" + stateDir,
		"--hostnqn=" + labtarget.HostNQN, "--hostid=" + labtarget.HostID, "--node-id=lab-node",
		"--log-level=debug", "--log-json"}
	if opts.connector != "" {
		args = append(args, "--connector="+opts.connector)
	}
	if opts.metricsAddr != "" {
		args = append(args, "--metrics-addr="+opts.metricsAddr)
	}
	if opts.logLevel != "" {
		args = append(args, "--log-level="+opts.logLevel)
	}
	if opts.healthInterval != "" {
		args = append(args, "--health-interval="+opts.healthInterval)
	}
	args = append(args, opts.extra...)
	p.cmd = exec.Command(pluginBinary, args...) //nolint:noctx // stopped by stop (SIGTERM) or kill (SIGKILL), which a context could not tell apart
	p.cmd.Stderr = p.log
	if opts.logFile != "" {
		f, err := os.Create(opts.logFile)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = f.Close() })
		p.cmd.Stderr = f
	}
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", pluginBinary, err)
	}
	go func() { p.exited <- p.cmd.Wait() }()
	t.Cleanup(func() {
		p.stop()
		if t.Failed() {
			t.Logf("plugin log (pid %d):\n%s", p.cmd.Process.Pid, p.log.String())
		}
	})

	conn, err := grpc.NewClient("unix://"+socket, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatalf("grpc client for %s: %v", socket, err)
	}
	p.conn, p.node, p.identity = conn, csi.NewNodeClient(conn), csi.NewIdentityClient(conn)

	deadline := time.Now().Add(20 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(t.Context(), time.Second)
		resp, err := p.identity.Probe(ctx, &csi.ProbeRequest{})
		cancel()
		if err == nil && resp.GetReady().GetValue() {
			return p
		}
		select {
		case werr := <-p.exited:
			p.exited <- werr
			t.Fatalf("plugin exited before serving: %v\n%s", werr, p.log.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("plugin not ready within 20 s: probe %v, %v\n%s", resp, err, p.log.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// kill sends SIGKILL to the plugin's process group and waits for it.
func (p *csiPlugin) kill() {
	p.t.Helper()
	if err := syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL); err != nil && !errors.Is(err, syscall.ESRCH) {
		p.t.Fatalf("kill plugin: %v", err)
	}
	p.wait(10 * time.Second)
}

// stop ends the plugin with SIGTERM (it drains calls in flight), or
// SIGKILL when it does not go; idempotent.
func (p *csiPlugin) stop() {
	p.t.Helper()
	if p.conn != nil {
		_ = p.conn.Close()
		p.conn = nil
	}
	select {
	case err := <-p.exited:
		p.exited <- err
		return
	default:
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-p.exited:
		p.exited <- err
	case <-time.After(10 * time.Second):
		_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
	}
	p.wait(10 * time.Second)
}

func (p *csiPlugin) wait(timeout time.Duration) {
	p.t.Helper()
	select {
	case err := <-p.exited:
		p.exited <- err
	case <-time.After(timeout):
		p.t.Fatalf("plugin pid %d did not exit within %s", p.cmd.Process.Pid, timeout)
	}
}

// childNamed returns the pid of a child of the plugin whose command is
// name, 0 when there is none.
func (p *csiPlugin) childNamed(name string) int {
	dirs, _ := filepath.Glob("/proc/[0-9]*/stat")
	for _, f := range dirs {
		b, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		// pid (comm) state ppid ...
		s := string(b)
		open, closing := strings.IndexByte(s, '('), strings.LastIndexByte(s, ')')
		if open < 0 || closing < open {
			continue
		}
		fields := strings.Fields(s[closing+1:])
		if s[open+1:closing] != name || len(fields) < 2 {
			continue
		}
		if ppid, _ := strconv.Atoi(fields[1]); ppid == p.cmd.Process.Pid {
			pid, _ := strconv.Atoi(strings.TrimSpace(s[:open]))
			return pid
		}
	}
	return 0
}

// rpcContext bounds one RPC.
func rpcContext(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// volumeContext is what Terraform's nvme_connection would hand Nomad for a
// namespace of the lab target.
func volumeContext(nqn string, nsid uint32, uuid string) map[string]string {
	vc := map[string]string{
		"traddr": labtarget.TrAddr, "trsvcid": labtarget.TrSvcID, "transport": labtarget.Transport,
		"nqn": nqn, "nsid": strconv.FormatUint(uint64(nsid), 10), "ctrl_loss_tmo": "-1", "reconnect_delay": "2",
	}
	if uuid != "" {
		vc["uuid"] = uuid
	}
	return vc
}

func mountCapability(fsType string) *csi.VolumeCapability {
	return &csi.VolumeCapability{
		AccessType: &csi.VolumeCapability_Mount{Mount: &csi.VolumeCapability_MountVolume{FsType: fsType}},
		AccessMode: &csi.VolumeCapability_AccessMode{Mode: csi.VolumeCapability_AccessMode_SINGLE_NODE_WRITER},
	}
}

func blockCapability() *csi.VolumeCapability {
	return &csi.VolumeCapability{
		AccessType: &csi.VolumeCapability_Block{Block: &csi.VolumeCapability_BlockVolume{}},
		AccessMode: &csi.VolumeCapability_AccessMode{Mode: csi.VolumeCapability_AccessMode_SINGLE_NODE_WRITER},
	}
}

// csiVolume is one volume as a CO sees it: its requests and paths.
type csiVolume struct {
	id, staging, target string
	context             map[string]string
	capability          *csi.VolumeCapability
	secrets             map[string]string // NodeStage's secrets (DH-HMAC-CHAP)
}

func newCSIVolume(t *testing.T, id string, capability *csi.VolumeCapability, vc map[string]string) csiVolume {
	t.Helper()
	dir := t.TempDir()
	return csiVolume{
		id: id, staging: filepath.Join(dir, "staging"), target: filepath.Join(dir, "pods", "target"),
		context: vc, capability: capability,
	}
}

func (v csiVolume) stageRequest() *csi.NodeStageVolumeRequest {
	return &csi.NodeStageVolumeRequest{
		VolumeId: v.id, StagingTargetPath: v.staging, VolumeCapability: v.capability, VolumeContext: v.context,
		Secrets: v.secrets,
	}
}

func (p *csiPlugin) stage(t *testing.T, v csiVolume) {
	t.Helper()
	if _, err := p.node.NodeStageVolume(rpcContext(t), v.stageRequest()); err != nil {
		t.Fatalf("NodeStageVolume(%s): %v", v.id, err)
	}
}

func (p *csiPlugin) publish(t *testing.T, v csiVolume) {
	t.Helper()
	_, err := p.node.NodePublishVolume(rpcContext(t), &csi.NodePublishVolumeRequest{
		VolumeId: v.id, StagingTargetPath: v.staging, TargetPath: v.target, VolumeCapability: v.capability,
		VolumeContext: v.context,
	})
	if err != nil {
		t.Fatalf("NodePublishVolume(%s): %v", v.id, err)
	}
}

func (p *csiPlugin) unpublish(t *testing.T, v csiVolume) {
	t.Helper()
	if _, err := p.node.NodeUnpublishVolume(rpcContext(t), &csi.NodeUnpublishVolumeRequest{VolumeId: v.id, TargetPath: v.target}); err != nil {
		t.Fatalf("NodeUnpublishVolume(%s): %v", v.id, err)
	}
}

func (p *csiPlugin) unstage(t *testing.T, v csiVolume) {
	t.Helper()
	if _, err := p.node.NodeUnstageVolume(rpcContext(t), &csi.NodeUnstageVolumeRequest{VolumeId: v.id, StagingTargetPath: v.staging}); err != nil {
		t.Fatalf("NodeUnstageVolume(%s): %v", v.id, err)
	}
}

// unstageAtEnd unpublishes and unstages v when the test ends, whatever
// state it is in, so a failing test leaves the target as it found it.
func (p *csiPlugin) unstageAtEnd(t *testing.T, v csiVolume) {
	t.Helper()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if p.conn == nil {
			return
		}
		if _, err := p.node.NodeUnpublishVolume(ctx, &csi.NodeUnpublishVolumeRequest{VolumeId: v.id, TargetPath: v.target}); err != nil {
			t.Errorf("cleanup: NodeUnpublishVolume(%s): %v", v.id, err)
		}
		if _, err := p.node.NodeUnstageVolume(ctx, &csi.NodeUnstageVolumeRequest{VolumeId: v.id, StagingTargetPath: v.staging}); err != nil {
			t.Errorf("cleanup: NodeUnstageVolume(%s): %v", v.id, err)
		}
	})
}

// mountsUnder returns the mounts at or below dir from /proc/self/mountinfo.
func mountsUnder(t *testing.T, dir string) []mount.MountInfo {
	t.Helper()
	infos, err := mount.ParseMountInfo("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	var out []mount.MountInfo
	for _, mi := range infos {
		if mi.MountPoint == dir || strings.HasPrefix(mi.MountPoint, dir+"/") {
			out = append(out, mi)
		}
	}
	return out
}

// mountAt returns the one mount at path; it fails the test unless there
// is exactly one.
func mountAt(t *testing.T, path string) mount.MountInfo {
	t.Helper()
	var at []mount.MountInfo
	for _, mi := range mountsUnder(t, path) {
		if mi.MountPoint == path {
			at = append(at, mi)
		}
	}
	if len(at) != 1 {
		t.Fatalf("%d mounts at %s, want 1: %+v", len(at), path, at)
	}
	return at[0]
}

// usableControllers lists the usable controllers of nqn, read from sysfs.
func usableControllers(t *testing.T, nqn string) []kernel.Controller {
	t.Helper()
	c, _ := newLabConnector(t)
	all, err := c.Controllers()
	if err != nil {
		t.Fatal(err)
	}
	var out []kernel.Controller
	for _, ctrl := range all {
		if ctrl.Subsystem == nqn && ctrl.Usable() {
			out = append(out, ctrl)
		}
	}
	return out
}

// assertNothingLeft checks that no controller of nqn and no mount under
// dir remain.
func assertNothingLeft(t *testing.T, nqn, dir string) {
	t.Helper()
	if ctrls := usableControllers(t, nqn); len(ctrls) != 0 {
		t.Errorf("controllers of %s left: %+v", nqn, ctrls)
	}
	if left := mountsUnder(t, dir); len(left) != 0 {
		t.Errorf("mounts left under %s: %+v", dir, left)
	}
}

// disconnectAtEnd disconnects whatever controllers of nqn remain when the
// test ends, so a failure does not leak into the next test.
func disconnectAtEnd(t *testing.T, nqn string) {
	t.Helper()
	t.Cleanup(func() {
		c, _ := newLabConnector(t)
		all, err := c.Controllers()
		if err != nil {
			t.Error(err)
			return
		}
		for _, ctrl := range all {
			if ctrl.Subsystem == nqn {
				if err := c.Disconnect(context.Background(), ctrl); err != nil {
					t.Errorf("cleanup: disconnect %s: %v", ctrl.Name, err)
				}
			}
		}
	})
}

// wipeNamespace zeroes the head of the namespace's backing device (or
// file) on the target side, so the next stage finds a blank device and formats it.
// Call it while no controller of the subsystem is connected: the host's
// page cache would otherwise still hold the old blocks.
func wipeNamespace(t *testing.T, nqn string, nsid uint32) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(labtarget.ConfigfsRoot, "subsystems", nqn, "namespaces", strconv.FormatUint(uint64(nsid), 10), "device_path"))
	if err != nil {
		t.Fatal(err)
	}
	dev := strings.TrimSpace(string(b))
	f, err := os.OpenFile(dev, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	_, err = f.Write(make([]byte, 4<<20))
	if err == nil {
		err = f.Sync()
	}
	if err := errors.Join(err, f.Close()); err != nil {
		t.Fatalf("wipe %s (%s nsid %d): %v", dev, nqn, nsid, err)
	}
}

// sameDevice reports whether path is (a bind of) the block device dev.
func sameDevice(path, dev string) error {
	var a, b syscall.Stat_t
	if err := syscall.Stat(path, &a); err != nil {
		return fmt.Errorf("stat %s: %w", path, err)
	}
	if err := syscall.Stat(dev, &b); err != nil {
		return fmt.Errorf("stat %s: %w", dev, err)
	}
	if a.Mode&syscall.S_IFMT != syscall.S_IFBLK || a.Rdev != b.Rdev {
		return fmt.Errorf("%s is mode %o rdev %d, want the block device %s (rdev %d)", path, a.Mode, a.Rdev, dev, b.Rdev)
	}
	return nil
}

// A subsystem of the CSI tests' own, for xfs: mkfs.xfs refuses file
// systems under 300 MB and the layout's namespaces are 128 MiB.
const (
	xfsSubsystem     = "nqn.2026-01.io.nvmeof.lab:csi-xfs"
	xfsNS1UUID       = "55555555-5555-4555-8555-555555555555"
	xfsNS1NGUID      = "55555555555555555555555555555555"
	xfsNamespaceSize = 320 << 20
)

// addXFSSubsystem adds xfsSubsystem (any host, nsid 1 over a sparse file
// on tmpfs, buffered I/O since tmpfs has no O_DIRECT) to the lab's port and
// removes it all when the test ends. Register it before anything that
// connects, so their clean-ups run first.
func addXFSSubsystem(t *testing.T) {
	t.Helper()
	file := filepath.Join(t.TempDir(), "xfs.img")
	f, err := os.Create(file)
	if err != nil {
		t.Fatal(err)
	}
	if err := errors.Join(f.Truncate(xfsNamespaceSize), f.Close()); err != nil {
		t.Fatal(err)
	}
	sub := filepath.Join(labtarget.ConfigfsRoot, "subsystems", xfsSubsystem)
	ns := filepath.Join(sub, "namespaces", "1")
	link := filepath.Join(labtarget.ConfigfsRoot, "ports", labtarget.PortID, "subsystems", xfsSubsystem)
	t.Cleanup(func() {
		var errs []error
		for _, step := range []func() error{
			func() error { return ignoreMissing(os.Remove(link)) },
			func() error { return ignoreMissing(os.WriteFile(filepath.Join(ns, "enable"), []byte("0"), 0o600)) },
			func() error { return ignoreMissing(os.Remove(ns)) },
			func() error { return ignoreMissing(os.Remove(sub)) },
		} {
			errs = append(errs, step())
		}
		if err := errors.Join(errs...); err != nil {
			t.Errorf("remove %s: %v", xfsSubsystem, err)
		}
	})
	if err := os.Mkdir(sub, 0o750); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(ns, 0o750); err != nil {
		t.Fatal(err)
	}
	for _, attr := range [][2]string{
		{filepath.Join(sub, "attr_allow_any_host"), "1"}, {filepath.Join(ns, "device_path"), file},
		{filepath.Join(ns, "buffered_io"), "1"},
		{filepath.Join(ns, "device_uuid"), xfsNS1UUID}, {filepath.Join(ns, "device_nguid"), xfsNS1NGUID},
		{filepath.Join(ns, "enable"), "1"},
	} {
		if err := os.WriteFile(attr[0], []byte(attr[1]), 0o600); err != nil {
			t.Fatalf("write %s: %v", attr[0], err)
		}
	}
	if err := os.Symlink(sub, link); err != nil {
		t.Fatal(err)
	}
}

func ignoreMissing(err error) error {
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	return err
}
