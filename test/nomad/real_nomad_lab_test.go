//go:build lab

package nomade2e

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// nomad drives the agent the way an operator does: the CLI for changes,
// the HTTP API (read-only) to watch what happened.
type nomad struct {
	t    *testing.T
	http *http.Client
}

func newNomad(t *testing.T) *nomad {
	return &nomad{t: t, http: &http.Client{Timeout: 10 * time.Second}}
}

// cli runs the nomad CLI and returns its combined output.
func (n *nomad) cli(args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, nomadBin, args...)
	cmd.Env = append(os.Environ(), "NOMAD_ADDR="+nomadAddr)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("nomad %s: %w\n%s", strings.Join(args, " "), err, out)
	}
	return string(out), nil
}

// mustCLI is cli that fails the test on error.
func (n *nomad) mustCLI(args ...string) string {
	n.t.Helper()
	out, err := n.cli(args...)
	if err != nil {
		n.t.Fatal(err)
	}
	return out
}

// get decodes the JSON answer of an API path into v; a 404 is errNotFound.
func (n *nomad) get(path string, v any) error {
	resp, err := n.http.Get(nomadAddr + path) //nolint:noctx // the client's timeout bounds it
	if err != nil {
		return fmt.Errorf("GET %s: %w", path, err)
	}
	defer func() { _ = resp.Body.Close() }()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return fmt.Errorf("GET %s: %w", path, err)
	}
	switch {
	case resp.StatusCode == http.StatusNotFound:
		return errNotFound
	case resp.StatusCode != http.StatusOK:
		return fmt.Errorf("GET %s: %s: %s", path, resp.Status, bytes.TrimSpace(body))
	}
	if raw, ok := v.(*string); ok {
		*raw = string(body)
		return nil
	}
	if err := json.Unmarshal(body, v); err != nil {
		return fmt.Errorf("GET %s: %w", path, err)
	}
	return nil
}

var errNotFound = errors.New("not found")

// The parts of Nomad's API objects the test reads.
type (
	node struct {
		ID      string
		Status  string
		Drivers map[string]struct{ Healthy bool }
	}
	plugin struct {
		NodesHealthy  int
		NodesExpected int
	}
	allocStub struct {
		ID           string
		ClientStatus string
		CreateIndex  uint64
		TaskStates   map[string]taskState
	}
	taskState struct {
		State    string
		Failed   bool
		Restarts int
		Events   []struct {
			Type           string
			DisplayMessage string
		}
	}
	csiVolume struct {
		ID          string
		Schedulable bool
		ReadAllocs  map[string]any
		WriteAllocs map[string]any
	}
)

// latestAlloc returns the newest allocation of job.
func (n *nomad) latestAlloc(job string) (allocStub, error) {
	var allocs []allocStub
	if err := n.get("/v1/job/"+url.PathEscape(job)+"/allocations", &allocs); err != nil {
		return allocStub{}, err
	}
	var latest allocStub
	for _, a := range allocs {
		if a.CreateIndex >= latest.CreateIndex {
			latest = a
		}
	}
	if latest.ID == "" {
		return allocStub{}, fmt.Errorf("job %s has no allocation yet", job)
	}
	return latest, nil
}

// taskLog returns a task's stdout or stderr from the start.
func (n *nomad) taskLog(allocID, task, stream string) (string, error) {
	var out string
	q := url.Values{"task": {task}, "type": {stream}, "origin": {"start"}, "offset": {"0"}, "plain": {"true"}}
	err := n.get("/v1/client/fs/logs/"+allocID+"?"+q.Encode(), &out)
	return out, err
}

// waitRunning waits for the newest allocation of job to run task.
func (n *nomad) waitRunning(job, task string, timeout time.Duration) allocStub {
	n.t.Helper()
	var alloc allocStub
	eventually(n.t, timeout, "job "+job+" running", func() (bool, error) {
		a, err := n.latestAlloc(job)
		if err != nil {
			return false, err
		}
		if a.ClientStatus == "failed" {
			var raw string
			_ = n.get("/v1/allocation/"+a.ID, &raw)
			n.t.Fatalf("allocation %s of %s failed: %s", a.ID, job, raw)
		}
		alloc = a
		return a.ClientStatus == "running" && a.TaskStates[task].State == "running", fmt.Errorf("status %s", a.ClientStatus)
	})
	return alloc
}
