//go:build lab

package nomade2e

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/nvmeof/nvmeof/test/lab/labtarget"
)

// TestRealNomadStory is the story with a real Nomad agent (a nomad binary
// the person running it supplies, shared at /lab/share/nomad), one story, in order: each step builds on the last.
func TestRealNomadStory(t *testing.T) {
	s := newStory(t)
	n := newNomad(t)

	s.step("target up")
	if states, err := controllerStates(labtarget.SubsystemTwo); err != nil || len(states) != 0 {
		t.Fatalf("controllers of %s before the test: %v, %v", labtarget.SubsystemTwo, states, err)
	}
	s.done("nvmet serves %d subsystems on %s:%s", len(labtarget.Subsystems()), labtarget.TrAddr, labtarget.TrSvcID)

	s.step("Nomad agent ready")
	if err := prepareVM(); err != nil {
		t.Fatal(err)
	}
	startAgent(t, n)
	var nodeID string
	eventually(t, 90*time.Second, "node ready with exec and raw_exec", func() (bool, error) {
		var nodes []node
		if err := n.get("/v1/nodes", &nodes); err != nil {
			return false, err
		}
		for _, nd := range nodes {
			var full node
			if err := n.get("/v1/node/"+nd.ID, &full); err != nil {
				return false, err
			}
			if nd.Status == "ready" && full.Drivers["exec"].Healthy && full.Drivers["raw_exec"].Healthy {
				nodeID = nd.ID
				return true, nil
			}
		}
		return false, fmt.Errorf("nodes: %+v", nodes)
	})
	s.done("node %.8s ready; exec and raw_exec healthy", nodeID)

	s.step("plugin healthy")
	n.mustCLI("job", "run", "-detach",
		"-var", "plugin_path="+pluginBin, "-var", "nomad_data_dir="+nomadDataDir,
		"-var", "state_dir="+pluginState, "-var", "metrics_addr="+pluginMetrics,
		share+"/examples/plugin-raw-exec.nomad.hcl")
	waitPluginHealthy(t, n)
	s.done("nomad plugin status nvmeof: 1 node healthy")

	s.step("volume registered")
	spec, context := renderVolume(t)
	n.mustCLI("volume", "register", spec)
	s.done("%s from terraform's nvme_connection: traddr=%s nqn=%s ctrl_loss_tmo=%s reconnect_delay=%s",
		volumeID, context["traddr"], context["nqn"], context["ctrl_loss_tmo"], context["reconnect_delay"])

	s.step("bad contexts refused")
	checkBadContexts(t, n)
	s.done("an unknown key and an out-of-range ctrl_loss_tmo fail the claim with the core's message")

	s.step("app writing")
	n.mustCLI("job", "run", "-detach", "-var", "volume_id="+volumeID, share+"/examples/app.nomad.hcl")
	alloc := n.waitRunning(appJob, appTask, 3*time.Minute)
	first := waitLines(t, n, alloc.ID, 3)
	s.done("alloc %.8s wrote %d lines to /data/log", alloc.ID, first)

	s.step("job stopped, volume released")
	stopAppAndWaitReleased(t, n)
	s.done("NodeUnpublish + NodeUnstage ran; controller disconnected; no mount left")

	s.step("job run again finds its data")
	n.mustCLI("job", "run", "-detach", "-var", "volume_id="+volumeID, share+"/examples/app.nomad.hcl")
	alloc = n.waitRunning(appJob, appTask, 3*time.Minute)
	found := waitFound(t, n, alloc.ID)
	if found < first {
		t.Fatalf("the second run found %d lines, the first wrote at least %d", found, first)
	}
	s.done("alloc %.8s found %d lines and keeps appending", alloc.ID, found)

	s.step("plugin killed (SIGKILL)")
	killPlugin(t, n)
	before := waitLines(t, n, alloc.ID, 0)
	after := waitLines(t, n, alloc.ID, before+3)
	assertStillRunning(t, n, alloc.ID)
	s.done("Nomad restarted it; the app kept writing (%d -> %d lines) without a restart", before, after)

	s.step("outage started")
	ctrl := nvmeController(t)
	if err := labtarget.Unlink(labtarget.SubsystemTwo); err != nil {
		t.Fatal(err)
	}
	relinked := false
	t.Cleanup(func() {
		if !relinked {
			_ = labtarget.Link(labtarget.SubsystemTwo)
		}
	})
	cut := time.Now()
	waitState(t, ctrl, "connecting", 30*time.Second)
	s.done("port link removed; controller %s connecting after %d ms", ctrl, time.Since(cut).Milliseconds())

	s.step("outage held")
	during := waitLines(t, n, alloc.ID, 0)
	time.Sleep(outage - time.Since(cut))
	assertStillRunning(t, n, alloc.ID)
	// The app syncs every line: a blocked write shows as a log that stands
	// still while the task keeps running, a failed one as a dead task.
	held := waitLines(t, n, alloc.ID, 0)
	if held > during+1 {
		t.Fatalf("the app logged lines %d..%d while the target was gone: its writes did not wait", during, held)
	}
	s.done("%v without the target; the app is blocked in a write at line %d, not failing", outage, held)

	s.step("target back")
	if err := labtarget.Link(labtarget.SubsystemTwo); err != nil {
		t.Fatal(err)
	}
	relinked = true
	back := time.Now()
	waitState(t, ctrl, "live", time.Minute)
	s.done("controller %s live again after %.2fs", ctrl, time.Since(back).Seconds())

	s.step("app still writing")
	resumed := waitLines(t, n, alloc.ID, during+3)
	assertStillRunning(t, n, alloc.ID)
	s.done("%d lines, no write error, no task restart", resumed)

	s.step("data verified")
	lines := verifyData(t)
	s.done("/data/log holds lines 1..%d in order across two runs, a plugin kill and the outage", lines)

	s.step("cleanup")
	stopAppAndWaitReleased(t, n)
	n.mustCLI("volume", "deregister", volumeID)
	n.mustCLI("job", "stop", "-detach", "nvmeof-csi")
	s.done("app stopped, volume deregistered, plugin stopped")
}

// startAgent runs a dev agent for the test's lifetime. On failure its log
// and the plugin's log end up in the test output.
func startAgent(t *testing.T, n *nomad) {
	t.Helper()
	logFile, err := os.Create("/tmp/nomad-agent.log")
	if err != nil {
		t.Fatal(err)
	}
	// The agent lives until the cleanup below stops it, not for one call.
	cmd := exec.CommandContext(context.Background(), nomadBin, "agent", "-dev", "-config="+nomadAgentCfg)
	// Nomad's IMDS client refuses to start while AWS_CA_BUNDLE is set.
	cmd.Env = slices.DeleteFunc(os.Environ(), func(e string) bool { return strings.HasPrefix(e, "AWS_CA_BUNDLE=") })
	cmd.Stdout, cmd.Stderr = logFile, logFile
	if err := cmd.Start(); err != nil {
		t.Fatalf("start nomad agent: %v", err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			dumpDiagnostics(t, n)
		}
		_ = cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(20 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
		_ = logFile.Close()
	})
}

func dumpDiagnostics(t *testing.T, n *nomad) {
	if b, err := os.ReadFile("/tmp/nomad-agent.log"); err == nil {
		t.Logf("nomad agent log (tail):\n%s", tail(string(b), 80))
	}
	if a, err := n.latestAlloc("nvmeof-csi"); err == nil {
		if out, err := n.taskLog(a.ID, "plugin", "stderr"); err == nil {
			t.Logf("plugin log (tail):\n%s", tail(out, 80))
		}
	}
}

func waitPluginHealthy(t *testing.T, n *nomad) {
	t.Helper()
	eventually(t, 2*time.Minute, "plugin nvmeof healthy", func() (bool, error) {
		var p plugin
		if err := n.get("/v1/plugin/csi/nvmeof", &p); err != nil {
			return false, err
		}
		return p.NodesHealthy >= 1, fmt.Errorf("%+v", p)
	})
}

// checkBadContexts registers volumes whose contexts the core refuses and
// shows that claiming them fails with the core's own words.
func checkBadContexts(t *testing.T, n *nomad) {
	t.Helper()
	cases := []struct {
		id, key, value string
		want           []string
	}{
		{id: "bad-key", key: "ctrl_los_tmo", value: "0", want: []string{"ctrl_los_tmo", "is not a known volume context key", `did you mean \"ctrl_loss_tmo\"`}},
		{id: "bad-range", key: "ctrl_loss_tmo", value: "-5", want: []string{`invalid ctrl_loss_tmo \"-5\"`, "must be -1 (reconnect forever)"}},
	}
	for _, c := range cases {
		spec := fmt.Sprintf(`id = %q
name = %q
type = "csi"
plugin_id = "nvmeof"
external_id = %q
capability {
  access_mode     = "single-node-writer"
  attachment_mode = "file-system"
}
context {
  traddr = %q
  nqn    = %q
  nsid   = "1"
  %s = %q
}
`, c.id, c.id, c.id, labtarget.TrAddr, labtarget.SubsystemOne, c.key, c.value)
		path := filepath.Join(t.TempDir(), c.id+".hcl")
		if err := os.WriteFile(path, []byte(spec), 0o600); err != nil {
			t.Fatal(err)
		}
		n.mustCLI("volume", "register", path)
		job := fmt.Sprintf(`job %q {
  datacenters = ["*"]
  group "g" {
    reschedule {
      attempts  = 0
      unlimited = false
    }
    restart {
      attempts = 0
      mode     = "fail"
    }
    volume "v" {
      type            = "csi"
      source          = %q
      access_mode     = "single-node-writer"
      attachment_mode = "file-system"
    }
    task "t" {
      driver = "exec"
      volume_mount {
        volume      = "v"
        destination = "/data"
      }
      config {
        command = "/bin/true"
      }
    }
  }
}
`, "claim-"+c.id, c.id)
		jobPath := filepath.Join(t.TempDir(), c.id+".nomad.hcl")
		if err := os.WriteFile(jobPath, []byte(job), 0o600); err != nil {
			t.Fatal(err)
		}
		n.mustCLI("job", "run", "-detach", jobPath)
		var raw string
		eventually(t, 3*time.Minute, "claim of "+c.id+" refused", func() (bool, error) {
			a, err := n.latestAlloc("claim-" + c.id)
			if err != nil {
				return false, err
			}
			if err := n.get("/v1/allocation/"+a.ID, &raw); err != nil {
				return false, err
			}
			return a.ClientStatus == "failed", fmt.Errorf("alloc %s is %s", a.ID, a.ClientStatus)
		})
		for _, w := range c.want {
			if !strings.Contains(raw, w) {
				t.Errorf("the failed claim of %s does not say %q:\n%s", c.id, w, raw)
			}
		}
		n.mustCLI("job", "stop", "-purge", "-detach", "claim-"+c.id)
		eventually(t, time.Minute, "volume "+c.id+" deregistered", func() (bool, error) {
			_, err := n.cli("volume", "deregister", c.id)
			return err == nil, err
		})
	}
}

// waitLines waits until the app has logged at least min lines and returns
// the number of the last line written.
func waitLines(t *testing.T, n *nomad, allocID string, atLeast int) int {
	t.Helper()
	var last int
	eventually(t, 2*time.Minute, fmt.Sprintf("app log at line %d", atLeast), func() (bool, error) {
		out, err := n.taskLog(allocID, appTask, "stdout")
		if err != nil {
			return false, err
		}
		sc := bufio.NewScanner(strings.NewReader(out))
		for sc.Scan() {
			if m := lineNumber.FindStringSubmatch(sc.Text()); m != nil {
				last, _ = strconv.Atoi(m[1])
			}
		}
		return last >= atLeast && last > 0, fmt.Errorf("at line %d", last)
	})
	return last
}

var foundLine = regexp.MustCompile(`(?m)^found (\d+) lines$`)

// waitFound returns how many lines the app found when it started.
func waitFound(t *testing.T, n *nomad, allocID string) int {
	t.Helper()
	var found int
	eventually(t, time.Minute, "app reports what it found", func() (bool, error) {
		out, err := n.taskLog(allocID, appTask, "stdout")
		if err != nil {
			return false, err
		}
		m := foundLine.FindStringSubmatch(out)
		if m == nil {
			return false, fmt.Errorf("log so far: %q", out)
		}
		found, _ = strconv.Atoi(m[1])
		return true, nil
	})
	return found
}

func assertStillRunning(t *testing.T, n *nomad, allocID string) {
	t.Helper()
	var a allocStub
	if err := n.get("/v1/allocation/"+allocID, &a); err != nil {
		t.Fatal(err)
	}
	st := a.TaskStates[appTask]
	if a.ClientStatus != "running" || st.State != "running" || st.Restarts != 0 || st.Failed {
		t.Fatalf("app allocation %s: status %s, task %+v", allocID, a.ClientStatus, st)
	}
}

func stopAppAndWaitReleased(t *testing.T, n *nomad) {
	t.Helper()
	n.mustCLI("job", "stop", "-detach", appJob)
	eventually(t, 2*time.Minute, "volume released on the node", func() (bool, error) {
		var v csiVolume
		if err := n.get("/v1/volume/csi/"+volumeID, &v); err != nil {
			return false, err
		}
		states, err := controllerStates(labtarget.SubsystemTwo)
		if err != nil {
			return false, err
		}
		mounts, err := nvmeMounts()
		if err != nil {
			return false, err
		}
		released := len(v.ReadAllocs)+len(v.WriteAllocs) == 0 && len(states) == 0 && len(mounts) == 0
		return released, fmt.Errorf("claims %d/%d, controllers %v, mounts %v", len(v.ReadAllocs), len(v.WriteAllocs), states, mounts)
	})
}

func killPlugin(t *testing.T, n *nomad) {
	t.Helper()
	pids, err := pluginPIDs()
	if err != nil || len(pids) != 1 {
		t.Fatalf("plugin processes: %v, %v", pids, err)
	}
	if err := syscall.Kill(pids[0], syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	eventually(t, 2*time.Minute, "plugin restarted", func() (bool, error) {
		now, err := pluginPIDs()
		return err == nil && len(now) == 1 && now[0] != pids[0], fmt.Errorf("plugin pids %v: %w", now, err)
	})
	waitPluginHealthy(t, n)
}
