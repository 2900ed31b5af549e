package nomadclient

import (
	"context"
	"errors"
	"math"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/nomad/api"
)

func methodNames(calls []Call) []string {
	out := make([]string, 0, len(calls))
	for _, c := range calls {
		out = append(out, c.Method)
	}
	return out
}

// TestRegistrationAndFingerprint: Probe until ready, GetPluginInfo once,
// then the manager's first pass: capabilities and node info, Probe and
// node capabilities (§1.1); the plugin is registered under the jobspec's
// id, not the name it reports.
func TestRegistrationAndFingerprint(t *testing.T) {
	n := newNode(t)
	n.plugin.set(func(p *fakePlugin) { p.maxVolumes = 0 })
	n.startPlugin()
	calls := methodNames(n.c.Calls.Since(0))
	info := slices.Index(calls, "GetPluginInfo")
	caps := slices.Index(calls, "GetPluginCapabilities")
	if calls[0] != "Probe" || info < 0 || caps < info {
		t.Fatalf("calls %v: want Probe first, GetPluginInfo, then the fingerprint", calls)
	}
	if got := calls[caps : caps+4]; !slices.Equal(got, []string{"GetPluginCapabilities", "NodeGetInfo", "Probe", "NodeGetCapabilities"}) {
		t.Errorf("first fingerprint %v", got)
	}
	h, ok := n.c.PluginHealth("nvmeof")
	if !ok || !h.Healthy || h.HealthDescription != "healthy" || h.NodeInfo.ID != "node-1" ||
		h.NodeInfo.MaxVolumes != math.MaxInt64 || !h.NodeInfo.RequiresNodeStageVolume {
		t.Errorf("fingerprint %+v, node %+v", h, h.NodeInfo)
	}
	// Later passes repeat only Probe and NodeGetCapabilities.
	mark := n.c.Calls.Len()
	if _, err := n.c.Calls.Wait(n.ctx(), mark, func(c Call) bool { return c.Method == "NodeGetCapabilities" }); err != nil {
		t.Fatal(err)
	}
	for _, c := range n.c.Calls.Since(mark) {
		if c.Method != "Probe" && c.Method != "NodeGetCapabilities" {
			t.Errorf("a later pass called %s", c.Method)
		}
	}
}

// TestHealthTimeoutRestartsThePlugin: a plugin not ready within
// health_timeout gets a PluginUnhealthy event and a restart (§1.1 A).
func TestHealthTimeoutRestartsThePlugin(t *testing.T) {
	n := newNode(t)
	n.plugin.set(func(p *fakePlugin) { p.ready = false })
	if _, err := n.c.RunJob(n.ctx(), pluginJob(30*time.Millisecond)); err != nil {
		t.Fatal(err)
	}
	if _, err := n.c.Events.Wait(n.ctx(), 0, func(e Event) bool {
		return e.Type == "Restart Signaled" && strings.Contains(e.Message, "health_timeout")
	}); err != nil {
		t.Fatal(err)
	}
	if _, err := n.c.Events.Wait(n.ctx(), 0, func(e Event) bool {
		return e.Type == "PluginUnhealthy" && strings.Contains(e.Message, "not ready within health_timeout")
	}); err != nil {
		t.Fatal(err)
	}
	if _, ok := n.c.PluginHealth("nvmeof"); ok {
		t.Error("a plugin never ready was registered")
	}
	n.plugin.set(func(p *fakePlugin) { p.ready = true })
	if err := n.c.WaitPluginHealthy(n.ctx(), "nvmeof"); err != nil {
		t.Fatal(err)
	}
	if n.raw.startsOf("plugin") < 2 {
		t.Errorf("the plugin task started %d times", n.raw.startsOf("plugin"))
	}
}

// TestHealthTimeoutCoversTheSocket: a plugin that never creates its
// socket is restarted too.
func TestHealthTimeoutCoversTheSocket(t *testing.T) {
	n := newNode(t)
	n.raw.mu.Lock()
	n.raw.silent = true
	n.raw.mu.Unlock()
	if _, err := n.c.RunJob(n.ctx(), pluginJob(30*time.Millisecond)); err != nil {
		t.Fatal(err)
	}
	if _, err := n.c.Events.Wait(n.ctx(), 0, func(e Event) bool { return e.Type == "Restart Signaled" }); err != nil {
		t.Fatal(err)
	}
	n.raw.mu.Lock()
	n.raw.silent = false
	n.raw.mu.Unlock()
	if err := n.c.WaitPluginHealthy(n.ctx(), "nvmeof"); err != nil {
		t.Fatal(err)
	}
}

// TestFingerprintHealth: an empty node id fails the basic fingerprint;
// Probe ready=false makes the node plugin unhealthy and blocks
// placement until it is ready again (§1.2).
func TestFingerprintHealth(t *testing.T) {
	n := newNode(t)
	n.plugin.set(func(p *fakePlugin) { p.nodeID = "" })
	if _, err := n.c.RunJob(n.ctx(), pluginJob(time.Second)); err != nil {
		t.Fatal(err)
	}
	if _, err := n.c.Events.Wait(n.ctx(), 0, func(e Event) bool {
		return e.Subsystem == "CSI" && strings.Contains(e.Message, "failed initial fingerprint") && strings.Contains(e.Message, "plugin failed to return nodeid")
	}); err != nil {
		t.Fatal(err)
	}
	n.plugin.set(func(p *fakePlugin) { p.nodeID = "node-1" })
	if err := n.c.WaitPluginHealthy(n.ctx(), "nvmeof"); err != nil {
		t.Fatal(err)
	}
	n.register("v1", "ext-v1")

	mark := n.c.Events.Len()
	n.plugin.set(func(p *fakePlugin) { p.ready = false })
	if _, err := n.c.Events.Wait(n.ctx(), mark, func(e Event) bool {
		return e.Subsystem == "CSI" && strings.Contains(e.Message, "healthy false: unhealthy")
	}); err != nil {
		t.Fatal(err)
	}
	short, cancel := context.WithTimeout(n.ctx(), 50*time.Millisecond)
	defer cancel()
	_, err := n.c.RunJob(short, consumer("app", 1, &api.VolumeRequest{Source: "v1", AccessMode: "single-node-writer", AttachmentMode: "file-system"}))
	if err == nil || !strings.Contains(err.Error(), "CSI plugin nvmeof is unhealthy") {
		t.Fatalf("placement with an unhealthy plugin: %v", err)
	}
	n.plugin.set(func(p *fakePlugin) { p.ready = true })
	n.run(consumer("app", 1, &api.VolumeRequest{Source: "v1", AccessMode: "single-node-writer", AttachmentMode: "file-system"}))
}

// TestStagingDecidedOnce: whether to stage is frozen at the first good
// fingerprint (fingerprint.go:74-81).
func TestStagingDecidedOnce(t *testing.T) {
	n := newNode(t)
	n.plugin.set(func(p *fakePlugin) { p.staging = false })
	n.startPlugin()
	n.plugin.set(func(p *fakePlugin) { p.staging = true })
	mark := n.c.Calls.Len()
	// A later pass sees the capability (two passes: the first one's
	// result is stored before the second begins)...
	seen := 0
	if _, err := n.c.Calls.Wait(n.ctx(), mark, func(c Call) bool {
		if c.Method == "NodeGetCapabilities" {
			seen++
		}
		return seen == 2
	}); err != nil {
		t.Fatal(err)
	}
	if h, _ := n.c.PluginHealth("nvmeof"); !h.NodeInfo.RequiresNodeStageVolume {
		t.Fatal("the fingerprint does not show STAGE_UNSTAGE_VOLUME")
	}
	n.register("v1", "ext-v1")
	n.run(consumer("app", 1, &api.VolumeRequest{Source: "v1", AccessMode: "single-node-writer", AttachmentMode: "file-system"}))
	// ...but the volume manager does not stage.
	got := n.callsSince(mark)
	if !slices.Equal(got, []string{"NodePublishVolume ext-v1"}) {
		t.Fatalf("calls %v, want a publish without a stage", got)
	}
	if pub := Methods(n.c.Calls.Since(mark), "NodePublishVolume")[0]; pub.StagingPath != "" {
		t.Errorf("staging path %q sent to a plugin that does not stage", pub.StagingPath)
	}
}

// TestPluginRestartInPlace: a crashed plugin task is restarted by its
// restart policy; it is not registered again and nothing is re-staged;
// Probe failures in between only make it unhealthy (§4).
func TestPluginRestartInPlace(t *testing.T) {
	n := newNode(t)
	n.startPlugin()
	n.register("v1", "ext-v1")
	n.run(consumer("app", 1, &api.VolumeRequest{Source: "v1", AccessMode: "single-node-writer", AttachmentMode: "file-system"}))
	mark, eventMark := n.c.Calls.Len(), n.c.Events.Len()
	n.raw.handle("plugin").exit(errors.New("killed"))
	if _, err := n.c.Events.Wait(n.ctx(), eventMark, func(e Event) bool { return e.Type == "Restarting" }); err != nil {
		t.Fatal(err)
	}
	if _, err := n.c.Events.Wait(n.ctx(), eventMark, func(e Event) bool { return e.Type == "Started" }); err != nil {
		t.Fatal(err)
	}
	// The next fingerprint finds it again.
	if _, err := n.c.Calls.Wait(n.ctx(), n.c.Calls.Len(), func(c Call) bool { return c.Method == "NodeGetCapabilities" && c.Err == nil }); err != nil {
		t.Fatal(err)
	}
	if err := n.c.WaitPluginHealthy(n.ctx(), "nvmeof"); err != nil {
		t.Fatal(err)
	}
	since := n.c.Calls.Since(mark)
	if m := Methods(since, "GetPluginInfo", "NodeStageVolume", "NodePublishVolume", "GetPluginCapabilities", "NodeGetInfo"); len(m) != 0 {
		t.Errorf("after a restart in place the client called %v", methodNames(m))
	}
	if n.raw.startsOf("plugin") != 2 {
		t.Errorf("plugin started %d times", n.raw.startsOf("plugin"))
	}
}
