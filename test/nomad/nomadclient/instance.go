package nomadclient

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/nomad/api"
)

// registration is a plugin in the client's dynamic registry: under the
// jobspec's csi_plugin id, from the allocation that runs it (§1.1 A). It
// survives a client restart (registry.go:54-76).
type registration struct {
	PluginID   string
	AllocID    string
	Socket     string // host path
	HostRoot   string // <state>/csi/node/<id>
	PluginRoot string // stage_publish_base_dir
	Provider   string // GetPluginInfo's name
	Version    string
}

// instance is the CSI manager's instance for one registered plugin
// (csimanager/instance.go, fingerprint.go): it fingerprints the plugin and
// owns its volume manager and usage tracker.
type instance struct {
	c      *Client
	reg    registration
	log    hclog.Logger
	cancel context.CancelFunc
	done   chan struct{}

	mu      sync.Mutex
	client  *pluginClient
	basic   *basicInfo
	volumes *volumeManager
	ready   chan struct{} // closed at the first fingerprint without error
}

func startInstance(c *Client, reg registration) *instance {
	ctx, cancel := context.WithCancel(context.Background())
	i := &instance{c: c, reg: reg, log: c.log.Named("csi").With("plugin", reg.PluginID), cancel: cancel,
		done: make(chan struct{}), ready: make(chan struct{})}
	go i.run(ctx)
	return i
}

// run fingerprints at once and then every interval, each pass under one
// context; when stopped it makes a last, short pass that finds the plugin
// gone and reports it unhealthy (instance.go:126-158).
func (i *instance) run(ctx context.Context) {
	defer close(i.done)
	t := i.c.cfg.Timings
	client, err := dialPlugin(ctx, i.reg.Socket, t, i.c.Calls)
	if err != nil {
		i.setHealth(false, fmt.Sprintf("failed initial fingerprint with err: %v", err))
		return
	}
	i.mu.Lock()
	i.client = client
	i.mu.Unlock()
	for {
		pass, cancel := context.WithTimeout(ctx, t.FingerprintTimeout)
		i.fingerprint(pass)
		cancel()
		select {
		case <-ctx.Done():
			client.close()
			final, cancel := context.WithTimeout(context.Background(), t.FinalFingerprint)
			i.fingerprint(final)
			cancel()
			return
		case <-time.After(t.FingerprintInterval):
		}
	}
}

func (i *instance) fingerprint(ctx context.Context) {
	i.mu.Lock()
	basic := i.basic
	i.mu.Unlock()
	if basic == nil {
		b, err := i.client.basic(ctx)
		if err != nil {
			i.setHealth(false, fmt.Sprintf("failed initial fingerprint with err: %v", err))
			return
		}
		basic = &b
		i.mu.Lock()
		i.basic = basic
		i.mu.Unlock()
	}
	node := *basic.node
	ready, err := i.client.probe(ctx)
	if err == nil {
		err = i.client.nodeCapabilities(ctx, &node)
	}
	if err != nil {
		i.setHealth(false, fmt.Sprintf("failed fingerprinting with error: %v", err))
		return
	}
	desc := "healthy"
	if !ready {
		desc = "unhealthy"
	}
	i.mu.Lock()
	info := &api.CSIInfo{
		PluginID: i.reg.PluginID, AllocID: i.reg.AllocID, Healthy: ready, HealthDescription: desc, UpdateTime: time.Now(),
		RequiresControllerPlugin: basic.requiresController, RequiresTopologies: basic.requiresTopologies, NodeInfo: &node,
	}
	if i.volumes == nil {
		// Created at the first pass without error; whether to stage is
		// decided now, once (fingerprint.go:74-81).
		i.volumes = newVolumeManager(i.log, i.client, i.reg.PluginID, i.reg.HostRoot, i.reg.PluginRoot,
			node.RequiresNodeStageVolume, i.c.cfg.Mounts, i.c.event)
		close(i.ready)
	}
	i.mu.Unlock()
	i.c.updateNodePlugin(info)
}

func (i *instance) setHealth(healthy bool, desc string) {
	i.mu.Lock()
	info := &api.CSIInfo{PluginID: i.reg.PluginID, AllocID: i.reg.AllocID, Healthy: healthy, HealthDescription: desc, UpdateTime: time.Now()}
	if i.basic != nil {
		n := *i.basic.node
		info.NodeInfo = &n
	}
	i.mu.Unlock()
	i.c.updateNodePlugin(info)
}

// manager waits for the first good fingerprint (ManagerForPlugin blocks
// the same way) and returns the volume manager.
func (i *instance) manager(ctx context.Context) (*volumeManager, error) {
	select {
	case <-i.ready:
	case <-i.done:
		return nil, fmt.Errorf("plugin %s: its manager stopped before a first fingerprint", i.reg.PluginID)
	case <-ctx.Done():
		return nil, fmt.Errorf("plugin %s: no good fingerprint yet: %w", i.reg.PluginID, ctx.Err())
	}
	i.mu.Lock()
	defer i.mu.Unlock()
	return i.volumes, nil
}

func (i *instance) stop() {
	i.cancel()
	<-i.done
}

// errPluginNotFound is the client's answer when no plugin of that id is
// registered ("plugin ... not found", #8080).
var errPluginNotFound = errors.New("plugin not found")
