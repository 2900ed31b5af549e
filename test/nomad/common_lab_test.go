//go:build lab

package nomade2e

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nvmeof/nvmeof/test/lab/labtarget"
)

const (
	volumeID = "lab-data"
	appJob   = "nvme-app"
	appTask  = "writer"
	outage   = 15 * time.Second
)

// Paths inside the VM.
const (
	nomadBin      = share + "/nomad"
	pluginBin     = "/lab/bin/nvmeof-csi"
	nomadDataDir  = "/var/nomad"
	pluginState   = "/var/lib/nvmeof-csi"
	nomadAgentCfg = "/etc/nomad.d/agent.hcl"
	nomadAddr     = "http://127.0.0.1:4646"
	pluginMetrics = "127.0.0.1:9810"
)

var (
	idLine         = regexp.MustCompile(`(?m)^(id|name)(\s*)= .*$`)
	externalIDLine = regexp.MustCompile(`(?m)^external_id(\s*)= .*$`)
)

func tail(s string, lines int) string {
	all := strings.Split(strings.TrimRight(s, "\n"), "\n")
	return strings.Join(all[max(0, len(all)-lines):], "\n")
}

// renderVolume writes examples/nomad/volume.hcl with the id, external_id and
// context that `terraform apply` of test/nomad/terraform produced.
func renderVolume(t *testing.T) (string, map[string]string) {
	t.Helper()
	var out struct {
		VolumeContext struct{ Value map[string]string } `json:"volume_context"`
		ExternalID    struct{ Value string }            `json:"external_id"`
	}
	b, err := os.ReadFile(share + "/terraform-output.json")
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatalf("terraform output: %v", err)
	}
	ctx := out.VolumeContext.Value
	if len(ctx) == 0 || out.ExternalID.Value == "" {
		t.Fatalf("terraform output lacks volume_context or external_id: %s", b)
	}
	example, err := os.ReadFile(share + "/examples/volume.hcl")
	if err != nil {
		t.Fatal(err)
	}
	spec, err := withContext(string(example), volumeID, out.ExternalID.Value, ctx)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "volume.hcl")
	if err := os.WriteFile(path, []byte(spec), 0o600); err != nil {
		t.Fatal(err)
	}
	return path, ctx
}

// withContext replaces the example's id, name, external_id and context
// block. The example is ours, so its layout is known: a top-level
// "context {" line and a "}" line closing it.
func withContext(example, id, externalID string, ctx map[string]string) (string, error) {
	out := idLine.ReplaceAllString(example, `$1$2= "`+id+`"`)
	out = externalIDLine.ReplaceAllString(out, `external_id$1= "`+externalID+`"`)
	start := strings.Index(out, "\ncontext {\n")
	if start < 0 {
		return "", fmt.Errorf("no context block in the example")
	}
	end := strings.Index(out[start+1:], "\n}\n")
	if end < 0 {
		return "", fmt.Errorf("context block is not closed")
	}
	keys := make([]string, 0, len(ctx))
	for k := range ctx {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	b.WriteString("\ncontext {\n")
	for _, k := range keys {
		fmt.Fprintf(&b, "  %s = %q\n", k, ctx[k])
	}
	b.WriteString("}")
	return out[:start] + b.String() + out[start+1+end+2:], nil
}

var lineNumber = regexp.MustCompile(`^line (\d+) `)

// nvmeController returns the one controller of the lab volume's subsystem.
func nvmeController(t *testing.T) string {
	t.Helper()
	states, err := controllerStates(labtarget.SubsystemTwo)
	if err != nil || len(states) != 1 {
		t.Fatalf("controllers of %s: %v, %v", labtarget.SubsystemTwo, states, err)
	}
	for name := range states {
		return name
	}
	return ""
}

func waitState(t *testing.T, ctrl, want string, timeout time.Duration) {
	t.Helper()
	eventually(t, timeout, ctrl+" "+want, func() (bool, error) {
		b, err := os.ReadFile(filepath.Join("/sys/class/nvme", ctrl, "state"))
		if err != nil {
			return false, err
		}
		got := strings.TrimSpace(string(b))
		return got == want, fmt.Errorf("state %q", got)
	})
}

// verifyData reads /data/log through the staging mount and checks that its
// lines are numbered 1..N without a gap or a repeat.
func verifyData(t *testing.T) int {
	t.Helper()
	mounts, err := nvmeMounts()
	if err != nil {
		t.Fatal(err)
	}
	var path string
	for _, mps := range mounts {
		for _, mp := range mps {
			if strings.Contains(mp, "/staging/") {
				path = filepath.Join(mp, "log")
			}
		}
	}
	if path == "" {
		t.Fatalf("no staging mount of an NVMe device: %v", mounts)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	want := 1
	for _, line := range strings.Split(strings.TrimRight(string(b), "\n"), "\n") {
		m := lineNumber.FindStringSubmatch(line + " ")
		if m == nil {
			t.Fatalf("unexpected line %q in %s", line, path)
		}
		if got, _ := strconv.Atoi(m[1]); got != want {
			t.Fatalf("%s: line %d where %d should be", path, got, want)
		}
		want++
	}
	return want - 1
}

// eventually polls cond every interval until it returns true or the
// timeout passes; the last error explains a failure.
func eventually(t *testing.T, timeout time.Duration, what string, cond func() (bool, error)) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	var last error
	for {
		ok, err := cond()
		if ok {
			return
		}
		last = err
		if time.Now().After(deadline) {
			t.Fatalf("%s: not reached after %v (last error: %v)", what, timeout, last)
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// share is the host directory `make nomad-e2e` prepares, mounted read-only
// over 9p by the lab's /init: the Nomad binary, the C library it links,
// examples/nomad and the Terraform outputs.
const share = "/lab/share"

// controllerStates returns the state of every NVMe controller of nqn, by
// controller name, straight from sysfs.
func controllerStates(nqn string) (map[string]string, error) {
	entries, err := os.ReadDir("/sys/class/nvme")
	if errors.Is(err, fs.ErrNotExist) {
		return map[string]string{}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("list controllers: %w", err)
	}
	out := map[string]string{}
	for _, e := range entries {
		dir := filepath.Join("/sys/class/nvme", e.Name())
		sub, err := os.ReadFile(filepath.Join(dir, "subsysnqn"))
		if err != nil {
			continue // deleted while we looked
		}
		if strings.TrimSpace(string(sub)) != nqn {
			continue
		}
		state, err := os.ReadFile(filepath.Join(dir, "state"))
		if err != nil {
			continue
		}
		out[e.Name()] = strings.TrimSpace(string(state))
	}
	return out, nil
}

// nvmeMounts returns the mount points of NVMe block devices, by device.
func nvmeMounts() (map[string][]string, error) {
	b, err := os.ReadFile("/proc/self/mounts")
	if err != nil {
		return nil, fmt.Errorf("read mounts: %w", err)
	}
	out := map[string][]string{}
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) >= 2 && strings.HasPrefix(f[0], "/dev/nvme") {
			out[f[0]] = append(out[f[0]], f[1])
		}
	}
	return out, nil
}

// pluginPIDs lists the processes running the plugin binary.
func pluginPIDs() ([]int, error) {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil, fmt.Errorf("list processes: %w", err)
	}
	var pids []int
	for _, e := range entries {
		var pid int
		if _, err := fmt.Sscan(e.Name(), &pid); err != nil {
			continue
		}
		comm, err := os.ReadFile(filepath.Join("/proc", e.Name(), "comm"))
		if err == nil && strings.TrimSpace(string(comm)) == "nvmeof-csi" {
			pids = append(pids, pid)
		}
	}
	return pids, nil
}
