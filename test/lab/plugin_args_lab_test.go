//go:build lab

package lab

import (
	"bufio"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/nvmeof/nvmeof/test/lab/labtarget"
)

// startPluginArgs is startPlugin with flags of the test's own (they come
// last, so they override the defaults) and, when logFile is set, the
// plugin's stderr in that file rather than a pipe: a write to a file wakes
// no reader, so a benchmark that needs the debug log does not pay for a
// context switch per line. (A copy of startPlugin's steps: the lab harness
// that owns startPlugin is being reshaped by the two-kernel work, and this
// keeps the benchmark out of its way.)
func startPluginArgs(t *testing.T, logFile string, extra ...string) *csiPlugin {
	t.Helper()
	socket, stateDir := pluginDirs(t)
	p := &csiPlugin{t: t, socket: socket, stateDir: stateDir, log: &pluginLog{}, exited: make(chan error, 1)}
	p.cmd = exec.Command(pluginBinary, append([]string{ //nolint:noctx // stopped by stop (SIGTERM) or kill (SIGKILL), which a context could not tell apart
		"--endpoint=unix://" + socket, "--state-dir=" + stateDir,
		"--hostnqn=" + labtarget.HostNQN, "--hostid=" + labtarget.HostID, "--node-id=lab-node",
		"--log-level=debug", "--log-json"}, extra...)...)
	p.cmd.Stderr = p.log
	if logFile != "" {
		f, err := os.Create(logFile)
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
		if t.Failed() && logFile == "" {
			t.Logf("plugin log (pid %d):\n%s", p.cmd.Process.Pid, p.log.String())
		}
	})
	conn, err := grpc.NewClient("unix://"+socket, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatalf("grpc client for %s: %v", socket, err)
	}
	p.conn, p.node, p.identity = conn, csi.NewNodeClient(conn), csi.NewIdentityClient(conn)
	waitFor(t, "the plugin's Probe to answer ready", 20*time.Second, func() bool {
		select {
		case werr := <-p.exited:
			p.exited <- werr
			t.Fatalf("plugin exited before serving: %v\n%s", werr, p.log.String())
		default:
		}
		ctx, cancel := context.WithTimeout(t.Context(), time.Second)
		defer cancel()
		resp, err := p.identity.Probe(ctx, &csi.ProbeRequest{})
		return err == nil && resp.GetReady().GetValue()
	})
	return p
}

// fileLog reads the JSON lines a plugin wrote to a file.
type fileLog string

// lines counts the lines so far, a mark for entries.
func (f fileLog) lines(t *testing.T) int {
	t.Helper()
	b, err := os.ReadFile(string(f))
	if err != nil {
		t.Fatal(err)
	}
	return strings.Count(string(b), "\n")
}

// entries parses the lines written since the mark.
func (f fileLog) entries(t *testing.T, since int) []map[string]any {
	t.Helper()
	b, err := os.ReadFile(string(f))
	if err != nil {
		t.Fatal(err)
	}
	var out []map[string]any
	sc := bufio.NewScanner(strings.NewReader(string(b)))
	sc.Buffer(nil, 1<<20)
	for i := 0; sc.Scan(); i++ {
		var m map[string]any
		if i >= since && json.Unmarshal(sc.Bytes(), &m) == nil {
			out = append(out, m)
		}
	}
	return out
}
